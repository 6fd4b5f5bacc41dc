//! Taking a backup of a running store: the state from its leader, stored as an artifact.

use std::time::Instant;

use api::GroupClient;
use api::backup::BackupReport;

use crate::{BackupError, Destination, prune, write_artifact};

/// Takes a backup of the group `group` reaches into `dest/name` (`name` defaults to the store
/// and the time), and with `keep`, prunes the store's artifacts in `dest` beyond the newest
/// `keep` (a failure there is logged; the backup stands).
///
/// The state is the leader's as of a committed index at or after the request: every purchase
/// acknowledged before this is called is in it. It is checked (format, order numbers) before it
/// is stored, and the manifest is written only once the state is whole.
pub async fn take(
    group: &GroupClient,
    dest: &Destination,
    store: &str,
    name: Option<&str>,
    keep: Option<usize>,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let state = group
        .backup_state()
        .await
        .map_err(|e| BackupError::Leader(e.to_string()))?;
    let summary = order_replica::state_machine::inspect(&state)
        .map_err(|e| BackupError::State(e.to_string()))?;
    let name = match name {
        Some(n) => n.to_string(),
        None => default_name(store),
    };
    let artifact = dest.join(&name);
    let manifest = write_artifact(&artifact, store, state.into(), summary).await?;
    // The backup is complete whatever pruning does: a failure to delete old artifacts is a
    // warning, never a failed backup (the artifact exists, and a report must say so).
    // (`prune` logs each artifact it removes.)
    if let Some(keep) = keep
        && let Err(error) = prune(dest, store, keep).await
    {
        tracing::warn!(%error, keep, "could not remove old backups");
    }
    Ok(BackupReport {
        url: artifact.url().to_string(),
        manifest,
        millis: started.elapsed().as_millis() as u64,
    })
}

/// `<store>-<UTC time>`, e.g. `local-20261207T214400Z`: names sort by time.
pub fn default_name(store: &str) -> String {
    format!("{store}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
}
