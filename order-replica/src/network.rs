//! Raft RPC between replicas: HTTP, authenticated with the cluster token.
//!
//! Each RPC is a `POST` to the peer's `/raft/...` endpoint in MessagePack (see [`crate::wire`]);
//! the peer answers with openraft's own `Result` in the same encoding, so the remote node's
//! verdict arrives unchanged. A peer that refuses MessagePack (415: an older version) is spoken
//! to in JSON from then on. A snapshot is sent whole: one JSON line with the vote and metadata,
//! a newline, then the serialized state; it is serialized only once the peer has answered its
//! health check, since openraft retries a snapshot to a peer that is down.

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

use crate::state_machine::SnapshotData;
use crate::types::{NodeId, ReplicaNode, Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::wire::Encoding;

/// How long a peer may take to answer the probe that precedes a snapshot.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

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
            encoding: Encoding::MsgPack,
        }
    }
}

/// The RPC client for one peer.
pub struct Peer {
    target: NodeId,
    url: String,
    http: reqwest::Client,
    token: String,
    /// What this peer is spoken to in: MessagePack until it refuses it.
    encoding: Encoding,
}

/// Why an RPC failed, before it is sorted into openraft's error kinds.
#[derive(Debug, thiserror::Error)]
enum RpcFailure {
    /// No connection could be made: back off.
    #[error("peer unreachable: {0}")]
    Unreachable(reqwest::Error),
    /// The peer does not read this encoding (415).
    #[error("peer refuses the encoding: {0}")]
    Unsupported(String),
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
        encoding: Encoding,
        timeout: Duration,
    ) -> Result<Resp, RpcFailure> {
        let url = format!("{}{path}", self.url);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, encoding.content_type())
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
        if status == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return Err(RpcFailure::Unsupported(format!("{url}: {status}")));
        }
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
        encoding
            .decode(&bytes)
            .map_err(|e| RpcFailure::Other(format!("{url}: {e}")))
    }

    /// Whether the peer is up and answering on its Raft listener (`GET /healthz`), before work
    /// that is only worth doing for a live peer.
    async fn probe(&self) -> Result<(), RpcFailure> {
        let url = format!("{}/healthz", self.url);
        let resp = self
            .http
            .get(&url)
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    RpcFailure::Unreachable(e)
                } else {
                    RpcFailure::Other(format!("{url}: {e}"))
                }
            })?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(RpcFailure::Unavailable(format!("{url}: {s}"))),
        }
    }

    /// Sends an RPC whose answer is openraft's `Result<T, E>`, in JSON again if the peer
    /// refuses MessagePack.
    async fn call<Req: Serialize, T: DeserializeOwned, E: DeserializeOwned + std::fmt::Display>(
        &mut self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<T, RPCError<TypeConfig>> {
        let mut result = self.send::<_, Result<T, E>>(path, req, option).await;
        if matches!(result, Err(RpcFailure::Unsupported(_))) && self.encoding == Encoding::MsgPack {
            tracing::info!(
                peer = self.target,
                "peer refuses MessagePack, speaking JSON to it"
            );
            self.encoding = Encoding::Json;
            result = self.send(path, req, option).await;
        }
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(remote)) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(format!("node {} refused: {remote}", self.target)),
            ))),
            Err(RpcFailure::Unreachable(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(RpcFailure::Unavailable(e)) => Err(RPCError::Unreachable(Unreachable::new(
                &std::io::Error::other(e),
            ))),
            Err(e @ (RpcFailure::Other(_) | RpcFailure::Unsupported(_))) => {
                Err(RPCError::Network(NetworkError::new(&e)))
            }
        }
    }

    async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcFailure> {
        let body = self.encoding.encode(req).map_err(RpcFailure::Other)?;
        self.post(path, body.into(), self.encoding, option.hard_ttl())
            .await
    }
}

