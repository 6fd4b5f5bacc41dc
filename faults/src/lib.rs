//! Fault injection against real ToyStore processes while clients work.
//!
//! - [`target`]: the store under test (three order replicas, two catalog replicas, two
//!   frontends, started through the launcher) and the faults done to it: SIGKILL and restart
//!   of any replica or catalog replica, SIGSTOP/SIGCONT, everything down at once, a lost data
//!   directory, a full disk; healing; reading the final state (every replica's orders and
//!   audit);
//! - [`net`]: network namespaces and `iptables` rules for network faults between processes;
//! - [`workload`]: clients that buy and read through the frontends, every operation recorded;
//! - [`scenario`]: one fault repeated for a while, then healing and the history checkers of the
//!   `history` crate (no acknowledged order lost or duplicated, one outcome per key, dense
//!   numbers, linearizable order reads, monotonic product reads, the stock invariant on every
//!   replica's books, converged replicas).
//!
//! Purchases are one command of the order group and never go through a catalog, so the
//! catalog faults ([`Fault::is_catalog`]) also demand that no purchase failed while they
//! lasted.
//!
//! `cargo test -p faults` runs a short version of every scenario; `soak` runs a long seedable
//! mix of them (see the README).

pub mod net;
pub mod scenario;
pub mod target;
pub mod workload;

pub use scenario::{Fault, Report, run};
