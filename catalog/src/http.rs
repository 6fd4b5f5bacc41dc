//! The catalog's HTTP API (see [`api::catalog`] for the wire types).
//!
//! - `GET /products?min_version=V`, `GET /products/{name}?min_version=V`: the toys from the
//!   view, `{"data": ...}`, once the view has reached `min_version` (503 if it does not within
//!   [`READ_PATIENCE`]); unknown toy → 404.
//! - `GET /changes?after=V&wait_ms=W`: the long-poll change feed ([`crate::feed`]).
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! Every error leaves as the shared JSON error body via [`HttpError`], including bad query
//! strings, oversized bodies, unknown routes and wrong methods, so clients never have to parse
//! a plain-text rejection.

use std::sync::Arc;
use std::time::Duration;

use api::orders::Data;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use servicekit::HttpError;

use crate::feed::{self, ChangesQuery};
use crate::state::Catalog;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 16 * 1024;

/// How long a read waits for the view to reach its `min_version` before answering 503.
pub const READ_PATIENCE: Duration = Duration::from_secs(2);

/// Builds the catalog's router: every route is a read of the view; the catalog changes the
/// inventory only through the order group.
pub fn router(catalog: Arc<Catalog>) -> Router {
    Router::new()
        .route("/products", get(products))
        .route("/products/{name}", get(product))
        .route("/changes", get(changes))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route_layer(axum::middleware::from_fn_with_state(
            BODY_LIMIT,
            servicekit::reject_oversized,
        ))
        .fallback(servicekit::not_found)
        .method_not_allowed_fallback(servicekit::method_not_allowed)
        .with_state(catalog)
}

/// `{"data": value}`.
fn data<T: Serialize>(value: T) -> Json<Data<T>> {
    Json(Data { data: value })
}

/// Query of the product reads.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    /// The lowest version of the inventory the reader accepts.
    #[serde(default)]
    min_version: u64,
}

/// Waits until the view is ready and has reached the read's `min_version`, or says why not.
async fn fresh_enough(
    catalog: &Catalog,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<(), HttpError> {
    let Query(q) = query.map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query (expected min_version=<version>): {e}"),
        )
    })?;
    if !catalog.view.is_ready() {
        return Err(HttpError::unavailable(
            "the catalog has not read the store's inventory yet",
        ));
    }
    if !catalog.view.wait_for(q.min_version, READ_PATIENCE).await {
        catalog.metrics.stale_read();
        return Err(HttpError::unavailable(format!(
            "the catalog's view is at version {}, behind the {} asked for; retry",
            catalog.view.version(),
            q.min_version
        )));
    }
    Ok(())
}

async fn products(
    State(catalog): State<Arc<Catalog>>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<impl IntoResponse, HttpError> {
    fresh_enough(&catalog, query).await?;
    Ok(data(catalog.view.products()))
}

async fn product(
    State(catalog): State<Arc<Catalog>>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<impl IntoResponse, HttpError> {
    let Path(name) =
        name.map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("bad toy name: {e}")))?;
    fresh_enough(&catalog, query).await?;
    match catalog.view.product(&name) {
        Some(p) => Ok(data(p)),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no toy called {name:?}"),
        )),
    }
}

async fn changes(
    State(catalog): State<Arc<Catalog>>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Result<impl IntoResponse, HttpError> {
    let Query(query) = query.map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query (expected after=<version>&wait_ms=<0..=30000>): {e}"),
        )
    })?;
    let wait = query
        .wait()
        .map_err(|msg| HttpError::new(StatusCode::BAD_REQUEST, msg))?;
    if !catalog.view.is_ready() {
        return Err(HttpError::unavailable(
            "the catalog has not read the store's inventory yet",
        ));
    }
    Ok(data(feed::long_poll(&catalog, query.after, wait).await))
}

/// Alive while the process serves HTTP (it keeps no state a restart would repair).
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok", "pid": std::process::id()}))
}

/// Ready once the view has heard from the order group and the store's toys are defined.
async fn readyz(State(catalog): State<Arc<Catalog>>) -> Result<impl IntoResponse, HttpError> {
    if !catalog.view.is_synced() {
        return Err(HttpError::unavailable(
            "not ready: the order group's change stream has not answered yet",
        ));
    }
    if !catalog.view.is_defined() {
        return Err(HttpError::unavailable(
            "not ready: the store's toys are not defined yet",
        ));
    }
    Ok(Json(
        json!({"status": "ready", "version": catalog.view.version()}),
    ))
}

async fn metrics(State(catalog): State<Arc<Catalog>>) -> impl IntoResponse {
    let body = catalog
        .metrics
        .render(catalog.view.version(), catalog.view.len());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
