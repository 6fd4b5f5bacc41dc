//! The controllers: one per watched namespace (or one for all), each watching ToyStores and
//! the objects they manage, running [`reconcile`] until shutdown. [`Controllers`] builds them
//! first, so the server can tell from their [`Readiness`] whether their caches have synced.
//!
//! Every managed kind is watched through a reflector that fills the round's [`Caches`], and
//! its changes trigger a reconcile of the owning store: owned kinds by owner reference, pods
//! and volume claims (owned by StatefulSets) by their `app.kubernetes.io/instance` label.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::build;
use crate::cache::{Caches, Readiness};
use crate::crd::ToyStore;
use crate::reconcile::{Context, error_policy, reconcile};

/// The namespaces to watch: the non-empty entries of `listed`, or `[None]` (all namespaces)
/// when there are none.
pub fn watched(listed: &[String]) -> Vec<Option<String>> {
    let named: Vec<Option<String>> = listed
        .iter()
        .map(|ns| ns.trim())
        .filter(|ns| !ns.is_empty())
        .map(|ns| Some(ns.to_string()))
        .collect();
    if named.is_empty() { vec![None] } else { named }
}

/// Why the operator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The ToyStore CRD is not installed.
    #[error(
        "the ToyStore CRD (toystores.toystore.dev) is not installed in this cluster: install it with `kubectl apply -f crds/toystore.yaml` or the Helm chart (charts/toystore-operator)"
    )]
    CrdMissing,
    /// The operator may not list ToyStores.
    #[error(
        "not allowed to list ToyStores{0}: grant the operator's RBAC rules (the Helm chart or deploy/manifests do): {1}"
    )]
    Forbidden(String, String),
    /// The API server could not be asked.
    #[error("checking that the ToyStore CRD is installed: {0}")]
    Api(#[from] kube::Error),
}

/// Checks, before the controllers start, that ToyStores can be listed in every namespace to
/// watch: a missing CRD would otherwise only show as watch errors.
pub async fn check_crd(client: &Client, namespaces: &[Option<String>]) -> Result<(), StartError> {
    for ns in namespaces {
        let api: Api<ToyStore> = scoped(client, ns.as_deref());
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Err(StartError::CrdMissing),
            Err(kube::Error::Api(e)) if e.code == 403 => {
                let place = ns.as_ref().map_or(String::new(), |ns| format!(" in {ns}"));
                return Err(StartError::Forbidden(place, e.message));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs the controllers of `namespaces` (see [`watched`]) until `shutdown` completes.
pub async fn run(
    client: Client,
    namespaces: &[Option<String>],
    base: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    Controllers::new(&client, namespaces, &base)
        .run(shutdown)
        .await;
}

/// What a controller's stream yields: each round's store and next action, or why none ran.
type Rounds = BoxStream<
    'static,
    Result<
        (ObjectRef<ToyStore>, Action),
        controller::Error<crate::reconcile::Error, watcher::Error>,
    >,
>;

/// The controllers of some namespaces, built but not yet running, with the [`Readiness`] of
/// their caches.
pub struct Controllers {
    rounds: Vec<Rounds>,
    readiness: Readiness,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Controllers {
    /// One controller per entry of `namespaces` (see [`watched`]), each with a copy of `base`
    /// with its own watch caches. A namespaced watch needs only namespaced permissions, so a
    /// list of namespaces runs with Roles in those namespaces and no ClusterRole.
    pub fn new(client: &Client, namespaces: &[Option<String>], base: &Arc<Context>) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut readiness = Readiness::default();
        let rounds = namespaces
            .iter()
            .map(|ns| {
                let mut stopped = stopped.clone();
                let stopped = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let (controller, ctx) = controller(client, ns.as_deref(), base);
                readiness.add(controller.store(), ctx.cache.clone());
                controller
                    .graceful_shutdown_on(stopped)
                    .run(reconcile, error_policy, ctx)
                    .boxed()
            })
            .collect();
        Self {
            rounds,
            readiness,
            stop,
        }
    }

    /// Whether every controller's caches have synced (for `/readyz`).
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs the controllers until `shutdown` completes, then lets their rounds finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop;
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        futures_util::stream::select_all(self.rounds)
            .for_each(|result| async move {
                match result {
                    Ok(_) => {}
                    // Logged by `error_policy` (and shown in the store's status when it can be).
                    Err(controller::Error::ReconcilerFailed(..)) => {}
                    // A store deleted between its event and its round: expected.
                    Err(e @ controller::Error::ObjectNotFound(_)) => {
                        tracing::debug!(error = %e, "controller event");
                    }
                    // A watch failing (403, missing CRD, API server unreachable) stops the
                    // operator from seeing changes: say so.
                    Err(e) => tracing::warn!(error = %e, "controller stream error"),
                }
            })
            .await;
    }
}

/// The controller of `ns` (all namespaces: `None`), watching ToyStores and every kind they
/// manage, and its context: `base` with the watch caches its reflectors fill.
fn controller(
    client: &Client,
    ns: Option<&str>,
    base: &Context,
) -> (Controller<ToyStore>, Arc<Context>) {
    let (cache, w) = Caches::new();
    let ctx = Arc::new(Context {
        cache,
        ..base.clone()
    });
    let controller = Controller::new(scoped::<ToyStore>(client, ns), watcher::Config::default())
        .owns_stream(cached(client, ns, w.config_maps))
        .owns_stream(cached(client, ns, w.service_accounts))
        .owns_stream(cached(client, ns, w.services))
        .owns_stream(cached(client, ns, w.stateful_sets))
        .owns_stream(cached(client, ns, w.deployments))
        .owns_stream(cached(client, ns, w.pod_disruption_budgets))
        .owns_stream(cached(client, ns, w.network_policies))
        .watches_stream(cached(client, ns, w.pods), store_of)
        .watches_stream(cached(client, ns, w.persistent_volume_claims), store_of);
    (controller, ctx)
}

/// The managed objects of kind `K` in `ns`: watched, cached through `writer`, and passed on
/// (changes and deletions) as reconcile triggers.
fn cached<K>(
    client: &Client,
    ns: Option<&str>,
    writer: Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let config = watcher::Config::default().labels(&build::managed_selector());
    reflector::reflector(writer, watcher(scoped::<K>(client, ns), config))
        .default_backoff()
        .touched_objects()
}

/// The store a pod or claim belongs to, by its instance label.
fn store_of<K: Resource>(obj: K) -> Option<ObjectRef<ToyStore>> {
    let name = obj.labels().get(build::INSTANCE_LABEL)?;
    Some(ObjectRef::new(name).within(&obj.namespace()?))
}

/// An Api over one namespace, or all of them.
fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_listed_namespace_means_all() {
        assert_eq!(watched(&[]), vec![None]);
        assert_eq!(watched(&["".into(), " ".into()]), vec![None]);
        assert_eq!(
            watched(&["a".into(), " b ".into()]),
            vec![Some("a".into()), Some("b".into())]
        );
    }
}
