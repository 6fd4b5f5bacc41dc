//! What can go wrong with a backup destination or an artifact, each error naming the URL or
//! object and the cause, so that a failed backup or restore says what to fix.

/// An error of this crate. Errors of the object store are wrapped with the operation and the
/// object's URL; the two that an operator acts on differently, an unreachable destination and
/// a full one, are variants of their own.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination URL cannot be used (relative path, unknown scheme, bad option).
    #[error(
        "cannot use {url:?} as a backup destination: {reason}; accepted: s3://bucket/prefix, \
         gs://bucket/prefix, az://container/prefix (also azure://, abfs://, abfss://), \
         file:///absolute/path"
    )]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The object store client for the URL could not be built (e.g. a malformed option).
    #[error("cannot open the backup destination {url}: {source}")]
    Open {
        /// The destination's URL.
        url: String,
        /// The object store's error.
        source: Box<object_store::Error>,
    },

    /// The destination did not answer: connection refused, DNS failure, time-out.
    #[error("the backup destination is unreachable: {operation} {url} failed: {cause}")]
    Unreachable {
        /// What was being done (`writing`, `reading`, ...).
        operation: &'static str,
        /// The object's (or folder's) URL.
        url: String,
        /// The innermost cause, so that the message says why without walking the chain.
        cause: String,
        /// The object store's error.
        source: Box<object_store::Error>,
    },

    /// The destination has no room left (a full disk, a quota).
    #[error("the backup destination is full: {operation} {url} failed: {cause}")]
    Full {
        /// What was being done (`writing`, ...).
        operation: &'static str,
        /// The object's URL.
        url: String,
        /// The innermost cause.
        cause: String,
        /// The object store's error.
        source: Box<object_store::Error>,
    },

    /// Any other failure of the object store.
    #[error("{operation} {url} failed: {source}")]
    Store {
        /// What was being done.
        operation: &'static str,
        /// The object's (or folder's) URL.
        url: String,
        /// The object store's error.
        source: Box<object_store::Error>,
    },

    /// The folder already holds a complete artifact, which is never overwritten.
    #[error("an artifact already exists at {url}")]
    AlreadyExists {
        /// The artifact's URL.
        url: String,
    },

    /// Nothing is at the URL: a local directory that does not exist, or a folder of a cloud
    /// store with no object under it (a mistyped URL, most likely).
    #[error("there is no backup at {url}: {reason}")]
    NotFound {
        /// The folder's URL.
        url: String,
        /// What is missing: `the directory does not exist`, `nothing is stored there`.
        reason: &'static str,
    },

    /// The folder has objects but no manifest: an interrupted backup, or not a backup at all.
    #[error(
        "no manifest.json at {url}: the backup is incomplete (interrupted) or the URL does not \
         name a backup"
    )]
    Incomplete {
        /// The folder's URL.
        url: String,
    },

    /// The manifest is not JSON, or lacks fields, or names its state wrongly.
    #[error("manifest.json at {url} is not a valid manifest: {reason}")]
    InvalidManifest {
        /// The artifact's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The artifact was written in a layout this release does not read.
    #[error(
        "the artifact at {url} has artifact format {found}, this release reads {}",
        api::backup::ARTIFACT_FORMAT
    )]
    UnsupportedFormat {
        /// The artifact's URL.
        url: String,
        /// The format its manifest names.
        found: u64,
    },

    /// The manifest names a state object that is not there.
    #[error("the artifact at {url} has a manifest but no {object}: the artifact is damaged")]
    StateMissing {
        /// The artifact's URL.
        url: String,
        /// The state object's name.
        object: String,
    },

    /// The state object's size differs from the manifest's.
    #[error("{object} is {actual} bytes, the manifest says {expected} (artifact {url})")]
    SizeMismatch {
        /// The artifact's URL.
        url: String,
        /// The state object's name.
        object: String,
        /// Its size.
        actual: u64,
        /// The manifest's size.
        expected: u64,
    },

    /// The state object's checksum differs from the manifest's.
    #[error("{object}'s SHA-256 is {actual}, the manifest says {expected} (artifact {url})")]
    ChecksumMismatch {
        /// The artifact's URL.
        url: String,
        /// The state object's name.
        object: String,
        /// Its SHA-256, lowercase hex.
        actual: String,
        /// The manifest's.
        expected: String,
    },

    /// No leader gave the group's state (the store is down, has no leader, or refused).
    #[error("cannot read the store's state from its leader: {0}")]
    Leader(String),

    /// The state is not one this release can restore, or it disagrees with its manifest.
    #[error("{0}")]
    State(String),
}

impl BackupError {
    /// Wraps an object store error of `operation` on `url`, telling an unreachable or full
    /// destination apart from other failures.
    pub(crate) fn store(
        operation: &'static str,
        url: impl Into<String>,
        source: object_store::Error,
    ) -> Self {
        let url = url.into();
        let cause = root_cause(&source);
        let source = Box::new(source);
        if is_full(&source) {
            Self::Full {
                operation,
                url,
                cause,
                source,
            }
        } else if is_unreachable(&source) {
            Self::Unreachable {
                operation,
                url,
                cause,
                source,
            }
        } else {
            Self::Store {
                operation,
                url,
                source,
            }
        }
    }
}

/// The errors in `e`'s source chain, `e` first.
fn chain(e: &object_store::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    let first: &(dyn std::error::Error + 'static) = e;
    std::iter::successors(Some(first), |&e| e.source())
}

/// The innermost error's message: the one that says why (e.g. "Connection refused").
fn root_cause(e: &object_store::Error) -> String {
    chain(e).last().map(ToString::to_string).unwrap_or_default()
}

/// No space on a file system (ENOSPC, EDQUOT), or a cloud quota.
fn is_full(e: &object_store::Error) -> bool {
    chain(e).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
    })
}

/// A connection that could not be made or timed out; the object store has already retried.
fn is_unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    chain(e).any(|e| {
        e.downcast_ref::<HttpError>()
            .is_some_and(|h| matches!(h.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout))
            || e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                        | std::io::ErrorKind::TimedOut
                )
            })
    })
}
