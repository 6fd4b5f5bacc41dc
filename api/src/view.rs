//! One view of the order group, built once from the replicas' answers.
//!
//! Every part that must know who leads, which voter is the most caught up, or whether a member
//! is healthy asks a [`GroupView`]: the clients that find the leader, the membership driver, the
//! operator's status and rolling upgrade, local mode, the evaluation and a leader that hands over
//! before it stops. The rules live here once:
//!
//! - **Leader**: the replica that says it leads in the newest term that a live replica follows or
//!   leads in. A deposed leader cut off by a partition still says it leads, but in an older term
//!   than the followers of its successor; a replica whose Raft stopped (`shutdown`) is never the
//!   leader. A candidate's term does not count: a lone follower cut off from the leader
//!   campaigns in ever newer terms while the leader goes on committing with the rest.
//! - **Most caught up**: the highest index the leader knows replicated to it; on a tie the lowest
//!   id, so the choice does not depend on the order replicas answered in.
//! - **Healthy**: see [`GroupView::health`].

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::raft::{GroupInfo, NodeId, RaftRole, RaftStatus};

/// A member counts as caught up (healthy, ready to be promoted) when the leader knows it holds
/// all but at most this many of the leader's entries.
pub const CATCH_UP_LAG: u64 = 64;

/// What every kind of replica answer tells about leadership.
pub trait ReplicaAnswer {
    /// The answering replica's id.
    fn id(&self) -> NodeId;
    /// Whether it leads, follows, campaigns, learns or has stopped.
    fn role(&self) -> RaftRole;
    /// The term it is in (a candidate's is the one it campaigns for).
    fn term(&self) -> u64;
    /// The client URL of the leader it knows of, if that leader is a member.
    fn leader_url(&self) -> Option<&str>;
    /// The client URL it advertises for itself.
    fn url(&self) -> &str;
}

impl ReplicaAnswer for RaftStatus {
    fn id(&self) -> NodeId {
        self.id
    }
    fn role(&self) -> RaftRole {
        self.role
    }
    fn term(&self) -> u64 {
        self.term
    }
    fn leader_url(&self) -> Option<&str> {
        RaftStatus::leader_url(self)
    }
    fn url(&self) -> &str {
        &self.url
    }
}

impl ReplicaAnswer for GroupInfo {
    fn id(&self) -> NodeId {
        self.id
    }
    fn role(&self) -> RaftRole {
        self.role
    }
    fn term(&self) -> u64 {
        self.term
    }
    fn leader_url(&self) -> Option<&str> {
        GroupInfo::leader_url(self)
    }
    fn url(&self) -> &str {
        &self.url
    }
}

/// Why a member is not healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unhealthy {
    /// Its replica did not answer.
    Unreachable,
    /// It answered without the group's state (`admitted` or `initialized` false): its volume
    /// was lost or replaced.
    LostData,
    /// It is campaigning while a leader leads: it cannot hear that leader.
    Campaigning,
    /// The leader's matched index for it is this many entries behind the leader's last index.
    Lagging(u64),
}

/// The replicas' answers (by node id; `Err` holds why a replica's is unknown), and every
/// judgement about the group made from them. See the module documentation.
#[derive(Debug, Clone)]
pub struct GroupView<S = RaftStatus> {
    /// Each replica's answer by node id, or why it could not be had.
    pub statuses: BTreeMap<NodeId, Result<S, String>>,
}

impl<S> Default for GroupView<S> {
    fn default() -> Self {
        Self {
            statuses: BTreeMap::new(),
        }
    }
}

impl<S: ReplicaAnswer> GroupView<S> {
    /// A view of these answers, keyed by the ids they report.
    pub fn of_answers(answers: impl IntoIterator<Item = S>) -> Self {
        Self {
            statuses: answers.into_iter().map(|s| (s.id(), Ok(s))).collect(),
        }
    }

    /// The answer of replica `id`, if it answered.
    pub fn answer(&self, id: NodeId) -> Option<&S> {
        self.statuses.get(&id).and_then(|s| s.as_ref().ok())
    }

    /// Every answer that arrived.
    pub fn answers(&self) -> impl Iterator<Item = &S> {
        self.statuses.values().filter_map(|s| s.as_ref().ok())
    }

    /// The answer of a live replica in the newest term it follows or leads in; among those of
    /// that term the leader's (then the lowest id). Only when every live replica campaigns, the
    /// newest candidate's. A stopped replica's answer is ignored: its term may be newer than
    /// anyone's.
    pub fn newest(&self) -> Option<&S> {
        let key = |s: &&S| (s.term(), s.role() == RaftRole::Leader, Reverse(s.id()));
        let live = || self.answers().filter(|s| s.role() != RaftRole::Shutdown);
        live()
            .filter(|s| s.role() != RaftRole::Candidate)
            .max_by_key(key)
            .or_else(|| live().max_by_key(key))
    }

