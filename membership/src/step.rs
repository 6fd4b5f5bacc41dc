//! The decision: the one safe step to take next, a pure function of what was observed.

use std::collections::BTreeSet;

use api::raft::{Member, NodeId, RaftStatus};

use api::view::{CATCH_UP_LAG, GroupView};

/// The next thing to do to reach the desired membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Membership is as desired.
    Done,
    /// Nothing can be done safely now; observe again later.
    Wait(String),
    /// Start a brand-new group: initialize every one of these founding voters with them.
    Initialize {
        /// The founding voters.
        members: Vec<Member>,
    },
    /// Add (or re-address) a non-voting member.
    AddLearner {
        /// The leader's URL.
        leader: String,
        /// The learner.
        member: Member,
    },
    /// Hand leadership to another voter before the leader leaves.
    TransferLeader {
        /// The leader's URL.
        leader: String,
        /// The new leader.
        to: NodeId,
    },
    /// Make exactly these ids the voters.
    ChangeVoters {
        /// The leader's URL.
        leader: String,
        /// The voters afterwards.
        voters: Vec<NodeId>,
    },
    /// Drop these non-voting members.
    RemoveNodes {
        /// The leader's URL.
        leader: String,
        /// The members to drop.
        ids: Vec<NodeId>,
    },
}

/// Decides the next step. Pure: the same observation always gives the same step.
///
/// With a leader, the stages below are asked in the safe order of `docs/design.md`; the first
/// that has something to do decides.
pub fn next_step(obs: &GroupView, desired: &[Member]) -> Step {
    if desired.is_empty() {
        return Step::Wait("the desired membership is empty".into());
    }
    let Some(leader) = obs.leader() else {
        return without_leader(obs, desired);
    };
    if leader.joint {
        return Step::Wait("a membership change is in progress".into());
    }
    let round = Round::new(obs, leader, desired);
    round
        .replace_lost_member()
        .or_else(|| round.add_or_move_members())
        .or_else(|| round.wait_for_learners())
        .or_else(|| round.hand_over_leadership())
        .or_else(|| round.set_voters())
        .or_else(|| round.drop_leftover_learners())
        .unwrap_or(Step::Done)
}

/// What one decision with a leader looks at.
struct Round<'a> {
    obs: &'a GroupView,
    leader: &'a RaftStatus,
    leader_url: String,
    desired: &'a [Member],
    desired_ids: BTreeSet<NodeId>,
    voters: BTreeSet<NodeId>,
}

impl<'a> Round<'a> {
    fn new(obs: &'a GroupView, leader: &'a RaftStatus, desired: &'a [Member]) -> Self {
        let leader_url = leader
            .members
            .iter()
            .find(|m| m.id == leader.id)
            .map(|m| m.url.clone())
            .unwrap_or_default();
        Self {
            obs,
            leader,
            leader_url,
            desired,
            desired_ids: desired.iter().map(|m| m.id).collect(),
            voters: leader.voters().into_iter().collect(),
        }
    }

    /// A member whose replica answers but takes no part in the group lost its volume (it is
    /// not admitted, or it is a voter without the membership): its old identity leaves, and it
    /// comes back as a learner through the later stages.
    fn replace_lost_member(&self) -> Option<Step> {
        let lost = self.leader.members.iter().find(|m| {
            m.id != self.leader.id
                && self
                    .obs
                    .answer(m.id)
                    .is_some_and(|s| !s.admitted || (m.voter && !s.initialized))
        })?;
        Some(if lost.voter {
            self.drop_voter(lost.id, "lost its state")
        } else {
            Step::RemoveNodes {
                leader: self.leader_url.clone(),
                ids: vec![lost.id],
            }
        })
    }

    /// Every desired member must be in the group, at its current address. A voter that moved
    /// leaves the voters first (a moving leader hands over first): a voter's address is never
    /// changed in place.
    fn add_or_move_members(&self) -> Option<Step> {
        self.desired.iter().find_map(
            |m| match self.leader.members.iter().find(|k| k.id == m.id) {
                Some(k) if reached_at(k, m) => None,
                Some(k) if k.voter && k.id == self.leader.id => Some(self.hand_over_moved_leader()),
                Some(k) if k.voter => Some(self.drop_voter(k.id, "moved")),
                _ => Some(Step::AddLearner {
                    leader: self.leader_url.clone(),
                    member: m.clone(),
                }),
            },
        )
    }

