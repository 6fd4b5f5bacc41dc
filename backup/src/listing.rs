//! The artifacts in a folder, and pruning the old ones.

use api::backup::{MANIFEST_OBJECT, Manifest, STATE_OBJECT_PREFIX};
use object_store::ObjectStoreExt;

use crate::artifact::read_manifest;
use crate::{BackupError, Destination};

/// One child folder of a destination, as [`list_artifacts`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The folder's name (the last segment of its URL).
    pub name: String,
    /// The folder's URL, as [`crate::read_artifact`] takes it.
    pub url: String,
    /// Its manifest; `None` for a folder without a valid one: an interrupted backup (or one
    /// still being written), or a manifest this release cannot read. Such a folder is never a
    /// complete artifact.
    pub manifest: Option<Manifest>,
}

/// The child folders of `dest` (one level), complete artifacts first, oldest first (by
/// `created_at`, then name), then the incomplete ones by name. Reads every manifest, no state.
pub async fn list_artifacts(dest: &Destination) -> Result<Vec<Listed>, BackupError> {
    let prefix = dest.prefix();
    let listing = dest
        .store()
        .list_with_delimiter((!prefix.is_root()).then_some(prefix))
        .await
        .map_err(|e| BackupError::store("listing", dest.url(), e))?;
    let mut listed = Vec::new();
    for folder in listing.common_prefixes {
        let Some(name) = folder.filename() else {
            continue;
        };
        let child = dest.join(name);
        let manifest = match read_manifest(&child).await {
            Ok(manifest) => Some(manifest),
            Err(
                BackupError::Incomplete { .. }
                | BackupError::InvalidManifest { .. }
                | BackupError::UnsupportedFormat { .. },
            ) => None,
            Err(e) => return Err(e),
        };
        listed.push(Listed {
            name: name.to_string(),
            url: child.url().to_string(),
            manifest,
        });
    }
    listed.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(listed)
}

/// Complete before incomplete; then by creation time (parsed, so that differently written
/// offsets compare right; as text where it does not parse), then by name.
fn sort_key(l: &Listed) -> (bool, Option<chrono::DateTime<chrono::Utc>>, &str, &str) {
    match &l.manifest {
        Some(m) => (
            false,
            chrono::DateTime::parse_from_rfc3339(&m.created_at)
                .ok()
                .map(|t| t.to_utc()),
            m.created_at.as_str(),
            &l.name,
        ),
        None => (true, None, "", &l.name),
    }
}

/// Deletes the complete artifacts of `store` in `dest` beyond the newest `keep`; returns the
/// URLs of those removed, oldest first (each is logged). Each loses its manifest first and then
/// its state, so that an artifact half deleted (by a failure between the two) reads as
/// incomplete rather than as a complete one without its state; then any other state objects in
/// its folder (`state-*.json`, left by an interrupted or refused attempt at the same name).
/// Incomplete folders are left alone: one may be a backup in progress, and there is no telling
/// it from an interrupted one here. Artifacts of other stores are not touched.
pub async fn prune(
    dest: &Destination,
    store: &str,
    keep: usize,
) -> Result<Vec<String>, BackupError> {
    let mine: Vec<(Listed, Manifest)> = list_artifacts(dest)
        .await?
        .into_iter()
        .filter_map(|l| {
            let manifest = l.manifest.clone()?;
            (manifest.store == store).then_some((l, manifest))
        })
        .collect();
    let surplus = mine.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (listed, manifest) in mine.into_iter().take(surplus) {
        let artifact = dest.join(&listed.name);
        for object in [MANIFEST_OBJECT, manifest.data.object.as_str()] {
            delete(&artifact, object).await?;
        }
        let leftovers = artifact
            .store()
            .list_with_delimiter(Some(artifact.prefix()))
            .await
            .map_err(|e| BackupError::store("listing", artifact.url(), e))?;
        for object in leftovers.objects {
            if let Some(name) = object.location.filename()
                && name.starts_with(STATE_OBJECT_PREFIX)
                && name.ends_with(".json")
            {
                delete(&artifact, name).await?;
            }
        }
        tracing::info!(artifact = %listed.url, "pruned");
        removed.push(listed.url);
    }
    Ok(removed)
}

/// Deletes the object `name` of the folder `artifact`; one already gone is fine.
async fn delete(artifact: &Destination, name: &str) -> Result<(), BackupError> {
    match artifact.store().delete(&artifact.object(name)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(BackupError::store("deleting", artifact.object_url(name), e)),
    }
}
