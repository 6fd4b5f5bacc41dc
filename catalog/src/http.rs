//! The catalog's HTTP API (see [`api::catalog`] for the wire types).
//!
//! - `GET /products`, `GET /products/{name}`: the toys, `{"data": ...}`; unknown toy → 404.
//! - `POST /take`: an idempotent stock take, `{"data": TakeResponse}`; bad input → 400.
//! - `GET /changes?after=V&wait_ms=W`: the long-poll change feed ([`crate::feed`]).
//! - `GET /audit`: bookkeeping for invariant checkers.
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! Every error leaves as the shared JSON error body via [`HttpError`], including malformed
//! JSON, bad query strings, oversized bodies, unknown routes and wrong methods, so clients never
//! have to parse a plain-text rejection.

use std::sync::Arc;

use api::catalog::TakeRequest;
use api::orders::Data;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use servicekit::{ApiJson, HttpError};

use crate::feed::{self, ChangesQuery};
use crate::service::{Catalog, CatalogError};
use crate::store::StoreError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Builds the catalog's router. Taking stock and the audit need the cluster token: only the
/// order leader may take stock (a take without an order would break "stock taken ⇔ order
/// confirmed"), and the audit exposes every purchase.
pub fn router(catalog: Arc<Catalog>, token: &str) -> Router {
    let internal = Router::new()
        .route("/take", post(take))
        .route("/audit", get(audit))
        .route_layer(axum::middleware::from_fn_with_state(
            servicekit::RequiredToken::new(token),
            servicekit::require_token,
        ));
    Router::new()
        .merge(internal)
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

/// Maps a catalog error to its HTTP answer: bad input 400, storage trouble 503 (retrying
/// later may help, and the order leader treats it as "catalog unavailable"), anything else 500.
fn error(e: CatalogError) -> HttpError {
    match e {
        CatalogError::Store(StoreError::Invalid(msg)) => {
            HttpError::new(StatusCode::BAD_REQUEST, msg)
        }
        CatalogError::Store(StoreError::Database(e)) => {
            tracing::error!(error = %e, "database error");
            HttpError::unavailable(format!("catalog storage unavailable: {e}"))
        }
        // Logged once by the catalog when the store failed; every request meanwhile says so.
        e @ CatalogError::Recovering(_) => HttpError::unavailable(e.to_string()),
        other => {
            tracing::error!(error = %other, "internal error");
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

async fn products(State(catalog): State<Arc<Catalog>>) -> Result<impl IntoResponse, HttpError> {
    Ok(data(catalog.products().await.map_err(error)?))
}

async fn product(
    State(catalog): State<Arc<Catalog>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, HttpError> {
    let Path(name) =
        name.map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("bad toy name: {e}")))?;
    match catalog.product(name.clone()).await.map_err(error)? {
        Some(p) => Ok(data(p)),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no toy called {name:?}"),
        )),
    }
}

async fn take(
    State(catalog): State<Arc<Catalog>>,
    ApiJson(req): ApiJson<TakeRequest>,
) -> Result<impl IntoResponse, HttpError> {
    let key = req.key.clone();
    let resp = catalog.take(req).await.map_err(error)?;
    tracing::debug!(%key, outcome = ?resp.outcome, "take");
    Ok(data(resp))
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
    let batch = feed::long_poll(&catalog, query.after, wait)
        .await
        .map_err(error)?;
    Ok(data(batch))
}

async fn audit(State(catalog): State<Arc<Catalog>>) -> Result<impl IntoResponse, HttpError> {
    Ok(data(catalog.audit().await.map_err(error)?))
}

/// Alive while the process serves HTTP.
/// Alive unless the store has stayed broken for a long time (then a restart may help).
async fn healthz(State(catalog): State<Arc<Catalog>>) -> Result<impl IntoResponse, HttpError> {
    match catalog.stuck() {
        Some(why) => Err(HttpError::unavailable(why)),
        None => Ok(Json(json!({"status": "ok", "pid": std::process::id()}))),
    }
}

/// Ready when the store can be read and holds its seeded products.
async fn readyz(State(catalog): State<Arc<Catalog>>) -> Result<impl IntoResponse, HttpError> {
    match catalog.is_ready().await {
        Ok(true) => Ok(Json(
            json!({"status": "ready", "version": catalog.version()}),
        )),
        Ok(false) => Err(HttpError::unavailable("catalog not seeded yet")),
        Err(e) => Err(HttpError::unavailable(format!("store unreadable: {e}"))),
    }
}

async fn metrics(State(catalog): State<Arc<Catalog>>) -> impl IntoResponse {
    let body = catalog.metrics().render(catalog.version());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
