//! The `ToyStore` custom resource: what users `kubectl apply`.
//!
//! The spec declares the store; the operator owns everything else. Validation lives in the
//! schema so the API server refuses a bad spec with a clear message before the operator sees
//! it: ranges and patterns from schemars, and CEL rules (`x-kubernetes-validations`) for what a
//! schema alone cannot say (an odd replica count, an immutable storage class, timing relations,
//! a restore declared only at creation).
//!
//! [`ToyStoreBackup`] is the second resource: one backup of one store, run by the operator as a
//! Job of the `toystore` CLI ([`crate::backup`]).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL rule: a ToyStore name is a DNS-1035 label, because it names Services (`NAME-orders`),
/// which must be DNS-1035 labels (dots are refused; a leading digit is refused before ~1.35).
pub const NAME_RULE: &str = "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')";
/// The message of [`NAME_RULE`].
pub const NAME_MESSAGE: &str = "a ToyStore name must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (it names the store's Services)";
/// CEL rule: the longest name whose derived object and pod names stay within their limits.
pub const NAME_LENGTH_RULE: &str = "size(self.metadata.name) <= 40";
/// The message of [`NAME_LENGTH_RULE`].
pub const NAME_LENGTH_MESSAGE: &str =
    "a ToyStore name must be at most 40 characters (its StatefulSets and pods are named after it)";
/// Longest ToyStore name ([`NAME_LENGTH_RULE`]).
pub const MAX_NAME_LENGTH: usize = 40;

/// CEL transition rule on a [`StorageSpec`]: the storage class may not be added, removed or
/// changed. A rule on the field itself (`self == oldSelf`) runs only when both the old and the
/// new object have the field, so it misses unset→set and set→unset; on the parent object, which
/// is always present (defaulted, as are its parents), `has()` sees both sides.
pub const STORAGE_CLASS_RULE: &str = "has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)";

/// CEL rule on [`ToyStoreSpec`]: `spec.restore` can be neither added nor removed after creation
/// (a rule on the field itself would miss both: it runs only when old and new have it).
pub const RESTORE_PRESENCE_RULE: &str = "has(self.restore) == has(oldSelf.restore)";
/// The message of [`RESTORE_PRESENCE_RULE`].
pub const RESTORE_PRESENCE_MESSAGE: &str = "spec.restore cannot be added or removed once the store exists: a store is restored from a backup only when it is created (create a new ToyStore with spec.restore instead)";
/// CEL rule on [`RestoreSpec`]: its source never changes after creation.
pub const RESTORE_IMMUTABLE_RULE: &str = "self == oldSelf";
/// The message of [`RESTORE_IMMUTABLE_RULE`].
pub const RESTORE_IMMUTABLE_MESSAGE: &str = "spec.restore is immutable: a store is restored only when it is created, so a changed source could never take effect";

/// RE2 pattern of an object-store URL the backup Jobs accept: S3 (and S3-compatible, with
/// `AWS_ENDPOINT_URL` in the credentials Secret), Google Cloud Storage, Azure Blob Storage, or a
/// path on the volume mounted at [`BACKUP_MOUNT`].
pub const URL_PATTERN: &str = "^((s3|gs|az)://[^/]+(/.*)?|file:///.*)$";
/// Where a backup or restore Job mounts `persistentVolumeClaim`: `file://` URLs must lie below.
pub const BACKUP_MOUNT: &str = "/backups";

/// RE2 pattern of a schedule: five cron fields or one of the usual macros (checked in full by
/// the operator's validation, [`crate::cron`]).
pub const SCHEDULE_PATTERN: &str = "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*/,-]+( +[0-9A-Za-z*/,-]+){4})$";

/// Desired state of a toy store.
#[allow(clippy::duplicated_attributes)] // several printcolumn(...) attributes are intended
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toystore.dev",
    version = "v1alpha1",
    kind = "ToyStore",
    plural = "toystores",
    shortname = "ts",
    namespaced,
    status = "ToyStoreStatus",
    doc = "A ToyStore: catalog, Raft-replicated order service and frontend, run by the operator.",
    validation = Rule::new(NAME_RULE).message(NAME_MESSAGE).field_path(".metadata.name"),
    validation = Rule::new(NAME_LENGTH_RULE).message(NAME_LENGTH_MESSAGE).field_path(".metadata.name"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Orders", type_ = "integer", json_path = ".spec.orders.replicas"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader"),
    printcolumn(name = "Term", type_ = "integer", json_path = ".status.term"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(RESTORE_PRESENCE_RULE).message(RESTORE_PRESENCE_MESSAGE).field_path(".restore"))]
