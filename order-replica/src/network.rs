//! Raft RPC between replicas: JSON over HTTP, authenticated with the cluster token.
//!
//! Each RPC is a `POST` to the peer's `/raft/...` endpoint; the peer answers with openraft's own
//! `Result` serialized as JSON, so the remote node's verdict arrives unchanged. A snapshot is sent
//! whole: one JSON line with the vote and metadata, a newline, then the raw snapshot bytes.

use std::future::Future;
use std::time::Duration;

use openraft::RaftNetworkV2;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::types::{NodeId, ReplicaNode, Snapshot, SnapshotMeta, TypeConfig, Vote};

/// Header line of a `/raft/snapshot` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The sender's vote.
    pub vote: Vote,
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
}

/// Creates a [`Peer`] for every replica openraft wants to talk to.
#[derive(Clone)]
pub struct Network {
    http: reqwest::Client,
    token: String,
}

impl Network {
    /// A network whose RPCs carry `token`.
    pub fn new(token: String) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(300))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .expect("building an HTTP client without TLS cannot fail");
        Self { http, token }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &ReplicaNode) -> Peer {
        Peer {
            target,
            url: node.raft_url().trim_end_matches('/').to_string(),
            http: self.http.clone(),
            token: self.token.clone(),
        }
    }
}

/// The RPC client for one peer.
pub struct Peer {
    target: NodeId,
    url: String,
    http: reqwest::Client,
    token: String,
}

/// Why an RPC failed, before it is sorted into openraft's error kinds.
#[derive(Debug, thiserror::Error)]
enum RpcFailure {
    /// No connection could be made: back off.
    #[error("peer unreachable: {0}")]
    Unreachable(reqwest::Error),
    /// The peer answered 503: it takes no part in the group now (not admitted, or its Raft
    /// stopped). Back off as from an unreachable peer.
    #[error("peer unavailable: {0}")]
    Unavailable(String),
    /// Anything else: retry.
    #[error("{0}")]
    Other(String),
}

impl Peer {
    async fn post<Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: reqwest::Body,
        timeout: Duration,
    ) -> Result<Resp, RpcFailure> {
        let url = format!("{}{path}", self.url);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RpcFailure::Unreachable(e)
                } else {
                    RpcFailure::Other(format!("{url}: {e}"))
                }
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RpcFailure::Other(format!("{url}: {e}")))?;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(RpcFailure::Unavailable(format!(
                "{url}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        if !status.is_success() {
            return Err(RpcFailure::Other(format!(
                "{url}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| RpcFailure::Other(format!("{url}: {e}")))
    }

    /// Sends a JSON RPC whose answer is openraft's `Result<T, E>`.
    async fn call<Req: Serialize, T: DeserializeOwned, E: DeserializeOwned + std::fmt::Display>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<T, RPCError<TypeConfig>> {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result: Result<Result<T, E>, RpcFailure> =
            self.post(path, body.into(), option.hard_ttl()).await;
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(remote)) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(format!("node {} refused: {remote}", self.target)),
            ))),
            Err(RpcFailure::Unreachable(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(RpcFailure::Unavailable(e)) => Err(RPCError::Unreachable(Unreachable::new(
                &std::io::Error::other(e),
            ))),
            Err(e @ RpcFailure::Other(_)) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

type RaftErr = openraft::error::RaftError<TypeConfig>;

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<_, _, RaftErr>("/raft/append", &rpc, &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<_, _, RaftErr>("/raft/vote", &rpc, &option)
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<_, _, RaftErr>("/raft/pre-vote", &rpc, &option)
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<_, _, openraft::error::Fatal<TypeConfig>>("/raft/leader-handoff", &req, &option)
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let header = SnapshotHeader {
            vote,
            meta: snapshot.meta,
        };
        let mut body = serde_json::to_vec(&header).map_err(|e| NetworkError::new(&e))?;
        body.push(b'\n');
        body.extend_from_slice(&snapshot.snapshot);
        let send = self.post::<Result<SnapshotResponse<TypeConfig>, RaftErr>>(
            "/raft/snapshot",
            body.into(),
            option.hard_ttl().max(Duration::from_secs(60)),
        );
        let result = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = send => r,
        };
        match result {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(StreamingError::Network(NetworkError::new(
                &std::io::Error::other(format!("node {} refused snapshot: {remote}", self.target)),
            ))),
            Err(RpcFailure::Unreachable(e)) => {
                Err(StreamingError::Unreachable(Unreachable::new(&e)))
            }
            Err(RpcFailure::Unavailable(e)) => Err(StreamingError::Unreachable(Unreachable::new(
                &std::io::Error::other(e),
            ))),
            Err(e @ RpcFailure::Other(_)) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }
}
