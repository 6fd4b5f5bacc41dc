//! The rolling upgrade of the order replicas: one pod at a time, followers first, the leader
//! last after a leadership transfer, each only when the group keeps a quorum of healthy voters
//! without it.
//!
//! The StatefulSet uses the `OnDelete` strategy, so the operator, not the StatefulSet
//! controller, decides when a pod goes: [`next_roll_step`] is that decision, pure and tested as
//! a table; [`step`] carries it out. It runs only with the membership settled.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use api::raft::{NodeId, RaftStatus};
use api::view::GroupView;
use membership::Step;

use super::memory::delete_once;
use super::report::announce;
use super::{Context, Error};
use crate::build::{self, Component};
use crate::cache;
use crate::crd::ToyStore;
use crate::order_group::ordinal_of;

/// An order pod as the rolling upgrade sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OrderPod {
    /// Ordinal (= Raft node id).
    ordinal: i32,
    /// Whether the pod runs the StatefulSet's update revision.
    updated: bool,
    ready: bool,
    /// Whether the pod is being deleted (it has a deletion timestamp, or this operator
    /// deleted it already).
    terminating: bool,
}

/// What the rolling upgrade does next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RollStep {
    /// Every pod runs the new revision.
    Done,
    /// Nothing is safe now, for this reason.
    Wait(String),
    /// Delete this pod; the StatefulSet recreates it with the new revision.
    DeletePod(i32),
    /// The leader is the last old pod: hand leadership to voter `to` first.
    TransferLeader { leader: String, to: NodeId },
}

/// One step of the rolling upgrade of `sts`'s pods; returns whether an upgrade is under way.
pub(super) async fn step(
    store: &ToyStore,
    ctx: &Context,
    ns: &str,
    sts: &StatefulSet,
    token: &str,
    obs: &GroupView,
) -> Result<bool, Error> {
    let Some(update_revision) = sts.status.as_ref().and_then(|s| s.update_revision.clone()) else {
        return Ok(false);
    };
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let pods = cache::labelled(
        &ctx.cache.pods,
        ns,
        &build::selector_labels(&store.name_any(), Component::Orders),
    );
    let order_pods: Vec<OrderPod> = pods
        .iter()
        .filter_map(|p| order_pod(ctx, p, &update_revision))
        .collect();
    match next_roll_step(&order_pods, replicas, obs) {
        RollStep::Done => Ok(false),
        RollStep::Wait(why) => {
            tracing::info!(why, "rolling upgrade waiting");
            Ok(true)
        }
        RollStep::DeletePod(ordinal) => {
            let name = build::order_pod_name(&store.name_any(), ordinal);
            if let Some(pod) = pods.iter().find(|p| p.name_any() == name) {
                delete_once(ctx, ns, pod.as_ref()).await?;
            }
            let note = format!("replaced {name} with the new revision");
            announce(ctx, store, "PodUpgraded", "RollingUpgrade", &note).await;
            Ok(true)
        }
        RollStep::TransferLeader { leader, to } => {
            let step = Step::TransferLeader { leader, to };
            let note = format!("leadership handed to replica {to} before upgrading the leader");
            let event = ("LeaderTransferred", "RollingUpgrade");
            super::group::execute(ctx, store, token, &step, event, &note).await?;
            Ok(true)
        }
    }
}

/// `pod` as the upgrade sees it, if its name ends in an ordinal.
fn order_pod(ctx: &Context, pod: &Pod, update_revision: &str) -> Option<OrderPod> {
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    Some(OrderPod {
        ordinal: ordinal_of(&pod.name_any())?,
        updated: pod
            .labels()
            .get("controller-revision-hash")
            .is_some_and(|r| r == update_revision),
        ready,
        terminating: ctx.memory.is_deleting(&pod.metadata),
    })
}

/// The next step of the upgrade of `pods` (the StatefulSet wants `replicas` of them).
///
/// One at a time means: a pod is replaced only when every one of the StatefulSet's `replicas`
/// pods exists, is not being deleted and is ready, so the pod replaced last is back (recreated
/// on the update revision) and ready, and its replica has caught up, before the next goes.
fn next_roll_step(pods: &[OrderPod], replicas: i32, obs: &GroupView) -> RollStep {
    let old: Vec<&OrderPod> = pods
        .iter()
        .filter(|p| !p.updated && !p.terminating)
        .collect();
    if old.is_empty() {
        return RollStep::Done;
    }
    if let Some(wait) = last_one_not_back(pods, replicas) {
        return wait;
    }
    let Some(leader) = obs.leader() else {
        return RollStep::Wait("no leader known".into());
    };
    if let Some(wait) = quorum_at_risk(obs, leader) {
        return wait;
    }
    // Followers first, lowest ordinal first: the order must not depend on how pods were listed.
    match old
        .iter()
        .filter(|p| p.ordinal as NodeId != leader.id)
        .min_by_key(|p| p.ordinal)
    {
        Some(p) => RollStep::DeletePod(p.ordinal),
        None => hand_over(obs, leader),
    }
}

