//! Writing one artifact (state, then manifest) and reading it back checked.

use api::backup::{
    ARTIFACT_FORMAT, MANIFEST_OBJECT, Manifest, StateObject, StateSummary, state_object_name,
};
use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

use crate::{BackupError, Destination};

/// States up to this size are written with one request (retried whole); larger ones in parts
/// of [`PART_SIZE`], each retried on its own.
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;

/// Size of one part of a multipart upload (S3 wants at least 5 MiB but for the last part).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Writes an artifact of `store` into the folder `dest`: `state` (opaque here: the order
/// group's exported state, described by `summary`) as the object
/// [`state_object_name`]`(its SHA-256)`, then, only once the state is completely written, the
/// manifest naming that object, with its size and SHA-256. Refuses a folder that already holds
/// a manifest, so that a complete artifact is never overwritten; a folder with only a state (an
/// interrupted backup) is completed (its stale state object is left for [`crate::prune`]).
/// Returns the manifest written.
///
/// Each attempt's state object is named by its own checksum, so a backup racing into the same
/// folder (it found no manifest, then another completed there first) writes beside the
/// complete artifact's state, never over it, and then loses at the manifest, which is created
/// only if absent. A local directory (`file://`) is created here, by the first write.
pub async fn write_artifact(
    dest: &Destination,
    store: &str,
    state: Bytes,
    summary: StateSummary,
) -> Result<Manifest, BackupError> {
    let manifest_path = dest.object(MANIFEST_OBJECT);
    let manifest_url = dest.object_url(MANIFEST_OBJECT);
    match dest.store().head(&manifest_path).await {
        Ok(_) => {
            return Err(BackupError::AlreadyExists {
                url: dest.url().to_string(),
            });
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(BackupError::store("checking for", manifest_url, e)),
    }

    let sha256 = hex::encode(Sha256::digest(&state));
    let data = StateObject {
        object: state_object_name(&sha256),
        size: state.len() as u64,
        sha256,
    };
    write_state(dest, &data.object, state).await?;

    let manifest = Manifest {
        artifact_format: ARTIFACT_FORMAT,
        store: store.to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        toystore_version: api::VERSION.to_string(),
        state: summary,
        data,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    json.push(b'\n');
    // Create, not overwrite: another backup racing into the same folder loses here rather
    // than replacing a complete artifact's manifest.
    let opts = PutOptions::from(PutMode::Create);
    match dest
        .store()
        .put_opts(&manifest_path, PutPayload::from(json), opts)
        .await
    {
        Ok(_) => Ok(manifest),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => {
            discard_refused_state(dest, &manifest.data.object).await;
            Err(BackupError::AlreadyExists {
                url: dest.url().to_string(),
            })
        }
        Err(e) => Err(BackupError::store("writing", manifest_url, e)),
    }
}

/// After losing the race for the manifest: deletes this attempt's state object `object`,
/// unless it is the very one the winner's manifest names (identical bytes, one object) or the
/// winner's manifest cannot be read (then nothing is deleted). Best effort: a state left behind
/// harms no artifact, and pruning removes it with the artifact.
async fn discard_refused_state(dest: &Destination, object: &str) {
    match read_manifest(dest).await {
        Ok(winner) if winner.data.object != object => {
            if let Err(e) = dest.store().delete(&dest.object(object)).await {
                tracing::warn!(
                    object = %dest.object_url(object),
                    error = %e,
                    "deleting the state of a refused backup failed"
                );
            }
        }
        _ => {}
    }
}

/// Writes the state object `name`: one put, or a multipart upload that is aborted on any
/// failure so that no parts are left behind (nor billed).
async fn write_state(dest: &Destination, name: &str, state: Bytes) -> Result<(), BackupError> {
    let path = dest.object(name);
    let url = dest.object_url(name);
    let store = dest.store();
    if state.len() <= MULTIPART_THRESHOLD {
        return match store.put(&path, PutPayload::from(state)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(BackupError::store("writing", url, e)),
        };
    }
    let mut upload = store
        .put_multipart(&path)
        .await
        .map_err(|e| BackupError::store("starting the upload of", url.clone(), e))?;
    let mut result = Ok(());
    for start in (0..state.len()).step_by(PART_SIZE) {
        let part = state.slice(start..state.len().min(start + PART_SIZE));
        if let Err(e) = upload.put_part(PutPayload::from(part)).await {
            result = Err(BackupError::store("writing", url.clone(), e));
            break;
        }
    }
    if result.is_ok() {
        match upload.complete().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                result = Err(BackupError::store(
                    "completing the upload of",
                    url.clone(),
                    e,
                ))
            }
        }
    }
    if let Err(e) = upload.abort().await {
        tracing::warn!(object = %url, error = %e, "aborting a failed upload failed");
    }
    result
}

