//! The build step: from a validated store to the Kubernetes objects that run it.
//!
//! Reconcile is a pipeline (validate → build → apply → membership → status). This module is
//! the build step, and it is a pure function: its only input about the store is the
//! [`ValidStore`] that [`crate::validate`] returned (so it cannot read a field that was not
//! checked), plus a few facts the steps that look at the cluster decided ([`BuildInputs`]). It
//! makes no API calls, reads no clock and draws no random numbers. The same input always gives
//! byte-for-byte the same objects, which is what makes server-side apply idempotent (an
//! unchanged store applies as a no-op) and lets the golden tests in `tests/golden.rs` pin
//! every field without a cluster.
//!
//! One module per kind of thing built, each with its own tests:
//! - [`names`]: the components, object names, ports and in-cluster URLs;
//! - [`metadata`]: labels, selectors and the owner reference every object carries;
//! - [`config`]: the settings ConfigMap, the per-component config hash, the token Secret;
//! - [`pod_template`]: what all pods share (container, probes, security, env, placement) and
//!   their ServiceAccounts;
//! - [`storage`]: the order replicas' data volume claims and their storage class;
//! - [`service`]: the shape every Service shares;
//! - [`orders`], [`catalog`], [`frontend`]: each component's workload and Services;
//! - [`pdb`]: the PodDisruptionBudgets of the order group and the catalog;
//! - [`network_policies`]: who may reach which component;
//! - [`jobs`]: the backup and restore Jobs and the volume claim a restore seeds (built on
//!   demand by the backup controller and the restore step, not part of [`Objects`]).
//!
//! For a store named `N` [`build`] produces the ConfigMap `N-config`, the ServiceAccounts,
//! Services, NetworkPolicies `N-orders`, `N-catalog` and `N-frontend` (plus the Service
//! `N-orders-client`), the StatefulSet `N-orders` (the one component with volumes), the
//! Deployments `N-catalog` and `N-frontend` (stateless) and the PodDisruptionBudgets
//! `N-orders` and `N-catalog`. The token Secret is built apart, by [`token_secret`]: its value
//! is generated once, not derived from the spec.

mod catalog;
pub mod config;
mod frontend;
pub mod jobs;
pub mod metadata;
pub mod names;
pub mod network_policies;
mod orders;
mod pdb;
pub mod pod_template;
mod service;
pub mod storage;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

pub use config::{CONFIG_HASH_ANNOTATION, TOKEN_KEY, token_secret};
pub use jobs::{backup_job, restore_claim, restore_job};
pub use metadata::{
    BACKUP_LABEL, FIELD_MANAGER, INSTANCE_LABEL, SCHEDULED_LABEL, STORE_LABEL, controlled_by,
    labels, managed_selector, selector_labels,
};
pub use names::{
    Component, backup_job_name, catalog_url, component_name, config_map_name, order_pod_name,
    order_pvc_name, order_replica_raft_url, order_replica_url, orders_name, restore_job_name,
    token_secret_name,
};
pub use network_policies::OPERATOR_APP_NAME;
pub use pod_template::RUN_AS;
pub use storage::fallback_storage_class;

use crate::validate::ValidStore;

/// Facts decided before build by steps that look at the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInputs {
    /// Size of the order StatefulSet, chosen by the membership step. It follows
    /// `spec.orders.replicas` except while a scale-down is in progress: the StatefulSet shrinks
    /// only after the removed members have left the Raft membership.
    pub order_replicas: i32,
    /// Storage class of volume claims whose spec names none (`None`: the cluster's default
    /// class). Chosen by [`fallback_storage_class`].
    pub storage_class: Option<String>,
}

/// Everything [`build`] produces for one store, to be server-side applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Objects {
    /// `{name}-config`: the non-secret settings.
    pub config_map: ConfigMap,
    /// One per component: orders, catalog, frontend.
    pub service_accounts: Vec<ServiceAccount>,
    /// Orders headless, orders client, catalog, frontend.
    pub services: Vec<Service>,
    /// The order group.
    pub stateful_set: StatefulSet,
    /// Catalog, then frontend.
    pub deployments: Vec<Deployment>,
    /// Orders (keeps a quorum), then catalog (one pod down at a time).
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    /// Orders, catalog, frontend.
    pub network_policies: Vec<NetworkPolicy>,
}

