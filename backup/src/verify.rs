//! An artifact read back and checked whole: its manifest, its bytes, and its state.

use api::backup::Manifest;

use crate::{BackupError, Destination, read_artifact};

/// An artifact whose manifest, size, checksum and state all agree.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The artifact's URL.
    pub url: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// The state's bytes (as the order replica's restore takes them).
    pub state: Vec<u8>,
}

/// Reads the artifact at `dest` and checks it: the manifest is complete and of this format,
/// the state's size and SHA-256 are the manifest's, and the state itself is one this release
/// restores and holds what the manifest says (index, term, orders, toys). Any mismatch is an
/// error naming it.
pub async fn fetch_verified(dest: &Destination) -> Result<Verified, BackupError> {
    let (manifest, bytes) = read_artifact(dest).await?;
    let found = order_replica::state_machine::inspect(&bytes)
        .map_err(|e| BackupError::State(format!("{}: {e}", dest.url())))?;
    if found != manifest.state {
        return Err(BackupError::State(format!(
            "{}: the state does not match its manifest: the manifest says {:?}, the state holds \
             {:?}",
            dest.url(),
            manifest.state,
            found
        )));
    }
    Ok(Verified {
        url: dest.url().to_string(),
        manifest,
        state: bytes.to_vec(),
    })
}
