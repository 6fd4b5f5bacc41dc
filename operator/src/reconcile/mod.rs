//! Reconcile as a pipeline: validate → token → restore → observe → build → apply → membership
//! → upgrade and volumes → schedule → status, each step a function of its own module:
//!
//! - validate: [`crate::validate`] turns the resource into a [`ValidStore`]; an invalid spec
//!   becomes a `Degraded` condition and an event (`report`), and the round waits for a change;
//! - `token`: the store's Raft token, its Secret created once;
//! - `restore`: for a store created from a backup, before its order group exists, the
//!   restore Job; nothing else is applied until it succeeded (and it never runs again after);
//! - observe: the order group ([`crate::order_group`]) and the watch caches ([`crate::cache`]);
//! - build: [`crate::build::build`], pure, from the validated store to the objects;
//! - `apply`: server-side apply, skipped for an object whose applied hash is unchanged; an
//!   apply the API server refuses becomes an `ApplyFailed` condition and a Warning event;
//! - `group`: one step of the shared membership driver;
//! - `upgrade` and `volumes`: with the membership settled, one step of the rolling upgrade
//!   and the clean-up of volumes of members that left;
//! - `schedule`: the store's scheduled backups (ToyStoreBackups) and their retention;
//! - status: [`crate::status`], written only when it changed (`report`).
//!
//! A finalizer guards deletion (`delete`). A failed round is retried by [`error_policy`]
//! after a delay that depends on its [`ErrorKind`].

mod apply;
pub(crate) use apply::create_if_absent;
mod delete;
mod error;
mod group;
mod memory;
mod report;
pub(crate) use report::publish;
mod restore;
mod schedule;
mod token;
mod upgrade;
mod volumes;

use std::sync::Arc;
use std::time::Instant;

use api::view::GroupView;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, ResourceExt};
use membership::Step;

pub use apply::APPLIED_HASH;
pub use delete::FINALIZER;
pub use error::{Error, ErrorKind};
pub use memory::Memory;

use crate::build::{self, BuildInputs};
use crate::cache::{self, Caches};
use crate::crd::ToyStore;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::order_group::{OrderGroup, desired_members, order_statefulset_size};
use crate::status::{Restore, StatusInput};
use crate::validate::{ValidStore, validate};

/// What every reconcile round shares.
#[derive(Clone)]
pub struct Context {
    /// The API server connection every write and uncached read goes through.
    pub client: Client,
    /// Publishes the rounds' Events.
    pub events: Events,
    /// Access to the order replicas' admin API.
    pub group: Arc<dyn OrderGroup>,
    /// Counts rounds, their durations and failures for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Storage class for the volumes of new stores whose spec names none (`None`: the
    /// cluster's default class).
    pub default_storage_class: Option<String>,
    /// Watch caches of the managed objects, which rounds read instead of the API server.
    pub cache: Caches,
    /// What this process remembers between rounds.
    pub memory: Arc<Memory>,
}

