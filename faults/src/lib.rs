//! Fault injection against real ToyStore processes while clients work.
//!
//! - [`target`]: the store under test (started through the launcher) and the faults done to it:
//!   SIGKILL and restart of any replica or the catalog, SIGSTOP/SIGCONT, everything down at
//!   once, a lost data directory, a full disk; healing; reading the final state;
//! - [`net`]: network namespaces and `iptables` rules for network faults between processes;
//! - [`workload`]: clients that buy and read through the frontends, every operation recorded;
//! - [`scenario`]: one fault repeated for a while, then healing and the history checkers of the
//!   `history` crate (no acknowledged order lost or duplicated, one outcome per key, dense
//!   numbers, linearizable order reads, monotonic product reads, the stock invariant,
//!   converged replicas).
//!
//! `cargo test -p faults` runs a short version of every scenario; `soak` runs a long seedable
//! mix of them (see the README).

pub mod net;
pub mod scenario;
pub mod target;
pub mod workload;

pub use scenario::{Fault, Report, run};
