//! Body size limits that answer with a JSON 413 the client can actually read.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::HttpError;

/// Bodies up to this size are read and discarded before an oversized request is refused, so the
/// client can finish sending and read the 413 instead of seeing a broken pipe.
const DRAIN_LIMIT: u64 = 1 << 20;

/// Middleware (`from_fn_with_state(limit, reject_oversized)`): refuses a request whose declared
/// `Content-Length` exceeds `limit` with a 413 JSON error. Bodies without a length are still
/// bounded by `DefaultBodyLimit` in the extractors.
pub async fn reject_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => {
            if len <= DRAIN_LIMIT {
                let _ = axum::body::to_bytes(req.into_body(), DRAIN_LIMIT as usize).await;
            }
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body of {len} bytes is over the limit of {limit}"),
            )
            .into_response()
        }
        _ => next.run(req).await,
    }
}