    /// The leader: a replica that says it leads, in a term no live replica follows past.
    pub fn leader(&self) -> Option<&S> {
        let newest = self.newest()?;
        (newest.role() == RaftRole::Leader).then_some(newest)
    }

    /// The leader's client URL and term: the leader's own answer, else the leader the newest
    /// answer names (the leader itself may not have answered).
    pub fn leader_url(&self) -> Option<(&str, u64)> {
        let newest = self.newest()?;
        match self.leader() {
            Some(l) => Some((l.url(), l.term())),
            None => newest.leader_url().map(|url| (url, newest.term())),
        }
    }
}

impl GroupView<RaftStatus> {
    /// The view the membership (and matched indexes) are read from: the leader's, else the
    /// newest answer's.
    pub fn membership_view(&self) -> Option<&RaftStatus> {
        self.leader().or_else(|| self.newest())
    }

    /// The highest index the leader knows replicated to `id` (0 when unknown).
    pub fn matched_index(&self, id: NodeId) -> u64 {
        self.leader()
            .and_then(|l| l.members.iter().find(|m| m.id == id))
            .and_then(|m| m.matched_index)
            .unwrap_or(0)
    }

    /// Of `candidates`, the one the leader knows to hold the most of its log; on a tie the
    /// lowest id.
    pub fn most_caught_up(&self, candidates: impl IntoIterator<Item = NodeId>) -> Option<NodeId> {
        candidates
            .into_iter()
            .max_by_key(|id| (self.matched_index(*id), Reverse(*id)))
    }

    /// Whether member `id` is healthy: its replica answers, is admitted and holds the group's
    /// membership, and, while a leader leads, it is not campaigning and the leader knows it
    /// holds all but at most [`CATCH_UP_LAG`] of the leader's entries. The leader is healthy when
    /// it answers with its state; without a leader, lag cannot be judged and is not.
    pub fn health(&self, id: NodeId) -> Result<(), Unhealthy> {
        let Some(own) = self.answer(id) else {
            return Err(Unhealthy::Unreachable);
        };
        if !own.admitted || !own.initialized {
            return Err(Unhealthy::LostData);
        }
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        if leader.id == id {
            return Ok(());
        }
        if own.role == RaftRole::Candidate {
            return Err(Unhealthy::Campaigning);
        }
        let behind = leader
            .last_log_index
            .unwrap_or(0)
            .saturating_sub(self.matched_index(id));
        if behind > CATCH_UP_LAG {
            return Err(Unhealthy::Lagging(behind));
        }
        Ok(())
    }

    /// Whether member `id` is healthy (see [`health`](Self::health)).
    pub fn is_healthy(&self, id: NodeId) -> bool {
        self.health(id).is_ok()
    }

