//! The replica's HTTP server: client API, the read-only group view, inventory commands and
//! change stream, Raft RPC, admin API and operations endpoints.
//!
//! Every error leaves as a JSON [`ErrorBody`](api::ErrorBody) with a 4xx/5xx status, including
//! malformed JSON, oversized bodies, unknown routes and missing tokens.

mod admin;
mod inventory;
mod ops;
mod orders;
mod raft_rpc;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

pub use servicekit::{ApiJson, HttpError};

use crate::replica::Replica;

/// Largest accepted client request body.
pub const CLIENT_BODY_LIMIT: usize = 16 * 1024;
/// Largest accepted Raft RPC body (a whole snapshot travels in one request).
pub const RAFT_BODY_LIMIT: usize = 1 << 30;

/// Builds the complete router of a replica.
pub fn router(replica: Arc<Replica>) -> Router {
    let protected = Router::new()
        .merge(raft_rpc::routes(replica.clone()))
        .merge(admin::routes())
        .merge(inventory::routes())
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(
            servicekit::RequiredToken::new(&replica.token),
            servicekit::require_token,
        ));
    let public = Router::new()
        .merge(orders::routes())
        .merge(ops::routes())
        .layer(DefaultBodyLimit::max(CLIENT_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(
            CLIENT_BODY_LIMIT,
            servicekit::reject_oversized,
        ));
    Router::new()
        .merge(protected)
        .merge(public)
        .fallback(servicekit::not_found)
        .method_not_allowed_fallback(servicekit::method_not_allowed)
        .with_state(replica)
}
