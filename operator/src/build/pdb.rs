//! The PodDisruptionBudgets: voluntary disruptions (drains, evictions) never take the order
//! group below a majority of its declared size, and take catalog pods down one at a time.
//!
//! Orders: a single replica has no quorum to keep: `minAvailable: 1` would block every node
//! drain forever, so it gets `maxUnavailable: 1` (a drain takes it down briefly, as any restart
//! does). The PDB exists for every size so a scale from 3 to 1 changes it in place. It follows
//! the declared size, not the StatefulSet's: during a scale-down the members leaving do not
//! count towards the quorum the group will have.
//!
//! Catalog: `maxUnavailable: 1` rather than `minAvailable: 1`. Purchases never need a catalog,
//! so the budget only keeps product queries answered: one pod evicted at a time leaves the
//! others serving at any size, follows a change of `spec.catalog.replicas` without a rebuild,
//! and, unlike `minAvailable: 1`, never blocks a drain when a single catalog pod runs.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata::{metadata, selector};
use super::names::{self, Component};
use crate::validate::ValidStore;

/// The PodDisruptionBudgets `{store}-orders` and `{store}-catalog`, in that order.
pub(super) fn pdbs(store: &ValidStore) -> Vec<PodDisruptionBudget> {
    let replicas = store.orders.replicas;
    let orders = if replicas == 1 {
        (None, Some(IntOrString::Int(1)))
    } else {
        (Some(IntOrString::Int(replicas / 2 + 1)), None)
    };
    vec![
        pdb(store, Component::Orders, orders),
        pdb(store, Component::Catalog, (None, Some(IntOrString::Int(1)))),
    ]
}

/// The PodDisruptionBudget `{store}-{component}` with `(minAvailable, maxUnavailable)`.
fn pdb(
    store: &ValidStore,
    component: Component,
    (min_available, max_unavailable): (Option<IntOrString>, Option<IntOrString>),
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: metadata(
            store,
            &names::component_name(&store.name, component),
            component,
        ),
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(selector(store, component)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::build;
    use crate::build::metadata::selector_labels;
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn a_single_replica_pdb_never_blocks_a_drain() {
        let mut spec = default_spec();
        spec.orders.replicas = 1;
        spec.catalog.replicas = 1;
        for pdb in build(&store(spec), &inputs(1)).pod_disruption_budgets {
            let pdb = pdb.spec.unwrap();
            assert_eq!(pdb.min_available, None);
            assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
        }
    }

    #[test]
    fn pdb_keeps_a_quorum_of_the_declared_size() {
        for (replicas, quorum) in [(3, 2), (5, 3), (7, 4), (9, 5)] {
            let mut spec = default_spec();
            spec.orders.replicas = replicas;
            let pdb = build(&store(spec), &inputs(replicas)).pod_disruption_budgets[0].clone();
            assert_eq!(pdb.metadata.name.as_deref(), Some("shop-orders"));
            assert_eq!(
                pdb.spec.unwrap().min_available,
                Some(IntOrString::Int(quorum)),
                "{replicas} replicas"
            );
        }
    }

    #[test]
    fn catalog_pods_are_disrupted_one_at_a_time() {
        for replicas in [2, 5, 9] {
            let mut spec = default_spec();
            spec.catalog.replicas = replicas;
            let store = store(spec);
            let pdb = build(&store, &inputs(3)).pod_disruption_budgets[1].clone();
            assert_eq!(pdb.metadata.name.as_deref(), Some("shop-catalog"));
            let pdb = pdb.spec.unwrap();
            assert_eq!(
                (pdb.min_available, pdb.max_unavailable),
                (None, Some(IntOrString::Int(1))),
                "{replicas} catalog pods"
            );
            assert_eq!(
                pdb.selector.unwrap().match_labels,
                Some(selector_labels(&store.name, Component::Catalog))
            );
        }
    }
}
