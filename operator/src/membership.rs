//! The operator's side of Raft membership: which order pods must exist, which step the shared
//! membership driver takes next, and when a pod may be replaced during a rolling upgrade.
//!
//! The decisions are pure functions of what was observed, so they are tested as tables; the
//! [`OrderGroup`] trait is the only place that talks to the replicas, so reconcile tests can
//! script the group without a network.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use api::raft::{Member, NodeId, RaftRole};
use membership::{DEFAULT_CATCH_UP_LAG, MembershipDriver, Observation, Step};

use membership::member_health;

/// A boxed future, so [`OrderGroup`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Access to the order replicas' admin API.
pub trait OrderGroup: Send + Sync + 'static {
    /// Reads the status of `desired` members and every member they know.
    fn observe<'a>(&'a self, token: &'a str, desired: &'a [Member]) -> BoxFuture<'a, Observation>;
    /// Performs one membership step; answers whether it changed the group (false: it had
    /// already taken effect).
    fn execute<'a>(&'a self, token: &'a str, step: &'a Step)
    -> BoxFuture<'a, Result<bool, String>>;
}

/// The real group: the shared [`MembershipDriver`] over HTTP, one connection pool for all stores.
#[derive(Debug)]
pub struct HttpOrderGroup {
    http: reqwest::Client,
}

impl Default for HttpOrderGroup {
    fn default() -> Self {
        Self {
            http: api::client::http_client(std::time::Duration::from_secs(10)),
        }
    }
}

impl HttpOrderGroup {
    fn driver(&self, token: &str) -> MembershipDriver {
        MembershipDriver::with_client(self.http.clone(), Some(token.to_string()))
    }
}

impl OrderGroup for HttpOrderGroup {
    fn observe<'a>(&'a self, token: &'a str, desired: &'a [Member]) -> BoxFuture<'a, Observation> {
        Box::pin(async move { self.driver(token).observe(desired).await })
    }

    fn execute<'a>(
        &'a self,
        token: &'a str,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            self.driver(token)
                .execute(step)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Every member id any reachable replica knows of.
pub fn known_member_ids(obs: &Observation) -> BTreeSet<NodeId> {
    obs.statuses
        .values()
        .filter_map(|s| s.as_ref().ok())
        .flat_map(|s| s.members.iter().map(|m| m.id))
        .collect()
}

/// How many order pods the StatefulSet must have.
///
/// Node ids are pod ordinals. Growing, the pods come first (the driver then adds them as
/// learners); shrinking, a pod stays until its replica has left the membership, so the
/// StatefulSet never removes a member by its own hand. With nothing observed (every replica
/// unreachable) the current size is kept.
pub fn order_statefulset_size(spec_replicas: i32, current: Option<i32>, obs: &Observation) -> i32 {
    let reachable = obs.statuses.values().any(Result::is_ok);
    if !reachable && let Some(current) = current {
        return current.max(spec_replicas);
    }
    let highest_member = known_member_ids(obs)
        .into_iter()
        .max()
        .map_or(0, |id| id as i32 + 1);
    spec_replicas.max(highest_member)
}

/// An order pod as the rolling upgrade sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPod {
    /// Ordinal (= Raft node id).
    pub ordinal: i32,
    /// Whether the pod runs the StatefulSet's update revision.
    pub updated: bool,
    /// Whether the pod is ready.
    pub ready: bool,
    /// Whether the pod is being deleted (it has a deletion timestamp, or this operator
    /// deleted it already).
    pub terminating: bool,
}

/// What the rolling upgrade does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollStep {
    /// Every pod runs the new revision.
    Done,
    /// Nothing is safe now.
    Wait(String),
    /// Delete this pod; the StatefulSet recreates it with the new revision.
    DeletePod(i32),
    /// The leader is the last old pod: hand leadership to this voter first.
    TransferLeader {
        /// The leader's URL.
        leader: String,
        /// The new leader.
        to: NodeId,
    },
}

