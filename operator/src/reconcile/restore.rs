//! Restore at creation: a store with `spec.restore` starts from a backup artifact instead of
//! empty.
//!
//! Before the order StatefulSet exists, the round creates the volume claim the StatefulSet
//! would create for pod 0 ([`build::restore_claim`], which it then adopts) and a Job running
//! `toystore restore` into it ([`build::restore_job`]): the data directory becomes a group of
//! one voter, replica 0, holding the artifact's state. Until the Job succeeded nothing else of
//! the store is applied. Then the restore is recorded in `status.restore` and the round goes
//! on as for any store: pod 0 starts as an admitted voter holding the state and elects itself,
//! and the membership driver adds the other replicas as learners and promotes them (a replica
//! with a log makes it wait for a leader, never initialize a group).
//!
//! A failed restore is a `RestoreFailed` condition and a Warning event, and the store stays
//! without an order group: `spec.restore` cannot change, so no round would do better. Deleting
//! the store removes it all; deleting the failed Job and the claim runs the restore again.
//!
//! **The one rule: a restore runs only before the store's order group exists.** Once the
//! order StatefulSet exists, a restore is recorded in the status, or the status says the group
//! was ever initialized, the round never creates a restore Job again, whatever happens to the
//! volumes (or to the StatefulSet). Seeding a lost volume from the artifact later would start a
//! second one-voter group beside the running one: two leaders, two diverging order histories,
//! and acknowledged orders lost. A lost volume is recovered as any store's is, by the
//! membership driver replicating from the group.

use api::backup::RestoreReport;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::events::EventType;

use super::report::publish;
use super::{Context, Error, create_if_absent};
use crate::backup::result::{self, JobResult, saturating_i64};
use crate::build::jobs::restore_labels;
use crate::build::{self, BuildInputs};
use crate::cache;
use crate::crd::{RestoreStatus, ToyStore};
use crate::status::Restore;
use crate::validate::ValidStore;

/// What the restore step decided for the rest of the round.
pub(super) enum Gate {
    /// Go on with the round: nothing to restore, or the restore is done (or can never run).
    Proceed(Restore),
    /// Stop here: the restore runs or failed; the round writes only the status.
    Hold(Restore),
}

/// The restore step of a round (see the module documentation).
pub(super) async fn gate(
    store: &ToyStore,
    valid: &ValidStore,
    ctx: &Context,
) -> Result<Gate, Error> {
    let Some(restore) = &valid.restore else {
        return Ok(Gate::Proceed(Restore::NotRequested));
    };
    if let Some(done) = store.status.as_ref().and_then(|s| s.restore.clone()) {
        return Ok(Gate::Proceed(Restore::Done(Some(done))));
    }
    let ns = valid.namespace.as_str();
    let job_name = build::restore_job_name(&valid.name);
    let job = cache::get(&ctx.cache.jobs, ns, &job_name)
        .filter(|j| build::controlled_by(j.as_ref(), valid.uid.as_ref()));
    let orders = cache::get(
        &ctx.cache.stateful_sets,
        ns,
        &build::orders_name(&valid.name),
    );
    let ever_initialized = store.status.as_ref().is_some_and(|s| s.initialized);
    if orders.is_some() || ever_initialized {
        // Never again (see the module documentation); record what a successful Job left.
        let done = job.and_then(|job| match read(ctx, valid, &job) {
            JobResult::Succeeded { report, finished } => Some(record(&report, finished)),
            _ => None,
        });
        return Ok(Gate::Proceed(Restore::Done(done)));
    }
    let claim = build::order_pvc_name(&valid.name, build::jobs::RESTORED_ORDINAL);
    if cache::get(&ctx.cache.persistent_volume_claims, ns, &claim).is_none() {
        let inputs = BuildInputs {
            order_replicas: valid.orders.replicas,
            storage_class: build::fallback_storage_class(
                None,
                ctx.default_storage_class.as_deref(),
            ),
        };
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
        create_if_absent(&claims, &build::restore_claim(valid, &inputs)).await?;
    }
    let Some(job) = job else {
        let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
        let built = build::restore_job(valid).expect("a store with spec.restore has a restore Job");
        if cache::get(&ctx.cache.jobs, ns, &job_name).is_some() {
            // A Job of an earlier store of the same name, not yet garbage-collected.
            let message =
                format!("waiting for the Job {job_name} of an earlier store of this name to go");
            return Ok(Gate::Hold(Restore::Running(message)));
        }
        create_if_absent(&jobs, &built).await?;
        let message = format!(
            "restore Job {job_name} created: restoring from {}",
            restore.from.url
        );
        return Ok(Gate::Hold(Restore::Running(message)));
    };
    match read(ctx, valid, &job) {
        JobResult::Running { started, waiting } => {
            let message = match (started, waiting) {
                (_, Some(waiting)) => format!("restore Job {job_name} waits: {waiting}"),
                (true, None) => {
                    format!("restore Job {job_name} restores from {}", restore.from.url)
                }
                (false, None) => format!("restore Job {job_name} is starting"),
            };
            Ok(Gate::Hold(Restore::Running(message)))
        }
        JobResult::Succeeded { report, finished } => {
            let done = record(&report, finished);
            let note = format!(
                "restored from {}: store {} as of index {}, {} orders",
                done.from, done.source_store, done.index, done.orders
            );
            publish(ctx, store, EventType::Normal, "Restored", "Restore", &note).await;
            Ok(Gate::Proceed(Restore::Done(Some(done))))
        }
        JobResult::Failed {
            reason, message, ..
        } => {
            let why = match reason {
                Some(reason) => format!("{reason}: {message}"),
                None => message,
            };
            let message = format!(
                "restore from {} failed: {why}. The store gets no order group: delete the ToyStore (or, once the cause is fixed, delete the Job {job_name} and the claim {claim} to run the restore again)",
                restore.from.url
            );
            publish(
                ctx,
                store,
                EventType::Warning,
                "RestoreFailed",
                "Restore",
                &message,
            )
            .await;
            Ok(Gate::Hold(Restore::Failed(message)))
        }
    }
}

/// What the restore Job says, from its cached pods.
fn read(ctx: &Context, valid: &ValidStore, job: &Job) -> JobResult<RestoreReport> {
    let pods = cache::labelled(
        &ctx.cache.pods,
        &valid.namespace,
        &restore_labels(&valid.name),
    );
    let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    result::read(job, &pods)
}

/// The status record of a successful restore.
fn record(report: &RestoreReport, finished: Option<Time>) -> RestoreStatus {
    let state = &report.manifest.state;
    RestoreStatus {
        from: report.url.clone(),
        source_store: report.manifest.store.clone(),
        index: saturating_i64(state.index),
        orders: saturating_i64(state.orders),
        completed_at: finished.unwrap_or(Time(Timestamp::now())),
    }
}
