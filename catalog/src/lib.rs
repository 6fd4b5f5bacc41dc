//! ToyStore catalog: the service that owns the toys and their stock.
//!
//! The order group asks the catalog to take stock for each purchase; the catalog answers
//! idempotently by the purchase's key, durably, so a purchase retried after any crash takes
//! stock at most once. Frontends read products and follow a change feed to keep their caches
//! fresh.
//!
//! - [`args`]: the command line and `CATALOG_*` environment, the operator's contract;
//! - [`seed`]: the toys a new catalog starts with (file or built-in);
//! - [`store`]: the durable state in redb: products, take records, feed version and events;
//! - [`service`]: the store behind `spawn_blocking`, the version watch and metrics;
//! - [`feed`]: the long-poll change feed;
//! - [`restock`]: the periodic restock task;
//! - [`http`]: the HTTP API;
//! - [`metrics`]: Prometheus metrics;
//! - [`server`]: opening the catalog and serving it until shutdown.

pub mod args;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod restock;
pub mod seed;
pub mod server;
pub mod service;
pub mod store;
