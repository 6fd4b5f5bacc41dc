//! The catalog: a stateless Deployment of several pods, and its ClusterIP Service.
//!
//! Stock lives in the order group's state machine, so a catalog pod holds nothing of its own:
//! it reads the inventory from the group's change stream (a new pod starts from a snapshot),
//! serves product queries and the change feed to the frontends, and defines and restocks toys
//! through the group with conditional commands, so several pods side by side change nothing
//! twice. No volume, then, and any number of pods (`spec.catalog.replicas`, default 2): losing
//! some never stops a purchase, and the others keep answering product queries. It reaches the
//! order replicas (seed list `CATALOG_ORDER_REPLICAS`) and mounts the cluster token, which the
//! change stream and the inventory commands require; only the frontends reach it.

use api::settings;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use super::config::Config;
use super::names::{self, CATALOG_PORT, Component};
use super::pod_template::{
    Placement, container, env, listen_on, pod_template, spread, startup_probe,
    stateless_deployment, token_file, token_mount, token_volume,
};
use super::service::{cluster_ip, component_service};
use crate::validate::ValidStore;

/// The catalog's ClusterIP Service.
pub(super) fn service(store: &ValidStore) -> Service {
    component_service(
        store,
        names::component_name(&store.name, Component::Catalog),
        Component::Catalog,
        cluster_ip(),
        CATALOG_PORT,
        CATALOG_PORT,
    )
}

/// The catalog's Deployment, `spec.catalog.replicas` pods.
pub(super) fn deployment(store: &ValidStore, config: &Config) -> Deployment {
    let catalog = &store.catalog;
    let mut container = container(store, Component::Catalog, catalog.resources.as_ref());
    container.env = Some(env(&settings::Catalog {
        listen: Some(listen_on(CATALOG_PORT)),
        // Reading the group's change stream and sending restock and define commands need the
        // cluster token.
        token_file: Some(token_file()),
        ..settings::Catalog::default()
    }));
    container.volume_mounts = Some(vec![token_mount()]);
    // A new pod first loads the inventory from the group: liveness waits until it answers.
    container.startup_probe = Some(startup_probe());
    // Like the frontends: spread over nodes, so one node's loss leaves catalogs running.
    let placement = Placement {
        spread: vec![spread(store, Component::Catalog, "kubernetes.io/hostname")],
        affinity: None,
    };
    let template = pod_template(
        store,
        Component::Catalog,
        config,
        container,
        vec![token_volume(store)],
        placement,
    );
    stateless_deployment(store, Component::Catalog, catalog.replicas, template)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use crate::build::build;
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn catalog_pods_follow_the_spec_and_keep_no_data() {
        let mut spec = default_spec();
        spec.catalog.replicas = 3;
        // The order group's size does not touch the catalog's.
        let objects = build(&store(spec), &inputs(5));
        let catalog = objects.deployments[0].clone();
        assert_eq!(catalog.metadata.name.as_deref(), Some("shop-catalog"));
        let spec = catalog.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        let rolling = spec.strategy.unwrap().rolling_update.unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        // The token is its only volume: nothing to lose with a pod.
        let pod = spec.template.spec.unwrap();
        let volumes = pod.volumes.unwrap();
        assert_eq!(volumes.len(), 1);
        assert!(volumes[0].secret.is_some(), "{volumes:?}");
        assert!(volumes.iter().all(|v| v.persistent_volume_claim.is_none()));
    }

    #[test]
    fn by_default_two_catalog_pods_run() {
        let objects = build(&store(default_spec()), &inputs(3));
        let spec = objects.deployments[0].spec.clone().unwrap();
        assert_eq!(spec.replicas, Some(2));
    }
}
