//! Server-side pieces every ToyStore service shares (feature `server`): JSON errors, a JSON
//! body extractor that reports bad input as a clear 4xx, JSON fallbacks for unknown routes,
//! logging set-up and the shutdown signal.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::{ErrorBody, LeaderHint};

/// An error answer: status, JSON body, and for redirects a `Location`.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    body: ErrorBody,
    location: Option<String>,
}

impl HttpError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(status.as_u16(), message),
            location: None,
        }
    }

    /// 503: the service cannot answer now; retrying may help.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// A follower's answer to a request only the leader can serve: 307 to the leader, keeping
    /// the method and body, with the leader named in the body too. 503 if no leader is known.
    pub fn not_leader(leader: Option<LeaderHint>, path: &str) -> Self {
        let Some(hint) = leader else {
            return Self::unavailable("this replica is not the leader and knows no leader yet");
        };
        let mut err = Self::new(
            StatusCode::TEMPORARY_REDIRECT,
            format!(
                "not the leader; the leader is replica {} at {}",
                hint.id, hint.url
            ),
        );
        err.location = Some(format!("{}{path}", hint.url.trim_end_matches('/')));
        err.body.error.leader = Some(hint);
        err
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if let Some(loc) = self.location.and_then(|l| l.parse().ok()) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        resp
    }
}

/// `Json<T>` whose rejections are JSON errors: 400 for malformed or mistyped JSON,
/// 413 for an oversized body, 415 for a missing JSON content type.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> HttpError {
    let status = match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body is too large".to_string(),
        _ => format!("invalid request body: {}", rejection.body_text()),
    };
    HttpError::new(status, message)
}

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

/// The request's `Idempotency-Key` (validated), or a fresh key when it brought none;
/// a malformed key is a 400.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, HttpError> {
    let bad = |m: String| HttpError::new(StatusCode::BAD_REQUEST, m);
    match headers.get(crate::IDEMPOTENCY_KEY_HEADER) {
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| bad("Idempotency-Key is not ASCII".into()))?;
            crate::orders::validate_idempotency_key(key).map_err(bad)?;
            Ok(key.to_string())
        }
        None => Ok(crate::orders::new_idempotency_key()),
    }
}

/// Parses the `{number}` of `/orders/{number}`; anything but a non-negative integer is a 400.
pub fn order_number(raw: &str) -> Result<u64, HttpError> {
    raw.parse().map_err(|_| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("order number must be a non-negative integer, got {raw:?}"),
        )
    })
}

/// The cluster token from a flag or, failing that, a file (a mounted Secret), trimmed.
pub fn read_token(
    token: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, String> {
    let token = match (token, file) {
        (Some(t), _) => t,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("reading token file {}: {e}", path.display()))?,
        (None, None) => return Ok(None),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err("the cluster token must not be empty".into());
    }
    Ok(Some(token))
}

/// 404 JSON answer for unknown routes (`Router::fallback`).
pub async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// 405 JSON answer for a known route with another method (`Router::method_not_allowed_fallback`).
pub async fn method_not_allowed() -> HttpError {
    HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}

/// Sets up `tracing` logs, `text` or `json`, filtered by `RUST_LOG` (default `default_filter`).
pub fn init_tracing(format: &str, default_filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => return Err(format!("unknown log format {other:?} (text or json)")),
    }
    Ok(())
}

/// A future that completes on SIGTERM or SIGINT (Ctrl-C).
///
/// The handlers are installed when this function is called, not when the future is first
/// polled, so a signal that arrives while the program is still starting up is not lost (and
/// does not kill the process with the default action). Call it early, inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutdown signal received");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_flag_or_file_trimmed_and_never_empty() {
        let dir = std::env::temp_dir().join(format!("toystore-token-{}", std::process::id()));
        std::fs::write(&dir, "  s3cret\n").unwrap();
        assert_eq!(read_token(None, Some(&dir)), Ok(Some("s3cret".into())));
        assert_eq!(
            read_token(Some("flag".into()), Some(&dir)),
            Ok(Some("flag".into()))
        );
        assert_eq!(read_token(None, None), Ok(None));
        assert!(read_token(Some(" \n".into()), None).is_err());
        assert!(read_token(None, Some(std::path::Path::new("/nonexistent/token"))).is_err());
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn order_numbers_are_non_negative_integers() {
        assert_eq!(order_number("17").unwrap(), 17);
        for bad in ["", "-1", "1.5", "x", "99999999999999999999999"] {
            assert!(order_number(bad).is_err(), "{bad}");
        }
    }
}
