//! Watch caches of the objects the operator manages, so a reconcile round reads without
//! calling the API server.
//!
//! The controller keeps one reflector per kind (see [`crate::controller`]), restricted to objects
//! labelled `app.kubernetes.io/managed-by=toystore-operator` (except the ToyStoreBackups, which
//! people create: all of them); a round reads them here. A cache
//! may lag the API server by a watch event: apply then re-applies an object whose new hash has
//! not arrived yet (server-side apply is idempotent), and deletions are remembered by UID so a
//! lagging cache never causes a second DELETE (see [`crate::reconcile`]). [`Readiness`] tells
//! whether the caches have synced, for `/readyz`.

use std::time::Duration;

use futures_util::FutureExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};

use crate::crd::{ToyStore, ToyStoreBackup};

/// Readers of every cache, one per managed kind, each named after its kind.
#[derive(Clone)]
pub struct Caches {
    pub config_maps: Store<ConfigMap>,
    pub service_accounts: Store<ServiceAccount>,
    pub services: Store<Service>,
    pub stateful_sets: Store<StatefulSet>,
    pub deployments: Store<Deployment>,
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    pub network_policies: Store<NetworkPolicy>,
    /// Pods (of the StatefulSets, labelled through their templates).
    pub pods: Store<Pod>,
    /// PersistentVolumeClaims (of the claim templates, labelled likewise).
    pub persistent_volume_claims: Store<PersistentVolumeClaim>,
    /// Jobs: a store's restore Job (and the backup Jobs, labelled likewise).
    pub jobs: Store<Job>,
    /// Every ToyStoreBackup, filled by the backup controller's watch: a store's schedule and
    /// retention read them.
    pub backups: Store<ToyStoreBackup>,
}

/// The writing ends of [`Caches`], field for field, fed by the controller's watches (or by
/// tests).
pub struct CacheWriters {
    pub config_maps: Writer<ConfigMap>,
    pub service_accounts: Writer<ServiceAccount>,
    pub services: Writer<Service>,
    pub stateful_sets: Writer<StatefulSet>,
    pub deployments: Writer<Deployment>,
    pub pod_disruption_budgets: Writer<PodDisruptionBudget>,
    pub network_policies: Writer<NetworkPolicy>,
    pub pods: Writer<Pod>,
    pub persistent_volume_claims: Writer<PersistentVolumeClaim>,
    pub jobs: Writer<Job>,
    pub backups: Writer<ToyStoreBackup>,
}

/// How long a round waits for the first list of every watch before giving up (and retrying).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl Caches {
    /// Empty caches and their writers; the caches are ready once every writer saw its first
    /// complete list.
    pub fn new() -> (Caches, CacheWriters) {
        let (config_maps, config_maps_w) = reflector::store();
        let (service_accounts, service_accounts_w) = reflector::store();
        let (services, services_w) = reflector::store();
        let (stateful_sets, stateful_sets_w) = reflector::store();
        let (deployments, deployments_w) = reflector::store();
        let (pod_disruption_budgets, pod_disruption_budgets_w) = reflector::store();
        let (network_policies, network_policies_w) = reflector::store();
        let (pods, pods_w) = reflector::store();
        let (persistent_volume_claims, persistent_volume_claims_w) = reflector::store();
        let (jobs, jobs_w) = reflector::store();
        let (backups, backups_w) = reflector::store();
        (
            Caches {
                config_maps,
                service_accounts,
                services,
                stateful_sets,
                deployments,
                pod_disruption_budgets,
                network_policies,
                pods,
                persistent_volume_claims,
                jobs,
                backups,
            },
            CacheWriters {
                config_maps: config_maps_w,
                service_accounts: service_accounts_w,
                services: services_w,
                stateful_sets: stateful_sets_w,
                deployments: deployments_w,
                pod_disruption_budgets: pod_disruption_budgets_w,
                network_policies: network_policies_w,
                pods: pods_w,
                persistent_volume_claims: persistent_volume_claims_w,
                jobs: jobs_w,
                backups: backups_w,
            },
        )
    }

    /// Waits until every cache holds its first complete list. A round must not act on an empty
    /// cache: it would take existing objects for missing ones (and, for a StatefulSet, pick a
    /// storage class for a store that already has one).
    pub async fn ready(&self) -> bool {
        tokio::time::timeout(READY_TIMEOUT, self.first_lists())
            .await
            .unwrap_or(false)
    }

    /// Whether every cache holds its first complete list now (without waiting), for `/readyz`.
    pub fn synced(&self) -> bool {
        self.first_lists().now_or_never() == Some(true)
    }

    /// Completes, true, once every cache holds its first complete list (false: a reflector
    /// was dropped).
    async fn first_lists(&self) -> bool {
        self.config_maps.wait_until_ready().await.is_ok()
            && self.service_accounts.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.stateful_sets.wait_until_ready().await.is_ok()
            && self.deployments.wait_until_ready().await.is_ok()
            && self.pod_disruption_budgets.wait_until_ready().await.is_ok()
            && self.network_policies.wait_until_ready().await.is_ok()
            && self.pods.wait_until_ready().await.is_ok()
            && self
                .persistent_volume_claims
                .wait_until_ready()
                .await
                .is_ok()
            && self.jobs.wait_until_ready().await.is_ok()
            && self.backups.wait_until_ready().await.is_ok()
    }
}

/// Whether the controllers' watch caches have synced: every controller's cache of ToyStores
/// and of each managed kind holds its first complete list. `/readyz` answers with it; an
/// operator that has not synced would take existing objects for missing ones.
#[derive(Clone, Default)]
pub struct Readiness {
    controllers: Vec<(Store<ToyStore>, Caches)>,
}

impl Readiness {
    /// Adds one controller's caches: its ToyStores and the objects it manages.
    pub fn add(&mut self, stores: Store<ToyStore>, caches: Caches) {
        self.controllers.push((stores, caches));
    }

    /// Whether there are controllers and all their caches have synced.
    pub fn is_ready(&self) -> bool {
        !self.controllers.is_empty()
            && self
                .controllers
                .iter()
                .all(|(stores, caches)| synced(stores) && caches.synced())
    }
}

/// Whether `store` holds its first complete list: its readiness future is already complete.
fn synced<K>(store: &Store<K>) -> bool
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

/// The cached object `name` in `ns`.
pub fn get<K>(cache: &Store<K>, ns: &str, name: &str) -> Option<std::sync::Arc<K>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + 'static,
{
    cache.get(&ObjectRef::new(name).within(ns))
}

/// The cached objects in `ns` carrying every label of `selector`, by name (a store's own order
/// is arbitrary, and decisions such as which pod or claim goes first must not depend on it).
pub fn labelled<K>(
    cache: &Store<K>,
    ns: &str,
    selector: &std::collections::BTreeMap<String, String>,
) -> Vec<std::sync::Arc<K>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + 'static,
{
    let mut objects = cache.state_filter(|o| {
        o.meta().namespace.as_deref() == Some(ns)
            && selector
                .iter()
                .all(|(k, v)| o.meta().labels.as_ref().and_then(|l| l.get(k)) == Some(v))
    });
    objects.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    objects
}
