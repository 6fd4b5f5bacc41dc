//! The cluster token shared by the order replicas, the catalog and their callers: reading it,
//! and the middleware that requires it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::HttpError;

/// The token a route layer requires (`middleware::from_fn_with_state(token, require_token)`).
#[derive(Clone)]
pub struct RequiredToken(Arc<str>);

impl RequiredToken {
    /// Requires `token`.
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }
}

impl std::fmt::Debug for RequiredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequiredToken(..)")
    }
}

/// Middleware: refuses requests without the cluster token (`Authorization: Bearer <token>`)
/// with a JSON 401.
pub async fn require_token(
    State(token): State<RequiredToken>,
    req: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if constant_time_eq(t.as_bytes(), token.0.as_bytes()) => Ok(next.run(req).await),
        Some(_) => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "wrong cluster token",
        )),
        None => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs the cluster token (Authorization: Bearer ...)",
        )),
    }
}

/// Compares without an early exit, so response timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
}
