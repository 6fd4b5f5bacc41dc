//! The controllers: per watched namespace (or for all), one watching ToyStores and the objects
//! they manage, running [`reconcile`], and one watching ToyStoreBackups and their Jobs, running
//! [`backup::reconcile`], until shutdown. [`Controllers`] builds them first, so the server can
//! tell from their [`Readiness`] whether their caches have synced.
//!
//! Every managed kind is watched through a reflector that fills the round's [`Caches`], and
//! its changes trigger a reconcile of the owning store: owned kinds by owner reference, pods
//! and volume claims (owned by StatefulSets) by their `app.kubernetes.io/instance` label. The
//! ToyStoreBackups are cached too (a store's schedule and retention read them); a backup
//! Job's changes trigger a round of its ToyStoreBackup.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use kube::api::ListParams;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::backup;
use crate::build;
use crate::cache::{Caches, Readiness};
use crate::crd::{ToyStore, ToyStoreBackup};
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
    /// A CRD (named) is not installed.
    #[error(
        "the CRD {0} is not installed in this cluster: install crds/toystore.yaml (the ToyStore and ToyStoreBackup CRDs) with `kubectl apply -f crds/toystore.yaml` or the Helm chart (charts/toystore-operator)"
    )]
    CrdMissing(String),
    /// The operator may not list a kind (named, with where).
    #[error(
        "not allowed to list {0}{1}: grant the operator's RBAC rules (the Helm chart or deploy/manifests do): {2}"
    )]
    Forbidden(String, String, String),
    /// The API server could not be asked.
    #[error("checking that the CRDs are installed: {0}")]
    Api(#[from] kube::Error),
}

/// Checks, before the controllers start, that ToyStores and ToyStoreBackups can be listed in
/// every namespace to watch: a missing CRD would otherwise only show as watch errors (and
/// rounds waiting forever for caches that never fill).
pub async fn check_crd(client: &Client, namespaces: &[Option<String>]) -> Result<(), StartError> {
    for ns in namespaces {
        listable::<ToyStore>(client, ns.as_deref()).await?;
        listable::<ToyStoreBackup>(client, ns.as_deref()).await?;
    }
    Ok(())
}

/// Lists one object of kind `K` in `ns` (all: `None`), as the start-up check.
async fn listable<K>(client: &Client, ns: Option<&str>) -> Result<(), StartError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = scoped(client, ns);
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Err(StartError::CrdMissing(format!(
            "{}.{}",
            K::plural(&()),
            K::group(&())
        ))),
        Err(kube::Error::Api(e)) if e.code == 403 => {
            let place = ns.map_or(String::new(), |ns| format!(" in {ns}"));
            Err(StartError::Forbidden(
                format!("{}s", K::kind(&())),
                place,
                e.message,
            ))
        }
        Err(e) => Err(e.into()),
    }
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

/// A controller's rounds, each already logged.
type Rounds = BoxStream<'static, ()>;

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
        let mut rounds = Vec::new();
        for ns in namespaces {
            let stop_signal = || {
                let mut stopped = stopped.clone();
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }
            };
            let (stores, backups, ctx) = controller(client, ns.as_deref(), base);
            readiness.add(stores.store(), ctx.cache.clone());
            rounds.push(
                stores
                    .graceful_shutdown_on(stop_signal())
                    .run(reconcile, error_policy, ctx.clone())
                    .map(logged)
                    .boxed(),
            );
            rounds.push(
                backups
                    .graceful_shutdown_on(stop_signal())
                    .run(backup::reconcile, backup::error_policy, ctx)
                    .map(logged)
                    .boxed(),
            );
        }
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
            .for_each(|()| async {})
            .await;
    }
}

/// Logs what a round of either controller came to.
fn logged<K: Resource>(
    result: Result<
        (ObjectRef<K>, Action),
        controller::Error<crate::reconcile::Error, watcher::Error>,
    >,
) {
    match result {
        Ok(_) => {}
        // Logged by the error policy (and shown in the object's status when it can be).
        Err(controller::Error::ReconcilerFailed(..)) => {}
        // An object deleted between its event and its round: expected.
        Err(e @ controller::Error::ObjectNotFound(_)) => {
            tracing::debug!(error = %e, "controller event");
        }
        // A watch failing (403, missing CRD, API server unreachable) stops the operator from
        // seeing changes: say so.
        Err(e) => tracing::warn!(error = %e, "controller stream error"),
    }
}

/// The controllers of `ns` (all namespaces: `None`): of ToyStores, watching every kind they
/// manage, and of ToyStoreBackups, watching their Jobs; and their context: `base` with the
/// watch caches their reflectors fill.
fn controller(
    client: &Client,
    ns: Option<&str>,
    base: &Context,
) -> (
    Controller<ToyStore>,
    Controller<ToyStoreBackup>,
    Arc<Context>,
) {
    let (cache, w) = Caches::new();
    let ctx = Arc::new(Context {
        cache,
        ..base.clone()
    });
    let managed = || watcher::Config::default().labels(&build::managed_selector());
    let stores = Controller::new(scoped::<ToyStore>(client, ns), watcher::Config::default())
        .owns_stream(cached(client, ns, w.config_maps, managed()))
        .owns_stream(cached(client, ns, w.service_accounts, managed()))
        .owns_stream(cached(client, ns, w.services, managed()))
        .owns_stream(cached(client, ns, w.stateful_sets, managed()))
        .owns_stream(cached(client, ns, w.deployments, managed()))
        .owns_stream(cached(client, ns, w.pod_disruption_budgets, managed()))
        .owns_stream(cached(client, ns, w.network_policies, managed()))
        .owns_stream(cached(client, ns, w.jobs, managed()))
        .watches_stream(cached(client, ns, w.pods, managed()), store_of)
        .watches_stream(
            cached(client, ns, w.persistent_volume_claims, managed()),
            store_of,
        );
    let backups = Controller::for_stream(
        cached(client, ns, w.backups, watcher::Config::default()),
        ctx.cache.backups.clone(),
    )
    .owns(
        scoped::<Job>(client, ns),
        watcher::Config::default().labels(build::BACKUP_LABEL),
    );
    (stores, backups, ctx)
}

/// The objects of kind `K` in `ns` that `config` selects: watched, cached through `writer`,
/// and passed on (changes and deletions) as reconcile triggers.
fn cached<K>(
    client: &Client,
    ns: Option<&str>,
    writer: Writer<K>,
    config: watcher::Config,
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
