//! The Jobs that back up and restore a store, and the volume claim a restore seeds.
//!
//! Both run the `toystore` CLI from the store's own image, once (`backoffLimit: 0`: a retry
//! would hide a failure, and a restore must never run twice on one volume), as the order pods
//! run: the same user, security context and resources. The operator never talks to an object
//! store itself: the CLI does the work and writes its JSON result to `/dev/termination-log`,
//! which the operator reads back from the pod's `state.terminated.message`
//! (`FallbackToLogsOnError`: a crash before the result is written still leaves the log's tail).
//! Object-store credentials reach the CLI as environment variables from the named Secret
//! (`envFrom`); a `file://` location is a claim mounted at `/backups`.
//!
//! - [`backup_job`]: `toystore backup` of a ToyStoreBackup, owned by it, reaching the order
//!   replicas with the store's cluster token (mounted as the catalog pods mount it);
//! - [`restore_claim`] and [`restore_job`]: the volume claim the StatefulSet would create for
//!   order replica 0 (same name, spec and labels, so the StatefulSet adopts it), and
//!   `toystore restore` seeding it as a one-voter group holding the artifact's state, with
//!   the Raft id and URLs pod 0 will have.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvFromSource, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecretEnvSource, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use super::BuildInputs;
use super::metadata::{
    APP_NAME, BACKUP_LABEL, COMPONENT_LABEL, FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY_LABEL,
    NAME_LABEL, RESTORE_COMPONENT, SCHEDULED_LABEL, backup_labels, owner_reference,
};
use super::names::{self, Component, DATA_VOLUME};
use super::pod_template::{
    container_security_context, image_pull_secrets, mount, pod_security_context, token_file,
    token_mount, token_volume,
};
use super::storage::{DATA_DIR, data_claim, data_mount};
use crate::crd::{BACKUP_MOUNT, ToyStoreBackup};
use crate::validate::{Location, ValidStore};

/// The binary both Jobs run.
pub const CLI: &str = "toystore";
/// Where the CLI writes its JSON result: the container's termination message.
pub const RESULT_FILE: &str = "/dev/termination-log";
/// How long a backup or restore Job may take, pulling its image and waiting for a node
/// included, before Kubernetes stops it and it counts as failed.
pub const JOB_DEADLINE_SECONDS: i64 = 600;
/// The Raft node id (and ordinal) of the replica a restore seeds.
pub const RESTORED_ORDINAL: i32 = 0;

const BACKUPS_VOLUME: &str = "backups";
const TMP_VOLUME: &str = "tmp";

/// The folder, under `<destination>/<store>`, that holds the scheduled backups' artifacts.
pub const SCHEDULED_FOLDER: &str = "scheduled";

