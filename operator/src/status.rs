//! The status step: what `kubectl get toystores` shows, computed from the observed group.
//!
//! Pure: the same observation and previous status give the same new status, and a condition
//! keeps its `lastTransitionTime` while its value does not change, so a steady store produces
//! an identical status and the reconciler writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use api::membership::{Observation, Step};
use api::raft::{NodeId, RaftRole};

use crate::crd::{MemberStatus, ToyStore, ToyStoreStatus};
use crate::objects::order_pod_name;

/// What the reconciler knows when it writes the status.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    /// The observed order group.
    pub obs: &'a Observation,
    /// The membership step decided this round.
    pub step: &'a Step,
    /// Whether a rolling upgrade is under way.
    pub rolling: bool,
    /// Whether the group has ever been initialized.
    pub initialized: bool,
    /// A problem to report as `Degraded` (invalid spec, refused step), with its reason.
    pub problem: Option<(&'a str, String)>,
}

/// Builds the status for `store` from `input`, keeping transition times from `store.status`.
pub fn build_status(store: &ToyStore, input: &StatusInput, now: Timestamp) -> ToyStoreStatus {
    let previous = store.status.clone().unwrap_or_default();
    let leader = input.obs.leader();
    let members = member_statuses(store, input.obs);
    let desired = store.spec.orders.replicas as usize;
    let ready_voters = leader.map_or(0, |l| {
        l.voters()
            .iter()
            .filter(|v| members.iter().any(|m| m.id == **v as i64 && m.healthy))
            .count()
    });
    let settled = matches!(input.step, Step::Done) && !input.rolling;
    let (ready, ready_reason, ready_message) = match (&input.problem, leader) {
        (Some((reason, message)), _) => (false, reason.to_string(), message.clone()),
        (None, None) => (
            false,
            "NoLeader".into(),
            "no order replica is leader".into(),
        ),
        (None, Some(_)) if !settled => (
            false,
            "Reconciling".into(),
            step_message(input.step, input.rolling),
        ),
        (None, Some(_)) if ready_voters < desired => (
            false,
            "MembersUnhealthy".into(),
            format!("{ready_voters} of {desired} order replicas healthy"),
        ),
        (None, Some(l)) => (
            true,
            "AllMembersHealthy".into(),
            format!(
                "{desired} order replicas, leader {}",
                order_pod_name(store, l.id as i32)
            ),
        ),
    };
    let unhealthy: Vec<String> = members
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| m.pod.clone())
        .collect();
    let (degraded, degraded_reason, degraded_message) = match (&input.problem, unhealthy.is_empty())
    {
        (Some((reason, message)), _) => (true, reason.to_string(), message.clone()),
        (None, false) => (
            true,
            "MemberUnreachable".into(),
            format!("unhealthy: {}", unhealthy.join(", ")),
        ),
        (None, true) => (false, "AsExpected".into(), "every member is healthy".into()),
    };
    let generation = store.metadata.generation;
    let conditions = vec![
        condition(
            &previous,
            "Ready",
            ready,
            &ready_reason,
            &ready_message,
            generation,
            now,
        ),
        condition(
            &previous,
            "Progressing",
            !settled,
            if settled { "Stable" } else { "Reconciling" },
            &if settled {
                "nothing to do".to_string()
            } else {
                step_message(input.step, input.rolling)
            },
            generation,
            now,
        ),
        condition(
            &previous,
            "Degraded",
            degraded,
            &degraded_reason,
            &degraded_message,
            generation,
            now,
        ),
    ];
    ToyStoreStatus {
        observed_generation: generation,
        conditions,
        leader: leader.map(|l| order_pod_name(store, l.id as i32)),
        term: leader.map(|l| l.term as i64),
        initialized: input.initialized,
        ready_order_replicas: ready_voters as i32,
        members,
    }
}

fn step_message(step: &Step, rolling: bool) -> String {
    match step {
        Step::Done if rolling => "rolling upgrade of the order replicas".into(),
        Step::Done => "nothing to do".into(),
        Step::Wait(why) => format!("waiting: {why}"),
        other => format!("membership step: {other:?}"),
    }
}

fn condition(
    previous: &ToyStoreStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if value { "True" } else { "False" };
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Members as the leader's membership lists them (or any replica's, without a leader).
fn member_statuses(store: &ToyStore, obs: &Observation) -> Vec<MemberStatus> {
    let view = obs.leader().or_else(|| {
        obs.statuses
            .values()
            .filter_map(|s| s.as_ref().ok())
            .max_by_key(|s| s.term)
    });
    let Some(view) = view else {
        return Vec::new();
    };
    view.members
        .iter()
        .map(|m| {
            let own = obs.statuses.get(&m.id).and_then(|s| s.as_ref().ok());
            MemberStatus {
                id: m.id as i64,
                pod: order_pod_name(store, m.id as i32),
                role: own.map_or("unreachable".into(), |s| role_name(s.role, m.voter)),
                healthy: own.is_some_and(|s| s.initialized),
                matched_index: m.matched_index.map(|i| i as i64),
            }
        })
        .collect()
}

fn role_name(role: RaftRole, voter: bool) -> String {
    match role {
        RaftRole::Leader => "leader",
        RaftRole::Candidate => "candidate",
        RaftRole::Follower if voter => "follower",
        RaftRole::Follower | RaftRole::Learner => "learner",
        RaftRole::Shutdown => "shutdown",
    }
    .into()
}

/// The leader's node id, if one is observed.
pub fn leader_id(obs: &Observation) -> Option<NodeId> {
    obs.leader().map(|l| l.id)
}
