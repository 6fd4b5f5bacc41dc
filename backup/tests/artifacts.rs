//! Artifacts written, read, damaged, listed and pruned on a real S3 API (moto's server, through
//! `testkit::s3`) and on a local directory (`file://`); plus an unreachable destination and a
//! full one (a small tmpfs, needs root), a plain-http endpoint without `allow_http`, and a
//! proxy option.
//!
//! Each scenario is one function of a root destination, run once per backend by `on_both!`.

use std::time::{Duration, Instant};

use api::backup::{MANIFEST_OBJECT, Manifest, StateSummary, state_object_name};
use backup::{
    BackupError, Destination, fetch_verified, list_artifacts, prune, read_artifact, write_artifact,
};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use sha2::{Digest, Sha256};
use testkit::s3::S3Server;

/// A root destination on moto's S3, with the server that must outlive it.
fn s3() -> Option<(S3Server, Destination)> {
    let server = S3Server::start()?;
    let url = format!("s3://{}/backups", server.bucket());
    let root = Destination::parse_with(&url, server.env()).expect("an s3:// destination");
    Some((server, root))
}

/// A root destination in a temporary directory (not created by `parse`: by the first write).
fn file() -> (tempfile::TempDir, Destination) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("file://{}", dir.path().join("backups").display());
    let root = Destination::parse(&url).expect("a file:// destination");
    (dir, root)
}

/// Runs each scenario against S3 (module `s3`) and a local directory (module `file`).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_server, root)) = super::s3() else { return };
                    super::$name(&root).await;
                }
            )*
        }
        mod file {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, root) = super::file();
                    super::$name(&root).await;
                }
            )*
        }
    };
}

on_both!(
    written_artifacts_read_back_whole,
    damaged_artifacts_are_refused_naming_what_is_wrong,
    complete_artifacts_are_never_overwritten,
    a_backup_racing_into_a_completed_folder_never_damages_it,
    a_stale_state_of_an_interrupted_attempt_does_not_stop_a_new_backup,
    a_state_that_disagrees_with_its_manifest_is_refused,
    a_folder_with_nothing_in_it_is_not_found,
    prune_keeps_the_newest_complete_artifacts_of_the_store,
);

fn summary(index: u64) -> StateSummary {
    StateSummary {
        storage_format: 3,
        index,
        term: 2,
        orders: 10,
        refused: 1,
        products: 4,
    }
}

