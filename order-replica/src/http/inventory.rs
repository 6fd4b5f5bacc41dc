//! The inventory commands, the change stream and the audit (cluster token required; see
//! [`api::inventory`] for the wire types).
//!
//! Define and restock are commands through Raft, so only the leader takes them (a follower
//! answers 307 to the leader). The change stream and the audit are served by every replica
//! from what it has applied.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use api::catalog::ChangeBatch;
use api::inventory::{Audit, DefineRequest, DefineResponse, RestockRequest, RestockResponse};

use super::{ApiJson, HttpError};
use crate::purchase::{self, PurchaseError};
use crate::replica::Replica;
use crate::types::{Command, CommandResult};

/// Default time a change-stream long-poll waits for a change.
pub const DEFAULT_WAIT_MS: u64 = 25_000;
/// Longest time a change-stream long-poll may wait.
pub const MAX_WAIT_MS: u64 = 30_000;

pub fn routes() -> Router<Arc<Replica>> {
    Router::new()
        .route("/inventory/define", post(define))
        .route("/inventory/restock", post(restock))
        .route("/inventory/changes", get(changes))
        .route("/audit", get(audit))
}

fn refused(e: PurchaseError, path: &str) -> HttpError {
    match e {
        PurchaseError::NotLeader(hint) => HttpError::not_leader(hint, path),
        other => HttpError::unavailable(other.to_string()),
    }
}

async fn define(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<DefineRequest>,
) -> Result<Json<DefineResponse>, HttpError> {
    req.validate()
        .map_err(|m| HttpError::new(StatusCode::BAD_REQUEST, m))?;
    let cmd = Command::Define {
        products: req.products,
    };
    match purchase::commit(&replica, cmd).await {
        Ok(CommandResult::Defined { names, version }) => {
            if !names.is_empty() {
                tracing::info!(defined = ?names, version, "toys defined");
            }
            Ok(Json(DefineResponse {
                defined: names,
                version,
            }))
        }
        Ok(other) => Err(HttpError::unavailable(format!("define answered {other:?}"))),
        Err(e) => Err(refused(e, "/inventory/define")),
    }
}

async fn restock(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<RestockRequest>,
) -> Result<Json<RestockResponse>, HttpError> {
    req.validate()
        .map_err(|m| HttpError::new(StatusCode::BAD_REQUEST, m))?;
    let cmd = Command::Restock {
        name: req.name,
        to: req.to,
        only_if_at: req.only_if_at,
    };
    match purchase::commit(&replica, cmd).await {
        Ok(CommandResult::Restock { restocked, product }) => {
            if let Some(p) = product.as_ref().filter(|_| restocked) {
                tracing::info!(toy = %p.name, stock = p.stock, version = p.version, "restocked");
            }
            Ok(Json(RestockResponse {
                restocked,
                product: product.map(|p| p.product()),
            }))
        }
        Ok(other) => Err(HttpError::unavailable(format!(
            "restock answered {other:?}"
        ))),
        Err(e) => Err(refused(e, "/inventory/restock")),
    }
}

/// Query of `GET /inventory/changes`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    /// Last version the subscriber has seen (0: none).
    after: u64,
    /// How long to wait for a change, in milliseconds.
    wait_ms: Option<u64>,
}

/// The changes after `after` at once if there are any (or the whole inventory, when `after` is
/// older than what this replica holds); else waits up to `wait_ms` for one. A replica that
/// starts to stop answers waiting polls at once.
async fn changes(
    State(replica): State<Arc<Replica>>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Result<Json<ChangeBatch>, HttpError> {
    let Query(q) = query.map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query (expected after=<version>&wait_ms=<0..={MAX_WAIT_MS}>): {e}"),
        )
    })?;
    let wait_ms = q.wait_ms.unwrap_or(DEFAULT_WAIT_MS);
    if wait_ms > MAX_WAIT_MS {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("wait_ms must be at most {MAX_WAIT_MS}, got {wait_ms}"),
        ));
    }
    // Subscribed before reading, so a change applied in between is never missed.
    let mut newest = replica.state.subscribe();
    let mut stopping = replica.stopping.subscribe();
    let batch = read_changes(&replica, q.after).await?;
    if batch.reset || !batch.events.is_empty() || wait_ms == 0 || *stopping.borrow() {
        return Ok(Json(batch));
    }
    tokio::select! {
        _ = tokio::time::timeout(
            Duration::from_millis(wait_ms),
            newest.wait_for(|v| *v > q.after),
        ) => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    Ok(Json(read_changes(&replica, q.after).await?))
}

async fn read_changes(replica: &Arc<Replica>, after: u64) -> Result<ChangeBatch, HttpError> {
    let state = replica.state.clone();
    tokio::task::spawn_blocking(move || state.changes(after))
        .await
        .map_err(|e| HttpError::unavailable(e.to_string()))?
        .map_err(|e| HttpError::unavailable(format!("cannot read the changes: {e}")))
}

async fn audit(State(replica): State<Arc<Replica>>) -> Result<Json<Audit>, HttpError> {
    let state = replica.state.clone();
    tokio::task::spawn_blocking(move || state.audit())
        .await
        .map_err(|e| HttpError::unavailable(e.to_string()))?
        .map(Json)
        .map_err(|e| HttpError::unavailable(format!("cannot read the books: {e}")))
}
