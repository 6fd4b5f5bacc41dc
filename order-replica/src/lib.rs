//! ToyStore order replica: one member of the Raft-replicated order group.
//!
//! - [`args`]: the command line ([`api::settings::OrderReplica`]) resolved into settings;
//! - [`types`]: the Raft type configuration and the state machine's commands;
//! - [`record`]: the orders and toys the log and the state machine keep (storage, not wire, types);
//! - [`identity`]: the data directory's identity, and admission to the group;
//! - [`log_store`]: the durable Raft log (append-only, checksummed, fsync per batch);
//! - [`state_machine`]: inventory and orders in redb, applied atomically, the change stream,
//!   snapshots;
//! - [`network`]: Raft RPC to peers over HTTP;
//! - [`wire`]: how Raft RPC bodies are encoded (MessagePack, JSON for older peers);
//! - [`purchase`]: committing a purchase, or an inventory command, through Raft;
//! - [`http`]: client API, inventory commands and change stream, Raft RPC, admin API, health
//!   and metrics;
//! - [`restore`]: seeding a new data directory from a backed-up state;
//! - [`server`]: opening a replica and serving it on the listeners it is given until shutdown.

pub mod args;
pub mod http;
pub mod identity;
pub mod log_store;
pub mod metrics;
pub mod network;
pub mod purchase;
pub mod record;
pub mod replica;
pub mod restore;
pub mod server;
pub mod state_machine;
pub mod types;
pub mod wire;
