//! The order group: the StatefulSet of Raft replicas, its governing headless Service and the
//! client Service.
//!
//! A replica's identity is its pod ordinal: it is the Raft node id (from the pod-index label),
//! it names the pod, its volume and its stable DNS name through the headless Service, so a
//! replica keeps its identity and data across restarts and rescheduling. The StatefulSet
//! starts members in parallel (a group needs a quorum before any pod is ready) and uses
//! `OnDelete` updates: the operator rolls the pods itself, one at a time, the leader last,
//! after a hand-over (see [`crate::membership`]). Its size comes from [`BuildInputs`], not the
//! spec: during a scale-down it shrinks only after the removed members left the membership.

use api::settings::{self, CommandLine};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, PodAffinityTerm, PodAntiAffinity, Service, ServicePort, ServiceSpec,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildInputs;
use super::config::Config;
use super::metadata::selector;
use super::names::{self, Component, ORDER_PORT, ORDER_RAFT_PORT, RAFT_PORT_NAME};
use super::pod_template::{
    Placement, container, env, env_from_field, listen_on, pod_template, spread, startup_probe,
    token_file, token_mount, token_volume,
};
use super::service::{cluster_ip, component_service};
use super::storage::{self, DATA_DIR, data_mount};
use crate::validate::ValidStore;

/// The headless governing Service and the client Service of the order group.
pub(super) fn services(store: &ValidStore) -> [Service; 2] {
    // Governing Service of the StatefulSet: gives every replica a stable DNS name, ready or
    // not, so members reach each other while no leader exists yet. It carries the peer port
    // too (the client Service does not: peers address each other by pod).
    let mut headless = component_service(
        store,
        names::orders_name(&store.name),
        Component::Orders,
        ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            ..cluster_ip()
        },
        ORDER_PORT,
        ORDER_PORT,
    );
    if let Some(ports) = headless.spec.as_mut().and_then(|s| s.ports.as_mut()) {
        ports.push(ServicePort {
            name: Some(RAFT_PORT_NAME.into()),
            port: ORDER_RAFT_PORT,
            target_port: Some(IntOrString::Int(ORDER_RAFT_PORT)),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        });
    }
    [
        headless,
        component_service(
            store,
            names::orders_client_name(&store.name),
            Component::Orders,
            cluster_ip(),
            ORDER_PORT,
            ORDER_PORT,
        ),
    ]
}

/// The order replicas' StatefulSet, `inputs.order_replicas` pods.
pub(super) fn stateful_set(
    store: &ValidStore,
    inputs: &BuildInputs,
    config: &Config,
) -> StatefulSet {
    let name = names::orders_name(&store.name);
    let orders = &store.orders;
    let mut container = container(store, Component::Orders, orders.resources.as_ref());
    let mut vars = vec![
        env_from_field("POD_NAME", "metadata.name"),
        env_from_field("POD_NAMESPACE", "metadata.namespace"),
        // The Raft node id is the pod ordinal (label set by Kubernetes >= 1.28), so a pod keeps
        // its identity across restarts and rescheduling.
        env_from_field(
            &settings::OrderReplica::env_var("id"),
            "metadata.labels['apps.kubernetes.io/pod-index']",
        ),
    ];
    vars.extend(env(&settings::OrderReplica {
        listen: Some(listen_on(ORDER_PORT)),
        // Must equal `order_replica_url` for this ordinal; POD_NAME and POD_NAMESPACE are
        // defined above, as `$(VAR)` expansion requires.
        advertise_url: Some(format!(
            "http://$(POD_NAME).{name}.$(POD_NAMESPACE).svc:{ORDER_PORT}"
        )),
        raft_listen: Some(listen_on(ORDER_RAFT_PORT)),
        // Must equal `order_replica_raft_url` for this ordinal.
        raft_advertise_url: Some(format!(
            "http://$(POD_NAME).{name}.$(POD_NAMESPACE).svc:{ORDER_RAFT_PORT}"
        )),
        data_dir: Some(DATA_DIR.into()),
        token_file: Some(token_file()),
        ..settings::OrderReplica::default()
    }));
    container.env = Some(vars);
    if let Some(ports) = container.ports.as_mut() {
        ports.push(ContainerPort {
            name: Some(RAFT_PORT_NAME.into()),
            container_port: ORDER_RAFT_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        });
    }
    container.volume_mounts = Some(vec![data_mount(), token_mount()]);
    container.startup_probe = Some(startup_probe());
    // No `lifecycle.preStop`: on SIGTERM the replica itself transfers leadership to the most
    // caught-up voter while still serving Raft RPCs, then stops (see `order_replica::server`);
    // terminationGracePeriodSeconds leaves ample time for that hand-over.
    let placement = Placement {
        spread: vec![
            spread(store, Component::Orders, "kubernetes.io/hostname"),
            spread(store, Component::Orders, "topology.kubernetes.io/zone"),
        ],
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            topology_key: "kubernetes.io/hostname".into(),
                            label_selector: Some(selector(store, Component::Orders)),
                            ..PodAffinityTerm::default()
                        },
                    },
                ]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        }),
    };
    let template = pod_template(
        store,
        Component::Orders,
        config,
        container,
        vec![token_volume(store)],
        placement,
    );
    storage::stateful_set(
        store,
        Component::Orders,
        &orders.storage,
        inputs,
        template,
        StatefulSetSpec {
            replicas: Some(inputs.order_replicas),
            // Members start together: the group needs a quorum before any pod is ready.
            pod_management_policy: Some("Parallel".into()),
            // The operator rolls the pods one at a time, the leader last, after a hand-over.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            ..StatefulSetSpec::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::build::build;
    use crate::build::names::{order_pod_name, order_pvc_name, order_replica_url};
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn advertised_url_is_the_replica_url() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        let container = &objects
            .stateful_set
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        let advertised = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "ORDER_ADVERTISE_URL")
            .and_then(|e| e.value.clone())
            .unwrap();
        let expanded = advertised
            .replace("$(POD_NAME)", &order_pod_name(&store.name, 2))
            .replace("$(POD_NAMESPACE)", "toys");
        assert_eq!(
            expanded,
            order_replica_url(&store.name, &store.namespace, 2)
        );
        assert_eq!(
            order_replica_url(&store.name, &store.namespace, 2),
            "http://shop-orders-2.shop-orders.toys.svc:7000"
        );
        assert_eq!(order_pvc_name(&store.name, 2), "data-shop-orders-2");
    }

    #[test]
    fn seed_list_follows_spec_replicas_and_stateful_set_follows_inputs() {
        let mut spec = default_spec();
        spec.orders.replicas = 3;
        let store = store(spec);
        let objects = build(&store, &inputs(5));
        let config = objects.config_map.data.as_ref().unwrap();
        let expected: Vec<_> = (0..3)
            .map(|i| order_replica_url(&store.name, &store.namespace, i))
            .collect();
        // The catalogs and the frontends start from the same seeds.
        for key in ["CATALOG_ORDER_REPLICAS", "FRONTEND_ORDER_REPLICAS"] {
            assert_eq!(
                config[key].split(',').collect::<Vec<_>>(),
                expected,
                "{key}"
            );
        }
        assert_eq!(
            objects.stateful_set.spec.as_ref().unwrap().replicas,
            Some(5)
        );
        // The PDB, too, follows the declared size.
        assert_eq!(
            objects.pod_disruption_budgets[0]
                .spec
                .clone()
                .unwrap()
                .min_available,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2))
        );
    }
}