/// Rolling upgrade, one pod at a time, followers first, the leader last after a transfer, each
/// only when the group keeps a quorum of healthy voters without it.
///
/// One at a time means: a pod is replaced only when every one of the StatefulSet's `replicas`
/// pods exists, is not being deleted and is ready, so the pod replaced last is back (recreated
/// on the update revision) and ready, and its replica has caught up, before the next goes.
pub fn next_roll_step(pods: &[OrderPod], replicas: i32, obs: &Observation) -> RollStep {
    let old: Vec<&OrderPod> = pods
        .iter()
        .filter(|p| !p.updated && !p.terminating)
        .collect();
    if old.is_empty() {
        return RollStep::Done;
    }
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return RollStep::Wait(format!("order pod {} is being replaced", p.ordinal));
    }
    for ordinal in 0..replicas {
        match pods.iter().find(|p| p.ordinal == ordinal) {
            None => return RollStep::Wait(format!("order pod {ordinal} is being recreated")),
            Some(p) if !p.ready => {
                return RollStep::Wait(format!("order pod {ordinal} is not ready"));
            }
            Some(_) => {}
        }
    }
    if let Some(p) = pods.iter().find(|p| !p.ready) {
        return RollStep::Wait(format!("order pod {} is not ready", p.ordinal));
    }
    let Some(leader) = obs.leader() else {
        return RollStep::Wait("no leader known".into());
    };
    let voters = leader.voters();
    // Healthy as the status counts it: answering, holding the group's state, caught up.
    let healthy_voters = voters
        .iter()
        .filter(|v| {
            member_health(obs, **v, DEFAULT_CATCH_UP_LAG).is_ok()
                && obs
                    .statuses
                    .get(v)
                    .is_some_and(|s| s.as_ref().is_ok_and(|s| s.role != RaftRole::Candidate))
        })
        .count();
    // Taking one voter away must leave a majority of all voters healthy.
    if (healthy_voters.saturating_sub(1)) * 2 <= voters.len() && voters.len() > 1 {
        return RollStep::Wait(format!(
            "only {healthy_voters} of {} voters healthy; replacing one would lose quorum",
            voters.len()
        ));
    }
    // Followers first, lowest ordinal first: the order must not depend on how pods were listed.
    if let Some(p) = old
        .iter()
        .filter(|p| p.ordinal as NodeId != leader.id)
        .min_by_key(|p| p.ordinal)
    {
        return RollStep::DeletePod(p.ordinal);
    }
    // Only the leader is left on the old revision.
    let leader_url = leader.url.clone();
    match voters
        .iter()
        .copied()
        .filter(|v| *v != leader.id)
        // The most caught-up voter; on a tie the lowest id, so the choice is stable.
        .max_by_key(|v| {
            let matched = leader
                .members
                .iter()
                .find(|m| m.id == *v)
                .and_then(|m| m.matched_index)
                .unwrap_or(0);
            (matched, std::cmp::Reverse(*v))
        }) {
        Some(to) => RollStep::TransferLeader {
            leader: leader_url,
            to,
        },
        // A single-replica group has no one to hand over to: replace it (brief outage).
        None => RollStep::DeletePod(leader.id as i32),
    }
}

/// The desired members for `replicas` order pods: ids are ordinals, URLs (client, peer) their
/// stable DNS names.
pub fn desired_members(replicas: i32, urls_of: impl Fn(i32) -> (String, String)) -> Vec<Member> {
    (0..replicas)
        .map(|i| {
            let (url, raft_url) = urls_of(i);
            Member {
                id: i as NodeId,
                url,
                raft_url: Some(raft_url),
            }
        })
        .collect()
}

