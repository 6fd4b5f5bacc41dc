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

use super::HttpError;
use crate::network::SnapshotHeader;
use crate::replica::Replica;
use crate::state_machine::SnapshotData;
use crate::types::{Snapshot, TypeConfig};
use crate::wire::{RpcBody, RpcReply};

type RpcResult<T> = RpcReply<Result<T, RaftError<TypeConfig>>>;

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
    RpcBody(req, enc): RpcBody<AppendEntriesRequest<TypeConfig>>,
) -> RpcResult<AppendEntriesResponse<TypeConfig>> {
    RpcReply(replica.raft.append_entries(req).await, enc)
}

async fn vote(
    State(replica): State<Arc<Replica>>,
    RpcBody(req, enc): RpcBody<VoteRequest<TypeConfig>>,
) -> RpcResult<VoteResponse<TypeConfig>> {
    RpcReply(replica.raft.vote(req).await, enc)
}

async fn pre_vote(
    State(replica): State<Arc<Replica>>,
    RpcBody(req, enc): RpcBody<VoteRequest<TypeConfig>>,
) -> RpcResult<VoteResponse<TypeConfig>> {
    RpcReply(replica.raft.pre_vote(req).await, enc)
}

async fn leader_handoff(
    State(replica): State<Arc<Replica>>,
    RpcBody(req, enc): RpcBody<TransferLeaderRequest<TypeConfig>>,
) -> RpcReply<Result<TransferLeaderResponse<TypeConfig>, Fatal<TypeConfig>>> {
    RpcReply(replica.raft.handle_transfer_leader(req).await, enc)
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
        snapshot: SnapshotData::Bytes(body[split + 1..].to_vec()),
    };
    Ok(Json(
        replica
            .raft
            .install_full_snapshot(header.vote, snapshot)
            .await,
    ))
}