pub struct ToyStoreSpec {
    /// Container image holding every ToyStore binary, e.g. `ghcr.io/toystore/toystore:0.1.0`.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Image pull policy (`Always`, `IfNotPresent`, `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self in ['Always', 'IfNotPresent', 'Never']").message("imagePullPolicy must be Always, IfNotPresent or Never"))]
    pub image_pull_policy: Option<String>,
    /// Names of Secrets for pulling the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// The Raft-replicated order service.
    #[serde(default)]
    pub orders: OrdersSpec,
    /// The catalog: stateless pods over the order group's inventory.
    #[serde(default)]
    pub catalog: CatalogSpec,
    /// The public frontend.
    #[serde(default)]
    pub frontend: FrontendSpec,
    /// Backups of this store: where they go, and optionally a schedule and a retention.
    /// Without it, a ToyStoreBackup of this store fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
    /// Create this store from a backup artifact instead of empty. Honoured only at creation:
    /// it cannot be added, removed or changed later, and a volume lost later is never seeded
    /// from it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
}

/// Backups of a store. Each backup is a ToyStoreBackup object; its artifact is written to
/// `<destination.url>/<store name>/<backup name>`, or, for a scheduled backup,
/// `<destination.url>/<store name>/scheduled/<backup name>`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Where the artifacts go, and with which credentials.
    pub destination: BackupDestination,
    /// When to take a backup by itself: a cron expression of five fields (minute, hour, day of
    /// month, month, day of week; UTC), e.g. `0 3 * * *`, or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`. Each due time creates a ToyStoreBackup `<store>-<yyyymmddhhmm>`;
    /// times missed while the operator was down are caught up with one backup, not one each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new(format!("self.matches('{SCHEDULE_PATTERN}')")).message("schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week, in UTC), e.g. \"0 3 * * *\", or @hourly, @daily, @weekly, @monthly or @yearly"))]
    pub schedule: Option<String>,
    /// How many scheduled backups to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionSpec>,
}

/// An object-store location and how to reach it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.url.startsWith('file:') || (has(self.persistentVolumeClaim) && (self.url == 'file:///backups' || self.url.startsWith('file:///backups/')))").message("a file:// destination must name persistentVolumeClaim (mounted at /backups in the backup Jobs) and a path under file:///backups").field_path(".url"))]
pub struct BackupDestination {
    /// Base URL of the artifacts: `s3://BUCKET[/PREFIX]` (also S3-compatible stores),
    /// `gs://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]`, or `file:///backups[/PATH]` on
    /// `persistentVolumeClaim`.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new(format!("self.matches('{URL_PATTERN}')")).message("destination.url must be s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] or file:///backups[/PATH]"))]
    pub url: String,
    /// Name of a Secret in the store's namespace whose keys become the backup Jobs'
    /// environment (`envFrom`): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT...`, `AZURE_STORAGE_...`.
    /// Unset: the Jobs run without credentials (e.g. a workload identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub credentials_secret: Option<String>,
    /// Name of a PersistentVolumeClaim in the store's namespace, mounted at `/backups` in the
    /// backup Jobs; needed by (and only useful for) `file://` destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub persistent_volume_claim: Option<String>,
}

/// Retention of scheduled backups.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Keep the newest N completed scheduled backups: older artifacts (in
    /// `<destination.url>/<store>/scheduled`) are deleted by the scheduled backup Jobs
    /// (`--keep N`), older ToyStoreBackup objects by the operator (and failed scheduled ones
    /// beyond N likewise). Backups created by hand (and their artifacts, in
    /// `<destination.url>/<store>`) are never deleted.
    #[schemars(range(min = 1, max = 1000))]
    pub keep: i32,
}