/// Is this step allowed given what the status recorded? Initialization happens once in a
/// group's life. Once recorded, finishing an interrupted one is fine while some member still
/// holds the founding membership; an `Initialize` with no member holding anything means the
/// group lost its state, which the operator must not paper over by starting a new, empty group.
pub fn allowed(step: &Step, initialized: bool, obs: &Observation) -> Result<(), String> {
    let some_member_holds_state = obs
        .statuses
        .values()
        .any(|s| s.as_ref().is_ok_and(|s| s.initialized));
    match step {
        Step::Initialize { .. } if initialized && !some_member_holds_state => Err(
            "the order group was initialized before but no member has Raft state now; refusing to initialize it again (restore the volumes or recreate the ToyStore)".into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::raft::{MemberInfo, RaftStatus};

    fn status(id: NodeId, role: RaftRole, voters: &[NodeId], learners: &[NodeId]) -> RaftStatus {
        let members = voters
            .iter()
            .map(|v| (*v, true))
            .chain(learners.iter().map(|l| (*l, false)))
            .map(|(id, voter)| MemberInfo {
                id,
                url: format!("http://o-{id}:7000"),
                raft_url: None,
                voter,
                matched_index: Some(100),
            })
            .collect();
        RaftStatus {
            id,
            url: format!("http://o-{id}:7000"),
            raft_url: None,
            role,
            term: 2,
            leader: voters.first().copied(),
            last_log_index: Some(100),
            commit_index: Some(100),
            applied_index: Some(100),
            snapshot_index: None,
            purged_index: None,
            initialized: true,
            members,
            joint: false,
            recovered_torn_bytes: 0,
            admitted: true,
            inventory_defined: true,
            data_id: None,
        }
    }

    fn obs(list: Vec<(NodeId, Result<RaftStatus, String>)>) -> Observation {
        Observation {
            statuses: list.into_iter().collect(),
        }
    }

    fn group(voters: &[NodeId], learners: &[NodeId], leader: NodeId) -> Observation {
        obs(voters
            .iter()
            .chain(learners)
            .map(|id| {
                let role = if *id == leader {
                    RaftRole::Leader
                } else {
                    RaftRole::Follower
                };
                let mut s = status(*id, role, voters, learners);
                s.leader = Some(leader);
                (*id, Ok(s))
            })
            .collect())
    }

    #[test]
    fn statefulset_size_table() {
        let cases = [
            ("steady 3", 3, Some(3), group(&[0, 1, 2], &[], 0), 3),
            (
                "scale up: pods first",
                5,
                Some(3),
                group(&[0, 1, 2], &[], 0),
                5,
            ),
            (
                "scale down: members 3,4 still voting",
                3,
                Some(5),
                group(&[0, 1, 2, 3, 4], &[], 0),
                5,
            ),
            (
                "scale down: 4 removed, 3 still a learner",
                3,
                Some(5),
                group(&[0, 1, 2], &[3], 0),
                4,
            ),
            ("scale down done", 3, Some(5), group(&[0, 1, 2], &[], 0), 3),
            (
                "nothing reachable: keep current",
                3,
                Some(5),
                obs(vec![(0, Err("down".into()))]),
                5,
            ),
            ("fresh store", 3, None, obs(vec![]), 3),
        ];
        for (name, spec, current, o, want) in cases {
            assert_eq!(order_statefulset_size(spec, current, &o), want, "{name}");
        }
    }

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

    #[test]
    fn initialization_is_never_repeated() {
        let step = Step::Initialize { members: vec![] };
        let nothing = obs(vec![(0, Ok(empty(0))), (1, Ok(empty(1)))]);
        assert!(allowed(&step, false, &nothing).is_ok());
        assert!(allowed(&step, true, &nothing).is_err());
        assert!(allowed(&Step::Done, true, &nothing).is_ok());
        // Recorded, but forming was interrupted: finishing it is not a second initialization.
        let mut founding = status(0, RaftRole::Follower, &[0, 1], &[]);
        founding.last_log_index = Some(0);
        let interrupted = obs(vec![(0, Ok(founding)), (1, Ok(empty(1)))]);
        assert!(allowed(&step, true, &interrupted).is_ok());
    }

    fn empty(id: NodeId) -> RaftStatus {
        let mut s = status(id, RaftRole::Learner, &[], &[]);
        s.initialized = false;
        s.admitted = false;
        s
    }
}
