//! The JSON error body every ToyStore service answers with.
//!
//! Shape (compatible with the classic toy-store lab): `{"error": {"code": 404, "message": "..."}}`.
//! A follower that refuses a write adds a `leader` hint so clients can follow it without asking
//! for the cluster status first.

use serde::{Deserialize, Serialize};

/// Top-level error document: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error itself.
    pub error: ApiError,
}

/// An error as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// The HTTP status code, repeated in the body for clients that only keep the body.
    pub code: u16,
    /// A human-readable explanation.
    pub message: String,
    /// Where the Raft leader is, when the answering replica is not it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<LeaderHint>,
}

/// The leader a follower points a client to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaderHint {
    /// Raft node id of the leader.
    pub id: u64,
    /// Base URL of the leader's HTTP API, e.g. `http://127.0.0.1:7001`.
    pub url: String,
}

impl ErrorBody {
    /// Builds an error body with the given status code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            error: ApiError {
                code,
                message: message.into(),
                leader: None,
            },
        }
    }
}
