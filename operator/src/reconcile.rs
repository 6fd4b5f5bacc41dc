//! Reconcile as a pipeline: validate → build → apply → membership → status.
//!
//! - validate: [`crate::validate`] turns the resource into a [`ValidStore`]; an invalid spec
//!   becomes a `Degraded` condition and an event;
//! - build: [`crate::build::build`], pure, from the validated store to the objects;
//! - apply: server-side apply with one field manager; each object carries a hash of what was
//!   applied, compared with the controller's watch cache ([`crate::cache`]), so an unchanged
//!   object is neither read from the API server nor written again. An apply the API server
//!   refuses (4xx) becomes an `ApplyFailed` condition and a Warning event with its message;
//! - membership: one step of the shared membership driver per round, then the rolling upgrade
//!   and the clean-up of volumes of members that left;
//! - status: [`crate::status`], written only when it changed.
//!
//! A finalizer guards deletion: owned objects go with the ToyStore (owner references), and the
//! order replicas' volumes, found by label, are deleted with it (the only volumes a store has:
//! the catalog and the frontends are stateless).
//!
//! Deletes are never repeated: an object that has a deletion timestamp, or whose UID this
//! process already deleted (the cache may not show the timestamp yet), is skipped.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use membership::{DEFAULT_CATCH_UP_LAG, Step, next_step};

use crate::build::{self, BuildInputs, Component, FIELD_MANAGER, TOKEN_KEY};
use crate::cache::{self, Caches};
use crate::crd::ToyStore;
use crate::events::Events;
use crate::hash::fnv1a;
use crate::membership::{
    OrderGroup, OrderPod, RollStep, allowed, desired_members, next_roll_step,
    order_statefulset_size,
};
use crate::metrics::Metrics;
use crate::status::{StatusInput, build_status};
use crate::validate::{ValidStore, validate};

/// Finalizer the operator puts on every ToyStore.
pub const FINALIZER: &str = "toystore.dev/cleanup";
/// Annotation holding the hash of what the operator last applied to an object.
pub const APPLIED_HASH: &str = "toystore.dev/applied-hash";

/// Errors of a reconcile round; the controller retries after [`error_policy`]'s delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The ToyStore has no namespace (it is namespaced; this cannot happen via the API).
    #[error("ToyStore has no namespace")]
    NoNamespace,
    /// The token Secret exists but holds no token.
    #[error("secret {0} has no `token` key")]
    BadSecret(String),
    /// A membership step failed; it is retried next round.
    #[error("membership step failed: {0}")]
    Membership(String),
    /// Server-side apply of an object failed.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// The watch caches did not receive their first list in time (a watch failing, e.g. 403).
    #[error("the watch caches are not ready")]
    CacheNotReady,
}

impl Error {
    /// The API server's message when it refused an apply (a 4xx answer): a spec it will never
    /// accept, or a missing permission. Something a person must fix, so it is shown in status.
    pub fn refused_apply(&self) -> Option<&str> {
        match self {
            Error::Apply {
                source: kube::Error::Api(status),
                ..
            } if (400..500).contains(&status.code) => Some(&status.message),
            _ => None,
        }
    }
}

/// What every reconcile round shares.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Event publisher.
    pub events: Events,
    /// Access to the order replicas' admin API.
    pub group: Arc<dyn OrderGroup>,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// Storage class for the volumes of new stores whose spec names none (`None`: the
    /// cluster's default class).
    pub default_storage_class: Option<String>,
    /// Watch caches of the managed objects.
    pub cache: Caches,
    /// What this process remembers between rounds.
    pub memory: Arc<Memory>,
}

/// What the operator remembers between rounds, per store (by UID). Lost on restart, which
/// only costs one more read or one possibly repeated event.
#[derive(Debug, Default)]
pub struct Memory {
    /// Each store's Raft token. The Secret is created once and never changed, so it is read
    /// once per process instead of every round (and the operator needs no list/watch of
    /// Secrets, which would expose every Secret of the namespace).
    tokens: Mutex<HashMap<String, String>>,
    /// The leader each store's last `LeaderChanged` event named.
    leaders: Mutex<HashMap<String, String>>,
    /// UIDs of pods and claims this process deleted: a cache that does not show the deletion
    /// yet must not cause a second DELETE. Deletions are rare (upgrades, scale-down), so the
    /// set stays small.
    deleted: Mutex<HashSet<String>>,
}

