//! Validation of a ToyStore, the first step of the reconcile pipeline.
//!
//! The CRD schema already refuses most bad specs at the API server. This step repeats the rules
//! the operator relies on, so a resource that slipped past the schema (an older CRD, a disabled
//! validation) gets a clear `InvalidSpec` condition and event instead of broken objects. What
//! passes comes out as a [`ValidStore`]: the build step ([`crate::build`]) reads nothing else,
//! so it cannot read a field that was not checked.

use std::ops::RangeInclusive;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::ResourceExt;

use crate::crd::{BACKUP_MOUNT, BackupSpec, MAX_NAME_LENGTH, RestoreSpec, StorageSpec, ToyStore};
use crate::cron::Schedule;

/// A ToyStore that passed validation: everything the build step reads about the store.
///
/// Only [`validate`] makes one (the type is `#[non_exhaustive]`), so holding one means every
/// field passed its rule. Numbers carry the type the binary that reads them parses them as
/// (milliseconds as `u64`, the restock quantity as `u32`), so a value the binary would refuse
/// cannot reach a pod's environment.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ValidStore {
    /// The store's name: a DNS-1035 label of at most [`MAX_NAME_LENGTH`] characters.
    pub name: String,
    /// The store's namespace (`default` for a hand-built store without one).
    pub namespace: String,
    /// The store's uid, for the owner reference every object carries (absent only on a
    /// hand-built store; the API always sets it).
    pub uid: Option<String>,
    /// Container image of every component, not blank.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`; `None`: the cluster's default.
    pub image_pull_policy: Option<String>,
    /// Secrets for pulling the image.
    pub image_pull_secrets: Vec<String>,
    /// Replicas, volume, resources and Raft timing of the order group.
    pub orders: OrderSettings,
    /// Replicas, restocking and resources of the catalog.
    pub catalog: CatalogSettings,
    /// Replicas, product cache, Service type and resources of the frontend.
    pub frontend: FrontendSettings,
    /// Where backups go, their schedule and retention (`None`: backups of the store fail).
    pub backup: Option<BackupSettings>,
    /// The artifact the store is created from, if any.
    pub restore: Option<RestoreSettings>,
}

/// Where an object-store URL is and how a Job reaches it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Location {
    /// An `s3://`, `gs://`, `az://` or `file:///backups/...` URL, without a trailing `/`.
    pub url: String,
    /// Secret whose keys are the Job's environment (object-store credentials).
    pub credentials_secret: Option<String>,
    /// Claim mounted at `/backups` (for `file://` URLs).
    pub persistent_volume_claim: Option<String>,
}

/// The validated backup settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackupSettings {
    /// The base URL of the artifacts and how to reach it.
    pub destination: Location,
    /// When scheduled backups are due.
    pub schedule: Option<Schedule>,
    /// How many completed scheduled backups to keep, 1 to 1000.
    pub keep: Option<u32>,
}

/// The validated restore source.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RestoreSettings {
    /// The artifact's URL and how to reach it.
    pub from: Location,
}

/// The order group's validated settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OrderSettings {
    /// Declared number of replicas: odd, 1 to 9.
    pub replicas: i32,
    /// Each replica's volume.
    pub storage: Storage,
    /// CPU and memory of each replica.
    pub resources: Option<ResourceRequirements>,
    /// Leader heartbeat, milliseconds: positive, at most a third of the minimum election timeout.
    pub heartbeat_ms: u64,
    /// Minimum election timeout, milliseconds, below the maximum.
    pub election_timeout_min_ms: u64,
    /// Maximum election timeout, milliseconds.
    pub election_timeout_max_ms: u64,
    /// Entries between snapshots.
    pub snapshot_threshold: u64,
}

/// The catalog's validated settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CatalogSettings {
    /// Number of catalog pods, 1 to 9.
    pub replicas: i32,
    /// Seconds between restocks, 1 to 86400.
    pub restock_interval_seconds: u32,
    /// Units a sold-out toy is restocked to, 1 to 1,000,000.
    pub restock_quantity: u32,
    /// CPU and memory of each catalog pod.
    pub resources: Option<ResourceRequirements>,
}