/// A state of `len` bytes that differ from position to position (so a flipped or cut byte
/// changes the checksum).
fn state(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// A real (if empty) order group state as of `index`, as the order replica's parser reads it,
/// with what it holds: what `fetch_verified` checks down to the state.
fn real_state(index: u64) -> (Bytes, StateSummary) {
    let state = serde_json::json!({
        "format": order_replica::record::STORAGE_FORMAT,
        "last_applied": {"leader_id": {"term": 3, "node_id": 1}, "index": index},
        "membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
        "next_number": 0,
        "defined": true,
        "products": [],
        "orders": [],
    });
    let bytes = serde_json::to_vec(&state).unwrap();
    let summary = order_replica::state_machine::inspect(&bytes).expect("a state");
    assert_eq!(summary.index, index);
    (bytes.into(), summary)
}

/// SHA-256 computed here, apart from the crate's.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The name the crate gives the state object of `bytes`, computed here.
fn state_name(bytes: &[u8]) -> String {
    format!("state-{}.json", &sha256_hex(bytes)[..16])
}

/// Writes `bytes` as the object `name` of the folder `dest`, bypassing the crate (a damage).
async fn put_raw(dest: &Destination, name: &str, bytes: impl Into<Bytes>) {
    let path = object(dest, name);
    let payload = PutPayload::from(bytes.into());
    dest.store().put(&path, payload).await.expect("a raw put");
}

async fn get_raw(dest: &Destination, name: &str) -> Bytes {
    let path = object(dest, name);
    let got = dest.store().get(&path).await.expect("a raw get");
    got.bytes().await.expect("the object's bytes")
}

fn object(dest: &Destination, name: &str) -> Path {
    dest.prefix().clone().join(name)
}

async fn read_err(dest: &Destination) -> BackupError {
    read_artifact(dest)
        .await
        .expect_err("a damaged artifact is refused")
}

async fn written_artifacts_read_back_whole(root: &Destination) {
    let small = state(100_000, 1);
    let dest = root.join("2024-01-01T00-00-00Z");
    let manifest = write_artifact(&dest, "shop", small.clone(), summary(42))
        .await
        .expect("writing an artifact");

    assert_eq!(manifest.artifact_format, 1);
    assert_eq!(manifest.store, "shop");
    assert_eq!(manifest.toystore_version, api::VERSION);
    assert_eq!(manifest.state, summary(42));
    assert_eq!(manifest.data.object, state_name(&small));
    assert_eq!(manifest.data.object, state_object_name(&sha256_hex(&small)));
    assert_eq!(manifest.data.size, small.len() as u64);
    assert_eq!(manifest.data.sha256, sha256_hex(&small));
    let created = chrono::DateTime::parse_from_rfc3339(&manifest.created_at).expect("RFC 3339");
    assert_eq!(
        created.offset().local_minus_utc(),
        0,
        "{}",
        manifest.created_at
    );
    assert!(
        manifest.created_at.ends_with('Z'),
        "{}",
        manifest.created_at
    );

    // The manifest object is the JSON the API type reads, as another release would read it.
    let raw: Manifest = serde_json::from_slice(&get_raw(&dest, MANIFEST_OBJECT).await).unwrap();
    assert_eq!(raw, manifest);

    let (read, bytes) = read_artifact(&dest).await.expect("reading it back");
    assert_eq!(read, manifest);
    assert_eq!(bytes, small);

    // A state above the single-request size goes up in parts and reads back the same.
    let big = state(17 * 1024 * 1024 + 3, 2);
    let big_dest = root.join("2024-01-02T00-00-00Z");
    let big_manifest = write_artifact(&big_dest, "shop", big.clone(), summary(43))
        .await
        .expect("writing a large artifact");
    assert_eq!(big_manifest.data.sha256, sha256_hex(&big));
    let (_, bytes) = read_artifact(&big_dest)
        .await
        .expect("reading the large one");
    assert_eq!(bytes.len(), big.len());
    assert!(bytes == big, "the large state read back differs");

    let listed = list_artifacts(root).await.expect("listing");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].name, "2024-01-01T00-00-00Z");
    assert_eq!(listed[0].url, dest.url());
    assert_eq!(listed[0].manifest.as_ref(), Some(&manifest));
    assert_eq!(listed[1].url, big_dest.url());
    assert_eq!(listed[1].manifest.as_ref(), Some(&big_manifest));
}

