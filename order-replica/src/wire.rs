//! How Raft RPC travels: MessagePack bodies, with JSON for peers that do not speak it.
//!
//! Every AppendEntries carries entries, so their encoding is paid on every commit, on the
//! leader and on each follower. MessagePack is compact and cheap to write and read, and it is
//! self-describing like JSON, so the order service's storage types decode the same way from
//! both. A request says its encoding in its
//! `Content-Type`, and the answer comes back in the same one. A replica of an older version
//! answers MessagePack with 415: the sender then speaks JSON to it (during a rolling upgrade).

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::{ApiJson, HttpError};

/// The media type of MessagePack bodies.
pub const MSGPACK: &str = "application/msgpack";

/// An encoding of RPC bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// MessagePack (structs as maps, so fields can be added).
    MsgPack,
    /// JSON, for older peers.
    Json,
}

impl Encoding {
    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::MsgPack => MSGPACK,
            Encoding::Json => "application/json",
        }
    }

    /// Encodes `value`.
    pub fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>, String> {
        match self {
            Encoding::MsgPack => rmp_serde::to_vec_named(value).map_err(|e| e.to_string()),
            Encoding::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
        }
    }

    /// Decodes `bytes`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Encoding::MsgPack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        }
    }
}

/// An RPC request body in either encoding, and which one it came in.
pub struct RpcBody<T>(pub T, pub Encoding);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for RpcBody<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let msgpack = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(MSGPACK));
        if !msgpack {
            let ApiJson(v) = ApiJson::from_request(req, state).await?;
            return Ok(Self(v, Encoding::Json));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| HttpError::new(e.status(), e.body_text()))?;
        let value = Encoding::MsgPack
            .decode(&bytes)
            .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))?;
        Ok(Self(value, Encoding::MsgPack))
    }
}

/// An RPC answer in the encoding its request came in.
pub struct RpcReply<T>(pub T, pub Encoding);

impl<T: Serialize> IntoResponse for RpcReply<T> {
    fn into_response(self) -> Response {
        match self.1.encode(&self.0) {
            Ok(bytes) => ([(header::CONTENT_TYPE, self.1.content_type())], bytes).into_response(),
            Err(e) => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{OrderStatus, RejectReason};
    use crate::types::Command;

    #[test]
    fn both_encodings_round_trip_the_commands_and_records() {
        let status = OrderStatus::Rejected(RejectReason::OutOfStock);
        let define = Command::Define {
            products: vec![api::inventory::ProductDef {
                name: "Tux".into(),
                price: 15.99,
                quantity: 3,
            }],
        };
        for enc in [Encoding::MsgPack, Encoding::Json] {
            let bytes = enc.encode(&status).unwrap();
            assert_eq!(enc.decode::<OrderStatus>(&bytes).unwrap(), status);
            let bytes = enc.encode(&define).unwrap();
            assert_eq!(enc.decode::<Command>(&bytes).unwrap(), define);
        }
    }
}
