//! The ToyStoreBackup controller: each backup runs once, as a Job of `toystore backup` in its
//! store's image, and ends `Completed` with the artifact's manifest or `Failed` with why.
//!
//! A round of one backup:
//! - an ended backup (`Completed`, `Failed`) is left alone: a backup never runs twice;
//! - once its Job exists (or `status.job` says it was created), the backup follows the Job
//!   alone, whatever becomes of the store (deleted, edited, `spec.backup` removed: the Job
//!   still writes the artifact); a Job gone before it ended fails the backup (a second run
//!   could overwrite the first's artifact);
//! - before that, the store is read (`spec.store`, same namespace): a missing store, an invalid
//!   spec or a store without `spec.backup` fails the backup with that reason; else its Job
//!   ([`crate::build::backup_job`], owned by the backup) is created, once;
//! - while the Job runs, the status says whether its pod runs or what it waits for;
//! - once the Job ends, the result the CLI left as its termination message decides
//!   ([`result::read`]): `Completed` with the URL, index, term, orders, size and checksum of a
//!   parsed `BackupReport`, never without one; else `Failed`, with the CLI's error or the Job's
//!   reason, and a Warning event.
//!
//! Reads go to the API server (a backup has a few rounds in its life); the Job watch wakes the
//! round of its owner. Deleting a ToyStoreBackup deletes its Job (owner reference), never the
//! artifact. The schedule and retention of a store's backups are steps of the store's own
//! round (`reconcile::schedule`).

pub mod result;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::backup::BackupReport;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use crate::build::{self, BACKUP_LABEL, FIELD_MANAGER};
use crate::crd::{BackupPhase, ToyStore, ToyStoreBackup, ToyStoreBackupStatus};
use crate::reconcile::{Context, Error, create_if_absent, publish};
use crate::status::condition;
use crate::validate::validate;
use result::{JobResult, saturating_i64};

/// How often a round looks again at a backup whose Job runs (the Job's own changes wake it
/// sooner; a pod that waits for a Secret does not change its Job).
const WHILE_RUNNING: Duration = Duration::from_secs(10);

/// Reconciles one ToyStoreBackup (see the module documentation).
#[tracing::instrument(
    skip_all,
    fields(backup = %backup.name_any(), namespace = %backup.namespace().unwrap_or_default())
)]
pub async fn reconcile(backup: Arc<ToyStoreBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = round(&backup, &ctx).await;
    ctx.metrics.reconciled(start.elapsed(), result.is_ok());
    result
}

/// After a failed round: counts it by kind and retries after the kind's delay.
pub fn error_policy(backup: Arc<ToyStoreBackup>, error: &Error, ctx: Arc<Context>) -> Action {
    let kind = error.kind();
    ctx.metrics.failed(kind);
    tracing::warn!(
        backup = %backup.name_any(),
        namespace = %backup.namespace().unwrap_or_default(),
        kind = kind.label(),
        %error,
        "backup reconcile failed"
    );
    Action::requeue(kind.retry_after())
}

/// One round of a backup that has not ended.
async fn round(backup: &ToyStoreBackup, ctx: &Context) -> Result<Action, Error> {
    let previous = backup.status.clone().unwrap_or_default();
    if previous.phase.is_some_and(BackupPhase::is_final)
        || backup.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::await_change());
    }
    let ns = backup.namespace().ok_or(Error::NoNamespace)?;
    let job_name = build::backup_job_name(&backup.name_any());
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = jobs.get_opt(&job_name).await?;
    // Once its Job exists, the backup follows it alone: the store may be deleted, edited or
    // stripped of spec.backup meanwhile, and the Job still writes the artifact.
    if let Some(job) = &existing
        && build::controlled_by(job, backup.uid().as_ref())
    {
        return follow(ctx, backup, &ns, job).await;
    }
    if existing.is_none() && previous.job.is_some() {
        let message = format!(
            "the backup Job {job_name} was deleted before it ended; create another ToyStoreBackup to back up again"
        );
        return fail(ctx, backup, "JobDeleted", message, None).await;
    }
    if existing.is_some() && previous.job.is_some() {
        // Its own Job is gone and one of an earlier backup of this name is back: never run
        // twice, wait for that one to go (then the backup fails as `JobDeleted`).
        tracing::info!(job = %job_name, "waiting for the Job of an earlier backup of this name to go");
        return Ok(Action::requeue(WHILE_RUNNING));
    }
    // The Job is yet to be created: the store says what to back up, and where.
    let store_name = &backup.spec.store;
    let stores: Api<ToyStore> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(store) = stores.get_opt(store_name).await? else {
        let message = format!("ToyStore {store_name} does not exist in namespace {ns}");
        return fail(ctx, backup, "StoreNotFound", message, None).await;
    };
    let valid = match validate(&store) {
        Ok(valid) => valid,
        Err(problems) => {
            let message = format!(
                "ToyStore {store_name} has an invalid spec: {}",
                problems.join("; ")
            );
            return fail(ctx, backup, "InvalidStore", message, None).await;
        }
    };
    let Some(job) = build::backup_job(&valid, backup) else {
        let message = format!(
            "ToyStore {store_name} has no spec.backup: set spec.backup.destination to say where its backups go"
        );
        return fail(ctx, backup, "BackupNotConfigured", message, None).await;
    };
    if existing.is_some() {
        // A Job of an earlier backup of the same name, not yet garbage-collected.
        tracing::info!(job = %job_name, "waiting for the Job of an earlier backup of this name to go");
        return Ok(Action::requeue(WHILE_RUNNING));
    }
    // Already there: created by an earlier round whose status write did not land.
    create_if_absent(&jobs, &job).await?;
    let status = progress(
        backup,
        &job_name,
        BackupPhase::Pending,
        format!("backup Job {job_name} created"),
        Timestamp::now(),
    );
    write(ctx, backup, &status).await?;
    Ok(Action::requeue(WHILE_RUNNING))
}