/// The Job `{backup}-backup` running `toystore backup` of `backup`'s store, owned by the
/// ToyStoreBackup. A backup made by hand writes to `<destination>/<store>/<backup>`; a scheduled
/// one to `<destination>/<store>/scheduled/<backup>` and, for a store with a retention, passes
/// `--keep N`, so the CLI deletes the artifacts beyond the newest N in that folder: the
/// scheduled ones only, never one made by hand (the CLI lists one folder level, so the
/// `scheduled` folder never sees the artifacts beside it, nor they it).
pub fn backup_job(store: &ValidStore, backup: &ToyStoreBackup) -> Option<Job> {
    let settings = store.backup.as_ref()?;
    let name = backup.name_any();
    let scheduled = backup.labels().get(SCHEDULED_LABEL).map(String::as_str) == Some("true");
    let to = format!("{}/{}", settings.destination.url, store.name);
    let to = if scheduled {
        format!("{to}/{SCHEDULED_FOLDER}")
    } else {
        to
    };
    let replicas: Vec<String> = (0..store.orders.replicas)
        .map(|i| names::order_replica_url(&store.name, &store.namespace, i))
        .collect();
    let mut args = vec![
        "backup".to_string(),
        "--replicas".into(),
        replicas.join(","),
        "--token-file".into(),
        token_file().display().to_string(),
        "--to".into(),
        to,
        "--store".into(),
        store.name.clone(),
        "--name".into(),
        name.clone(),
    ];
    if let (true, Some(keep)) = (scheduled, settings.keep) {
        args.extend(["--keep".into(), keep.to_string()]);
    }
    args.extend(["--result-file".into(), RESULT_FILE.into()]);
    let mut pod_labels = backup_labels(&store.name);
    pod_labels.insert(BACKUP_LABEL.into(), name.clone());
    let mut volumes = vec![token_volume(store)];
    let mut mounts = vec![token_mount()];
    add_location(&settings.destination, false, &mut volumes, &mut mounts);
    let owner = backup.uid().map(|uid| OwnerReference {
        api_version: ToyStoreBackup::api_version(&()).into_owned(),
        kind: ToyStoreBackup::kind(&()).into_owned(),
        name: name.clone(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    let metadata = ObjectMeta {
        name: Some(names::backup_job_name(&name)),
        namespace: Some(store.namespace.clone()),
        labels: Some(pod_labels.clone()),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    let container = cli_container(store, "backup", args, &settings.destination, mounts);
    Some(job(store, metadata, pod_labels, container, volumes))
}

/// The claim `data-{store}-orders-0`, exactly as the order StatefulSet's claim template would
/// create it for pod 0 (name, labels, spec), so the StatefulSet adopts the restored volume.
pub fn restore_claim(store: &ValidStore, inputs: &BuildInputs) -> PersistentVolumeClaim {
    let mut claim = data_claim(store, Component::Orders, &store.orders.storage, inputs);
    claim.metadata.name = Some(names::order_pvc_name(&store.name, RESTORED_ORDINAL));
    claim.metadata.namespace = Some(store.namespace.clone());
    claim
}

/// The Job `{store}-restore` running `toystore restore` from `spec.restore.from` into the
/// volume of [`restore_claim`], as order replica 0 will use it: its data directory, its Raft
/// node id and the URLs the membership driver reaches it at. Owned by the store. `None` for a
/// store without `spec.restore`.
pub fn restore_job(store: &ValidStore) -> Option<Job> {
    let restore = store.restore.as_ref()?;
    let args = vec![
        "restore".to_string(),
        "--from".into(),
        restore.from.url.clone(),
        "--data-dir".into(),
        DATA_DIR.into(),
        "--node-id".into(),
        RESTORED_ORDINAL.to_string(),
        "--url".into(),
        names::order_replica_url(&store.name, &store.namespace, RESTORED_ORDINAL),
        "--raft-url".into(),
        names::order_replica_raft_url(&store.name, &store.namespace, RESTORED_ORDINAL),
        "--result-file".into(),
        RESULT_FILE.into(),
    ];
    let pod_labels = restore_labels(&store.name);
    let mut volumes = vec![Volume {
        name: DATA_VOLUME.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: names::order_pvc_name(&store.name, RESTORED_ORDINAL),
            ..PersistentVolumeClaimVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![data_mount()];
    add_location(&restore.from, true, &mut volumes, &mut mounts);
    let metadata = ObjectMeta {
        name: Some(names::restore_job_name(&store.name)),
        namespace: Some(store.namespace.clone()),
        labels: Some(pod_labels.clone()),
        owner_references: owner_reference(store).map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    let container = cli_container(store, "restore", args, &restore.from, mounts);
    Some(job(store, metadata, pod_labels, container, volumes))
}

/// The labels of a store's restore Job and its pod: the store's, component `restore`.
pub fn restore_labels(store: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP_NAME.to_string()),
        (INSTANCE_LABEL.to_string(), store.to_string()),
        (COMPONENT_LABEL.to_string(), RESTORE_COMPONENT.to_string()),
        (MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string()),
    ])
}

/// The claim of `location` mounted at `/backups` (read-only for a restore), if it names one.
fn add_location(
    location: &Location,
    read_only: bool,
    volumes: &mut Vec<Volume>,
    mounts: &mut Vec<VolumeMount>,
) {
    if let Some(claim) = &location.persistent_volume_claim {
        volumes.push(Volume {
            name: BACKUPS_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: read_only.then_some(true),
            }),
            ..Volume::default()
        });
        mounts.push(mount(BACKUPS_VOLUME, BACKUP_MOUNT, read_only));
    }
}

/// The CLI's container: `toystore ARGS` with the credentials of `location` as environment,
/// `mounts` plus a scratch `/tmp`, the order replicas' resources, locked down.
fn cli_container(
    store: &ValidStore,
    name: &str,
    args: Vec<String>,
    location: &Location,
    mut mounts: Vec<VolumeMount>,
) -> Container {
    mounts.push(mount(TMP_VOLUME, "/tmp", false));
    Container {
        name: name.into(),
        image: Some(store.image.clone()),
        image_pull_policy: store.image_pull_policy.clone(),
        command: Some(vec![CLI.into()]),
        args: Some(args),
        env_from: location.credentials_secret.as_ref().map(|secret| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: secret.clone(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        }),
        volume_mounts: Some(mounts),
        resources: store.orders.resources.clone(),
        security_context: Some(container_security_context()),
        termination_message_path: Some(RESULT_FILE.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

/// A run-once Job of `container` with `volumes` (and a scratch `/tmp`), its pod labelled
/// `pod_labels`, running as the order pods run and with no API token.
fn job(
    store: &ValidStore,
    metadata: ObjectMeta,
    pod_labels: BTreeMap<String, String>,
    container: Container,
    mut volumes: Vec<Volume>,
) -> Job {
    volumes.push(Volume {
        name: TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(JOB_DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    image_pull_secrets: image_pull_secrets(store),
                    security_context: Some(pod_security_context()),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::build;
    use crate::build::metadata::{STORE_LABEL, labels};
    use crate::build::tests::{default_spec, inputs, store};
    use crate::crd::ToyStoreBackupSpec;

    fn with_backup(keep: Option<i32>) -> ValidStore {
        let mut spec = default_spec();
        spec.backup = Some(
            serde_json::from_value(serde_json::json!({
                "destination": {"url": "s3://bucket/stores/", "credentialsSecret": "s3"},
                "schedule": "0 3 * * *",
                "retention": keep.map(|keep| serde_json::json!({"keep": keep})),
            }))
            .unwrap(),
        );
        store(spec)
    }

    fn backup(name: &str, scheduled: bool) -> ToyStoreBackup {
        let mut b = ToyStoreBackup::new(
            name,
            ToyStoreBackupSpec {
                store: "shop".into(),
            },
        );
        b.metadata.namespace = Some("toys".into());
        b.metadata.uid = Some("b-1".into());
        if scheduled {
            b.metadata.labels = Some([(SCHEDULED_LABEL.to_string(), "true".to_string())].into());
        }
        b
    }

    fn args(job: &Job) -> Vec<String> {
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        pod.containers[0].args.clone().unwrap()
    }

    #[test]
    fn a_backup_job_runs_the_cli_once_against_every_replica_with_the_token() {
        let store = with_backup(Some(7));
        let job = backup_job(&store, &backup("nightly", false)).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("nightly-backup"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("ToyStoreBackup", "nightly", "b-1")
        );
        assert_eq!(
            args(&job),
            [
                "backup",
                "--replicas",
                "http://shop-orders-0.shop-orders.toys.svc:7000,http://shop-orders-1.shop-orders.toys.svc:7000,http://shop-orders-2.shop-orders.toys.svc:7000",
                "--token-file",
                "/var/run/toystore/token",
                "--to",
                "s3://bucket/stores/shop",
                "--store",
                "shop",
                "--name",
                "nightly",
                "--result-file",
                "/dev/termination-log",
            ],
            "a backup made by hand never deletes artifacts"
        );
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(JOB_DEADLINE_SECONDS));
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.security_context, Some(pod_security_context()));
        let c = &pod.containers[0];
        assert_eq!(c.command, Some(vec!["toystore".to_string()]));
        assert_eq!(c.image.as_deref(), Some("toystore:test"));
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(
            c.env_from.as_ref().unwrap()[0]
                .secret_ref
                .as_ref()
                .unwrap()
                .name,
            "s3"
        );
        // The same token volume the store's own pods mount.
        let built = build(&store, &inputs(3));
        let catalog = built.deployments[0]
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap();
        assert!(
            pod.volumes
                .as_ref()
                .unwrap()
                .contains(&catalog.volumes.unwrap()[0])
        );
        assert_eq!(
            c.volume_mounts.as_ref().unwrap()[0],
            catalog.containers[0].volume_mounts.as_ref().unwrap()[0]
        );
        // Pod labels: the store by its own label (not the instance label: a backup outlives
        // its store), the backup's name.
        let pod_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        assert_eq!(pod_labels[STORE_LABEL], "shop");
        assert_eq!(pod_labels[BACKUP_LABEL], "nightly");
        assert!(!pod_labels.contains_key(INSTANCE_LABEL));
        assert_ne!(pod_labels, labels("shop", Component::Orders));
    }

    #[test]
    fn only_scheduled_backups_of_a_store_with_retention_keep_n() {
        let keep = |store: &ValidStore, scheduled| {
            let a = args(&backup_job(store, &backup("b", scheduled)).unwrap());
            a.iter()
                .position(|a| a == "--keep")
                .map(|i| a[i + 1].clone())
        };
        assert_eq!(keep(&with_backup(Some(7)), true), Some("7".into()));
        assert_eq!(keep(&with_backup(Some(7)), false), None);
        assert_eq!(keep(&with_backup(None), true), None);
        assert!(backup_job(&store(default_spec()), &backup("b", false)).is_none());
    }

    #[test]
    fn scheduled_backups_write_to_a_folder_of_their_own_that_keep_prunes() {
        let store = with_backup(Some(7));
        let to_and_keep = |scheduled| {
            let a = args(&backup_job(&store, &backup("b", scheduled)).unwrap());
            let flag = |name: &str| a.iter().position(|a| a == name).map(|i| a[i + 1].clone());
            (flag("--to"), flag("--keep"))
        };
        assert_eq!(
            to_and_keep(true),
            (
                Some("s3://bucket/stores/shop/scheduled".into()),
                Some("7".into())
            ),
            "--keep prunes the scheduled folder, which holds scheduled artifacts only"
        );
        assert_eq!(
            to_and_keep(false),
            (Some("s3://bucket/stores/shop".into()), None),
            "a backup made by hand: the store's folder, and no --keep"
        );
    }

    #[test]
    fn a_file_destination_mounts_its_claim_at_backups() {
        let mut spec = default_spec();
        spec.backup = Some(
            serde_json::from_value(serde_json::json!({
                "destination": {"url": "file:///backups", "persistentVolumeClaim": "nfs"}
            }))
            .unwrap(),
        );
        let job = backup_job(&store(spec), &backup("b", false)).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let volume = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "backups")
            .unwrap();
        assert_eq!(volume.persistent_volume_claim.unwrap().claim_name, "nfs");
        let c = &pod.containers[0];
        assert!(c.env_from.is_none());
        let m = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "backups")
            .unwrap();
        assert_eq!((m.mount_path.as_str(), m.read_only), ("/backups", None));
    }

    #[test]
    fn a_restore_seeds_the_volume_pod_zero_will_use_as_pod_zero() {
        let mut spec = default_spec();
        spec.restore = Some(
            serde_json::from_value(serde_json::json!({
                "from": "file:///backups/old/nightly", "persistentVolumeClaim": "nfs"
            }))
            .unwrap(),
        );
        let store = store(spec);
        let job = restore_job(&store).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("shop-restore"));
        assert_eq!(
            job.metadata.owner_references.as_ref().unwrap()[0].kind,
            "ToyStore"
        );
        assert_eq!(
            args(&job),
            [
                "restore",
                "--from",
                "file:///backups/old/nightly",
                "--data-dir",
                "/data",
                "--node-id",
                "0",
                "--url",
                "http://shop-orders-0.shop-orders.toys.svc:7000",
                "--raft-url",
                "http://shop-orders-0.shop-orders.toys.svc:7001",
                "--result-file",
                "/dev/termination-log",
            ]
        );
        // The data directory, node id and URLs are the ones pod 0 gets from its StatefulSet.
        let sts = build(&store, &inputs(3)).stateful_set;
        let sts_spec = sts.spec.unwrap();
        let order = &sts_spec.template.spec.as_ref().unwrap().containers[0];
        let env = |name: &str| {
            order
                .env
                .as_ref()
                .unwrap()
                .iter()
                .find(|e| e.name == name)
                .unwrap()
                .clone()
        };
        assert_eq!(env("ORDER_DATA_DIR").value.as_deref(), Some("/data"));
        assert_eq!(
            env("ORDER_ID")
                .value_from
                .unwrap()
                .field_ref
                .unwrap()
                .field_path,
            "metadata.labels['apps.kubernetes.io/pod-index']"
        );
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let data_mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[0];
        assert_eq!(data_mount, &order.volume_mounts.as_ref().unwrap()[0]);
        let data = pod.volumes.as_ref().unwrap()[0].clone();
        assert_eq!(
            data.persistent_volume_claim.unwrap().claim_name,
            "data-shop-orders-0"
        );
        let backups = pod.containers[0].volume_mounts.as_ref().unwrap()[1].clone();
        assert_eq!(
            (backups.mount_path.as_str(), backups.read_only),
            ("/backups", Some(true))
        );
        // The claim is the one the StatefulSet's template makes for pod 0.
        let claim = restore_claim(&store, &inputs(3));
        let template = &sts_spec.volume_claim_templates.unwrap()[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("data-shop-orders-0"));
        assert_eq!(claim.metadata.labels, template.metadata.labels);
        assert_eq!(claim.spec, template.spec);
        assert!(restore_job(&with_backup(None)).is_none());
    }
}
