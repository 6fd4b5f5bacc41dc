//! Backups of a store: what an artifact's manifest says, and what a backup reports.
//!
//! An artifact is a folder of two objects in an object store: the state object (named by
//! [`state_object_name`], `state-<checksum>.json`), the order group's state as the leader
//! exported it (inventory and orders as of one committed index, in the order replica's snapshot
//! format), and [`MANIFEST_OBJECT`], written only after the state is whole and naming the state
//! object in its [`StateObject::object`]. The manifest is the artifact's commit record: a folder
//! without one is an interrupted backup, never mistaken for a complete one.

use serde::{Deserialize, Serialize};

/// Version of the artifact layout and manifest; an artifact of another is refused.
pub const ARTIFACT_FORMAT: u32 = 1;

/// The manifest's object name inside an artifact.
pub const MANIFEST_OBJECT: &str = "manifest.json";

/// How a state object's name begins (see [`state_object_name`]).
pub const STATE_OBJECT_PREFIX: &str = "state-";

/// The name of the state object inside an artifact for a state whose SHA-256 is `sha256`
/// (lowercase hex): `state-<its first 16 hex digits>.json`. Content-addressed, so that each
/// attempt at a backup writes its own object: one racing into a folder where another completed
/// (or an interrupted one left its state) never overwrites the state a manifest names, while
/// two attempts with identical bytes write the same, identical, object. Readers never rebuild
/// the name: they follow the manifest's [`StateObject::object`].
pub fn state_object_name(sha256: &str) -> String {
    let digits = sha256.get(..16).unwrap_or(sha256);
    format!("{STATE_OBJECT_PREFIX}{digits}.json")
}

/// Response header of an order replica's `GET /admin/backup`: the committed index the state
/// is as of.
pub const INDEX_HEADER: &str = "x-toystore-index";

/// What an exported state holds, read from the state itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSummary {
    /// The order replica's storage format the state is written in.
    pub storage_format: u32,
    /// The committed log index the state is as of.
    pub index: u64,
    /// The Raft term of that index.
    pub term: u64,
    /// Confirmed orders.
    pub orders: u64,
    /// Refused purchases (kept so that a retried key gets the same answer).
    pub refused: u64,
    /// Toys defined.
    pub products: u64,
}

/// The state object of an artifact: where it is, how long, and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateObject {
    /// Object name, relative to the artifact (one path segment): [`state_object_name`] when
    /// written by this release.
    pub object: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, lowercase hex (`sha256sum` prints the same).
    pub sha256: String,
}

/// `manifest.json`: one artifact's description, written after its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`ARTIFACT_FORMAT`] when written.
    pub artifact_format: u32,
    /// The store the state was taken from.
    pub store: String,
    /// When the state was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The ToyStore release that wrote the artifact.
    pub toystore_version: String,
    /// What the state holds.
    pub state: StateSummary,
    /// The state object.
    pub data: StateObject,
}

/// What `toystore backup` reports when it is done (also the backup Job's termination
/// message, read by the operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// The artifact's URL, as restore and verify take it.
    pub url: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Milliseconds the backup took, export and upload.
    pub millis: u64,
}

/// What `toystore restore` reports once a data directory is seeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// The artifact restored from.
    pub url: String,
    /// Its manifest.
    pub manifest: Manifest,
}

/// What a failed backup or restore command reports in its result file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// The error, with its causes.
    pub error: String,
}
