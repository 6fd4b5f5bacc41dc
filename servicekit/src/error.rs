//! Error answers: every failure leaves a service as a JSON `ErrorBody` with a 4xx/5xx status.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use api::{ErrorBody, LeaderHint};

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

/// 404 JSON answer for unknown routes (`Router::fallback`).
pub async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// 405 JSON answer for a known route with another method (`Router::method_not_allowed_fallback`).
pub async fn method_not_allowed() -> HttpError {
    HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}