/// The frontend's validated settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FrontendSettings {
    /// Number of frontend pods, 1 to 50.
    pub replicas: i32,
    /// Product cache entries, 0 (off) to 1,000,000.
    pub cache_capacity: u64,
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    pub service_type: String,
    /// CPU and memory of each frontend pod.
    pub resources: Option<ResourceRequirements>,
}

/// A validated volume request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Storage {
    /// A size such as `1Gi`, `500Mi` or `2Ti`.
    pub size: String,
    /// The class the spec names; `None`: the operator's fallback decides.
    pub storage_class_name: Option<String>,
}

/// Checks the store's name and spec; returns the validated store, or every problem found,
/// each a sentence for a person.
pub fn validate(store: &ToyStore) -> Result<ValidStore, Vec<String>> {
    let spec = &store.spec;
    let mut problems = Problems::default();
    let name = store.name_any();
    problems.check(is_dns1035_label(&name), || format!(
        "the name {name:?} is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending with a letter or digit): it names the store's Services"
    ));
    problems.check(name.len() <= MAX_NAME_LENGTH, || {
        format!("the name {name:?} is longer than {MAX_NAME_LENGTH} characters")
    });
    problems.check(!spec.image.trim().is_empty(), || {
        "image must name a container image".to_string()
    });
    if let Some(policy) = &spec.image_pull_policy {
        problems.check(
            ["Always", "IfNotPresent", "Never"].contains(&policy.as_str()),
            || format!("imagePullPolicy must be Always, IfNotPresent or Never, got {policy:?}"),
        );
    }
    let r = spec.orders.replicas;
    problems.check((1..=9).contains(&r) && r % 2 == 1, || {
        format!("orders.replicas must be odd and between 1 and 9, got {r}")
    });
    let orders_storage = problems.storage("orders.storage.size", &spec.orders.storage);
    let raft = &spec.orders.raft;
    problems.check(
        raft.election_timeout_min_ms < raft.election_timeout_max_ms,
        || "raft.electionTimeoutMinMs must be below raft.electionTimeoutMaxMs".into(),
    );
    problems.check(
        raft.heartbeat_ms > 0
            && raft.heartbeat_ms.saturating_mul(3) <= raft.election_timeout_min_ms,
        || {
            "raft.heartbeatMs must be positive and at most a third of raft.electionTimeoutMinMs"
                .into()
        },
    );
    // Positive once the two checks above pass; a store that fails them is not returned.
    let millis = |ms: i64| u64::try_from(ms).unwrap_or_default();
    let service_type = &spec.frontend.service_type;
    problems.check(
        ["ClusterIP", "NodePort", "LoadBalancer"].contains(&service_type.as_str()),
        || {
            format!(
                "frontend.serviceType must be ClusterIP, NodePort or LoadBalancer, got {service_type:?}"
            )
        },
    );
    let backup = spec.backup.as_ref().map(|b| problems.backup(b));
    let restore = spec.restore.as_ref().map(|r| problems.restore(r));
    let valid = ValidStore {
        backup,
        restore,
        namespace: store.namespace().unwrap_or_else(|| "default".into()),
        uid: store.uid(),
        image: spec.image.clone(),
        image_pull_policy: spec.image_pull_policy.clone(),
        image_pull_secrets: spec.image_pull_secrets.clone(),
        orders: OrderSettings {
            replicas: r,
            storage: orders_storage,
            resources: spec.orders.resources.clone(),
            heartbeat_ms: millis(raft.heartbeat_ms),
            election_timeout_min_ms: millis(raft.election_timeout_min_ms),
            election_timeout_max_ms: millis(raft.election_timeout_max_ms),
            snapshot_threshold: problems.within(
                "raft.snapshotThreshold",
                raft.snapshot_threshold,
                100..=10_000_000,
            ),
        },
        catalog: CatalogSettings {
            replicas: problems.within("catalog.replicas", spec.catalog.replicas.into(), 1..=9),
            restock_interval_seconds: problems.within(
                "catalog.restockIntervalSeconds",
                spec.catalog.restock_interval_seconds,
                1..=86_400,
            ),
            restock_quantity: problems.within(
                "catalog.restockQuantity",
                spec.catalog.restock_quantity,
                1..=1_000_000,
            ),
            resources: spec.catalog.resources.clone(),
        },
        frontend: FrontendSettings {
            replicas: problems.within("frontend.replicas", spec.frontend.replicas.into(), 1..=50),
            cache_capacity: problems.within(
                "frontend.cacheCapacity",
                spec.frontend.cache_capacity,
                0..=1_000_000,
            ),
            service_type: service_type.clone(),
            resources: spec.frontend.resources.clone(),
        },
        name,
    };
    problems.into_result(valid)
}

