//! Histories of client operations against a store, and the checkers that judge them.
//!
//! A fault test records every operation its clients make ([`Recorder`]): when it was invoked,
//! when it completed and what came back. An answer that proves nothing happened (a 4xx refusal)
//! and an answer that proves something did (a confirmation) are definite; a timeout, a refused
//! connection or a 5xx is [`Outcome::Unknown`]: the operation may or may not have taken effect.
//! At the end the test reads what the store holds ([`FinalState`]) and the checkers compare:
//!
//! - [`check::acknowledged_orders_kept`]: no acknowledged order is lost or changed;
//! - [`check::one_outcome_per_key`]: a key gets at most one order number, and a refused key no
//!   order at all;
//! - [`check::numbers_dense`]: confirmed numbers are exactly `0..n`, one key each;
//! - [`check::order_reads_linearizable`]: order reads are linearizable (Wing–Gong–Lowe search
//!   per order number, [`linearizable`]);
//! - [`check::product_reads_monotonic`]: one frontend never serves a product older than one it
//!   served before (versions are the order group's log indexes: growing, not dense);
//! - [`check::product_versions_consistent`]: a product's version names one state of it;
//! - [`check::stock_invariant`]: on every replica, for every toy, stock = initial + restocked −
//!   sold, never below zero, and sold = the units of its confirmed orders, as the replica's
//!   books count them and as the orders read back by number add up;
//! - [`check::restocks_only_when_sold_out`]: each restock brings a sold-out toy to the restock
//!   quantity and does nothing else (however many catalog replicas send it);
//! - [`check::replicas_converge`]: every replica holds the same orders and the same books.
//!
//! The final state holds each replica's orders and its audit (`GET /audit`,
//! [`api::inventory::Audit`]): stock and orders are one replicated state machine, so the
//! replicas' books are the whole truth about stock; [`check::numbers_dense`] also holds each
//! audit's count of confirmed orders to the orders served.
//!
//! Each checker's tests plant the violation it exists to catch.

pub mod check;
pub mod linearizable;
mod record;
mod state;

pub use check::{Violation, check_all};
pub use record::{Event, Invocation, Op, Outcome, Recorder};
pub use state::{FinalState, ReplicaOrders, StoredOrder, StoredStatus};
