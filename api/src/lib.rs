//! Shared ToyStore wire types and typed HTTP clients.
//!
//! Every message that crosses a service boundary is defined here exactly once, so the
//! order replicas, the frontend, the operator and the `toystore` command cannot drift apart.
//! The [`membership`] module holds the Raft membership driver that both the operator and
//! local mode use to grow and shrink the order group.

pub mod catalog;
pub mod client;
pub mod error;
pub mod membership;
pub mod orders;
pub mod raft;
#[cfg(feature = "server")]
pub mod server;

pub use client::{ClientError, ReplicaClient};
pub use error::{ApiError, ErrorBody, LeaderHint};
pub use orders::{Order, OrderNumber, PlaceOrder, PlaceOrderResponse};
pub use raft::{MemberInfo, RaftRole, RaftStatus};

/// HTTP header that carries the idempotency key of a purchase.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