/// Reads the artifact in the folder `dest` and checks it: the manifest is there, valid and of
/// [`ARTIFACT_FORMAT`], the state object has the manifest's size and SHA-256. Returns the
/// manifest and the state's bytes (of the object the manifest's `data.object` names). The state
/// itself is not parsed here: the caller checks its storage format and index against
/// `manifest.state` with the order replica's own parser. A folder that does not exist (nothing
/// stored under it) is [`BackupError::NotFound`], one with objects but no manifest
/// [`BackupError::Incomplete`].
pub async fn read_artifact(dest: &Destination) -> Result<(Manifest, Bytes), BackupError> {
    let manifest = match read_manifest(dest).await {
        Ok(manifest) => manifest,
        Err(BackupError::Incomplete { url }) => {
            return Err(match dest.absent().await {
                Some(reason) => BackupError::NotFound { url, reason },
                None => BackupError::Incomplete { url },
            });
        }
        Err(e) => return Err(e),
    };
    let (path, url) = state_location(dest, &manifest);
    let state = match dest.store().get(&path).await {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    let state = state.map_err(|e| state_error(dest, &manifest, url, e))?;
    check(
        dest,
        &manifest,
        state.len() as u64,
        &hex::encode(Sha256::digest(&state)),
    )?;
    Ok((manifest, state))
}

/// Reads and validates the manifest of the artifact in `dest`.
pub(crate) async fn read_manifest(dest: &Destination) -> Result<Manifest, BackupError> {
    let path = dest.object(MANIFEST_OBJECT);
    let bytes = match dest.store().get(&path).await {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(BackupError::Incomplete {
                url: dest.url().to_string(),
            });
        }
        Err(e) => {
            return Err(BackupError::store(
                "reading",
                dest.object_url(MANIFEST_OBJECT),
                e,
            ));
        }
    };
    parse_manifest(dest.url(), &bytes)
}

/// Parses a manifest, checking the format first: a manifest of another format may have other
/// fields, and "format 2" says more than "missing field x".
fn parse_manifest(url: &str, bytes: &[u8]) -> Result<Manifest, BackupError> {
    let invalid = |reason: String| BackupError::InvalidManifest {
        url: url.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    match value
        .get("artifactFormat")
        .and_then(serde_json::Value::as_u64)
    {
        Some(found) if found != u64::from(ARTIFACT_FORMAT) => {
            return Err(BackupError::UnsupportedFormat {
                url: url.to_string(),
                found,
            });
        }
        _ => {}
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    // The state must be an object of this folder, nothing a manifest could point elsewhere with.
    let object = &manifest.data.object;
    if object.is_empty() || object.contains(['/', '\\']) || object == "." || object == ".." {
        return Err(invalid(format!(
            "data.object {object:?} is not a plain object name in the artifact (one name, no \
             '/', not empty, not '.' or '..')"
        )));
    }
    Ok(manifest)
}

/// The state object's store path and URL.
fn state_location(dest: &Destination, manifest: &Manifest) -> (object_store::path::Path, String) {
    (
        dest.object(&manifest.data.object),
        dest.object_url(&manifest.data.object),
    )
}

/// The error of reading a manifest's state object: missing, or a store failure.
fn state_error(
    dest: &Destination,
    manifest: &Manifest,
    url: String,
    e: object_store::Error,
) -> BackupError {
    match e {
        object_store::Error::NotFound { .. } => BackupError::StateMissing {
            url: dest.url().to_string(),
            object: manifest.data.object.clone(),
        },
        e => BackupError::store("reading", url, e),
    }
}

/// Compares the state's size and SHA-256 with the manifest's.
fn check(
    dest: &Destination,
    manifest: &Manifest,
    size: u64,
    sha256: &str,
) -> Result<(), BackupError> {
    if size != manifest.data.size {
        return Err(BackupError::SizeMismatch {
            url: dest.url().to_string(),
            object: manifest.data.object.clone(),
            actual: size,
            expected: manifest.data.size,
        });
    }
    if !sha256.eq_ignore_ascii_case(&manifest.data.sha256) {
        return Err(BackupError::ChecksumMismatch {
            url: dest.url().to_string(),
            object: manifest.data.object.clone(),
            actual: sha256.to_string(),
            expected: manifest.data.sha256.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_of_another_format_are_refused_before_their_fields_are_read() {
        let e = parse_manifest("s3://b/a", br#"{"artifactFormat": 99}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("artifact format 99, this release reads 1"),
            "{e}"
        );
        let e = parse_manifest("s3://b/a", br#"{"artifactFormat": 1}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a valid manifest: missing field"),
            "{e}"
        );
        let e = parse_manifest("s3://b/a", b"garbage").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    #[test]
    fn manifests_naming_a_state_outside_the_artifact_are_refused() {
        let manifest = |object: &str| {
            serde_json::json!({
                "artifactFormat": ARTIFACT_FORMAT,
                "store": "shop",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "toystoreVersion": "0",
                "state": {"storageFormat": 3, "index": 1, "term": 1, "orders": 0, "refused": 0,
                          "products": 0},
                "data": {"object": object, "size": 1, "sha256": "00"},
            })
            .to_string()
        };
        for object in [
            "",
            ".",
            "..",
            "../other/state.json",
            "a/b",
            "/etc/passwd",
            "a\\b",
        ] {
            let e = parse_manifest("s3://b/a", manifest(object).as_bytes()).unwrap_err();
            let message = e.to_string();
            assert!(matches!(e, BackupError::InvalidManifest { .. }), "{e:?}");
            assert!(
                message.contains(&format!(
                    "data.object {object:?} is not a plain object name"
                )),
                "{message}"
            );
        }
        let ok = parse_manifest(
            "s3://b/a",
            manifest("state-0123456789abcdef.json").as_bytes(),
        )
        .expect("a plain name");
        assert_eq!(ok.data.object, "state-0123456789abcdef.json");
    }
}
