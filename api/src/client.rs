//! The typed HTTP client of one order replica ([`ReplicaClient`]), and the pieces every
//! ToyStore client shares. [`crate::group::GroupClient`] builds on it to talk to the group.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::IDEMPOTENCY_KEY_HEADER;
use crate::catalog::ChangeBatch;
use crate::error::{ApiError, ErrorBody, LeaderHint};
use crate::inventory::{Audit, DefineRequest, DefineResponse, RestockRequest, RestockResponse};
use crate::orders::{Data, Order, OrderNumber, OrderRecord, PlaceOrder, PlacedOrder};
use crate::raft::{
    AddLearnerRequest, AdminResponse, ChangeMembershipRequest, GroupInfo, InitializeRequest,
    RaftStatus, ReadIndex, RemoveNodesRequest, TransferLeaderRequest,
};

/// What can go wrong when calling a replica.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not get an HTTP answer (refused, reset, timed out).
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The URL that was called.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The replica is not the leader; it names the leader when it knows one.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader to ask instead.
        leader: Option<LeaderHint>,
    },
    /// The replica answered with an error status and a JSON error body.
    #[error("{status}: {}", error.message)]
    Api {
        status: StatusCode,
        /// The decoded error body.
        error: ApiError,
    },
    /// The answer could not be decoded.
    #[error("bad answer from {url}: {message}")]
    Decode {
        /// The URL that was called.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// No replica gave a final answer before the deadline; the last thing that went wrong.
    #[error("no outcome within {0:?}; last attempt: {1}")]
    Deadline(Duration, String),
}

impl ClientError {
    /// HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again (possibly elsewhere) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } | ClientError::NotLeader { .. } => true,
            ClientError::Api { status, .. } => {
                *status == StatusCode::SERVICE_UNAVAILABLE || *status == StatusCode::GATEWAY_TIMEOUT
            }
            ClientError::Decode { .. } | ClientError::Deadline(..) => false,
        }
    }
}

/// Builds the shared HTTP client: no automatic redirects (a redirect names the leader, which the
/// callers want to learn), short connect timeout so a dead replica is noticed quickly.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_millis(500))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .expect("building an HTTP client without TLS cannot fail")
}