type RaftErr = openraft::error::RaftError<TypeConfig>;

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = SnapshotData;

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
        // Serializing the state costs time and memory in proportion to the orders, and openraft
        // retries a snapshot to a peer that is down, with back-off, for as long as it is down.
        self.probe().await.map_err(|e| {
            StreamingError::Unreachable(Unreachable::new(&std::io::Error::other(e.to_string())))
        })?;
        let header = SnapshotHeader {
            vote,
            meta: snapshot.meta,
        };
        let mut body = serde_json::to_vec(&header).map_err(|e| NetworkError::new(&e))?;
        body.push(b'\n');
        let body = tokio::task::spawn_blocking(move || {
            snapshot.snapshot.serialize_into(&mut body).map(|()| body)
        })
        .await
        .map_err(|e| NetworkError::new(&e))?
        .map_err(|e| NetworkError::new(&e))?;
        let send = self.post::<Result<SnapshotResponse<TypeConfig>, RaftErr>>(
            "/raft/snapshot",
            body.into(),
            Encoding::Json,
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
            Err(e @ (RpcFailure::Other(_) | RpcFailure::Unsupported(_))) => {
                Err(StreamingError::Network(NetworkError::new(&e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use servicekit::ApiJson;

    /// A peer of the version before MessagePack: JSON bodies only, 415 for anything else.
    async fn json_only_peer() -> String {
        async fn vote(
            ApiJson(req): ApiJson<VoteRequest<TypeConfig>>,
        ) -> axum::Json<Result<VoteResponse<TypeConfig>, RaftErr>> {
            axum::Json(Ok(VoteResponse::new(req.vote, None, true)))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/raft/vote", post(vote));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// A peer whose `/healthz` answers `health`; counts the snapshots it is sent.
    async fn peer_with_health(
        health: axum::http::StatusCode,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::sync::atomic::{AtomicU32, Ordering};
        let snapshots = std::sync::Arc::new(AtomicU32::new(0));
        let counted = snapshots.clone();
        let app = axum::Router::new()
            .route(
                "/healthz",
                axum::routing::get(move || async move { health }),
            )
            .route(
                "/raft/snapshot",
                post(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), snapshots)
    }

    #[tokio::test]
    async fn a_snapshot_goes_only_to_a_peer_that_answers_its_health_check() {
        use std::sync::atomic::Ordering;
        let mut network = Network::new("token".into());
        // Down (503): treated as unreachable, and nothing is serialized or sent.
        let (url, sent) = peer_with_health(axum::http::StatusCode::SERVICE_UNAVAILABLE).await;
        let mut peer = peer_at(&mut network, 2, url).await;
        let err = send_snapshot(&mut peer).await.unwrap_err();
        assert!(matches!(err, StreamingError::Unreachable(_)), "{err}");
        assert_eq!(sent.load(Ordering::SeqCst), 0);

        // Nothing listening (a port held, so nobody else takes it, but not listening): unreachable
        // too.
        let held = tokio::net::TcpSocket::new_v4().unwrap();
        held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let closed = held.local_addr().unwrap();
        let mut peer = peer_at(&mut network, 3, format!("http://{closed}")).await;
        let err = send_snapshot(&mut peer).await.unwrap_err();
        assert!(matches!(err, StreamingError::Unreachable(_)), "{err}");

        // Up: the snapshot is sent (this peer then fails it, which is a network error).
        let (url, sent) = peer_with_health(axum::http::StatusCode::OK).await;
        let mut peer = peer_at(&mut network, 4, url).await;
        let err = send_snapshot(&mut peer).await.unwrap_err();
        assert!(matches!(err, StreamingError::Network(_)), "{err}");
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }

    async fn send_snapshot(
        peer: &mut Peer,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let snapshot = Snapshot {
            meta: SnapshotMeta::default(),
            snapshot: SnapshotData::Bytes(b"{}".to_vec()),
        };
        let option = RPCOption::new(Duration::from_secs(5));
        peer.full_snapshot(Vote::new(1, 1), snapshot, std::future::pending(), option)
            .await
    }

    async fn peer_at(network: &mut Network, id: NodeId, url: String) -> Peer {
        let node = ReplicaNode {
            addr: url,
            raft_addr: None,
        };
        network.new_client(id, &node).await
    }

    #[tokio::test]
    async fn a_peer_that_refuses_messagepack_is_spoken_to_in_json() {
        let url = json_only_peer().await;
        let mut network = Network::new("token".into());
        let mut peer = peer_at(&mut network, 2, url).await;
        assert_eq!(peer.encoding, Encoding::MsgPack);

        let request = VoteRequest::new(Vote::new(3, 1), None);
        let option = RPCOption::new(Duration::from_secs(5));
        let answer = peer.vote(request.clone(), option.clone()).await.unwrap();
        assert!(answer.vote_granted);
        assert_eq!(peer.encoding, Encoding::Json);
        peer.vote(request, option).await.unwrap();
    }
}
