//! What a round tells people: the store's status, written only when it changed, and Events.
//!
//! Every failure a person can fix shows in both, with the reason in words: an invalid spec
//! (`InvalidSpec`), an apply the API server refused (`ApplyFailed`, with its message), a group
//! that lost its state (`GroupLostState`). Publishing an event never fails a round: a failure
//! to publish is logged.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use api::view::GroupView;
use membership::Step;

use super::memory::store_key;
use super::{Context, Error, ErrorKind};
use crate::build::FIELD_MANAGER;
use crate::crd::{ToyStore, ToyStoreStatus};
use crate::status::{Restore, StatusInput, build_status};

/// Writes the status if it changed; returns it.
pub(super) async fn status(
    store: &ToyStore,
    ctx: &Context,
    input: &StatusInput<'_>,
) -> Result<ToyStoreStatus, Error> {
    let status = build_status(store, input, Timestamp::now());
    if store.status.as_ref() != Some(&status) {
        let ns = store.namespace().ok_or(Error::NoNamespace)?;
        let api: Api<ToyStore> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({
            "apiVersion": "toystore.dev/v1alpha1",
            "kind": "ToyStore",
            "status": status,
        });
        api.patch_status(
            &store.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    Ok(status)
}

/// Reports an invalid spec (a Warning event and a `Degraded` status) and waits for it to
/// change. The round itself succeeds (there is nothing to retry), but it counts as a failure
/// of kind [`ErrorKind::InvalidSpec`].
pub(super) async fn invalid_spec(
    store: &ToyStore,
    ctx: &Context,
    initialized: bool,
    problems: Vec<String>,
) -> Result<Action, Error> {
    let message = problems.join("; ");
    publish(
        ctx,
        store,
        EventType::Warning,
        "InvalidSpec",
        "Validate",
        &message,
    )
    .await;
    let input = StatusInput {
        obs: &GroupView::default(),
        step: &Step::Wait("invalid spec".into()),
        rolling: false,
        initialized,
        problem: Some(("InvalidSpec", message)),
        restore: Restore::recorded(store),
        scheduled: None,
    };
    status(store, ctx, &input).await?;
    ctx.metrics.failed(ErrorKind::InvalidSpec);
    Ok(Action::requeue(ErrorKind::InvalidSpec.retry_after()))
}

/// Reports an apply the API server refused (a Warning event and an `ApplyFailed` status with
/// its message); returns the error for the controller's retry. `restore` is where the round
/// found the store's restore.
pub(super) async fn failed_apply(
    store: &ToyStore,
    ctx: &Context,
    obs: &GroupView,
    initialized: bool,
    restore: Restore,
    error: Error,
) -> Error {
    let Some(message) = error.refused_apply().map(str::to_string) else {
        return error;
    };
    publish(
        ctx,
        store,
        EventType::Warning,
        "ApplyFailed",
        "Apply",
        &message,
    )
    .await;
    let input = StatusInput {
        obs,
        step: &Step::Wait("an apply failed".into()),
        rolling: false,
        initialized,
        problem: Some(("ApplyFailed", message)),
        restore,
        scheduled: None,
    };
    match status(store, ctx, &input).await {
        Ok(_) => error,
        Err(status_error) => status_error,
    }
}

/// Writes the status of a store whose restore runs or failed, before anything else of it
/// exists: a running restore is looked at again soon (its Job's and pod's changes wake the
/// round sooner), a failed one only on a change.
pub(super) async fn restoring(
    store: &ToyStore,
    ctx: &Context,
    restore: Restore,
) -> Result<Action, Error> {
    let failed = matches!(restore, Restore::Failed(_));
    let input = StatusInput {
        obs: &GroupView::default(),
        step: &Step::Wait("restoring from a backup".into()),
        rolling: false,
        initialized: false,
        problem: None,
        restore,
        scheduled: None,
    };
    status(store, ctx, &input).await?;
    Ok(if failed {
        Action::await_change()
    } else {
        Action::requeue(Duration::from_secs(5))
    })
}

/// Publishes `LeaderChanged` when the leader differs from the one last announced for this
/// store (by this process, or recorded in the status before it started), so a round that saw
/// no leader, or a status not yet updated in the cache, never announces the same leader again.
pub(super) async fn leader(store: &ToyStore, ctx: &Context, status: &ToyStoreStatus) {
    let Some(leader) = &status.leader else {
        return;
    };
    let recorded = store.status.as_ref().and_then(|s| s.leader.as_ref());
    if ctx
        .memory
        .leader_changed(&store_key(store), recorded, leader)
    {
        let note = format!("leader is {leader} (term {})", status.term.unwrap_or(0));
        announce(ctx, store, "LeaderChanged", "Observe", &note).await;
    }
}

/// When the next round runs after a successful one: often enough that `kubectl get toystores`
/// shows a new leader within seconds, more often while the store is not ready. A scheduled
/// backup is thus created within seconds of its due time (its name and `lastScheduleTime` are
/// the due time's, whenever the round runs).
pub(super) fn requeue(status: &ToyStoreStatus) -> Action {
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Action::requeue(Duration::from_secs(if ready { 5 } else { 2 }))
}

/// Publishes an event about `object` (a store, a backup), counting an identical repeat into
/// its series; a failure to publish is logged, never fails the round.
pub(crate) async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let reference = object.object_ref(&());
    if let Err(e) = ctx
        .events
        .publish(&reference, type_, reason, action, note)
        .await
    {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// Publishes a change that happened to `store` as an event of its own.
pub(super) async fn announce(
    ctx: &Context,
    store: &ToyStore,
    reason: &str,
    action: &str,
    note: &str,
) {
    let reference = store.object_ref(&());
    if let Err(e) = ctx
        .events
        .announce(&reference, EventType::Normal, reason, action, note)
        .await
    {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