/// The problems found so far, each a sentence for a person. Every check runs, so one answer
/// names them all.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Records `problem` unless `ok`.
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    /// `value` as a `T` when it lies in `range`. Otherwise records a problem and returns a
    /// stand-in, never seen: a store with a problem is not returned.
    fn within<T: TryFrom<i64> + Default>(
        &mut self,
        field: &str,
        value: i64,
        range: RangeInclusive<i64>,
    ) -> T {
        match T::try_from(value) {
            Ok(v) if range.contains(&value) => v,
            _ => {
                let (lo, hi) = (range.start(), range.end());
                self.0.push(format!(
                    "{field} must be between {lo} and {hi}, got {value}"
                ));
                T::default()
            }
        }
    }

    /// The volume request, its size checked.
    fn storage(&mut self, field: &str, storage: &StorageSpec) -> Storage {
        let size = &storage.size;
        self.check(is_size(size), || {
            format!("{field} must look like 1Gi, 500Mi or 2Ti, got {size:?}")
        });
        Storage {
            size: size.clone(),
            storage_class_name: storage.storage_class_name.clone(),
        }
    }

    /// The backup settings, each checked.
    fn backup(&mut self, backup: &BackupSpec) -> BackupSettings {
        let d = &backup.destination;
        let destination = self.location(
            "backup.destination.url",
            &d.url,
            &d.credentials_secret,
            &d.persistent_volume_claim,
        );
        let schedule = backup.schedule.as_ref().and_then(|text| {
            Schedule::parse(text)
                .map_err(|e| self.0.push(format!("backup.schedule: {e}")))
                .ok()
        });
        let keep = backup
            .retention
            .as_ref()
            .map(|r| self.within("backup.retention.keep", r.keep.into(), 1..=1000));
        BackupSettings {
            destination,
            schedule,
            keep,
        }
    }

    /// The restore source, checked.
    fn restore(&mut self, restore: &RestoreSpec) -> RestoreSettings {
        RestoreSettings {
            from: self.location(
                "restore.from",
                &restore.from,
                &restore.credentials_secret,
                &restore.persistent_volume_claim,
            ),
        }
    }

    /// An object-store URL with its Secret and claim: a scheme the Jobs can write, and a
    /// `file://` path on the claim mounted at `/backups`, never outside it.
    fn location(
        &mut self,
        field: &str,
        url: &str,
        credentials_secret: &Option<String>,
        persistent_volume_claim: &Option<String>,
    ) -> Location {
        let url = url.trim().trim_end_matches('/').to_string();
        let remote = ["s3://", "gs://", "az://"].iter().any(|scheme| {
            url.strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        });
        let file = url
            .strip_prefix("file://")
            .filter(|path| *path == BACKUP_MOUNT || path.starts_with(&format!("{BACKUP_MOUNT}/")));
        self.check(remote || file.is_some(), || {
            format!("{field} must be s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] or file://{BACKUP_MOUNT}[/PATH], got {url:?}")
        });
        if let Some(path) = file {
            self.check(!path.split('/').any(|part| part == ".." || part == "."), || {
                format!("{field} must not leave {BACKUP_MOUNT} (no '.' or '..' in the path), got {url:?}")
            });
            self.check(persistent_volume_claim.is_some(), || {
                format!("{field} is a file:// URL, which needs persistentVolumeClaim (mounted at {BACKUP_MOUNT})")
            });
        }
        for (what, name) in [
            ("credentialsSecret", credentials_secret),
            ("persistentVolumeClaim", persistent_volume_claim),
        ] {
            if let Some(name) = name {
                self.check(is_dns1123_subdomain(name), || {
                    format!("{what} {name:?} is not a valid object name (a DNS-1123 subdomain)")
                });
            }
        }
        Location {
            url,
            credentials_secret: credentials_secret.clone(),
            persistent_volume_claim: persistent_volume_claim.clone(),
        }
    }

    fn into_result(self, valid: ValidStore) -> Result<ValidStore, Vec<String>> {
        if self.0.is_empty() {
            Ok(valid)
        } else {
            Err(self.0)
        }
    }
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`, the same as the CRD's `NAME_RULE`.
fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A name most objects may have: at most 253 lowercase letters, digits, '-' and '.', each
/// dot-separated part starting and ending with a letter or digit.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            b.first()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.last()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['M', 'G', 'T', 'i']);
    let unit = &s[digits.len()..];
    ["Mi", "Gi", "Ti"].contains(&unit)
        && !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ToyStoreSpec;

    fn spec() -> ToyStoreSpec {
        serde_json::from_value(serde_json::json!({"image": "toystore:1"})).unwrap()
    }

    fn check(s: &ToyStoreSpec) -> Result<ValidStore, Vec<String>> {
        validate(&ToyStore::new("shop", s.clone()))
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check(&spec()).is_ok());
    }

    #[test]
    fn even_or_out_of_range_replica_counts_are_refused() {
        for r in [0, 2, 4, 10, 11, -1] {
            let mut s = spec();
            s.orders.replicas = r;
            let err = check(&s).unwrap_err();
            assert!(err[0].contains("orders.replicas"), "{r}: {err:?}");
        }
        for r in [1, 3, 5, 7, 9] {
            let mut s = spec();
            s.orders.replicas = r;
            assert!(check(&s).is_ok(), "{r}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let mut s = spec();
        s.image = " ".into();
        s.orders.storage.size = "1GB".into();
        s.orders.raft.heartbeat_ms = 400;
        s.frontend.service_type = "Ingress".into();
        assert_eq!(check(&s).unwrap_err().len(), 4);
    }

    #[test]
    fn names_must_be_dns_1035_labels_of_at_most_40_characters() {
        let long = "a".repeat(41);
        for bad in [
            "my.shop",
            "1shop",
            "Shop",
            "shop-",
            "-shop",
            "",
            long.as_str(),
        ] {
            let err = validate(&ToyStore::new(bad, spec())).unwrap_err();
            assert!(err.iter().all(|e| e.contains("name")), "{bad}: {err:?}");
        }
        for good in ["shop", "a-1", "a", "a".repeat(40).as_str()] {
            assert!(validate(&ToyStore::new(good, spec())).is_ok(), "{good}");
        }
    }

    #[test]
    fn numbers_out_of_the_binaries_ranges_are_refused() {
        type Change = fn(&mut ToyStoreSpec);
        let cases: [(&str, Change); 9] = [
            ("catalog.replicas", |s| s.catalog.replicas = 0),
            ("catalog.replicas", |s| s.catalog.replicas = 10),
            ("catalog.restockQuantity", |s| {
                s.catalog.restock_quantity = 0
            }),
            ("catalog.restockIntervalSeconds", |s| {
                s.catalog.restock_interval_seconds = 86_401
            }),
            ("frontend.cacheCapacity", |s| s.frontend.cache_capacity = -1),
            ("frontend.replicas", |s| s.frontend.replicas = 0),
            ("frontend.replicas", |s| s.frontend.replicas = 51),
            ("raft.snapshotThreshold", |s| {
                s.orders.raft.snapshot_threshold = 0
            }),
            ("imagePullPolicy", |s| {
                s.image_pull_policy = Some("Sometimes".into())
            }),
        ];
        for (field, change) in cases {
            let mut s = spec();
            change(&mut s);
            let err = check(&s).unwrap_err();
            assert_eq!(err.len(), 1, "{field}: {err:?}");
            assert!(err[0].starts_with(field), "{field}: {err:?}");
        }
    }

    #[test]
    fn the_valid_store_carries_the_identity_and_the_settings() {
        let mut store = ToyStore::new("shop", spec());
        store.metadata.namespace = Some("toys".into());
        store.metadata.uid = Some("u-1".into());
        let valid = validate(&store).unwrap();
        assert_eq!(
            (valid.name.as_str(), valid.namespace.as_str()),
            ("shop", "toys")
        );
        assert_eq!(valid.uid.as_deref(), Some("u-1"));
        assert_eq!(valid.orders.replicas, 3);
        assert_eq!(valid.orders.heartbeat_ms, 100);
        assert_eq!(valid.catalog.replicas, 2);
        assert_eq!(valid.catalog.restock_quantity, 100);
        assert_eq!(valid.frontend.service_type, "ClusterIP");
        // A hand-built store without a namespace lands in `default`.
        let bare = validate(&ToyStore::new("shop", spec())).unwrap();
        assert_eq!(bare.namespace, "default");
    }

    #[test]
    fn backup_and_restore_locations_are_checked() {
        let with = |backup: serde_json::Value| {
            let mut s = spec();
            s.backup = Some(serde_json::from_value(backup).unwrap());
            check(&s)
        };
        let ok = with(serde_json::json!({
            "destination": {"url": "s3://bucket/prefix/", "credentialsSecret": "s3-creds"},
            "schedule": "0 3 * * *",
            "retention": {"keep": 7}
        }))
        .unwrap();
        let backup = ok.backup.unwrap();
        assert_eq!(
            backup.destination.url, "s3://bucket/prefix",
            "no trailing slash"
        );
        assert_eq!(backup.keep, Some(7));
        assert!(backup.schedule.is_some());
        for (destination, complaint) in [
            (serde_json::json!({"url": "http://bucket"}), "must be s3://"),
            (serde_json::json!({"url": "s3://"}), "must be s3://"),
            (
                serde_json::json!({"url": "file:///tmp/x", "persistentVolumeClaim": "b"}),
                "must be s3://",
            ),
            (
                serde_json::json!({"url": "file:///backups"}),
                "needs persistentVolumeClaim",
            ),
            (
                serde_json::json!({"url": "file:///backups/../etc", "persistentVolumeClaim": "b"}),
                "must not leave",
            ),
            (
                serde_json::json!({"url": "gs://b", "credentialsSecret": "Not_A_Name"}),
                "credentialsSecret",
            ),
        ] {
            let err = with(serde_json::json!({"destination": destination})).unwrap_err();
            assert!(
                err.iter().any(|e| e.contains(complaint)),
                "{destination}: {err:?}"
            );
        }
        let err =
            with(serde_json::json!({"destination": {"url": "gs://b"}, "schedule": "61 * * * *"}))
                .unwrap_err();
        assert!(
            err[0].starts_with("backup.schedule: minute field"),
            "{err:?}"
        );
        let err =
            with(serde_json::json!({"destination": {"url": "gs://b"}, "retention": {"keep": 0}}))
                .unwrap_err();
        assert!(err[0].starts_with("backup.retention.keep"), "{err:?}");

        let mut s = spec();
        s.restore = Some(
            serde_json::from_value(serde_json::json!({
                "from": "file:///backups/shop/shop-1", "persistentVolumeClaim": "backups"
            }))
            .unwrap(),
        );
        let restore = check(&s).unwrap().restore.unwrap();
        assert_eq!(restore.from.url, "file:///backups/shop/shop-1");
        assert_eq!(
            restore.from.persistent_volume_claim.as_deref(),
            Some("backups")
        );
    }

    #[test]
    fn sizes() {
        for ok in ["1Gi", "500Mi", "2Ti", "10Gi"] {
            assert!(is_size(ok), "{ok}");
        }
        for bad in ["", "Gi", "0Gi", "1G", "1GB", "1.5Gi", "01Gi", "1gi"] {
            assert!(!is_size(bad), "{bad}");
        }
    }
}