    /// The leader moved: leadership goes to the most caught-up healthy voter first.
    fn hand_over_moved_leader(&self) -> Step {
        let healthy = self
            .voters
            .iter()
            .copied()
            .filter(|v| *v != self.leader.id && self.obs.is_healthy(*v));
        match self.obs.most_caught_up(healthy) {
            Some(to) => Step::TransferLeader {
                leader: self.leader_url.clone(),
                to,
            },
            None => Step::Wait(format!(
                "leader {} moved and no healthy voter can take over",
                self.leader.id
            )),
        }
    }

    /// Desired members that are not voters yet must have caught up before promotion.
    fn wait_for_learners(&self) -> Option<Step> {
        let last = self.leader.last_log_index.unwrap_or(0);
        self.leader
            .members
            .iter()
            .filter(|m| !m.voter && self.desired_ids.contains(&m.id))
            .find_map(|m| {
                let matched = m.matched_index.unwrap_or(0);
                (matched + CATCH_UP_LAG < last).then(|| {
                    Step::Wait(format!(
                        "learner {} is catching up ({matched} of {last})",
                        m.id
                    ))
                })
            })
    }

    /// A leader that is to leave hands leadership to a desired voter first; with no desired
    /// voter yet, the desired members are promoted while it stays, so it can hand over next.
    fn hand_over_leadership(&self) -> Option<Step> {
        if self.desired_ids.contains(&self.leader.id) {
            return None;
        }
        let kept = self
            .voters
            .iter()
            .copied()
            .filter(|v| self.desired_ids.contains(v));
        Some(match self.obs.most_caught_up(kept) {
            Some(to) => Step::TransferLeader {
                leader: self.leader_url.clone(),
                to,
            },
            None => Step::ChangeVoters {
                leader: self.leader_url.clone(),
                voters: self
                    .desired_ids
                    .iter()
                    .copied()
                    .chain([self.leader.id])
                    .collect(),
            },
        })
    }

    /// The voters become exactly the desired set.
    fn set_voters(&self) -> Option<Step> {
        (self.voters != self.desired_ids).then(|| Step::ChangeVoters {
            leader: self.leader_url.clone(),
            voters: self.desired_ids.iter().copied().collect(),
        })
    }

    /// Learners nobody wants any more leave.
    fn drop_leftover_learners(&self) -> Option<Step> {
        let leftovers: Vec<NodeId> = self
            .leader
            .members
            .iter()
            .filter(|m| !m.voter && !self.desired_ids.contains(&m.id))
            .map(|m| m.id)
            .collect();
        (!leftovers.is_empty()).then(|| Step::RemoveNodes {
            leader: self.leader_url.clone(),
            ids: leftovers,
        })
    }

    /// Takes voter `leaving` out of the voters, if the healthy voters left are still a majority
    /// of all of them; else waits, saying why the member should go.
    fn drop_voter(&self, leaving: NodeId, why: &str) -> Step {
        let all: Vec<NodeId> = self.voters.iter().copied().collect();
        if self.obs.healthy_majority_without(&all, leaving) {
            return Step::ChangeVoters {
                leader: self.leader_url.clone(),
                voters: all.into_iter().filter(|v| *v != leaving).collect(),
            };
        }
        Step::Wait(format!(
            "member {leaving} {why} but quorum is too thin to take it out of the voters"
        ))
    }
}

/// The step when no reachable replica is the leader: form a new group, or wait.
///
/// Every founding member is initialized with the same membership (an empty replica is never a
/// legitimate voter, see the order replica's `identity` module). Forming can be resumed: while
/// nothing beyond the founding membership entry (index 0) exists anywhere, the founding members
/// that are still empty are initialized with the membership the others already hold.
fn without_leader(obs: &GroupView, desired: &[Member]) -> Step {
    let answered: Vec<&RaftStatus> = obs
        .statuses
        .values()
        .filter_map(|s| s.as_ref().ok())
        .collect();
    if answered.iter().any(|s| s.last_log_index > Some(0)) {
        return Step::Wait("no leader elected yet".into());
    }
    let mut held = answered.iter().filter(|s| s.initialized).map(|s| {
        let mut voters: Vec<Member> = s
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| Member {
                id: m.id,
                url: m.url.clone(),
                raft_url: m.raft_url.clone(),
            })
            .collect();
        voters.sort();
        voters
    });
    let founding = match held.next() {
        Some(first) if held.all(|other| other == first) => first,
        Some(_) => {
            return Step::Wait("replicas hold different founding memberships".into());
        }
        None => {
            let mut members = desired.to_vec();
            members.sort();
            members
        }
    };
    // Initialize only when every founding member answered: a member we cannot see might hold
    // the group's state, and initializing twice would split the group.
    let mut pending = false;
    for m in &founding {
        match obs.statuses.get(&m.id) {
            Some(Ok(s)) => pending |= !s.initialized,
            Some(Err(e)) => {
                return Step::Wait(format!(
                    "member {} is unreachable before initialization: {e}",
                    m.id
                ));
            }
            None => return Step::Wait(format!("member {} was not observed", m.id)),
        }
    }
    if !pending {
        return Step::Wait("no leader elected yet".into());
    }
    Step::Initialize { members: founding }
}