/// Decodes a `{"data": ...}` success answer or a JSON error body into a typed result.
/// Shared by every client of a ToyStore service that wraps its answers in `data`.
pub async fn decode_data<T: DeserializeOwned>(
    url: &str,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ClientError> {
    let transport = |source| ClientError::Transport {
        url: url.to_string(),
        source,
    };
    let resp = resp.map_err(transport)?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(transport)?;
    if status.is_success() {
        let data: Data<T> = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        return Ok(data.data);
    }
    Err(ClientError::Api {
        status,
        error: error_body(status, &bytes),
    })
}

/// The error in a non-success answer: its JSON body, or the start of the raw text.
pub(crate) fn error_body(status: StatusCode, bytes: &[u8]) -> ApiError {
    serde_json::from_slice::<ErrorBody>(bytes)
        .map(|b| b.error)
        .unwrap_or_else(|_| ApiError {
            code: status.as_u16(),
            message: String::from_utf8_lossy(bytes).chars().take(200).collect(),
            leader: None,
        })
}

/// How long reading a whole state for a backup may take.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(600);

/// A typed client for one order replica.
#[derive(Debug, Clone)]
pub struct ReplicaClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ReplicaClient {
    /// A client for the replica at `base` (e.g. `http://127.0.0.1:7001`), using `token` for the
    /// admin and Raft endpoints.
    pub fn new(http: reqwest::Client, base: impl Into<String>, token: Option<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_string(),
            token,
        }
    }

    /// `POST /orders` with an idempotency key.
    pub async fn place_order(
        &self,
        key: &str,
        order: &PlaceOrder,
    ) -> Result<PlacedOrder, ClientError> {
        let url = format!("{}/orders", self.base);
        let req = self
            .http
            .post(&url)
            .header(IDEMPOTENCY_KEY_HEADER, key)
            .json(order);
        let data: Data<PlacedOrder> = self.send(&url, req).await?;
        Ok(data.data)
    }

    /// `GET /orders/{number}`.
    pub async fn get_order(&self, number: OrderNumber) -> Result<Order, ClientError> {
        let url = format!("{}/orders/{number}", self.base);
        let data: Data<Order> = self.send(&url, self.http.get(&url)).await?;
        Ok(data.data)
    }

    /// `GET /orders/by-key/{key}`: the order placed with this key, whatever its status.
    pub async fn order_by_key(&self, key: &str) -> Result<OrderRecord, ClientError> {
        let url = format!(
            "{}/orders/by-key/{}",
            self.base,
            crate::catalog::encode_path_segment(key)
        );
        let data: Data<OrderRecord> = self.send(&url, self.http.get(&url)).await?;
        Ok(data.data)
    }

    /// `GET /raft/status`.
    pub async fn status(&self) -> Result<RaftStatus, ClientError> {
        self.admin_get("/raft/status").await
    }

    /// `GET /raft/read-index`: asks the leader for a linearizable read index.
    pub async fn read_index(&self) -> Result<ReadIndex, ClientError> {
        self.admin_get("/raft/read-index").await
    }

    /// `GET /group` (no token): the replica's read-only view of the group.
    pub async fn group_info(&self) -> Result<GroupInfo, ClientError> {
        let url = format!("{}/group", self.base);
        self.send(&url, self.http.get(&url)).await
    }

    /// `POST /inventory/define` (leader only).
    pub async fn define(&self, req: &DefineRequest) -> Result<DefineResponse, ClientError> {
        self.admin_post("/inventory/define", req).await
    }

    /// `POST /inventory/restock` (leader only).
    pub async fn restock(&self, req: &RestockRequest) -> Result<RestockResponse, ClientError> {
        self.admin_post("/inventory/restock", req).await
    }

    /// `GET /inventory/changes?after=V&wait_ms=W`: waits up to `wait` for changes after `after`.
    pub async fn inventory_changes(
        &self,
        after: u64,
        wait: Duration,
    ) -> Result<ChangeBatch, ClientError> {
        let url = format!(
            "{}/inventory/changes?after={after}&wait_ms={}",
            self.base,
            wait.as_millis()
        );
        let req = self
            .authorized(self.http.get(&url))
            .timeout(wait + Duration::from_secs(5));
        self.send(&url, req).await
    }

    /// `GET /audit`: the replica's books.
    pub async fn audit(&self) -> Result<Audit, ClientError> {
        let url = format!("{}/audit", self.base);
        let req = self
            .authorized(self.http.get(&url))
            .timeout(Duration::from_secs(30));
        self.send(&url, req).await
    }

    /// `GET /admin/backup` (leader only): the group's state as of a committed index, as the
    /// bytes of a backup's state object. Reading a large state takes a while: the timeout is
    /// generous.
    pub async fn backup_state(&self) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/admin/backup", self.base);
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let req = self.authorized(self.http.get(&url)).timeout(BACKUP_TIMEOUT);
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let error = error_body(status, &bytes);
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::MISDIRECTED_REQUEST {
            return Err(ClientError::NotLeader {
                leader: error.leader,
            });
        }
        Err(ClientError::Api { status, error })
    }

    /// `POST /admin/initialize`.
    pub async fn initialize(&self, req: &InitializeRequest) -> Result<AdminResponse, ClientError> {
        self.admin_post("/admin/initialize", req).await
    }

    /// `POST /admin/admit`: lets a replica take part in the group (the leader calls it on a
    /// learner it is about to add).
    pub async fn admit(&self) -> Result<AdminResponse, ClientError> {
        self.admin_post("/admin/admit", &()).await
    }

    /// `POST /admin/learners`.
    pub async fn add_learner(&self, req: &AddLearnerRequest) -> Result<AdminResponse, ClientError> {
        self.admin_post("/admin/learners", req).await
    }

    /// `POST /admin/membership`.
    pub async fn change_membership(
        &self,
        req: &ChangeMembershipRequest,
    ) -> Result<AdminResponse, ClientError> {
        self.admin_post("/admin/membership", req).await
    }

    /// `POST /admin/remove-nodes`.
    pub async fn remove_nodes(
        &self,
        req: &RemoveNodesRequest,
    ) -> Result<AdminResponse, ClientError> {
        self.admin_post("/admin/remove-nodes", req).await
    }

    /// `POST /admin/transfer-leader`.
    pub async fn transfer_leader(
        &self,
        req: &TransferLeaderRequest,
    ) -> Result<AdminResponse, ClientError> {
        self.admin_post("/admin/transfer-leader", req).await
    }

    async fn admin_get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let req = self.authorized(self.http.get(&url));
        self.send(&url, req).await
    }

    async fn admin_post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let req = self.authorized(self.http.post(&url).json(body));
        self.send(&url, req).await
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let transport = |source| ClientError::Transport {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                url: url.to_string(),
                message: e.to_string(),
            });
        }
        let error = error_body(status, &bytes);
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::MISDIRECTED_REQUEST {
            return Err(ClientError::NotLeader {
                leader: error.leader,
            });
        }
        Err(ClientError::Api { status, error })
    }
}
