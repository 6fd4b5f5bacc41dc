//! The order group as the operator sees it: access to the replicas' admin API, and the pure
//! decisions about the group's pods (which members to want, how many pods the StatefulSet
//! needs, whether a step may run at all).
//!
//! Node ids are pod ordinals, so a member and its pod are found from each other by name. The
//! decisions are pure functions of what was observed, tested as tables; [`OrderGroup`] is the
//! only place that talks to the replicas, so reconcile tests script the group without a network.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use api::raft::{Member, NodeId};
use api::view::GroupView;
use membership::{MembershipDriver, Step};

/// A boxed future, so [`OrderGroup`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Access to the order replicas' admin API.
pub trait OrderGroup: Send + Sync + 'static {
    /// Reads the status of `desired` members and every member they know.
    fn observe<'a>(&'a self, token: &'a str, desired: &'a [Member]) -> BoxFuture<'a, GroupView>;
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
    fn observe<'a>(&'a self, token: &'a str, desired: &'a [Member]) -> BoxFuture<'a, GroupView> {
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
pub fn known_member_ids(obs: &GroupView) -> BTreeSet<NodeId> {
    obs.answers()
        .flat_map(|s| s.members.iter().map(|m| m.id))
        .collect()
}

/// How many order pods the StatefulSet must have.
///
/// Growing, the pods come first (the driver then adds them as learners); shrinking, a pod stays
/// until its replica has left the membership, so the StatefulSet never removes a member by its
/// own hand. With nothing observed (every replica unreachable) the current size is kept.
pub fn order_statefulset_size(spec_replicas: i32, current: Option<i32>, obs: &GroupView) -> i32 {
    let reachable = obs.answers().next().is_some();
    if !reachable && let Some(current) = current {
        return current.max(spec_replicas);
    }
    let highest_member = known_member_ids(obs)
        .into_iter()
        .max()
        .map_or(0, |id| id as i32 + 1);
    spec_replicas.max(highest_member)
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
pub fn allowed(step: &Step, initialized: bool, obs: &GroupView) -> Result<(), String> {
    let some_member_holds_state = obs.answers().any(|s| s.initialized);
    match step {
        Step::Initialize { .. } if initialized && !some_member_holds_state => Err(
            "the order group was initialized before but no member has Raft state now; refusing to initialize it again (restore the volumes or recreate the ToyStore)".into(),
        ),
        _ => Ok(()),
    }
}

/// The ordinal at the end of a StatefulSet pod or claim name (`...-orders-3` → 3): the node id
/// of the member it belongs to.
pub fn ordinal_of(name: &str) -> Option<i32> {
    name.rsplit('-').next()?.parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use api::raft::{MemberInfo, RaftRole, RaftStatus};

    /// A replica's status naming `voters` and `learners` as members, each matched at 100.
    pub(crate) fn status(
        id: NodeId,
        role: RaftRole,
        voters: &[NodeId],
        learners: &[NodeId],
    ) -> RaftStatus {
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

    pub(crate) fn obs(list: Vec<(NodeId, Result<RaftStatus, String>)>) -> GroupView {
        GroupView {
            statuses: list.into_iter().collect(),
        }
    }

    /// Every member of `voters` and `learners` answering, `leader` leading.
    pub(crate) fn group(voters: &[NodeId], learners: &[NodeId], leader: NodeId) -> GroupView {
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

    #[test]
    fn ordinals_are_the_names_last_number() {
        assert_eq!(ordinal_of("toys-orders-3"), Some(3));
        assert_eq!(ordinal_of("data-toys-orders-12"), Some(12));
        assert_eq!(ordinal_of("toys-orders"), None);
    }
}