/// Builds every object of `store` except the token Secret. Pure and deterministic.
pub fn build(store: &ValidStore, inputs: &BuildInputs) -> Objects {
    let config = config::config(store);
    let [orders_headless, orders_client] = orders::services(store);
    Objects {
        config_map: config::config_map(store, &config),
        service_accounts: Component::ALL
            .into_iter()
            .map(|component| pod_template::service_account(store, component))
            .collect(),
        services: vec![
            orders_headless,
            orders_client,
            catalog::service(store),
            frontend::service(store),
        ],
        stateful_set: orders::stateful_set(store, inputs, &config),
        deployments: vec![
            catalog::deployment(store, &config),
            frontend::deployment(store, &config),
        ],
        pod_disruption_budgets: pdb::pdbs(store),
        network_policies: network_policies::network_policies(store),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{PodTemplateSpec, Secret};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::crd::{ToyStore, ToyStoreSpec};
    use crate::validate::validate;

    /// `shop` in namespace `toys`, validated.
    pub(crate) fn store(spec: ToyStoreSpec) -> ValidStore {
        let mut store = ToyStore::new("shop", spec);
        store.metadata.namespace = Some("toys".into());
        store.metadata.uid = Some("0b6b4c3e-5f0e-4a8e-9d4c-3a1f2e7d9c10".into());
        validate(&store).expect("a valid store")
    }

    pub(crate) fn default_spec() -> ToyStoreSpec {
        ToyStoreSpec {
            image: "toystore:test".into(),
            image_pull_policy: None,
            image_pull_secrets: Vec::new(),
            orders: Default::default(),
            catalog: Default::default(),
            frontend: Default::default(),
            backup: None,
            restore: None,
        }
    }

    pub(crate) fn inputs(order_replicas: i32) -> BuildInputs {
        BuildInputs {
            order_replicas,
            storage_class: None,
        }
    }

    fn template_hash(template: &PodTemplateSpec) -> String {
        template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    }

    /// The pod templates of a build: orders, catalog, frontend.
    pub(crate) fn templates(objects: &Objects) -> [(Component, PodTemplateSpec); 3] {
        let deployment = |i: usize| objects.deployments[i].spec.clone().unwrap().template;
        [
            (
                Component::Orders,
                objects.stateful_set.spec.clone().unwrap().template,
            ),
            (Component::Catalog, deployment(0)),
            (Component::Frontend, deployment(1)),
        ]
    }

    /// Hashes of the orders, catalog and frontend pod templates.
    pub(crate) fn hashes(store: &ValidStore) -> [String; 3] {
        let objects = build(store, &inputs(store.orders.replicas));
        templates(&objects).map(|(_, template)| template_hash(&template))
    }

    /// Every object's metadata with its kind, in build order, the token Secret last.
    fn all_metadata(objects: &Objects, secret: &Secret) -> Vec<(&'static str, ObjectMeta)> {
        let mut all = vec![("ConfigMap", objects.config_map.metadata.clone())];
        all.extend(
            objects
                .service_accounts
                .iter()
                .map(|o| ("ServiceAccount", o.metadata.clone())),
        );
        all.extend(
            objects
                .services
                .iter()
                .map(|o| ("Service", o.metadata.clone())),
        );
        all.push(("StatefulSet", objects.stateful_set.metadata.clone()));
        all.extend(
            objects
                .deployments
                .iter()
                .map(|o| ("Deployment", o.metadata.clone())),
        );
        all.extend(
            objects
                .pod_disruption_budgets
                .iter()
                .map(|o| ("PodDisruptionBudget", o.metadata.clone())),
        );
        all.extend(
            objects
                .network_policies
                .iter()
                .map(|o| ("NetworkPolicy", o.metadata.clone())),
        );
        all.push(("Secret", secret.metadata.clone()));
        all
    }

    #[test]
    fn every_object_is_named_labelled_and_owned_by_the_store() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        let secret = token_secret(&store, "s3cret");
        let all = all_metadata(&objects, &secret);
        assert_eq!(all.len(), 1 + 3 + 4 + 1 + 2 + 2 + 3 + 1);
        for (kind, meta) in all {
            let name = meta.name.clone().unwrap();
            assert!(name.starts_with("shop-"), "{kind} {name}");
            assert_eq!(meta.namespace.as_deref(), Some("toys"), "{kind} {name}");
            let labels = meta.labels.clone().unwrap();
            assert_eq!(labels["app.kubernetes.io/name"], "toystore");
            assert_eq!(labels["app.kubernetes.io/instance"], "shop");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "toystore-operator");
            let component = &labels["app.kubernetes.io/component"];
            assert!(
                Component::ALL
                    .iter()
                    .any(|c| c.as_str() == component.as_str()),
                "{kind} {name}: {component}"
            );
            let owners = meta.owner_references.unwrap();
            assert_eq!(owners.len(), 1, "{kind} {name}");
            let owner = &owners[0];
            assert_eq!(owner.api_version, "toystore.dev/v1alpha1");
            assert_eq!(owner.kind, "ToyStore");
            assert_eq!(owner.name, "shop");
            assert_eq!(owner.uid, "0b6b4c3e-5f0e-4a8e-9d4c-3a1f2e7d9c10");
            assert_eq!(owner.controller, Some(true));
            assert_eq!(owner.block_owner_deletion, Some(true));
        }
    }

    #[test]
    fn pod_selectors_match_pod_template_labels() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        for (component, template) in templates(&objects) {
            let pod_labels = template.metadata.as_ref().unwrap().labels.clone().unwrap();
            for (key, value) in selector_labels(&store.name, component) {
                assert_eq!(pod_labels.get(&key), Some(&value), "{component:?}");
            }
        }
        for service in &objects.services {
            let selected = service.spec.as_ref().unwrap().selector.clone().unwrap();
            let component =
                &service.metadata.labels.as_ref().unwrap()["app.kubernetes.io/component"];
            let component = Component::ALL
                .into_iter()
                .find(|c| c.as_str() == component.as_str())
                .unwrap();
            assert_eq!(selected, selector_labels(&store.name, component));
        }
    }
}
