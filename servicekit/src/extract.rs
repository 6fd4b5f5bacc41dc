//! Request parsing that turns bad input into a clear 4xx, never a panic or a plain-text error.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::HttpError;

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

/// The request's `Idempotency-Key` (validated), or a fresh key when it brought none;
/// a malformed key is a 400.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, HttpError> {
    let bad = |m: String| HttpError::new(StatusCode::BAD_REQUEST, m);
    match headers.get(api::IDEMPOTENCY_KEY_HEADER) {
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| bad("Idempotency-Key is not ASCII".into()))?;
            api::orders::validate_idempotency_key(key).map_err(bad)?;
            Ok(key.to_string())
        }
        None => Ok(api::orders::new_idempotency_key()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_non_negative_integers() {
        assert_eq!(order_number("17").unwrap(), 17);
        for bad in ["", "-1", "1.5", "x", "99999999999999999999999"] {
            assert!(order_number(bad).is_err(), "{bad}");
        }
    }
}
