//! Raft RPC endpoints (token required): the server side of [`crate::network`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};

use super::{ApiJson, HttpError};
use crate::network::SnapshotHeader;
use crate::replica::Replica;
use crate::types::{Snapshot, TypeConfig};

type RpcResult<T> = Json<Result<T, RaftError<TypeConfig>>>;

pub fn routes(replica: Arc<Replica>) -> Router<Arc<Replica>> {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/pre-vote", post(pre_vote))
        .route("/raft/leader-handoff", post(leader_handoff))
        .route("/raft/snapshot", post(snapshot))
        .route_layer(middleware::from_fn_with_state(replica, require_admitted))
}

/// A replica that is not admitted takes no part in the group: no votes (it may have forgotten
/// one it gave), no entries (the leader would see its log go back). The peer sees 503, which
/// it treats like an unreachable node.
async fn require_admitted(
    State(replica): State<Arc<Replica>>,
    req: Request,
    next: Next,
) -> Result<Response, HttpError> {
    if replica.identity.is_admitted() {
        return Ok(next.run(req).await);
    }
    replica.metrics.refused_rpc(req.uri().path());
    Err(HttpError::unavailable(format!(
        "replica {} is not admitted to the group: its data directory ({}) holds none of the \
         group's state; the membership driver must remove it and add it again as a learner",
        replica.id,
        replica.identity.data_id()
    )))
}

async fn append(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<AppendEntriesRequest<TypeConfig>>,
) -> RpcResult<AppendEntriesResponse<TypeConfig>> {
    Json(replica.raft.append_entries(req).await)
}

async fn vote(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<VoteRequest<TypeConfig>>,
) -> RpcResult<VoteResponse<TypeConfig>> {
    Json(replica.raft.vote(req).await)
}

async fn pre_vote(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<VoteRequest<TypeConfig>>,
) -> RpcResult<VoteResponse<TypeConfig>> {
    Json(replica.raft.pre_vote(req).await)
}

async fn leader_handoff(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<TransferLeaderRequest<TypeConfig>>,
) -> Json<Result<TransferLeaderResponse<TypeConfig>, Fatal<TypeConfig>>> {
    Json(replica.raft.handle_transfer_leader(req).await)
}

/// Body: one JSON line (vote and metadata), a newline, then the snapshot bytes.
async fn snapshot(
    State(replica): State<Arc<Replica>>,
    body: Bytes,
) -> Result<Json<Result<SnapshotResponse<TypeConfig>, Fatal<TypeConfig>>>, HttpError> {
    let split = body.iter().position(|b| *b == b'\n').ok_or_else(|| {
        HttpError::new(StatusCode::BAD_REQUEST, "snapshot body has no header line")
    })?;
    let header: SnapshotHeader = serde_json::from_slice(&body[..split]).map_err(|e| {
        HttpError::new(StatusCode::BAD_REQUEST, format!("bad snapshot header: {e}"))
    })?;
    let snapshot = Snapshot {
        meta: header.meta,
        snapshot: body[split + 1..].to_vec(),
    };
    Ok(Json(
        replica
            .raft
            .install_full_snapshot(header.vote, snapshot)
            .await,
    ))
}
