//! Shared ToyStore wire types and typed HTTP clients.
//!
//! Every message that crosses a service boundary is defined here exactly once, so the
//! order replicas, the frontend, the operator and the `toystore` command cannot drift apart.
//! The server side of HTTP lives in `servicekit`, the membership driver in `membership`.

pub mod backup;
pub mod catalog;
pub mod client;
pub mod error;
pub mod group;
pub mod inventory;
pub mod orders;
pub mod raft;
pub mod settings;
pub mod view;

pub use client::{ClientError, ReplicaClient};
pub use error::{ApiError, ErrorBody, LeaderHint};
pub use group::GroupClient;
pub use orders::{Order, OrderNumber, PlaceOrder, PlaceOrderResponse, PlacedOrder};
pub use raft::{GroupInfo, MemberInfo, RaftRole, RaftStatus};

/// The release every binary reports with `--version`: `TOYSTORE_VERSION` at build time (the
/// container image sets it from its `VERSION` build argument), else the crate version.
pub const VERSION: &str = match option_env!("TOYSTORE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// HTTP header that carries the idempotency key of a purchase.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
