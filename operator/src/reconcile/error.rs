//! Why a round failed, and what kind of failure it is.
//!
//! Every [`Error`] falls into one [`ErrorKind`], which decides when the controller tries again
//! ([`super::error_policy`]) and is counted in `/metrics`. The rule is the API server's answer:
//! no answer at all (network, TLS, a response that does not parse), a conflict, throttling, a
//! vanished object or a 5xx will likely pass, so it is retried soon; a 400 or 422 refuses what
//! the spec asks for, which no retry changes; a 401 or 403 is a permission a person must grant.

use std::time::Duration;

use kube::runtime::finalizer;

/// Errors of a reconcile round; the controller retries after [`super::error_policy`]'s delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call other than an apply failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Adding or removing the finalizer failed, or the round it wraps did.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    /// The ToyStore has no namespace (it is namespaced; this cannot happen via the API).
    #[error("ToyStore has no namespace")]
    NoNamespace,
    /// The token Secret exists but holds no token.
    #[error("secret {0} has no `token` key")]
    BadSecret(String),
    /// A membership step failed; it is retried next round.
    #[error("membership step failed: {0}")]
    Membership(String),
    /// Server-side apply of an object failed.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// Kind of the object, as the API server names it (`StatefulSet`).
        kind: String,
        /// Name of the object the API server refused.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// The watch caches did not receive their first list in time (a watch failing, e.g. 403).
    #[error("the watch caches are not ready")]
    CacheNotReady,
}

/// What kind of failure an [`Error`] is: decides the retry, and labels the failure metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Likely to pass by itself: the API server or the network failed, a conflict, throttling,
    /// caches not filled yet, a replica that did not answer a membership step.
    Transient,
    /// The spec cannot be reconciled as it is: validation refused it, or the API server refused
    /// an object built from it (400, 422). Only a spec change helps, and that triggers a round.
    InvalidSpec,
    /// Something outside the spec a person must fix: a permission the operator lacks (401,
    /// 403), or a token Secret without a token. No watch event says when it is fixed.
    Misconfigured,
}

impl ErrorKind {
    /// Every kind: `/metrics` shows each from the start, at zero until it happens.
    pub const ALL: [ErrorKind; 3] = [
        ErrorKind::Transient,
        ErrorKind::InvalidSpec,
        ErrorKind::Misconfigured,
    ];

    /// The `kind` label of `toystore_operator_reconcile_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::InvalidSpec => "invalid_spec",
            ErrorKind::Misconfigured => "misconfigured",
        }
    }

    /// How long the controller waits before the next round after a failure of this kind. An
    /// invalid spec waits for its change (which triggers a round at once); the long delay is
    /// only a safety net.
    pub fn retry_after(self) -> Duration {
        match self {
            ErrorKind::Transient => Duration::from_secs(5),
            ErrorKind::InvalidSpec => Duration::from_secs(300),
            ErrorKind::Misconfigured => Duration::from_secs(60),
        }
    }
}

impl Error {
    /// The kind of failure (see the module documentation).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Kube(e) | Error::Apply { source: e, .. } => kind_of_api_error(e),
            Error::Finalizer(e) => match e.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.kind(),
                finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => {
                    kind_of_api_error(e)
                }
                // Neither happens with an object read from the API server; no retry helps.
                finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer => {
                    ErrorKind::InvalidSpec
                }
            },
            Error::NoNamespace => ErrorKind::InvalidSpec,
            Error::BadSecret(_) => ErrorKind::Misconfigured,
            Error::Membership(_) | Error::CacheNotReady => ErrorKind::Transient,
        }
    }

    /// The API server's message when it refused an apply (a 4xx answer): a spec it will never
    /// accept, or a missing permission. Something a person must fix, so it is shown in status.
    pub fn refused_apply(&self) -> Option<&str> {
        match self {
            Error::Apply {
                source: kube::Error::Api(status),
                ..
            } if (400..500).contains(&status.code) => Some(&status.message),
            _ => None,
        }
    }
}

/// The kind of a failed API call, by the API server's answer.
fn kind_of_api_error(error: &kube::Error) -> ErrorKind {
    match error {
        kube::Error::Api(status) => match status.code {
            400 | 422 => ErrorKind::InvalidSpec,
            401 | 403 => ErrorKind::Misconfigured,
            // 404/410 (gone meanwhile), 409 (conflict), 429 (throttled), 5xx.
            _ => ErrorKind::Transient,
        },
        // No answer: the network, TLS, a response that does not parse.
        _ => ErrorKind::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Status::failure("refused", "Test").with_code(code).boxed())
    }

    fn apply(code: u16) -> Error {
        Error::Apply {
            kind: "StatefulSet".into(),
            name: "toys-orders".into(),
            source: api(code),
        }
    }

    #[test]
    fn api_errors_are_classified_by_the_answer() {
        let cases = [
            (500, ErrorKind::Transient),
            (503, ErrorKind::Transient),
            (409, ErrorKind::Transient),
            (429, ErrorKind::Transient),
            (404, ErrorKind::Transient),
            (410, ErrorKind::Transient),
            (400, ErrorKind::InvalidSpec),
            (422, ErrorKind::InvalidSpec),
            (401, ErrorKind::Misconfigured),
            (403, ErrorKind::Misconfigured),
        ];
        for (code, want) in cases {
            assert_eq!(Error::Kube(api(code)).kind(), want, "{code}");
            assert_eq!(apply(code).kind(), want, "apply {code}");
        }
        let unanswered = kube::Error::Service("connection refused".into());
        assert_eq!(Error::Kube(unanswered).kind(), ErrorKind::Transient);
    }

    #[test]
    fn the_operators_own_errors_are_classified() {
        assert_eq!(Error::CacheNotReady.kind(), ErrorKind::Transient);
        assert_eq!(
            Error::Membership("timed out".into()).kind(),
            ErrorKind::Transient
        );
        assert_eq!(Error::NoNamespace.kind(), ErrorKind::InvalidSpec);
        assert_eq!(
            Error::BadSecret("toys-token".into()).kind(),
            ErrorKind::Misconfigured
        );
    }

    #[test]
    fn a_round_wrapped_by_the_finalizer_keeps_its_kind() {
        let wrapped = |e| Error::Finalizer(Box::new(e));
        assert_eq!(
            wrapped(finalizer::Error::ApplyFailed(apply(422))).kind(),
            ErrorKind::InvalidSpec
        );
        assert_eq!(
            wrapped(finalizer::Error::CleanupFailed(Error::CacheNotReady)).kind(),
            ErrorKind::Transient
        );
        assert_eq!(
            wrapped(finalizer::Error::AddFinalizer(api(403))).kind(),
            ErrorKind::Misconfigured
        );
        assert_eq!(
            wrapped(finalizer::Error::RemoveFinalizer(api(409))).kind(),
            ErrorKind::Transient
        );
    }

    #[test]
    fn an_invalid_spec_waits_longer_than_a_transient_failure() {
        assert!(ErrorKind::InvalidSpec.retry_after() > ErrorKind::Misconfigured.retry_after());
        assert!(ErrorKind::Misconfigured.retry_after() > ErrorKind::Transient.retry_after());
        assert_eq!(ErrorKind::Transient.retry_after(), Duration::from_secs(5));
    }

    #[test]
    fn only_a_4xx_apply_is_a_refusal_shown_in_status() {
        assert_eq!(apply(422).refused_apply(), Some("refused"));
        assert_eq!(apply(503).refused_apply(), None);
        assert_eq!(Error::Kube(api(422)).refused_apply(), None);
    }
}
