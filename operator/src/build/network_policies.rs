//! NetworkPolicies: each component's pods admit only the traffic that component needs, on its
//! port.
//!
//! | to                  | from                                                          |
//! |---------------------|---------------------------------------------------------------|
//! | orders (client port)| order replicas, catalogs (change stream, inventory commands), |
//! |                     | frontends, the operator (admin API), the store's backup Jobs  |
//! |                     | (the state export, with the cluster token)                    |
//! | orders (peer port)  | order replicas only (Raft RPC)                                |
//! | catalog             | frontends only (product reads, change feed)                   |
//! | frontend            | anywhere (the public API)                                     |
//!
//! The order replicas never call the catalog: stock is in their own state machine.
//!
//! Ingress only: egress is not restricted, because pods need DNS and each other, and a
//! policy per peer would repeat the table above in reverse.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata::{
    APP_NAME, BACKUP_COMPONENT, COMPONENT_LABEL, NAME_LABEL, STORE_LABEL, metadata, selector,
};
use super::names::{self, Component};
use crate::validate::ValidStore;

/// `app.kubernetes.io/name` of the operator's own pods, admitted to the order replicas' port.
pub const OPERATOR_APP_NAME: &str = "toystore-operator";

/// The policies of the orders, the catalog and the frontend, in that order.
pub(super) fn network_policies(store: &ValidStore) -> Vec<NetworkPolicy> {
    // The operator drives membership through the admin API from its own namespace.
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAME_LABEL.to_string(),
                OPERATOR_APP_NAME.to_string(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let orders = peer(store, Component::Orders);
    let catalogs = peer(store, Component::Catalog);
    let frontends = peer(store, Component::Frontend);
    // The backup Jobs' pods, labelled by the store's name, not its instance label (see
    // `metadata::STORE_LABEL`).
    let backups = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([
                (NAME_LABEL.to_string(), APP_NAME.to_string()),
                (COMPONENT_LABEL.to_string(), BACKUP_COMPONENT.to_string()),
                (STORE_LABEL.to_string(), store.name.clone()),
            ])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let mut orders_policy = network_policy(
        store,
        Component::Orders,
        Some(vec![
            orders.clone(),
            catalogs,
            frontends.clone(),
            backups,
            operator,
        ]),
    );
    if let Some(rules) = orders_policy.spec.as_mut().and_then(|s| s.ingress.as_mut()) {
        rules.push(NetworkPolicyIngressRule {
            from: Some(vec![orders]),
            ports: Some(vec![NetworkPolicyPort {
                port: Some(IntOrString::Int(names::ORDER_RAFT_PORT)),
                protocol: Some("TCP".into()),
                ..NetworkPolicyPort::default()
            }]),
        });
    }
    vec![
        orders_policy,
        network_policy(store, Component::Catalog, Some(vec![frontends])),
        network_policy(store, Component::Frontend, None),
    ]
}

/// Pods of `component` in this store (same namespace as the policy).
fn peer(store: &ValidStore, component: Component) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(store, component)),
        ..NetworkPolicyPeer::default()
    }
}

/// Ingress to `component`'s pods on its port, from `from` (`None`: from anywhere).
fn network_policy(
    store: &ValidStore,
    component: Component,
    from: Option<Vec<NetworkPolicyPeer>>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: metadata(
            store,
            &names::component_name(&store.name, component),
            component,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(store, component)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from,
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(component.port())),
                    protocol: Some("TCP".into()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::build;
    use crate::build::metadata::selector_labels;
    use crate::build::tests::{default_spec, inputs, store};

    /// The component labels of the pods a policy admits (`None`: from anywhere), and whether
    /// the operator is admitted.
    fn admitted(policy: &NetworkPolicy) -> (Option<Vec<String>>, bool) {
        let rule = &policy.spec.as_ref().unwrap().ingress.as_ref().unwrap()[0];
        let Some(from) = &rule.from else {
            return (None, false);
        };
        let operator = from.iter().any(|p| p.namespace_selector.is_some());
        let components = from
            .iter()
            .filter(|p| p.namespace_selector.is_none())
            .map(|p| {
                let labels = p.pod_selector.as_ref().unwrap().match_labels.as_ref();
                labels.unwrap()["app.kubernetes.io/component"].clone()
            })
            .collect();
        (Some(components), operator)
    }

    #[test]
    fn each_component_admits_only_its_clients_on_its_port() {
        let store = store(default_spec());
        let policies = build(&store, &inputs(3)).network_policies;
        let expected = [
            (
                Component::Orders,
                Some(vec!["orders", "catalog", "frontend", "backup"]),
                true,
            ),
            (Component::Catalog, Some(vec!["frontend"]), false),
            (Component::Frontend, None, false),
        ];
        assert_eq!(policies.len(), expected.len());
        for (policy, (component, from, operator)) in policies.iter().zip(expected) {
            let spec = policy.spec.as_ref().unwrap();
            assert_eq!(
                spec.pod_selector.as_ref().unwrap().match_labels,
                Some(selector_labels(&store.name, component))
            );
            let from = from.map(|f| f.into_iter().map(String::from).collect());
            assert_eq!(admitted(policy), (from, operator), "{component:?}");
            let port = &spec.ingress.as_ref().unwrap()[0].ports.as_ref().unwrap()[0];
            assert_eq!(port.port, Some(IntOrString::Int(component.port())));
        }
    }

    #[test]
    fn the_backup_jobs_of_this_store_reach_the_order_replicas() {
        let store = store(default_spec());
        let policies = build(&store, &inputs(3)).network_policies;
        let from = policies[0].spec.as_ref().unwrap().ingress.as_ref().unwrap()[0]
            .from
            .clone()
            .unwrap();
        let admitted = |labels: &BTreeMap<String, String>| {
            from.iter().any(|p| {
                p.namespace_selector.is_none()
                    && p.pod_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .is_some_and(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
            })
        };
        assert!(admitted(&crate::build::metadata::backup_labels("shop")));
        assert!(!admitted(&crate::build::metadata::backup_labels("other")));
    }

    #[test]
    fn the_peer_port_admits_only_order_replicas() {
        let store = store(default_spec());
        let policies = build(&store, &inputs(3)).network_policies;
        let rules = policies[0].spec.as_ref().unwrap().ingress.as_ref().unwrap();
        assert_eq!(rules.len(), 2);
        let peer = &rules[1];
        assert_eq!(
            peer.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(names::ORDER_RAFT_PORT))
        );
        let from = peer.from.as_ref().unwrap();
        assert_eq!(from.len(), 1);
        assert!(from[0].namespace_selector.is_none(), "not the operator");
        assert_eq!(
            from[0].pod_selector.as_ref().unwrap().match_labels,
            Some(selector_labels(&store.name, Component::Orders))
        );
    }
}