/// A wait while some pod is being replaced, is missing or is not ready.
fn last_one_not_back(pods: &[OrderPod], replicas: i32) -> Option<RollStep> {
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return Some(RollStep::Wait(format!(
            "order pod {} is being replaced",
            p.ordinal
        )));
    }
    for ordinal in 0..replicas {
        match pods.iter().find(|p| p.ordinal == ordinal) {
            None => {
                return Some(RollStep::Wait(format!(
                    "order pod {ordinal} is being recreated"
                )));
            }
            Some(p) if !p.ready => {
                return Some(RollStep::Wait(format!("order pod {ordinal} is not ready")));
            }
            Some(_) => {}
        }
    }
    let p = pods.iter().find(|p| !p.ready)?;
    Some(RollStep::Wait(format!(
        "order pod {} is not ready",
        p.ordinal
    )))
}

/// A wait when taking one voter away would not leave a majority of all voters healthy.
fn quorum_at_risk(obs: &GroupView, leader: &RaftStatus) -> Option<RollStep> {
    let voters = leader.voters();
    // Healthy as the status counts it (the view's one definition).
    let healthy_voters = voters.iter().filter(|v| obs.is_healthy(**v)).count();
    let at_risk = healthy_voters.saturating_sub(1) * 2 <= voters.len() && voters.len() > 1;
    at_risk.then(|| {
        RollStep::Wait(format!(
            "only {healthy_voters} of {} voters healthy; replacing one would lose quorum",
            voters.len()
        ))
    })
}

/// Only the leader is left on the old revision: hand leadership to the most caught-up voter
/// first (as the view picks it), or, in a single-replica group, replace it (a brief outage).
fn hand_over(obs: &GroupView, leader: &RaftStatus) -> RollStep {
    let others = leader.voters().into_iter().filter(|v| *v != leader.id);
    match obs.most_caught_up(others) {
        Some(to) => RollStep::TransferLeader {
            leader: leader.url.clone(),
            to,
        },
        None => RollStep::DeletePod(leader.id as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_group::tests::group;

    fn pod(ordinal: i32, updated: bool, ready: bool) -> OrderPod {
        OrderPod {
            ordinal,
            updated,
            ready,
            terminating: false,
        }
    }

    fn terminating(ordinal: i32) -> OrderPod {
        OrderPod {
            terminating: true,
            ..pod(ordinal, false, true)
        }
    }

    #[test]
    fn rolling_upgrade_table() {
        let g = group(&[0, 1, 2], &[], 1);
        let cases = [
            (
                "all updated",
                vec![pod(0, true, true), pod(1, true, true), pod(2, true, true)],
                g.clone(),
                RollStep::Done,
            ),
            (
                "followers first",
                vec![
                    pod(0, false, true),
                    pod(1, false, true),
                    pod(2, false, true),
                ],
                g.clone(),
                RollStep::DeletePod(0),
            ),
            (
                "followers first, lowest ordinal whatever order the pods were listed in",
                vec![
                    pod(2, false, true),
                    pod(1, false, true),
                    pod(0, false, true),
                ],
                g.clone(),
                RollStep::DeletePod(0),
            ),
            (
                "one at a time: wait for the new pod",
                vec![
                    pod(0, true, false),
                    pod(1, false, true),
                    pod(2, false, true),
                ],
                g.clone(),
                RollStep::Wait("order pod 0 is not ready".into()),
            ),
            (
                "leader last, after a transfer",
                vec![pod(0, true, true), pod(1, false, true), pod(2, true, true)],
                g.clone(),
                RollStep::TransferLeader {
                    leader: "http://o-1:7000".into(),
                    to: 0,
                },
            ),
        ];
        for (name, pods, o, want) in cases {
            assert_eq!(next_roll_step(&pods, 3, &o), want, "{name}");
        }
    }

    #[test]
    fn rolling_upgrade_never_breaks_quorum() {
        let mut o = group(&[0, 1, 2], &[], 0);
        o.statuses.insert(2, Err("unreachable".into()));
        let pods = vec![
            pod(0, false, true),
            pod(1, false, true),
            pod(2, false, true),
        ];
        assert!(matches!(next_roll_step(&pods, 3, &o), RollStep::Wait(_)));
    }

    #[test]
    fn the_next_pod_waits_until_the_replaced_one_is_back_and_ready() {
        let g = group(&[0, 1, 2], &[], 2);
        let old = |o| pod(o, false, true);
        let cases = [
            (
                "pod 0 deleted, still terminating (and still ready)",
                vec![terminating(0), old(1), old(2)],
                RollStep::Wait("order pod 0 is being replaced".into()),
            ),
            (
                "pod 0 gone, not recreated yet",
                vec![old(1), old(2)],
                RollStep::Wait("order pod 0 is being recreated".into()),
            ),
            (
                "pod 0 recreated on the new revision, not ready",
                vec![pod(0, true, false), old(1), old(2)],
                RollStep::Wait("order pod 0 is not ready".into()),
            ),
            (
                "pod 0 back and ready: the next follower",
                vec![pod(0, true, true), old(1), old(2)],
                RollStep::DeletePod(1),
            ),
        ];
        for (name, pods, want) in cases {
            assert_eq!(next_roll_step(&pods, 3, &g), want, "{name}");
        }
        // Back and ready, but its replica has not caught up: replacing another voter now could
        // leave no caught-up majority.
        let mut lagging = g.clone();
        for s in lagging.statuses.values_mut().flatten() {
            for m in &mut s.members {
                if m.id == 0 {
                    m.matched_index = Some(0);
                }
            }
        }
        let pods = vec![pod(0, true, true), old(1), old(2)];
        assert!(matches!(
            next_roll_step(&pods, 3, &lagging),
            RollStep::Wait(_)
        ));
    }
}
