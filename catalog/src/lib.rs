//! ToyStore catalog: a stateless service over the order group.
//!
//! The toys and their stock live in the order group's replicated state machine. The catalog
//! keeps a view of them from the group's change stream, serves product reads from it (a read
//! names the lowest version it accepts), relays the changes to the frontends as its change
//! feed, defines the toys at a store's first start and restocks sold-out toys, both through
//! the group with conditional commands. It keeps no data of its own: any number of catalog
//! replicas run side by side, and losing any of them never stops a purchase.
//!
//! - [`args`]: the command line ([`api::settings::Catalog`]) resolved into settings;
//! - [`seed`]: the toys a store starts with (file or built-in);
//! - [`view`]: the view of the inventory and its relay window;
//! - [`follow`]: keeping the view current from the group's change stream;
//! - [`restock`]: the first-start definitions and the periodic restock;
//! - [`feed`]: the long-poll change feed for the frontends;
//! - [`state`]: what the handlers and tasks share;
//! - [`http`]: the HTTP API;
//! - [`metrics`]: Prometheus metrics;
//! - [`server`]: starting the catalog and serving it on the listener it is given until shutdown.

pub mod args;
pub mod feed;
pub mod follow;
pub mod http;
pub mod metrics;
pub mod restock;
pub mod seed;
pub mod server;
pub mod state;
pub mod view;