/// The rest of the round of a backup whose Job (`job`, controlled by it) exists: what the Job
/// and its pods say, whatever became of the store.
async fn follow(
    ctx: &Context,
    backup: &ToyStoreBackup,
    ns: &str,
    job: &Job,
) -> Result<Action, Error> {
    let job_name = job.name_any();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{BACKUP_LABEL}={}", backup.name_any());
    let pods = pods.list(&ListParams::default().labels(&selector)).await?;
    let pods: Vec<&Pod> = pods.items.iter().collect();
    match result::read::<BackupReport>(job, &pods) {
        JobResult::Running { started, waiting } => {
            let (phase, message) = match (started, waiting) {
                (_, Some(waiting)) => (BackupPhase::Pending, format!("waiting: {waiting}")),
                (true, None) => (BackupPhase::Running, format!("backup Job {job_name} runs")),
                (false, None) => (
                    BackupPhase::Pending,
                    format!("backup Job {job_name} is starting"),
                ),
            };
            let status = progress(backup, &job_name, phase, message, Timestamp::now());
            write(ctx, backup, &status).await?;
            Ok(Action::requeue(WHILE_RUNNING))
        }
        JobResult::Succeeded { report, finished } => {
            let status = completed(backup, &job_name, &report, finished, Timestamp::now());
            write(ctx, backup, &status).await?;
            let note = status.message.clone().unwrap_or_default();
            publish(
                ctx,
                backup,
                EventType::Normal,
                "BackupCompleted",
                "Backup",
                &note,
            )
            .await;
            Ok(Action::await_change())
        }
        JobResult::Failed {
            reason,
            message,
            finished,
        } => {
            let reason = reason.unwrap_or_else(|| "BackupFailed".into());
            fail(ctx, backup, &reason, message, finished).await
        }
    }
}

/// Ends `backup` as `Failed` with `reason` and `message`, and says so in a Warning event.
async fn fail(
    ctx: &Context,
    backup: &ToyStoreBackup,
    reason: &str,
    message: String,
    finished: Option<Time>,
) -> Result<Action, Error> {
    let status = failed(backup, reason, &message, finished, Timestamp::now());
    write(ctx, backup, &status).await?;
    publish(ctx, backup, EventType::Warning, reason, "Backup", &message).await;
    Ok(Action::await_change())
}

/// The status of a backup whose Job exists and has not ended.
fn progress(
    backup: &ToyStoreBackup,
    job: &str,
    phase: BackupPhase,
    message: String,
    now: Timestamp,
) -> ToyStoreBackupStatus {
    let previous = backup.status.clone().unwrap_or_default();
    let reason = format!("{phase:?}");
    ToyStoreBackupStatus {
        phase: Some(phase),
        job: Some(job.into()),
        started_at: previous.started_at.clone().or(Some(Time(now))),
        conditions: vec![completed_condition(
            backup, &previous, "False", &reason, &message, now,
        )],
        message: Some(message),
        ..previous
    }
}

