//! ToyStore order replica: one member of the Raft-replicated order group.
//!
//! - [`args`]: the command line and `ORDER_*` environment, the operator's contract;
//! - [`types`]: the Raft type configuration and the purchase commands;
//! - [`record`]: the order records the log and the state machine keep (storage, not wire, types);
//! - [`identity`]: the data directory's identity, and admission to the group;
//! - [`log_store`]: the durable Raft log (append-only, checksummed, fsync per batch);
//! - [`state_machine`]: orders in redb, applied atomically, snapshots;
//! - [`network`]: Raft RPC to peers over HTTP;
//! - [`wire`]: how Raft RPC bodies are encoded (MessagePack, JSON for older peers);
//! - [`purchase`]: the order side of the purchase protocol, run by the leader;
//! - [`handover`]: handing leadership away from a leader cut off from the catalog;
//! - [`stock`]: the interface to whoever owns stock;
//! - [`http`]: client API, Raft RPC, admin API, health and metrics;
//! - [`server`]: opening a replica and serving it until shutdown.

pub mod args;
pub mod handover;
pub mod http;
pub mod identity;
pub mod log_store;
pub mod metrics;
pub mod network;
pub mod purchase;
pub mod record;
pub mod replica;
pub mod server;
pub mod state_machine;
pub mod stock;
pub mod types;
pub mod wire;