fn store_key(store: &ToyStore) -> String {
    store.uid().unwrap_or_else(|| {
        format!(
            "{}/{}",
            store.namespace().unwrap_or_default(),
            store.name_any()
        )
    })
}

/// Reconciles one ToyStore.
pub async fn reconcile(store: Arc<ToyStore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let ns = store.namespace().ok_or(Error::NoNamespace)?;
    let stores: Api<ToyStore> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&stores, FINALIZER, store, |event| async {
        match event {
            Finalizer::Apply(store) => apply(&store, &ctx).await,
            Finalizer::Cleanup(store) => cleanup(&store, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(start.elapsed(), result.is_ok());
    result
}

/// Retry delay after a failed round.
pub fn error_policy(store: Arc<ToyStore>, error: &Error, _ctx: Arc<Context>) -> Action {
    // A refused apply is also in the status and a Warning event (written by the round).
    tracing::warn!(toystore = %store.name_any(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// One round for a live store: the pipeline's steps, in order.
async fn apply(store: &ToyStore, ctx: &Context) -> Result<Action, Error> {
    let ns = store.namespace().ok_or(Error::NoNamespace)?;
    let initialized = store.status.as_ref().is_some_and(|s| s.initialized);

    // validate
    let valid = match validate(store) {
        Ok(valid) => valid,
        Err(problems) => return report_invalid(store, ctx, initialized, problems).await,
    };
    if !ctx.cache.ready().await {
        return Err(Error::CacheNotReady);
    }

    // observe
    let token = ensure_token(&valid, &store_key(store), ctx, &ns).await?;
    let declared = valid.orders.replicas;
    let desired = desired_members(declared, |i| {
        (
            build::order_replica_url(&valid.name, &valid.namespace, i),
            build::order_replica_raft_url(&valid.name, &valid.namespace, i),
        )
    });
    let obs = ctx.group.observe(&token, &desired).await;
    let orders_sts = cache::get(
        &ctx.cache.stateful_sets,
        &ns,
        &build::orders_name(&valid.name),
    );

    // build and apply
    let current = orders_sts.as_ref().and_then(|s| s.spec.as_ref()?.replicas);
    let inputs = BuildInputs {
        order_replicas: order_statefulset_size(declared, current, &obs),
        storage_class: build::fallback_storage_class(
            orders_sts.as_deref(),
            ctx.default_storage_class.as_deref(),
        ),
    };
    let built = build::build(&valid, &inputs);
    if let Err(error) = apply_objects(ctx, &ns, &built).await {
        return Err(report_failed_apply(store, ctx, &obs, initialized, error).await);
    }

    // membership
    let round = membership_step(store, ctx, &token, &obs, &desired, initialized).await?;

    // rolling upgrade and volume clean-up, only with the membership settled
    let mut rolling = false;
    if matches!(round.step, Step::Done)
        && let Some(sts) = &orders_sts
    {
        rolling = roll(store, ctx, &ns, sts, &token, &obs).await?;
        if inputs.order_replicas == declared {
            delete_departed_volumes(store, declared, ctx, &ns).await?;
        }
    }

    // status
    let input = StatusInput {
        obs: &obs,
        step: &round.step,
        rolling,
        initialized: round.initialized,
        problem: round.problem,
    };
    let status = write_status(store, ctx, &input).await?;
    announce_leader(store, ctx, &status).await;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    // Often enough that `kubectl get toystores` shows a new leader within seconds.
    Ok(Action::requeue(Duration::from_secs(if ready {
        5
    } else {
        2
    })))
}

/// What the membership step of a round did.
struct MembershipRound {
    /// The step decided (and, unless it is `Done` or `Wait`, executed).
    step: Step,
    /// Whether the group has been initialized, now.
    initialized: bool,
    /// A refused step, to report as `Degraded`.
    problem: Option<(&'static str, String)>,
}

/// Decides the next membership step, refuses one that would re-initialize a group that lost
/// its state, and executes it, with an event.
async fn membership_step(
    store: &ToyStore,
    ctx: &Context,
    token: &str,
    obs: &membership::Observation,
    desired: &[api::raft::Member],
    mut initialized: bool,
) -> Result<MembershipRound, Error> {
    let mut step = next_step(obs, desired, DEFAULT_CATCH_UP_LAG);
    let mut problem = None;
    if let Err(refusal) = allowed(&step, initialized, obs) {
        publish(
            ctx,
            store,
            EventType::Warning,
            "GroupLostState",
            "Membership",
            &refusal,
        )
        .await;
        problem = Some(("GroupLostState", refusal));
        step = Step::Wait("refused to re-initialize".into());
    }
    if !matches!(step, Step::Done | Step::Wait(_)) {
        let changed = ctx
            .group
            .execute(token, &step)
            .await
            .map_err(Error::Membership)?;
        // A repeat of a step that had already taken effect is no news.
        if changed {
            let (reason, note) = describe(&step);
            announce(ctx, store, reason, "Membership", &note).await;
        }
    }
    if matches!(step, Step::Done | Step::Initialize { .. }) {
        initialized = true;
    }
    Ok(MembershipRound {
        step,
        initialized,
        problem,
    })
}

/// Reports an apply the API server refused (a Warning event and an `ApplyFailed` status with
/// its message); returns the error for the controller's retry.
async fn report_failed_apply(
    store: &ToyStore,
    ctx: &Context,
    obs: &membership::Observation,
    initialized: bool,
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
    };
    match write_status(store, ctx, &input).await {
        Ok(_) => error,
        Err(status_error) => status_error,
    }
}

/// Reports an invalid spec (a Warning event and a `Degraded` status) and waits for a change.
async fn report_invalid(
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
    let obs = Default::default();
    let input = StatusInput {
        obs: &obs,
        step: &Step::Wait("invalid spec".into()),
        rolling: false,
        initialized,
        problem: Some(("InvalidSpec", message)),
    };
    write_status(store, ctx, &input).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Publishes `LeaderChanged` when the leader differs from the one last announced for this
/// store (by this process, or recorded in the status before it started), so a round that saw
/// no leader, or a status not yet updated in the cache, never announces the same leader again.
async fn announce_leader(store: &ToyStore, ctx: &Context, status: &crate::crd::ToyStoreStatus) {
    let Some(leader) = &status.leader else {
        return;
    };
    let key = store_key(store);
    let changed = {
        let mut leaders = ctx.memory.leaders.lock().expect("memory lock");
        let last = leaders
            .get(&key)
            .cloned()
            .or_else(|| store.status.as_ref().and_then(|s| s.leader.clone()));
        leaders.insert(key, leader.clone());
        last.as_ref() != Some(leader)
    };
    if changed {
        let note = format!("leader is {leader} (term {})", status.term.unwrap_or(0));
        announce(ctx, store, "LeaderChanged", "Observe", &note).await;
    }
}

fn describe(step: &Step) -> (&'static str, String) {
    match step {
        Step::Initialize { members, .. } => (
            "Initialized",
            format!("order group initialized with {} members", members.len()),
        ),
        Step::AddLearner { member, .. } => (
            "MemberAdded",
            format!("replica {} added as a learner", member.id),
        ),
        Step::ChangeVoters { voters, .. } => {
            ("MembershipChanged", format!("voters are now {voters:?}"))
        }
        Step::RemoveNodes { ids, .. } => {
            ("MemberRemoved", format!("replicas {ids:?} left the group"))
        }
        Step::TransferLeader { to, .. } => (
            "LeaderTransferred",
            format!("leadership handed to replica {to}"),
        ),
        Step::Done | Step::Wait(_) => ("Observed", String::new()),
    }
}

/// Reads the Raft token, creating its Secret on first use. Created, never applied, so a token
/// is generated exactly once and never rotated by accident; remembered, so it is read once.
async fn ensure_token(
    store: &ValidStore,
    key: &str,
    ctx: &Context,
    ns: &str,
) -> Result<String, Error> {
    if let Some(token) = ctx.memory.tokens.lock().expect("memory lock").get(key) {
        return Ok(token.clone());
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let name = build::token_secret_name(&store.name);
    let secret = match secrets.get_opt(&name).await? {
        Some(s) => s,
        None => {
            let token = format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            match secrets
                .create(&PostParams::default(), &build::token_secret(store, &token))
                .await
            {
                Ok(s) => s,
                // Someone (an earlier operator instance) created it meanwhile: use theirs.
                Err(kube::Error::Api(e)) if e.code == 409 => secrets.get(&name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TOKEN_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(TOKEN_KEY))
                .map(|s| s.as_bytes().to_vec())
        })
        .ok_or_else(|| Error::BadSecret(name.clone()))?;
    let token = String::from_utf8_lossy(&bytes).trim().to_string();
    ctx.memory
        .tokens
        .lock()
        .expect("memory lock")
        .insert(key.to_string(), token.clone());
    Ok(token)
}

/// Applies every built object, in dependency order.
async fn apply_objects(ctx: &Context, ns: &str, built: &build::Objects) -> Result<(), Error> {
    let (client, cache) = (&ctx.client, &ctx.cache);
    apply_one(client, &cache.config_maps, ns, &built.config_map).await?;
    for sa in &built.service_accounts {
        apply_one(client, &cache.service_accounts, ns, sa).await?;
    }
    for svc in &built.services {
        apply_one(client, &cache.services, ns, svc).await?;
    }
    apply_one(client, &cache.stateful_sets, ns, &built.stateful_set).await?;
    for deployment in &built.deployments {
        apply_one(client, &cache.deployments, ns, deployment).await?;
    }
    for pdb in &built.pod_disruption_budgets {
        apply_one(client, &cache.pod_disruption_budgets, ns, pdb).await?;
    }
    for np in &built.network_policies {
        apply_one(client, &cache.network_policies, ns, np).await?;
    }
    Ok(())
}

/// Server-side applies `obj` unless the cached object already carries the hash of exactly
/// this desired state.
async fn apply_one<K>(client: &Client, cache: &Store<K>, ns: &str, obj: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + 'static,
{
    let name = obj.name_any();
    let hash = fnv1a(&serde_json::to_vec(obj).expect("objects serialize"));
    if cache::get(cache, ns, &name)
        .is_some_and(|o| o.annotations().get(APPLIED_HASH) == Some(&hash))
    {
        return Ok(());
    }
    let mut desired = obj.clone();
    desired
        .annotations_mut()
        .insert(APPLIED_HASH.to_string(), hash);
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await
    .map_err(|source| Error::Apply {
        kind: K::kind(&()).into_owned(),
        name,
        source,
    })?;
    Ok(())
}

/// Whether `meta`'s object is being deleted, or was deleted by this process already.
fn deleting(ctx: &Context, meta: &kube::api::ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
        || meta.uid.as_ref().is_some_and(|uid| {
            ctx.memory
                .deleted
                .lock()
                .expect("memory lock")
                .contains(uid)
        })
}

/// Deletes `name` once: remembers its UID so a lagging cache does not cause a second DELETE.
async fn delete_once<K>(ctx: &Context, ns: &str, obj: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    match api.delete(&obj.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        // Already gone: the goal of the delete.
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(uid) = obj.uid() {
        ctx.memory.deleted.lock().expect("memory lock").insert(uid);
    }
    Ok(())
}

/// One step of the rolling upgrade; returns whether an upgrade is under way.
async fn roll(
    store: &ToyStore,
    ctx: &Context,
    ns: &str,
    sts: &StatefulSet,
    token: &str,
    obs: &membership::Observation,
) -> Result<bool, Error> {
    let Some(update_revision) = sts.status.as_ref().and_then(|s| s.update_revision.clone()) else {
        return Ok(false);
    };
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let pods = cache::labelled(
        &ctx.cache.pods,
        ns,
        &build::selector_labels(&store.name_any(), Component::Orders),
    );
    let order_pods: Vec<OrderPod> = pods
        .iter()
        .filter_map(|p| {
            let ordinal = ordinal_of(&p.name_any())?;
            let revision = p.labels().get("controller-revision-hash");
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            Some(OrderPod {
                ordinal,
                updated: revision == Some(&update_revision),
                ready,
                terminating: deleting(ctx, &p.metadata),
            })
        })
        .collect();
    match next_roll_step(&order_pods, replicas, obs) {
        RollStep::Done => Ok(false),
        RollStep::Wait(why) => {
            tracing::info!(toystore = %store.name_any(), why, "rolling upgrade waiting");
            Ok(true)
        }
        RollStep::DeletePod(ordinal) => {
            let name = build::order_pod_name(&store.name_any(), ordinal);
            if let Some(pod) = pods.iter().find(|p| p.name_any() == name) {
                delete_once(ctx, ns, pod.as_ref()).await?;
            }
            let note = format!("replaced {name} with the new revision");
            announce(ctx, store, "PodUpgraded", "RollingUpgrade", &note).await;
            Ok(true)
        }
        RollStep::TransferLeader { leader, to } => {
            let step = Step::TransferLeader { leader, to };
            let changed = ctx
                .group
                .execute(token, &step)
                .await
                .map_err(Error::Membership)?;
            if changed {
                let note = format!("leadership handed to replica {to} before upgrading the leader");
                announce(ctx, store, "LeaderTransferred", "RollingUpgrade", &note).await;
            }
            Ok(true)
        }
    }
}

/// Deletes the volumes of order replicas beyond the `declared` count: they have left the group
/// and their pods are gone (the StatefulSet is already at the declared size).
async fn delete_departed_volumes(
    store: &ToyStore,
    declared: i32,
    ctx: &Context,
    ns: &str,
) -> Result<(), Error> {
    let selector = build::selector_labels(&store.name_any(), Component::Orders);
    let mut claims = cache::labelled(&ctx.cache.persistent_volume_claims, ns, &selector);
    claims.sort_by_key(|c| c.name_any());
    for pvc in claims {
        let name = pvc.name_any();
        if ordinal_of(&name).is_some_and(|o| o >= declared) && !deleting(ctx, &pvc.metadata) {
            delete_once(ctx, ns, pvc.as_ref()).await?;
            let note = format!("deleted volume {name} of a replica that left the group");
            announce(ctx, store, "VolumeDeleted", "ScaleDown", &note).await;
        }
    }
    Ok(())
}

/// Deletion: owned objects go by owner reference; the order replicas' volumes are found by
/// label and deleted.
async fn cleanup(store: &ToyStore, ctx: &Context) -> Result<Action, Error> {
    let ns = store.namespace().ok_or(Error::NoNamespace)?;
    if !ctx.cache.ready().await {
        return Err(Error::CacheNotReady);
    }
    let selector = build::selector_labels(&store.name_any(), Component::Orders);
    let mut claims = cache::labelled(&ctx.cache.persistent_volume_claims, &ns, &selector);
    claims.sort_by_key(|c| c.name_any());
    for pvc in claims {
        if !deleting(ctx, &pvc.metadata) {
            delete_once::<PersistentVolumeClaim>(ctx, &ns, pvc.as_ref()).await?;
        }
    }
    publish(
        ctx,
        store,
        EventType::Normal,
        "Deleted",
        "Cleanup",
        "volumes deleted",
    )
    .await;
    let key = store_key(store);
    ctx.memory.tokens.lock().expect("memory lock").remove(&key);
    ctx.memory.leaders.lock().expect("memory lock").remove(&key);
    Ok(Action::await_change())
}

/// Writes the status if it changed; returns it.
async fn write_status(
    store: &ToyStore,
    ctx: &Context,
    input: &StatusInput<'_>,
) -> Result<crate::crd::ToyStoreStatus, Error> {
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

/// Publishes an event about `store`; failures are logged, never fatal.
async fn publish(
    ctx: &Context,
    store: &ToyStore,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let reference = store.object_ref(&());
    if let Err(e) = ctx
        .events
        .publish(&reference, type_, reason, action, note)
        .await
    {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// Publishes a change that happened to `store` as an event of its own; failures are logged,
/// never fatal.
async fn announce(ctx: &Context, store: &ToyStore, reason: &str, action: &str, note: &str) {
    let reference = store.object_ref(&());
    if let Err(e) = ctx
        .events
        .announce(&reference, EventType::Normal, reason, action, note)
        .await
    {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// The ordinal at the end of a StatefulSet pod or claim name (`...-orders-3` → 3).
fn ordinal_of(name: &str) -> Option<i32> {
    name.rsplit('-').next()?.parse().ok()
}