/// The artifact a new store starts from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(RESTORE_IMMUTABLE_RULE).message(RESTORE_IMMUTABLE_MESSAGE))]
#[x_kube(validation = Rule::new("!self.from.startsWith('file:') || (has(self.persistentVolumeClaim) && self.from.startsWith('file:///backups/'))").message("a file:// source must name persistentVolumeClaim (mounted at /backups in the restore Job) and an artifact under file:///backups").field_path(".from"))]
pub struct RestoreSpec {
    /// The artifact's URL, as a ToyStoreBackup's `status.url` gives it:
    /// `<destination.url>/<store>/<backup name>` (`.../<store>/scheduled/<backup name>` for a
    /// scheduled backup).
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new(format!("self.matches('{URL_PATTERN}')")).message("restore.from must be an s3://, gs://, az:// or file:///backups/... artifact URL"))]
    pub from: String,
    /// Name of a Secret whose keys become the restore Job's environment (as
    /// `backup.destination.credentialsSecret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub credentials_secret: Option<String>,
    /// Name of a PersistentVolumeClaim mounted read-only at `/backups` in the restore Job, for
    /// a `file://` artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub persistent_volume_claim: Option<String>,
}

/// The order group.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrdersSpec {
    /// Number of order replicas: odd, 1 to 9.
    #[serde(default = "default_order_replicas")]
    #[schemars(range(min = 1, max = 9))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message("orders.replicas must be odd (1, 3, 5, 7 or 9) so that a majority is always well defined"))]
    pub replicas: i32,
    /// Each replica's persistent volume.
    #[serde(default)]
    pub storage: StorageSpec,
    /// CPU and memory of each replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Raft timing and log compaction.
    #[serde(default)]
    pub raft: RaftSpec,
}

/// A persistent volume request.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(STORAGE_CLASS_RULE).message("storageClassName is immutable: it cannot be added, changed or removed once the store exists (existing volumes cannot change class)").field_path(".storageClassName"))]
pub struct StorageSpec {
    /// Volume size, e.g. `1Gi`. Immutable: StatefulSet volume claim templates cannot change.
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*(Mi|Gi|Ti)$"), length(max = 16))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage.size is immutable: a StatefulSet cannot resize its volume claims"))]
    pub size: String,
    /// Storage class of the volume (cluster default when unset). Immutable: volumes cannot move.
    // Not nullable in the schema: the API server prunes an explicit null, so "unset" has one
    // form and the presence rule on `StorageSpec` sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 253))]
    pub storage_class_name: Option<String>,
}

/// Raft settings of the order replicas.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.electionTimeoutMinMs < self.electionTimeoutMaxMs").message("raft.electionTimeoutMinMs must be below raft.electionTimeoutMaxMs"))]
#[x_kube(validation = Rule::new("self.heartbeatMs * 3 <= self.electionTimeoutMinMs").message("raft.heartbeatMs must be at most a third of raft.electionTimeoutMinMs"))]
pub struct RaftSpec {
    /// Leader heartbeat interval, milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    #[schemars(range(min = 10, max = 10000))]
    pub heartbeat_ms: i64,
    /// Minimum election timeout, milliseconds.
    #[serde(default = "default_election_min_ms")]
    #[schemars(range(min = 50, max = 60000))]
    pub election_timeout_min_ms: i64,
    /// Maximum election timeout, milliseconds.
    #[serde(default = "default_election_max_ms")]
    #[schemars(range(min = 100, max = 120000))]
    pub election_timeout_max_ms: i64,
    /// Entries between snapshots (log compaction).
    #[serde(default = "default_snapshot_threshold")]
    #[schemars(range(min = 100, max = 10000000))]
    pub snapshot_threshold: i64,
}

/// The catalog: stateless replicas serving the inventory the order group holds (no volume).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSpec {
    /// Number of catalog pods, 1 to 9. Losing catalogs never stops a purchase; more of them
    /// keep product queries answered while one is down.
    #[serde(default = "default_catalog_replicas")]
    #[schemars(range(min = 1, max = 9))]
    pub replicas: i32,
    /// Seconds between restocks of sold-out toys.
    #[serde(default = "default_restock_interval")]
    #[schemars(range(min = 1, max = 86400))]
    pub restock_interval_seconds: i64,
    /// Units a sold-out toy is restocked to.
    #[serde(default = "default_restock_quantity")]
    #[schemars(range(min = 1, max = 1000000))]
    pub restock_quantity: i64,
    /// CPU and memory of each catalog pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// The frontend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FrontendSpec {
    /// Number of frontend pods.
    #[serde(default = "default_frontend_replicas")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: i32,
    /// Product cache entries per frontend; 0 turns the cache off.
    #[serde(default = "default_cache_capacity")]
    #[schemars(range(min = 0, max = 1000000))]
    pub cache_capacity: i64,
    /// Type of the public Service: `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(default = "default_service_type")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self in ['ClusterIP', 'NodePort', 'LoadBalancer']").message("frontend.serviceType must be ClusterIP, NodePort or LoadBalancer"))]
    pub service_type: String,
    /// CPU and memory of each frontend pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToyStoreStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, with reasons.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Pod name of the Raft leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Current Raft term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
    /// Set once the order group has been initialized; never initialized again after that.
    #[serde(default)]
    pub initialized: bool,
    /// Members of the order group.
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// Order replicas that are members, voting and healthy.
    #[serde(default)]
    pub ready_order_replicas: i32,
    /// The restore this store was created with, once it succeeded. Recorded once: a store
    /// whose order group exists is never restored again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
    /// The last due time of `spec.backup.schedule` a backup was created for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The ToyStoreBackup created for `lastScheduleTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_backup: Option<String>,
}

