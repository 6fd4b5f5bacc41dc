//! `/healthz`, `/readyz`, `/metrics`, and `/group`: the read-only view of the group that
//! clients without the token (frontends) find the leader with.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::HttpError;
use crate::replica::Replica;

pub fn routes() -> Router<Arc<Replica>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/group", get(group))
}

/// This replica's read-only view of the group: leader, term, members, whether the inventory
/// is defined. Nothing in it changes the group or tells a secret.
async fn group(State(replica): State<Arc<Replica>>) -> Json<api::raft::GroupInfo> {
    Json(api::raft::GroupInfo::from(&replica.status()))
}

/// Alive unless Raft has stopped (a storage failure stops it; a restart is the cure).
async fn healthz(State(replica): State<Arc<Replica>>) -> Result<impl IntoResponse, HttpError> {
    match replica
        .raft
        .metrics()
        .borrow_watched()
        .running_state
        .clone()
    {
        Ok(()) => Ok(Json(json!({"status": "ok", "pid": std::process::id()}))),
        Err(fatal) => Err(HttpError::unavailable(format!("raft stopped: {fatal}"))),
    }
}

/// Ready when Raft runs and the replica either waits to be initialized or knows a leader.
async fn readyz(State(replica): State<Arc<Replica>>) -> Result<impl IntoResponse, HttpError> {
    if !replica.is_running() {
        return Err(HttpError::unavailable("raft stopped"));
    }
    let status = replica.status();
    if status.initialized && status.leader.is_none() {
        return Err(HttpError::unavailable("no leader known"));
    }
    Ok(Json(
        json!({"status": "ready", "role": status.role, "leader": status.leader}),
    ))
}

async fn metrics(State(replica): State<Arc<Replica>>) -> axum::response::Response {
    let confirmed = match replica.state.confirmed_count() {
        Ok(n) => n,
        Err(e) => {
            return HttpError::unavailable(format!("cannot read the state machine: {e}"))
                .into_response();
        }
    };
    let body = replica.metrics.render(&replica.status(), confirmed);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
