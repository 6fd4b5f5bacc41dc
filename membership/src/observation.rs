//! What the driver saw, and what counts as a healthy member.

use std::collections::BTreeMap;

use api::raft::{NodeId, RaftRole, RaftStatus};

/// A learner counts as caught up when it is at most this many entries behind the leader.
pub const DEFAULT_CATCH_UP_LAG: u64 = 64;

/// What the driver saw: each replica's status or why it could not be read.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Status per member id; `Err` holds the reason it is unknown.
    pub statuses: BTreeMap<NodeId, Result<RaftStatus, String>>,
}

impl Observation {
    /// The status of the leader, if some reachable replica is the leader.
    pub fn leader(&self) -> Option<&RaftStatus> {
        self.statuses
            .values()
            .filter_map(|s| s.as_ref().ok())
            .filter(|s| s.role == RaftRole::Leader)
            .max_by_key(|s| s.term)
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
    /// The leader's matched index for it is this many entries behind the leader's last index.
    Lagging(u64),
}

/// Whether member `id` is healthy: its replica answers, is admitted and holds the group's
/// membership, and (when a leader is observed) the leader's matched index for it is within
/// `catch_up_lag` entries of the leader's last log index. The leader is healthy when it answers
/// with its state; without a leader the lag cannot be judged and is not.
pub fn member_health(obs: &Observation, id: NodeId, catch_up_lag: u64) -> Result<(), Unhealthy> {
    let Some(Ok(own)) = obs.statuses.get(&id) else {
        return Err(Unhealthy::Unreachable);
    };
    if !own.admitted || !own.initialized {
        return Err(Unhealthy::LostData);
    }
    let Some(leader) = obs.leader() else {
        return Ok(());
    };
    if leader.id == id {
        return Ok(());
    }
    let last = leader.last_log_index.unwrap_or(0);
    let matched = leader
        .members
        .iter()
        .find(|m| m.id == id)
        .and_then(|m| m.matched_index)
        .unwrap_or(0);
    let behind = last.saturating_sub(matched);
    if behind > catch_up_lag {
        return Err(Unhealthy::Lagging(behind));
    }
    Ok(())
}