/// A completed restore, as the status records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// The artifact restored.
    pub from: String,
    /// The store the artifact was taken from.
    pub source_store: String,
    /// The committed log index the restored state is as of.
    pub index: i64,
    /// Confirmed orders the restored state holds.
    pub orders: i64,
    /// When the restore Job finished.
    pub completed_at: Time,
}

/// One member of the order group as the status reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Raft node id.
    pub id: i64,
    /// Pod name.
    pub pod: String,
    /// `leader`, `follower`, `candidate`, `learner` or `unreachable`.
    pub role: String,
    /// Whether the replica answers, takes part in the group with its membership (its data was
    /// not lost) and is within the catch-up lag of the leader's log.
    pub healthy: bool,
    /// Highest log index known replicated to it (from the leader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_index: Option<i64>,
}

/// CEL rule: a ToyStoreBackup name is a DNS-1123 label, because it names the backup's Job
/// (`NAME-backup`) and the artifact (`<destination>/<store>/NAME`).
pub const BACKUP_NAME_RULE: &str = "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
/// The message of [`BACKUP_NAME_RULE`].
pub const BACKUP_NAME_MESSAGE: &str = "a ToyStoreBackup name must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (it names the backup's Job and artifact)";
/// CEL rule: the longest backup name whose Job name (`NAME-backup`) is still a label.
pub const BACKUP_NAME_LENGTH_RULE: &str = "size(self.metadata.name) <= 56";
/// The message of [`BACKUP_NAME_LENGTH_RULE`].
pub const BACKUP_NAME_LENGTH_MESSAGE: &str =
    "a ToyStoreBackup name must be at most 56 characters (its Job is named NAME-backup)";
/// Longest ToyStoreBackup name ([`BACKUP_NAME_LENGTH_RULE`]).
pub const MAX_BACKUP_NAME_LENGTH: usize = 56;

/// Which store a backup is of. Where the artifact goes, and with which credentials, come from
/// that store's `spec.backup`.
#[allow(clippy::duplicated_attributes)] // several printcolumn(...) attributes are intended
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toystore.dev",
    version = "v1alpha1",
    kind = "ToyStoreBackup",
    plural = "toystorebackups",
    shortname = "tsb",
    namespaced,
    status = "ToyStoreBackupStatus",
    doc = "One backup of a ToyStore: the operator runs it once, as a Job of `toystore backup` in the store's image, and records the artifact it wrote to `<spec.backup.destination.url>/<store>/<name>` (`<store>/scheduled/<name>` for a scheduled backup). Not owned by its store, so the record (and the URL to restore from) survives the store's deletion; deleting a ToyStoreBackup deletes its Job, never its artifact.",
    validation = Rule::new(BACKUP_NAME_RULE).message(BACKUP_NAME_MESSAGE).field_path(".metadata.name"),
    validation = Rule::new(BACKUP_NAME_LENGTH_RULE).message(BACKUP_NAME_LENGTH_MESSAGE).field_path(".metadata.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Store", type_ = "string", json_path = ".spec.store"),
    printcolumn(name = "Orders", type_ = "integer", json_path = ".status.orders"),
    printcolumn(name = "Index", type_ = "integer", json_path = ".status.index"),
    printcolumn(
        name = "Size",
        type_ = "integer",
        json_path = ".status.size",
        description = "Bytes of the state object"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ToyStoreBackupSpec {
    /// Name of the ToyStore to back up, in the same namespace. Its `spec.backup` says where the
    /// artifact goes and with which credentials. Immutable.
    #[schemars(length(min = 1, max = 40))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.store is immutable: a ToyStoreBackup is one backup of one store (create another ToyStoreBackup)"))]
    pub store: String,
}

/// Where a backup is in its one run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BackupPhase {
    /// Accepted; its Job is created or waiting to start.
    Pending,
    /// Its Job runs.
    Running,
    /// The artifact is written and its manifest recorded here. Final.
    Completed,
    /// No artifact was recorded; `message` and the `Completed` condition say why. Final.
    Failed,
}