    /// Whether, with `leaving` out of `voters`, the healthy voters left are still a majority of
    /// all of `voters`: the condition for taking one voter away without losing quorum.
    pub fn healthy_majority_without(&self, voters: &[NodeId], leaving: NodeId) -> bool {
        let healthy = voters
            .iter()
            .filter(|v| **v != leaving && self.is_healthy(**v))
            .count();
        healthy * 2 > voters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{GroupMember, MemberInfo};

    fn info(id: u64, role: RaftRole, term: u64, leader: Option<u64>) -> GroupInfo {
        GroupInfo {
            id,
            url: format!("http://r{id}"),
            role,
            term,
            leader,
            applied_index: Some(10),
            inventory_defined: true,
            members: (1..=3)
                .map(|i| GroupMember {
                    id: i,
                    url: format!("http://r{i}"),
                    voter: true,
                })
                .collect(),
        }
    }

    fn leader_url(answers: &[GroupInfo]) -> Option<String> {
        GroupView::of_answers(answers.iter().cloned())
            .leader_url()
            .map(|(url, _)| url.to_string())
    }

    #[test]
    fn the_leader_of_the_highest_term_wins_whatever_the_order_of_answers() {
        // Replica 1 was deposed by a partition but still says it leads, in term 3.
        let answers = [
            info(1, RaftRole::Leader, 3, Some(1)),
            info(2, RaftRole::Leader, 4, Some(2)),
            info(3, RaftRole::Follower, 4, Some(2)),
        ];
        assert_eq!(leader_url(&answers), Some("http://r2".into()));
        let reversed: Vec<_> = answers.iter().rev().cloned().collect();
        assert_eq!(leader_url(&reversed), Some("http://r2".into()));
    }

    #[test]
    fn a_stale_leader_claim_from_an_older_term_is_not_the_leader() {
        // The newest term is 6, whose leader (3) did not answer; 1 still claims term 5.
        let view = GroupView::of_answers([
            info(1, RaftRole::Leader, 5, Some(1)),
            info(2, RaftRole::Follower, 6, Some(3)),
        ]);
        assert!(view.leader().is_none());
        assert_eq!(view.leader_url(), Some(("http://r3", 6)));
        // Only candidates in a newer term: an election under way, no leader known.
        let electing = GroupView::of_answers([
            info(1, RaftRole::Candidate, 6, None),
            info(2, RaftRole::Candidate, 7, None),
        ]);
        assert!(electing.leader().is_none());
        assert_eq!(electing.leader_url(), None);
    }

    #[test]
    fn a_lone_candidate_in_a_newer_term_does_not_depose_the_leader() {
        // Follower 3 lost the leader and campaigns in term 9; 1 still leads 2 in term 4.
        let view = GroupView::of_answers([
            info(1, RaftRole::Leader, 4, Some(1)),
            info(2, RaftRole::Follower, 4, Some(1)),
            info(3, RaftRole::Candidate, 9, None),
        ]);
        assert_eq!(view.leader().map(|l| l.id), Some(1));
    }

    #[test]
    fn a_stopped_replica_is_never_the_leader() {
        // Raft stopped on a full disk: role shutdown, still naming itself leader.
        let answers = [
            info(1, RaftRole::Shutdown, 9, Some(1)),
            info(2, RaftRole::Follower, 5, Some(3)),
        ];
        assert_eq!(leader_url(&answers), Some("http://r3".into()));
        assert_eq!(leader_url(&[info(1, RaftRole::Shutdown, 9, Some(1))]), None);
    }

    /// A three-voter group led by 1 (term 4, last index 500); `matched` per member.
    fn group(matched: [u64; 3]) -> GroupView {
        let members: Vec<MemberInfo> = (1..=3)
            .map(|id| MemberInfo {
                id,
                url: format!("http://r{id}"),
                raft_url: None,
                voter: true,
                matched_index: Some(matched[id as usize - 1]),
            })
            .collect();
        let status = |id: u64, role| RaftStatus {
            id,
            url: format!("http://r{id}"),
            raft_url: None,
            role,
            term: 4,
            leader: Some(1),
            last_log_index: Some(500),
            commit_index: Some(500),
            applied_index: Some(500),
            snapshot_index: None,
            purged_index: None,
            initialized: true,
            admitted: true,
            inventory_defined: true,
            data_id: None,
            members: members.clone(),
            joint: false,
            recovered_torn_bytes: 0,
        };
        GroupView::of_answers([
            status(1, RaftRole::Leader),
            status(2, RaftRole::Follower),
            status(3, RaftRole::Follower),
        ])
    }

    #[test]
    fn the_most_caught_up_voter_is_the_highest_matched_then_the_lowest_id() {
        let view = group([500, 480, 490]);
        assert_eq!(view.most_caught_up([2, 3]), Some(3));
        let tied = group([500, 490, 490]);
        assert_eq!(tied.most_caught_up([3, 2]), Some(2));
        assert_eq!(tied.most_caught_up([2, 3]), Some(2));
        assert_eq!(tied.most_caught_up([]), None);
    }

    #[test]
    fn health_names_each_way_a_member_can_be_unwell() {
        let lag = CATCH_UP_LAG;
        let view = group([500, 500 - lag, 500 - lag - 1]);
        assert_eq!(view.health(1), Ok(()));
        assert_eq!(view.health(2), Ok(()));
        assert_eq!(view.health(3), Err(Unhealthy::Lagging(lag + 1)));

        let mut view = group([500, 500, 500]);
        view.statuses.insert(2, Err("connection refused".into()));
        if let Some(Ok(s)) = view.statuses.get_mut(&3) {
            s.admitted = false;
        }
        assert_eq!(view.health(2), Err(Unhealthy::Unreachable));
        assert_eq!(view.health(3), Err(Unhealthy::LostData));
        assert!(!view.healthy_majority_without(&[1, 2, 3], 3));

        let mut view = group([500, 500, 500]);
        if let Some(Ok(s)) = view.statuses.get_mut(&2) {
            s.role = RaftRole::Candidate;
            s.term = 7;
        }
        assert_eq!(view.leader().map(|l| l.id), Some(1));
        assert_eq!(view.health(2), Err(Unhealthy::Campaigning));
        assert!(!view.healthy_majority_without(&[1, 2, 3], 3));
        assert!(group([500, 500, 500]).healthy_majority_without(&[1, 2, 3], 3));
    }

    #[test]
    fn without_a_leader_only_reachability_and_state_count() {
        let mut view = group([500, 0, 0]);
        view.statuses.insert(1, Err("timed out".into()));
        assert!(view.leader().is_none());
        assert_eq!(view.health(2), Ok(()));
        assert_eq!(view.health(1), Err(Unhealthy::Unreachable));
    }
}