/// Whether the membership reaches `known` where `member` says (client and Raft URLs).
fn reached_at(known: &api::raft::MemberInfo, member: &Member) -> bool {
    known.url == member.url && known.raft_url == member.raft_url
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::raft::{MemberInfo, RaftRole};

    fn url(id: NodeId) -> String {
        format!("http://r{id}:7000")
    }

    fn member(id: NodeId) -> Member {
        Member::at(id, url(id))
    }

    fn desired(ids: &[NodeId]) -> Vec<Member> {
        ids.iter().map(|id| member(*id)).collect()
    }

    /// A replica's status: `voters` and `learners` as (id, matched index).
    fn status(
        id: NodeId,
        role: RaftRole,
        voters: &[(NodeId, u64)],
        learners: &[(NodeId, u64)],
    ) -> RaftStatus {
        let members = voters
            .iter()
            .map(|(i, m)| (i, m, true))
            .chain(learners.iter().map(|(i, m)| (i, m, false)))
            .map(|(i, m, voter)| MemberInfo {
                id: *i,
                url: url(*i),
                raft_url: None,
                voter,
                matched_index: (role == RaftRole::Leader).then_some(*m),
            })
            .collect::<Vec<_>>();
        RaftStatus {
            id,
            url: url(id),
            raft_url: None,
            role,
            term: 3,
            leader: voters.first().map(|v| v.0),
            last_log_index: Some(1000),
            commit_index: Some(1000),
            applied_index: Some(1000),
            snapshot_index: None,
            purged_index: None,
            initialized: !members.is_empty(),
            members,
            joint: false,
            recovered_torn_bytes: 0,
            admitted: true,
            inventory_defined: false,
            data_id: None,
        }
    }

    /// A replica on a new data directory: no membership, not admitted.
    fn fresh(id: NodeId) -> RaftStatus {
        let mut s = status(id, RaftRole::Learner, &[], &[]);
        s.initialized = false;
        s.admitted = false;
        s.leader = None;
        s.last_log_index = None;
        s
    }

    /// A founding member right after initialize: the membership entry at index 0, no leader.
    fn founded(id: NodeId, voters: &[NodeId]) -> RaftStatus {
        let v: Vec<(NodeId, u64)> = voters.iter().map(|v| (*v, 0)).collect();
        let mut s = status(id, RaftRole::Follower, &v, &[]);
        s.leader = None;
        s.term = 0;
        s.last_log_index = Some(0);
        s
    }

    fn obs(statuses: Vec<(NodeId, Result<RaftStatus, String>)>) -> GroupView {
        GroupView {
            statuses: statuses.into_iter().collect(),
        }
    }

    fn leader_of(voters: &[(NodeId, u64)], learners: &[(NodeId, u64)]) -> GroupView {
        obs(vec![(
            voters[0].0,
            Ok(status(voters[0].0, RaftRole::Leader, voters, learners)),
        )])
    }

    const UP: u64 = 1000;

    #[test]
    fn decision_table() {
        let three = [(1, UP), (2, UP), (3, UP)];
        let cases: Vec<(&str, GroupView, Vec<Member>, Step)> = vec![
            (
                "fresh group, all reachable: initialize every founding member",
                obs(vec![
                    (1, Ok(fresh(1))),
                    (2, Ok(fresh(2))),
                    (3, Ok(fresh(3))),
                ]),
                desired(&[3, 1, 2]),
                Step::Initialize {
                    members: desired(&[1, 2, 3]),
                },
            ),
            (
                "forming interrupted after the first member: finish with the same membership",
                obs(vec![
                    (1, Ok(founded(1, &[1, 2, 3]))),
                    (2, Ok(fresh(2))),
                    (3, Ok(fresh(3))),
                ]),
                desired(&[1, 2, 3, 4, 5]),
                Step::Initialize {
                    members: desired(&[1, 2, 3]),
                },
            ),
            (
                "every founding member initialized, no leader yet: wait for the election",
                obs(vec![
                    (1, Ok(founded(1, &[1, 2, 3]))),
                    (2, Ok(founded(2, &[1, 2, 3]))),
                    (3, Ok(founded(3, &[1, 2, 3]))),
                ]),
                desired(&[1, 2, 3]),
                Step::Wait("no leader elected yet".into()),
            ),
            (
                "founding members disagree: never add a third opinion",
                obs(vec![
                    (1, Ok(founded(1, &[1, 2, 3]))),
                    (2, Ok(founded(2, &[1, 2]))),
                    (3, Ok(fresh(3))),
                ]),
                desired(&[1, 2, 3]),
                Step::Wait("replicas hold different founding memberships".into()),
            ),
            (
                "a group that committed anything is never initialized again, even with only an \
                 empty replica in sight",
                obs(vec![
                    (1, Err("down".into())),
                    (2, Ok(status(2, RaftRole::Follower, &three, &[]))),
                    (3, Ok(fresh(3))),
                ]),
                desired(&[1, 2, 3]),
                Step::Wait("no leader elected yet".into()),
            ),
            (
                "fresh group with a member unreachable: never initialize blind",
                obs(vec![
                    (1, Ok(fresh(1))),
                    (2, Err("refused".into())),
                    (3, Ok(fresh(3))),
                ]),
                desired(&[1, 2, 3]),
                Step::Wait("member 2 is unreachable before initialization: refused".into()),
            ),
            (
                "state exists but no leader (election under way): wait, never re-initialize",
                obs(vec![
                    (1, Ok(status(1, RaftRole::Candidate, &three, &[]))),
                    (2, Ok(fresh(2))),
                    (3, Err("down".into())),
                ]),
                desired(&[1, 2, 3]),
                Step::Wait("no leader elected yet".into()),
            ),
            (
                "steady state",
                leader_of(&three, &[]),
                desired(&[1, 2, 3]),
                Step::Done,
            ),
            (
                "scale up: add the first missing learner",
                leader_of(&three, &[]),
                desired(&[1, 2, 3, 4, 5]),
                Step::AddLearner {
                    leader: url(1),
                    member: member(4),
                },
            ),
            (
                "scale up resumed after a crash: 4 is in, add 5",
                leader_of(&three, &[(4, 10)]),
                desired(&[1, 2, 3, 4, 5]),
                Step::AddLearner {
                    leader: url(1),
                    member: member(5),
                },
            ),
            (
                "learners lagging: wait before promoting",
                leader_of(&three, &[(4, UP), (5, 10)]),
                desired(&[1, 2, 3, 4, 5]),
                Step::Wait("learner 5 is catching up (10 of 1000)".into()),
            ),
            (
                "learners caught up: promote",
                leader_of(&three, &[(4, UP), (5, UP - 3)]),
                desired(&[1, 2, 3, 4, 5]),
                Step::ChangeVoters {
                    leader: url(1),
                    voters: vec![1, 2, 3, 4, 5],
                },
            ),
            (
                "scale down keeping the leader: change voters",
                leader_of(&[(1, UP), (2, UP), (3, UP), (4, UP), (5, UP)], &[]),
                desired(&[1, 2, 3]),
                Step::ChangeVoters {
                    leader: url(1),
                    voters: vec![1, 2, 3],
                },
            ),
            (
                "scale down removing the leader: hand leadership to the most caught-up kept voter \
                 (3 and 4 tie: the lower id)",
                leader_of(&[(1, UP), (2, UP - 5), (3, UP), (4, UP), (5, UP)], &[]),
                desired(&[2, 3, 4]),
                Step::TransferLeader {
                    leader: url(1),
                    to: 3,
                },
            ),
            (
                "voters done, removed member left as learner: drop it",
                leader_of(&three, &[(5, UP)]),
                desired(&[1, 2, 3]),
                Step::RemoveNodes {
                    leader: url(1),
                    ids: vec![5],
                },
            ),
            (
                "a learner moved (new address): re-add it at its new address",
                leader_of(&three, &[(4, UP)]),
                vec![
                    member(1),
                    member(2),
                    member(3),
                    Member {
                        id: 4,
                        url: "http://moved:1".into(),
                        raft_url: None,
                    },
                ],
                Step::AddLearner {
                    leader: url(1),
                    member: Member {
                        id: 4,
                        url: "http://moved:1".into(),
                        raft_url: None,
                    },
                },
            ),
            (
                "a voter moved: it leaves the voters first, never re-addressed in place",
                {
                    let mut o = leader_of(&three, &[]);
                    o.statuses
                        .insert(2, Ok(status(2, RaftRole::Follower, &three, &[])));
                    o
                },
                vec![
                    member(1),
                    member(2),
                    Member {
                        id: 3,
                        url: "http://moved:1".into(),
                        raft_url: None,
                    },
                ],
                Step::ChangeVoters {
                    leader: url(1),
                    voters: vec![1, 2],
                },
            ),
        ];
        for (name, observation, want, expected) in cases {
            assert_eq!(next_step(&observation, &want), expected, "{name}");
        }
    }

    #[test]
    fn a_leader_that_moved_hands_over_first() {
        let three = [(1, UP), (2, UP - 1), (3, UP)];
        let mut o = leader_of(&three, &[]);
        for id in [2, 3] {
            o.statuses
                .insert(id, Ok(status(id, RaftRole::Follower, &three, &[])));
        }
        let moved = vec![
            Member {
                id: 1,
                url: "http://moved:1".into(),
                raft_url: None,
            },
            member(2),
            member(3),
        ];
        assert_eq!(
            next_step(&o, &moved),
            Step::TransferLeader {
                leader: url(1),
                to: 3
            }
        );
    }

    #[test]
    fn joint_configuration_waits() {
        let mut o = leader_of(&[(1, UP), (2, UP), (3, UP)], &[]);
        if let Some(Ok(s)) = o.statuses.get_mut(&1) {
            s.joint = true;
        }
        assert!(matches!(next_step(&o, &desired(&[1, 2, 3])), Step::Wait(_)));
    }

    #[test]
    fn voter_that_lost_its_volume_is_removed_while_quorum_holds() {
        let three = [(1, UP), (2, UP), (3, UP)];
        let mut o = leader_of(&three, &[]);
        o.statuses
            .insert(2, Ok(status(2, RaftRole::Follower, &three, &[])));
        o.statuses.insert(3, Ok(fresh(3)));
        assert_eq!(
            next_step(&o, &desired(&[1, 2, 3])),
            Step::ChangeVoters {
                leader: url(1),
                voters: vec![1, 2]
            }
        );
        // With another voter down, removing it would leave no healthy majority of the old set.
        o.statuses.insert(2, Err("down".into()));
        assert!(matches!(next_step(&o, &desired(&[1, 2, 3])), Step::Wait(_)));
    }

    #[test]
    fn a_voter_holding_the_log_but_not_admitted_is_removed_too() {
        // A new leader may have replicated to the wiped voter before the driver saw it: it holds
        // the log now, but it may have forgotten a vote, so it must still leave and come back.
        let three = [(1, UP), (2, UP), (3, UP)];
        let mut o = leader_of(&three, &[]);
        o.statuses
            .insert(2, Ok(status(2, RaftRole::Follower, &three, &[])));
        let mut refilled = status(3, RaftRole::Follower, &three, &[]);
        refilled.admitted = false;
        o.statuses.insert(3, Ok(refilled));
        assert_eq!(
            next_step(&o, &desired(&[1, 2, 3])),
            Step::ChangeVoters {
                leader: url(1),
                voters: vec![1, 2]
            }
        );
    }

    #[test]
    fn a_replaced_member_comes_back_as_a_learner_then_a_voter() {
        // Removed: it is added again (the leader admits it first).
        let mut o = leader_of(&[(1, UP), (2, UP)], &[]);
        o.statuses.insert(3, Ok(fresh(3)));
        assert_eq!(
            next_step(&o, &desired(&[1, 2, 3])),
            Step::AddLearner {
                leader: url(1),
                member: member(3)
            }
        );
        // Added, still catching up: wait.
        let o = leader_of(&[(1, UP), (2, UP)], &[(3, 5)]);
        assert!(matches!(next_step(&o, &desired(&[1, 2, 3])), Step::Wait(_)));
        // Caught up: a voter again.
        let o = leader_of(&[(1, UP), (2, UP)], &[(3, UP)]);
        assert_eq!(
            next_step(&o, &desired(&[1, 2, 3])),
            Step::ChangeVoters {
                leader: url(1),
                voters: vec![1, 2, 3]
            }
        );
    }

    #[test]
    fn a_learner_that_lost_its_volume_is_removed() {
        let mut o = leader_of(&[(1, UP), (2, UP), (3, UP)], &[(4, 700)]);
        o.statuses.insert(4, Ok(fresh(4)));
        assert_eq!(
            next_step(&o, &desired(&[1, 2, 3, 4, 5])),
            Step::RemoveNodes {
                leader: url(1),
                ids: vec![4]
            }
        );
    }
}