impl BackupPhase {
    /// Whether the backup has ended (it is never run again).
    pub fn is_final(self) -> bool {
        matches!(self, BackupPhase::Completed | BackupPhase::Failed)
    }
}

/// Observed state of a backup, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToyStoreBackupStatus {
    /// `Pending`, `Running`, `Completed` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// The Job running the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// When the Job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the backup ended, completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The artifact's URL: what a ToyStore's `spec.restore.from` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The committed log index the backed-up state is as of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    /// The Raft term of that index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
    /// Confirmed orders in the backed-up state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<i64>,
    /// Size of the state object, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// SHA-256 of the state object, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `Completed`: True once the artifact is recorded, False with the reason once it failed.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What happened last, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The CRD of [`ToyStore`]: the derived one, with `metadata.name` declared in the root schema.
///
/// The API server accepts a `fieldPath` only when it names a field of the schema, and the
/// derived schema has no `metadata`; declaring `metadata.name` (the one restriction a CRD may
/// put on metadata, with `generateName`) lets the name rules report at `metadata.name` instead
/// of `<nil>`. The length limit is a CEL rule, not a `maxLength`: a schema check that fails
/// stops the API server before CEL runs, and it then adds a second, path-less line ("some
/// validation rules were not checked") to the one clean message the rule gives.
pub fn crd() -> CustomResourceDefinition {
    with_metadata_name(ToyStore::crd())
}

/// The CRD of [`ToyStoreBackup`], with `metadata.name` declared as in [`crd`].
pub fn backup_crd() -> CustomResourceDefinition {
    with_metadata_name(ToyStoreBackup::crd())
}

/// `crd` with `metadata.name` declared in its root schema, so name rules can report there.
fn with_metadata_name(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let name = JSONSchemaProps {
        type_: Some("string".into()),
        ..Default::default()
    };
    let metadata = JSONSchemaProps {
        type_: Some("object".into()),
        properties: Some([("name".to_string(), name)].into()),
        ..Default::default()
    };
    for version in &mut crd.spec.versions {
        if let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            root.properties
                .get_or_insert_default()
                .insert("metadata".into(), metadata.clone());
        }
    }
    crd
}

fn default_order_replicas() -> i32 {
    3
}
fn default_storage_size() -> String {
    "1Gi".into()
}
fn default_heartbeat_ms() -> i64 {
    100
}
fn default_election_min_ms() -> i64 {
    500
}
fn default_election_max_ms() -> i64 {
    1000
}
fn default_snapshot_threshold() -> i64 {
    5000
}
fn default_catalog_replicas() -> i32 {
    2
}
fn default_restock_interval() -> i64 {
    10
}
fn default_restock_quantity() -> i64 {
    100
}
fn default_frontend_replicas() -> i32 {
    2
}
fn default_cache_capacity() -> i64 {
    1000
}
fn default_service_type() -> String {
    "ClusterIP".into()
}

impl Default for OrdersSpec {
    fn default() -> Self {
        Self {
            replicas: default_order_replicas(),
            storage: StorageSpec::default(),
            resources: None,
            raft: RaftSpec::default(),
        }
    }
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

impl Default for RaftSpec {
    fn default() -> Self {
        Self {
            heartbeat_ms: default_heartbeat_ms(),
            election_timeout_min_ms: default_election_min_ms(),
            election_timeout_max_ms: default_election_max_ms(),
            snapshot_threshold: default_snapshot_threshold(),
        }
    }
}

impl Default for CatalogSpec {
    fn default() -> Self {
        Self {
            replicas: default_catalog_replicas(),
            restock_interval_seconds: default_restock_interval(),
            restock_quantity: default_restock_quantity(),
            resources: None,
        }
    }
}

impl Default for FrontendSpec {
    fn default() -> Self {
        Self {
            replicas: default_frontend_replicas(),
            cache_capacity: default_cache_capacity(),
            service_type: default_service_type(),
            resources: None,
        }
    }
}
