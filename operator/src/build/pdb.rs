//! The PodDisruptionBudget of the order group: voluntary disruptions (drains, evictions) never
//! take the group below a majority of its declared size.
//!
//! A single replica has no quorum to keep: `minAvailable: 1` would block every node drain
//! forever, so it gets `maxUnavailable: 1` (a drain takes it down briefly, as any restart
//! does). The PDB exists for every size so a scale from 3 to 1 changes it in place. It follows
//! the declared size, not the StatefulSet's: during a scale-down the members leaving do not
//! count towards the quorum the group will have.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata::{metadata, selector};
use super::names::{self, Component};
use crate::validate::ValidStore;

/// The order group's PodDisruptionBudget `{store}-orders`.
pub(super) fn orders_pdb(store: &ValidStore) -> PodDisruptionBudget {
    let replicas = store.orders.replicas;
    let (min_available, max_unavailable) = if replicas == 1 {
        (None, Some(IntOrString::Int(1)))
    } else {
        (Some(IntOrString::Int(replicas / 2 + 1)), None)
    };
    PodDisruptionBudget {
        metadata: metadata(store, &names::orders_name(&store.name), Component::Orders),
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(selector(store, Component::Orders)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::build;
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn a_single_replica_pdb_never_blocks_a_drain() {
        let mut spec = default_spec();
        spec.orders.replicas = 1;
        let pdb = build(&store(spec), &inputs(1)).pod_disruption_budget;
        let pdb = pdb.spec.unwrap();
        assert_eq!(pdb.min_available, None);
        assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    }

    #[test]
    fn pdb_keeps_a_quorum_of_the_declared_size() {
        for (replicas, quorum) in [(3, 2), (5, 3), (7, 4), (9, 5)] {
            let mut spec = default_spec();
            spec.orders.replicas = replicas;
            let pdb = build(&store(spec), &inputs(replicas)).pod_disruption_budget;
            assert_eq!(
                pdb.spec.unwrap().min_available,
                Some(IntOrString::Int(quorum)),
                "{replicas} replicas"
            );
        }
    }
}
