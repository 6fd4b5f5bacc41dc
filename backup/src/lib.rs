//! Backup artifacts of a store in an object store (S3, Google Cloud Storage, Azure Blob
//! Storage, or a local directory), through the `object_store` crate: writing one, reading and
//! verifying it, listing a destination's artifacts, pruning old ones.
//!
//! # Layout
//!
//! A destination is a folder, named by a URL ([`Destination`]); each artifact is a child
//! folder of it holding two objects:
//!
//! ```text
//! s3://bucket/backups/            the destination
//!   <artifact>/state-<sha>.json   the order group's exported state (opaque bytes here),
//!                                 named by its SHA-256's first 16 hex digits
//!   <artifact>/manifest.json      api::backup::Manifest: store, time, release, what the state
//!                                 holds, and the state's size and SHA-256
//! ```
//!
//! # The commit rule: manifest last
//!
//! Object stores have no transactions, so the manifest is the artifact's commit record: it is
//! written only after the state object is completely written, and deleted first when an
//! artifact is pruned. A folder without a manifest is therefore an interrupted backup (or one
//! in progress) and is never read, listed or pruned as a complete artifact; a folder with one
//! is complete, and reading it checks the state against the manifest's size and checksum
//! (reading the state object the manifest names). A complete artifact is never overwritten: each
//! attempt writes its state under its own (content-addressed) name, and the manifest is created
//! only where there is none, so a backup racing into the same folder loses without touching the
//! winner's objects.
//!
//! # Taking and restoring
//!
//! [`take`] reads the state from a running group's leader (as of a committed index, while
//! sales go on) and writes it as an artifact; [`fetch_verified`] reads one back and checks it
//! whole, down to the state's own format, index and orders (through the order replica's
//! parser, which owns the storage format), for a restore or `toystore backup verify`.
//!
//! # TLS
//!
//! Requests to cloud stores go through hyper and rustls on `ring` ([`http`]), not object_store's
//! reqwest transport, whose TLS needs aws-lc-rs (a C build) or a process-wide provider.

mod artifact;
mod destination;
mod error;
pub mod http;
mod listing;
mod take;
mod verify;

pub use artifact::{read_artifact, write_artifact};
pub use destination::Destination;
pub use error::BackupError;
pub use listing::{Listed, list_artifacts, prune};
pub use take::{default_name, take};
pub use verify::{Verified, fetch_verified};