/// Reconciles one ToyStore: a live store's round, or its deletion.
#[tracing::instrument(
    skip_all,
    fields(store = %store.name_any(), namespace = %store.namespace().unwrap_or_default())
)]
pub async fn reconcile(store: Arc<ToyStore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let ns = store.namespace().ok_or(Error::NoNamespace)?;
    let stores: Api<ToyStore> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&stores, FINALIZER, store, |event| async {
        match event {
            Finalizer::Apply(store) => round(&store, &ctx).await,
            Finalizer::Cleanup(store) => delete::cleanup(&store, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(start.elapsed(), result.is_ok());
    result
}

/// After a failed round: counts the failure by kind and retries after the kind's delay
/// (a transient failure soon, an invalid spec only after long, or on a change).
pub fn error_policy(store: Arc<ToyStore>, error: &Error, ctx: Arc<Context>) -> Action {
    let kind = error.kind();
    ctx.metrics.failed(kind);
    // A refused apply is also in the status and a Warning event (written by the round).
    tracing::warn!(
        store = %store.name_any(),
        namespace = %store.namespace().unwrap_or_default(),
        kind = kind.label(),
        %error,
        "reconcile failed"
    );
    Action::requeue(kind.retry_after())
}

/// One round for a live store: the pipeline's steps, in order.
async fn round(store: &ToyStore, ctx: &Context) -> Result<Action, Error> {
    let initialized = store.status.as_ref().is_some_and(|s| s.initialized);
    let valid = match validate(store) {
        Ok(valid) => valid,
        Err(problems) => return report::invalid_spec(store, ctx, initialized, problems).await,
    };
    if !ctx.cache.ready().await {
        return Err(Error::CacheNotReady);
    }
    let token = token::ensure(store, &valid, ctx).await?;
    let restore: Restore = match restore::gate(store, &valid, ctx).await? {
        restore::Gate::Proceed(restore) => restore,
        restore::Gate::Hold(restore) => return report::restoring(store, ctx, restore).await,
    };
    // A restored group exists from the moment its state is seeded: were replica 0 to lose it
    // before the others joined, the group must not be initialized anew, empty.
    let initialized = initialized || matches!(restore, Restore::Done(Some(_)));
    let seen = observe(&valid, ctx, &token).await;
    let inputs = build_inputs(&valid, ctx, &seen);
    let ns = valid.namespace.as_str();
    if let Err(error) = apply::objects(ctx, ns, &build::build(&valid, &inputs)).await {
        return Err(
            report::failed_apply(store, ctx, &seen.group, initialized, restore, error).await,
        );
    }
    let group_round =
        group::step(store, ctx, &token, &seen.group, &seen.desired, initialized).await?;
    let mut rolling = false;
    if matches!(group_round.step, Step::Done)
        && let Some(sts) = &seen.orders
    {
        rolling = upgrade::step(store, ctx, ns, sts, &token, &seen.group).await?;
        let declared = valid.orders.replicas;
        if inputs.order_replicas == declared {
            volumes::delete_departed(store, declared, ctx, ns).await?;
        }
    }
    let scheduled = schedule::step(store, &valid, ctx, Timestamp::now()).await?;
    let input = StatusInput {
        obs: &seen.group,
        step: &group_round.step,
        rolling,
        initialized: group_round.initialized,
        problem: group_round.problem,
        restore,
        scheduled: scheduled.created,
    };
    let status = report::status(store, ctx, &input).await?;
    report::leader(store, ctx, &status).await;
    Ok(report::requeue(&status))
}

/// What a round sees before it acts.
struct Seen {
    /// The members the spec asks for.
    desired: Vec<api::raft::Member>,
    /// The order group, as its replicas answered.
    group: GroupView,
    /// The orders StatefulSet, from the cache.
    orders: Option<Arc<StatefulSet>>,
}

/// Observes the order group and reads the orders StatefulSet from the cache.
async fn observe(valid: &ValidStore, ctx: &Context, token: &str) -> Seen {
    let desired = desired_members(valid.orders.replicas, |i| {
        (
            build::order_replica_url(&valid.name, &valid.namespace, i),
            build::order_replica_raft_url(&valid.name, &valid.namespace, i),
        )
    });
    let group = ctx.group.observe(token, &desired).await;
    let orders = cache::get(
        &ctx.cache.stateful_sets,
        &valid.namespace,
        &build::orders_name(&valid.name),
    );
    Seen {
        desired,
        group,
        orders,
    }
}

/// What the build step needs beyond the spec: the StatefulSet's size (a member leaves the
/// group before its pod goes) and the storage class the volumes already have.
fn build_inputs(valid: &ValidStore, ctx: &Context, seen: &Seen) -> BuildInputs {
    let current = seen.orders.as_ref().and_then(|s| s.spec.as_ref()?.replicas);
    BuildInputs {
        order_replicas: order_statefulset_size(valid.orders.replicas, current, &seen.group),
        storage_class: build::fallback_storage_class(
            seen.orders.as_deref(),
            ctx.default_storage_class.as_deref(),
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use http::{Request, Response};
    use kube::client::Body;
    use kube::core::Status;
    use kube::runtime::events::Reporter;

    use super::*;
    use crate::order_group::HttpOrderGroup;

    /// A context over `client` with empty caches and a real (unused) order group.
    pub(crate) fn context(client: Client) -> Arc<Context> {
        Arc::new(Context {
            client: client.clone(),
            events: Events::new(client, Reporter::from("toystore-operator")),
            group: Arc::new(HttpOrderGroup::default()),
            metrics: Arc::new(Metrics::default()),
            default_storage_class: None,
            cache: Caches::new().0,
            memory: Arc::new(Memory::default()),
        })
    }

    #[tokio::test]
    async fn error_policy_retries_by_kind_and_counts_each_failure() {
        let (service, _api_server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let ctx = context(Client::new(service, "shop"));
        let spec = serde_json::from_value(serde_json::json!({"image": "toystore:1"})).unwrap();
        let store = Arc::new(ToyStore::new("toys", spec));
        let refused = Error::Apply {
            kind: "StatefulSet".into(),
            name: "toys-orders".into(),
            source: kube::Error::Api(Status::failure("invalid", "Invalid").with_code(422).boxed()),
        };
        let retry = |error: &Error| error_policy(store.clone(), error, ctx.clone());
        assert_eq!(
            retry(&Error::CacheNotReady),
            Action::requeue(Duration::from_secs(5))
        );
        assert_eq!(retry(&refused), Action::requeue(Duration::from_secs(300)));
        assert_eq!(
            retry(&Error::Membership("timed out".into())),
            Action::requeue(Duration::from_secs(5))
        );
        let metrics = ctx.metrics.render();
        for line in [
            "toystore_operator_reconcile_errors_total{kind=\"transient\"} 2",
            "toystore_operator_reconcile_errors_total{kind=\"invalid_spec\"} 1",
            "toystore_operator_reconcile_errors_total{kind=\"misconfigured\"} 0",
        ] {
            assert!(metrics.contains(line), "{line} missing from\n{metrics}");
        }
    }
}