/// The status of a backup whose Job left `report`.
fn completed(
    backup: &ToyStoreBackup,
    job: &str,
    report: &BackupReport,
    finished: Option<Time>,
    now: Timestamp,
) -> ToyStoreBackupStatus {
    let previous = backup.status.clone().unwrap_or_default();
    let state = &report.manifest.state;
    let data = &report.manifest.data;
    let message = format!(
        "backup of {} at index {} (term {}): {} orders, {} bytes, written to {} in {} ms",
        report.manifest.store,
        state.index,
        state.term,
        state.orders,
        data.size,
        report.url,
        report.millis
    );
    let int = |n: u64| Some(saturating_i64(n));
    ToyStoreBackupStatus {
        phase: Some(BackupPhase::Completed),
        job: Some(job.into()),
        started_at: previous.started_at.clone().or(Some(Time(now))),
        completed_at: finished.or(Some(Time(now))),
        url: Some(report.url.clone()),
        index: int(state.index),
        term: int(state.term),
        orders: int(state.orders),
        size: int(data.size),
        sha256: Some(data.sha256.clone()),
        conditions: vec![completed_condition(
            backup,
            &previous,
            "True",
            "BackupCompleted",
            &message,
            now,
        )],
        message: Some(message),
    }
}

/// The status of a backup that failed for `reason`.
fn failed(
    backup: &ToyStoreBackup,
    reason: &str,
    message: &str,
    finished: Option<Time>,
    now: Timestamp,
) -> ToyStoreBackupStatus {
    let previous = backup.status.clone().unwrap_or_default();
    ToyStoreBackupStatus {
        phase: Some(BackupPhase::Failed),
        completed_at: finished.or(Some(Time(now))),
        conditions: vec![completed_condition(
            backup, &previous, "False", reason, message, now,
        )],
        message: Some(message.into()),
        ..previous
    }
}

/// The `Completed` condition of `backup` with `status`, keeping its transition time while its
/// value does not change.
fn completed_condition(
    backup: &ToyStoreBackup,
    previous: &ToyStoreBackupStatus,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Condition {
    condition(
        &previous.conditions,
        "Completed",
        status,
        reason,
        message,
        backup.metadata.generation,
        now,
    )
}

/// Writes `status` (server-side apply of the status subresource) unless it is what the
/// backup already shows.
async fn write(
    ctx: &Context,
    backup: &ToyStoreBackup,
    status: &ToyStoreBackupStatus,
) -> Result<(), Error> {
    if backup.status.as_ref() == Some(status) {
        return Ok(());
    }
    let ns = backup.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<ToyStoreBackup> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": ToyStoreBackup::api_version(&()),
        "kind": ToyStoreBackup::kind(&()),
        "status": status,
    });
    api.patch_status(
        &backup.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ToyStoreBackupSpec;

    fn backup() -> ToyStoreBackup {
        let mut b = ToyStoreBackup::new(
            "nightly",
            ToyStoreBackupSpec {
                store: "shop".into(),
            },
        );
        b.metadata.generation = Some(1);
        b
    }

    #[test]
    fn a_completed_status_carries_the_manifest() {
        let report: BackupReport = serde_json::from_value(result::tests::report_json()).unwrap();
        let started: Timestamp = "2025-03-10T03:00:00Z".parse().unwrap();
        let now: Timestamp = "2025-03-10T03:00:09Z".parse().unwrap();
        let mut b = backup();
        b.status = Some(progress(
            &b,
            "nightly-backup",
            BackupPhase::Running,
            "runs".into(),
            started,
        ));
        let status = completed(&b, "nightly-backup", &report, None, now);
        assert_eq!(status.phase, Some(BackupPhase::Completed));
        assert_eq!(status.url.as_deref(), Some("s3://bucket/shop/nightly"));
        assert_eq!(
            (status.index, status.term, status.orders, status.size),
            (Some(1234), Some(3), Some(1000), Some(52000))
        );
        assert_eq!(status.sha256.as_deref(), Some("ab12"));
        assert_eq!(status.started_at, Some(Time(started)), "the start stays");
        assert_eq!(status.completed_at, Some(Time(now)));
        let c = &status.conditions[0];
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Completed", "True"));
        assert_eq!(
            c.last_transition_time,
            Time(now),
            "False to True is a transition"
        );
        assert_eq!(c.observed_generation, Some(1));
    }

    #[test]
    fn progress_keeps_the_start_and_the_transition_time() {
        let mut b = backup();
        let first = progress(
            &b,
            "j",
            BackupPhase::Pending,
            "created".into(),
            Timestamp::UNIX_EPOCH,
        );
        b.status = Some(first.clone());
        let later: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let second = progress(&b, "j", BackupPhase::Running, "runs".into(), later);
        assert_eq!(second.started_at, first.started_at);
        assert_eq!(
            second.conditions[0].last_transition_time,
            first.conditions[0].last_transition_time
        );
        assert_eq!(second.conditions[0].reason, "Running");
        let f = failed(&b, "DeadlineExceeded", "too slow", None, later);
        assert_eq!(f.phase, Some(BackupPhase::Failed));
        assert_eq!(f.job.as_deref(), Some("j"));
        assert_eq!(f.completed_at, Some(Time(later)));
        assert_eq!(f.conditions[0].reason, "DeadlineExceeded");
    }
}
