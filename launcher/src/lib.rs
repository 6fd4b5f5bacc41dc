//! Running ToyStore's processes from code: the one launcher.
//!
//! - [`process`]: one service process: its log captured, checked to be the one answering on
//!   its port, readiness or exit (whichever comes first), signals;
//! - [`store`]: a whole store (catalog, order replicas, frontends) as processes, the order group
//!   formed through the membership driver;
//! - [`local`]: local mode (`toystore up`), a store in a directory of the user's, supervised;
//! - [`backoff`]: when local mode restarts a child that exited (growing back-off);
//! - [`ports`]: loopback ports for the children.
//!
//! `toystore up`, the evaluation, the benchmarks and the integration and fault tests all start
//! stores through it.

pub mod backoff;
pub mod local;
pub mod ports;
pub mod process;
pub mod store;

pub use local::{ClusterFile, LocalStore, RESTOCK_QUANTITY, ReplicaInfo, ServiceInfo, UpOptions};
pub use process::{Host, LaunchError, Process};
pub use store::{CatalogSpec, FrontendSpec, Ports, Store, StoreSpec, fast_raft};