async fn damaged_artifacts_are_refused_naming_what_is_wrong(root: &Destination) {
    let good = state(10_000, 3);
    let sha = sha256_hex(&good);
    let name = state_name(&good);
    for name in [
        "flipped",
        "truncated",
        "format99",
        "garbage",
        "no-state",
        "fine",
    ] {
        write_artifact(&root.join(name), "shop", good.clone(), summary(7))
            .await
            .expect("writing an artifact");
    }

    // One byte flipped.
    let dest = root.join("flipped");
    let mut bytes = get_raw(&dest, &name).await.to_vec();
    bytes[5_000] ^= 0x01;
    let flipped_sha = sha256_hex(&bytes);
    put_raw(&dest, &name, bytes).await;
    let e = read_err(&dest).await;
    assert!(matches!(e, BackupError::ChecksumMismatch { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "{name}'s SHA-256 is {flipped_sha}, the manifest says {sha}"
        )),
        "{e}"
    );

    // Cut short.
    let dest = root.join("truncated");
    put_raw(&dest, &name, good.slice(..9_000)).await;
    let e = read_err(&dest).await;
    assert!(
        e.to_string()
            .contains(&format!("{name} is 9000 bytes, the manifest says 10000")),
        "{e}"
    );

    // A manifest of a future format.
    let dest = root.join("format99");
    let mut json: serde_json::Value =
        serde_json::from_slice(&get_raw(&dest, MANIFEST_OBJECT).await).unwrap();
    json["artifactFormat"] = 99.into();
    put_raw(&dest, MANIFEST_OBJECT, serde_json::to_vec(&json).unwrap()).await;
    let e = read_err(&dest).await;
    assert!(
        e.to_string()
            .contains("artifact format 99, this release reads 1"),
        "{e}"
    );

    // A manifest that is not one.
    let dest = root.join("garbage");
    put_raw(&dest, MANIFEST_OBJECT, &b"{\"this is\": not json"[..]).await;
    let e = read_err(&dest).await;
    assert!(
        e.to_string().contains(&format!(
            "manifest.json at {} is not a valid manifest",
            dest.url()
        )),
        "{e}"
    );

    // The state gone.
    let dest = root.join("no-state");
    dest.store().delete(&object(&dest, &name)).await.unwrap();
    let e = read_err(&dest).await;
    assert!(matches!(e, BackupError::StateMissing { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("no {name}")), "{e}");

    // An interrupted backup: the state written, the manifest never.
    let dest = root.join("interrupted");
    put_raw(&dest, &name, good.clone()).await;
    let e = read_err(&dest).await;
    assert!(matches!(e, BackupError::Incomplete { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "no manifest.json at {}: the backup is incomplete (interrupted)",
            dest.url()
        )),
        "{e}"
    );

    read_artifact(&root.join("fine"))
        .await
        .expect("the undamaged one reads");

    let listed = list_artifacts(root).await.expect("listing");
    let complete: Vec<&str> = listed
        .iter()
        .filter(|l| l.manifest.is_some())
        .map(|l| l.name.as_str())
        .collect();
    let incomplete: Vec<&str> = listed
        .iter()
        .filter(|l| l.manifest.is_none())
        .map(|l| l.name.as_str())
        .collect();
    // Damaged states still have their manifests (read finds the damage); damaged manifests and
    // the interrupted backup are not complete artifacts.
    assert_eq!(
        incomplete,
        ["format99", "garbage", "interrupted"],
        "{listed:?}"
    );
    assert_eq!(complete.len(), 4, "{listed:?}");
}

async fn complete_artifacts_are_never_overwritten(root: &Destination) {
    let dest = root.join("a");
    let (first, first_summary) = real_state(1);
    let manifest = write_artifact(&dest, "shop", first.clone(), first_summary)
        .await
        .expect("writing an artifact");
    let (second, second_summary) = real_state(2);
    let e = write_artifact(&dest, "shop", second, second_summary)
        .await
        .expect_err("a second write to the same folder is refused");
    assert!(matches!(e, BackupError::AlreadyExists { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("an artifact already exists at {}", dest.url())
    );
    let (read, bytes) = read_artifact(&dest).await.expect("the first still reads");
    assert_eq!(read, manifest);
    assert_eq!(bytes, first);
    let verified = fetch_verified(&dest)
        .await
        .expect("the first still verifies");
    assert_eq!(verified.manifest, manifest);
    assert_eq!(verified.state, first);
    // The store itself refuses to create a manifest over another (what closes the race
    // between two backups into one folder): S3's If-None-Match, a hard link on a disk.
    let again = dest
        .store()
        .put_opts(
            &object(&dest, MANIFEST_OBJECT),
            PutPayload::from_static(b"{}"),
            PutMode::Create.into(),
        )
        .await
        .expect_err("a create over an existing manifest");
    assert!(
        matches!(
            again,
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
        ),
        "{again:?}"
    );
    assert_eq!(read_artifact(&dest).await.expect("still reads").0, manifest);

    // An interrupted backup's folder is no artifact: a new backup may complete it.
    let dest = root.join("b");
    let stale = state(100, 6);
    put_raw(&dest, &state_name(&stale), stale).await;
    let second = state(7_000, 7);
    write_artifact(&dest, "shop", second.clone(), summary(3))
        .await
        .expect("writing over an interrupted backup");
    assert_eq!(read_artifact(&dest).await.expect("it reads").1, second);
}

/// The race of finding 1, made deterministic: backup B found no manifest in the folder, then A
/// completed there, then B's state lands and B fails at the manifest. A must still verify.
async fn a_backup_racing_into_a_completed_folder_never_damages_it(root: &Destination) {
    let dest = root.join("race");
    let (a, a_summary) = real_state(1);
    let manifest = write_artifact(&dest, "shop", a.clone(), a_summary)
        .await
        .expect("A completes");
    let (b, b_summary) = real_state(2);
    // B's state, written as B writes it (its check for a manifest came before A's manifest).
    let b_name = state_object_name(&sha256_hex(&b));
    assert_ne!(
        b_name, manifest.data.object,
        "each attempt has its own state"
    );
    put_raw(&dest, &b_name, b.clone()).await;
    let verified = fetch_verified(&dest)
        .await
        .expect("A verifies with B's state beside it");
    assert_eq!(verified.manifest, manifest);
    assert_eq!(verified.state, a);

    // B (or any later backup to the same name) loses at the manifest.
    let e = write_artifact(&dest, "shop", b, b_summary.clone())
        .await
        .expect_err("B is refused");
    assert!(matches!(e, BackupError::AlreadyExists { .. }), "{e:?}");
    // Identical bytes name the same object: harmless too.
    let e = write_artifact(&dest, "shop", a.clone(), b_summary)
        .await
        .expect_err("a second A is refused");
    assert!(matches!(e, BackupError::AlreadyExists { .. }), "{e:?}");
    let verified = fetch_verified(&dest).await.expect("A still verifies");
    assert_eq!(verified.manifest, manifest);
    assert_eq!(verified.state, a);

    // Pruning A removes B's leftover state with it: no folder is left behind.
    let removed = prune(root, "shop", 0).await.expect("pruning");
    assert_eq!(removed, [dest.url().to_string()]);
    let listed = list_artifacts(root).await.expect("listing");
    assert!(listed.is_empty(), "{listed:?}");
}

/// An interrupted attempt left its state (and a damaged object at the new state's own name):
/// a new backup completes, and its artifact verifies.
async fn a_stale_state_of_an_interrupted_attempt_does_not_stop_a_new_backup(root: &Destination) {
    let dest = root.join("retried");
    let (stale, _) = real_state(1);
    put_raw(&dest, &state_name(&stale), stale).await;
    let (fresh, fresh_summary) = real_state(2);
    put_raw(&dest, &state_name(&fresh), fresh.slice(..10)).await;
    let e = read_err(&dest).await;
    assert!(matches!(e, BackupError::Incomplete { .. }), "{e:?}");

    let manifest = write_artifact(&dest, "shop", fresh.clone(), fresh_summary)
        .await
        .expect("a new backup over an interrupted one");
    assert_eq!(manifest.data.object, state_name(&fresh));
    let verified = fetch_verified(&dest).await.expect("it verifies");
    assert_eq!(verified.manifest, manifest);
    assert_eq!(verified.state, fresh);

    let removed = prune(root, "shop", 0).await.expect("pruning");
    assert_eq!(removed, [dest.url().to_string()]);
    let listed = list_artifacts(root).await.expect("listing");
    assert!(
        listed.is_empty(),
        "the stale state is pruned too: {listed:?}"
    );
}

/// The checksum covers the state object only; the state's own summary is checked against the
/// manifest's by `fetch_verified`.
async fn a_state_that_disagrees_with_its_manifest_is_refused(root: &Destination) {
    let dest = root.join("edited");
    let (bytes, summary) = real_state(5);
    assert_eq!(summary.orders, 0);
    write_artifact(&dest, "shop", bytes, summary)
        .await
        .expect("writing an artifact");
    fetch_verified(&dest).await.expect("it verifies as written");

    let mut json: serde_json::Value =
        serde_json::from_slice(&get_raw(&dest, MANIFEST_OBJECT).await).unwrap();
    json["state"]["orders"] = 7.into();
    put_raw(&dest, MANIFEST_OBJECT, serde_json::to_vec(&json).unwrap()).await;
    read_artifact(&dest)
        .await
        .expect("size and checksum still match");
    let e = fetch_verified(&dest)
        .await
        .expect_err("the edited manifest is refused");
    assert!(matches!(e, BackupError::State(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&format!(
            "{}: the state does not match its manifest",
            dest.url()
        )),
        "{message}"
    );
    assert!(message.contains("orders: 7"), "{message}");
    assert!(message.contains("orders: 0"), "{message}");
}

/// A mistyped URL: nothing there, which is said as such (not "incomplete").
async fn a_folder_with_nothing_in_it_is_not_found(root: &Destination) {
    let dest = root.join("typo");
    for e in [
        read_err(&dest).await,
        fetch_verified(&dest).await.expect_err("nothing to verify"),
    ] {
        assert!(matches!(e, BackupError::NotFound { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("there is no backup at {}: ", dest.url())),
            "{e}"
        );
    }
    assert!(list_artifacts(&dest).await.expect("listing").is_empty());
}

async fn prune_keeps_the_newest_complete_artifacts_of_the_store(root: &Destination) {
    // Names in the order written: created_at ties (same millisecond) fall back on the name.
    let mut shop = Vec::new();
    for name in ["1-shop", "2-shop", "3-other", "4-shop", "5-other", "6-shop"] {
        let store = name.split('-').nth(1).unwrap();
        let dest = root.join(name);
        write_artifact(&dest, store, state(1_000, 8), summary(1))
            .await
            .expect("writing an artifact");
        if store == "shop" {
            shop.push(dest.url().to_string());
        }
    }
    // Incomplete: never pruned, whatever its age.
    let stale = state(10, 9);
    put_raw(&root.join("0-interrupted"), &state_name(&stale), stale).await;

    let removed = prune(root, "shop", 2).await.expect("pruning");
    assert_eq!(removed, shop[..2], "the two oldest of shop's four");
    for url in &removed {
        let name = url.rsplit('/').next().unwrap();
        let e = read_artifact(&root.join(name)).await.expect_err("pruned");
        // Nothing is left of it.
        assert!(matches!(e, BackupError::NotFound { .. }), "{e:?}");
    }
    let names = |listed: Vec<backup::Listed>| -> Vec<(String, bool)> {
        listed
            .into_iter()
            .map(|l| (l.name, l.manifest.is_some()))
            .collect()
    };
    let left = names(list_artifacts(root).await.expect("listing"));
    let expected = [
        ("3-other", true),
        ("4-shop", true),
        ("5-other", true),
        ("6-shop", true),
        ("0-interrupted", false),
    ]
    .map(|(n, c)| (n.to_string(), c));
    assert_eq!(left, expected);

    assert_eq!(
        prune(root, "shop", 2).await.expect("pruning again"),
        Vec::<String>::new()
    );
    assert_eq!(
        prune(root, "other", 0).await.expect("pruning other").len(),
        2
    );
    let left = names(list_artifacts(root).await.expect("listing"));
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(
        left.contains(&("0-interrupted".to_string(), false)),
        "{left:?}"
    );
}

#[tokio::test]
async fn an_unreachable_destination_fails_fast_and_says_so() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ];
    let root = Destination::parse_with("s3://bucket/backups", options).unwrap();
    let dest = root.join("a");
    let started = Instant::now();
    let e = write_artifact(&dest, "shop", state(100, 1), summary(1))
        .await
        .expect_err("nothing answers");
    assert!(matches!(e, BackupError::Unreachable { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with("the backup destination is unreachable:"),
        "{message}"
    );
    assert!(
        message.contains("s3://bucket/backups/a/manifest.json"),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    // Retries are few and short (Destination::retry_config), not object_store's minutes.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_full_destination_fails_naming_the_object_and_leaves_no_artifact() {
    let Some(disk) = testkit::Tmpfs::mount("1m") else {
        return;
    };
    let url = format!("file://{}", disk.path().join("backups").display());
    let root = Destination::parse(&url).unwrap();
    // One request (2 MiB) and a multipart upload (17 MiB), both larger than the disk.
    for (name, len) in [("small", 2 * 1024 * 1024), ("large", 17 * 1024 * 1024)] {
        let dest = root.join(name);
        let e = write_artifact(&dest, "shop", state(len, 1), summary(1))
            .await
            .expect_err("the disk is too small");
        assert!(matches!(e, BackupError::Full { .. }), "{e:?}");
        let message = e.to_string();
        assert!(
            message.starts_with("the backup destination is full:"),
            "{message}"
        );
        assert!(
            message.contains(&format!("{}/{}", dest.url(), state_name(&state(len, 1)))),
            "{message}"
        );
        let e = read_artifact(&dest).await.expect_err("no artifact");
        assert!(
            matches!(
                e,
                BackupError::Incomplete { .. } | BackupError::NotFound { .. }
            ),
            "{e:?}"
        );
    }
    // Failed uploads leave nothing behind to fill the disk (object_store's staging files).
    let mut files = Vec::new();
    let mut dirs = vec![disk.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.is_empty(), "{files:?}");
    let listed = list_artifacts(&root).await.expect("listing");
    assert!(listed.iter().all(|l| l.manifest.is_none()), "{listed:?}");
}

#[tokio::test]
async fn reading_a_missing_local_directory_creates_nothing_and_says_it_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("bakcups");
    let url = format!("file://{}/nightly", typo.display());
    let dest = Destination::parse(&url).expect("a file:// destination");
    for e in [
        read_artifact(&dest).await.expect_err("nothing to read"),
        fetch_verified(&dest).await.expect_err("nothing to verify"),
    ] {
        assert!(matches!(e, BackupError::NotFound { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("there is no backup at {url}: the directory does not exist")
        );
    }
    let root = Destination::parse(&format!("file://{}", typo.display())).unwrap();
    assert!(list_artifacts(&root).await.expect("listing").is_empty());
    assert!(!typo.exists(), "reading created {}", typo.display());

    // Writing creates it.
    let (bytes, summary) = real_state(1);
    write_artifact(&dest, "shop", bytes, summary)
        .await
        .expect("writing creates the directory");
    fetch_verified(&dest).await.expect("it verifies");
    assert!(typo.join("nightly").join(MANIFEST_OBJECT).is_file());
}

/// S3 options for an endpoint at `port` on loopback.
fn loopback_s3(port: u16, allow_http: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", allow_http.into()),
    ]
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let root = Destination::parse_with("s3://bucket/backups", loopback_s3(port, "false")).unwrap();
    let dest = root.join("a");
    let started = Instant::now();
    let e = write_artifact(&dest, "shop", state(100, 1), summary(1))
        .await
        .expect_err("plain http is not allowed");
    let message = e.to_string();
    assert!(
        message.contains("over plain http") && message.contains("AWS_ALLOW_HTTP=true"),
        "{message}"
    );
    assert!(!matches!(e, BackupError::Unreachable { .. }), "{e:?}");
    let e = read_artifact(&dest).await.expect_err("nor for reading");
    assert!(format!("{e:?}").contains("over plain http"), "{e:?}");
    // Not retried, and nothing reached the server.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection reached the server: {accepted:?}"
    );

    // Allowed, the request is sent (the server hangs up on it: the write fails, after it).
    listener.set_nonblocking(false).unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("a connection");
        drop(conn);
    });
    let root = Destination::parse_with("s3://bucket/backups", loopback_s3(port, "true")).unwrap();
    write_artifact(&root.join("a"), "shop", state(100, 1), summary(1))
        .await
        .expect_err("the server hangs up");
    server.join().expect("the server saw the request");
}

#[test]
fn proxies_are_refused_rather_than_bypassed() {
    let mut options = loopback_s3(1, "true");
    options.push(("AWS_PROXY_URL", "http://user:secret@proxy:3128".into()));
    let e = Destination::parse_with("s3://bucket/backups", options)
        .expect_err("a proxy this transport cannot use")
        .to_string();
    assert!(e.contains("does not support proxies"), "{e}");
    assert!(!e.contains("secret"), "{e}");
}
