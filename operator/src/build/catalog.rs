//! The catalog: a single-pod StatefulSet with its own volume, and its ClusterIP Service.
//!
//! One pod, because the catalog is the one owner of stock and answers every `take` from one
//! durable store; a StatefulSet, so the pod keeps its volume across rescheduling. It is
//! reached by the order replicas (stock takes) and the frontends (reads, change feed).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::Service;

use super::BuildInputs;
use super::names::{self, CATALOG_PORT, Component};
use super::pod_template::{
    Placement, container, env, listen_on, pod_template, spread, startup_probe, token_file,
    token_mount, token_volume,
};
use super::service::{cluster_ip, component_service};
use super::storage::{self, DATA_DIR, data_mount};
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

/// The catalog's StatefulSet.
pub(super) fn stateful_set(
    store: &ValidStore,
    inputs: &BuildInputs,
    config: &BTreeMap<String, String>,
) -> StatefulSet {
    let catalog = &store.catalog;
    let mut container = container(store, Component::Catalog, catalog.resources.as_ref());
    container.env = Some(vec![
        env("CATALOG_LISTEN", listen_on(Component::Catalog)),
        env("CATALOG_DATA_DIR", DATA_DIR),
        // Taking stock needs the cluster token: only the order replicas may.
        env("CATALOG_TOKEN_FILE", token_file()),
    ]);
    container.volume_mounts = Some(vec![data_mount(), token_mount()]);
    container.startup_probe = Some(startup_probe());
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
    storage::stateful_set(
        store,
        Component::Catalog,
        &catalog.storage,
        inputs,
        template,
        StatefulSetSpec {
            replicas: Some(1),
            ..StatefulSetSpec::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::build::build;
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn one_catalog_pod_keeps_its_volume() {
        // The order group's size does not touch the catalog.
        let objects = build(&store(default_spec()), &inputs(5));
        let catalog = objects.stateful_sets[1].spec.clone().unwrap();
        assert_eq!(catalog.replicas, Some(1));
        let claims = catalog.volume_claim_templates.unwrap();
        assert_eq!(claims[0].metadata.name.as_deref(), Some("data"));
        let retention = catalog.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!(retention.when_deleted.as_deref(), Some("Delete"));
    }
}
