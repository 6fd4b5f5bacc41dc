//! The status step: what `kubectl get toystores` shows, computed from the observed group.
//!
//! Pure: the same observation and previous status give the same new status, and a condition
//! keeps its `lastTransitionTime` while its value does not change, so a steady store produces
//! an identical status and the reconciler writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use api::raft::{RaftRole, RaftStatus};
use api::view::{GroupView, Unhealthy};
use membership::Step;

use crate::build::order_pod_name;
use crate::crd::{MemberStatus, RestoreStatus, ToyStore, ToyStoreStatus};

/// What the reconciler knows when it writes the status.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    /// The observed order group.
    pub obs: &'a GroupView,
    /// The membership step decided this round.
    pub step: &'a Step,
    /// Whether a rolling upgrade is under way.
    pub rolling: bool,
    /// Whether the group has ever been initialized.
    pub initialized: bool,
    /// A problem to report as `Degraded` (invalid spec, refused step), with its reason.
    pub problem: Option<(&'a str, String)>,
    /// Where the store's restore from a backup stands.
    pub restore: Restore,
    /// The scheduled backup created last, if this round created one (else the recorded one
    /// stays).
    pub scheduled: Option<Scheduled>,
}

/// Where a store's restore from a backup stands (`spec.restore`).
#[derive(Debug, Clone, PartialEq)]
pub enum Restore {
    /// The store was not created from a backup.
    NotRequested,
    /// Not known this round (an invalid spec stopped it before the restore step).
    Unknown,
    /// The restore Job is created or runs; what it waits for.
    Running(String),
    /// The restore failed, why; the store gets no order group.
    Failed(String),
    /// Done: what it restored (`None`: the order group existed before the restore could be
    /// recorded).
    Done(Option<RestoreStatus>),
}

impl Restore {
    /// What the status already records about `store`'s restore.
    pub fn recorded(store: &ToyStore) -> Restore {
        let recorded = store.status.as_ref().and_then(|s| s.restore.clone());
        match (&store.spec.restore, recorded) {
            (None, None) => Restore::NotRequested,
            (_, Some(done)) => Restore::Done(Some(done)),
            (Some(_), None) => Restore::Unknown,
        }
    }
}

/// A scheduled backup that was created: its due time and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// The due time of the schedule it was created for.
    pub time: Time,
    /// The ToyStoreBackup's name.
    pub backup: String,
}

/// Builds the status for `store` from `input`, keeping transition times from `store.status`.
///
/// `Ready` and `Degraded` say what is true now, in this order of precedence: a reported problem
/// (invalid spec, failed apply, refused step); no member observed yet (`NotObserved`, or
/// `Unreachable` once the group was initialized); unhealthy members, each named with the reason
/// (`MembersUnhealthy`); no leader; a membership step or upgrade under way (`Reconciling`);
/// the leader not reporting the store's toys defined (`InventoryNotDefined`: not ready, since
/// nothing can be sold, but not degraded, since the catalog defines them at its first start).
/// Before any replica has answered, `Degraded` is `Unknown`: nothing is known to be healthy.
///
/// The catalog pods play no part: the order group alone takes purchases, so a catalog outage
/// leaves a store with a healthy group `Ready` (product queries answer 503 meanwhile).
///
/// A store created from a backup (`spec.restore`) has a fourth condition, `Restored`. While its
/// restore runs, nothing else exists yet: `Ready` is False and `Progressing` True for
/// `Restoring`; a failed restore is `RestoreFailed` in `Ready`, `Degraded` and `Restored`.
pub fn build_status(store: &ToyStore, input: &StatusInput, now: Timestamp) -> ToyStoreStatus {
    let leader = input.obs.leader();
    let members = member_statuses(store, input.obs);
    let healthy_voters = healthy_voters(leader, &members.list);
    let mut degraded = degraded(store, input, &members);
    let mut ready = ready(store, input, leader, &members, &degraded, healthy_voters);
    let mut progressing = progressing(input);
    match &input.restore {
        Restore::Running(message) => {
            let restoring = |status| Verdict::new(status, "Restoring", message.clone());
            (ready, progressing, degraded) =
                (restoring("False"), restoring("True"), restoring("False"));
        }
        Restore::Failed(message) => {
            let failed = |status| Verdict::new(status, "RestoreFailed", message.clone());
            (ready, progressing, degraded) = (failed("False"), failed("False"), failed("True"));
        }
        _ => {}
    }
    let previous = store.status.clone().unwrap_or_default();
    let generation = store.metadata.generation;
    // Not known this round: the previous `Restored` stays as it was, rather than a guess.
    let kept = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Restored")
        .filter(|_| input.restore == Restore::Unknown)
        .cloned();
    let restored = store.spec.restore.as_ref().map(|_| {
        kept.unwrap_or_else(|| {
            verdict_condition(
                &previous,
                "Restored",
                restored(&input.restore),
                generation,
                now,
            )
        })
    });
    let conditions = [
        ("Ready", ready),
        ("Progressing", progressing),
        ("Degraded", degraded),
    ]
    .into_iter()
    .map(|(type_, verdict)| verdict_condition(&previous, type_, verdict, generation, now))
    .chain(restored)
    .collect();
    let (last_schedule_time, last_scheduled_backup) = match &input.scheduled {
        Some(s) => (Some(s.time.clone()), Some(s.backup.clone())),
        None => (previous.last_schedule_time, previous.last_scheduled_backup),
    };
    ToyStoreStatus {
        observed_generation: generation,
        conditions,
        leader: leader.map(|l| order_pod_name(&store.name_any(), l.id as i32)),
        term: leader.map(|l| l.term as i64),
        initialized: input.initialized,
        ready_order_replicas: healthy_voters as i32,
        members: members.list,
        restore: match &input.restore {
            Restore::Done(Some(done)) => Some(done.clone()),
            _ => previous.restore,
        },
        last_schedule_time,
        last_scheduled_backup,
    }
}

/// `Restored`: whether the store holds the state of the artifact it was created from.
fn restored(restore: &Restore) -> Verdict {
    match restore {
        Restore::Done(Some(r)) => Verdict::new(
            "True",
            "Restored",
            format!(
                "restored from {}: store {} as of index {}, {} orders",
                r.from, r.source_store, r.index, r.orders
            ),
        ),
        Restore::Done(None) => Verdict::new(
            "Unknown",
            "NotRecorded",
            "the order group existed before a restore was recorded; it is never restored again",
        ),
        Restore::Running(message) => Verdict::new("False", "Restoring", message.clone()),
        Restore::Failed(message) => Verdict::new("False", "RestoreFailed", message.clone()),
        // Unknown with no `Restored` recorded yet: no round has started the restore.
        Restore::NotRequested | Restore::Unknown => {
            Verdict::new("Unknown", "NotStarted", "the restore has not started")
        }
    }
}

/// One condition's value, reason and message.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    status: &'static str,
    reason: String,
    message: String,
}

impl Verdict {
    fn new(status: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Verdict {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The members as the status lists them, and the unhealthy ones.
struct Members {
    list: Vec<MemberStatus>,
    /// For each unhealthy member: whether it votes, and a sentence naming its pod and why.
    unhealthy: Vec<(bool, String)>,
}

impl Members {
    /// The sentences of the unhealthy members, voters only or all of them.
    fn unhealthy(&self, voters_only: bool) -> Vec<&str> {
        self.unhealthy
            .iter()
            .filter(|(voter, _)| *voter || !voters_only)
            .map(|(_, why)| why.as_str())
            .collect()
    }
}

/// The leader's voters that are healthy members.
fn healthy_voters(leader: Option<&RaftStatus>, members: &[MemberStatus]) -> usize {
    leader.map_or(0, |l| {
        l.voters()
            .iter()
            .filter(|v| members.iter().any(|m| m.id == **v as i64 && m.healthy))
            .count()
    })
}

/// Whether nothing is under way: the membership is as desired and no upgrade runs.
fn settled(input: &StatusInput) -> bool {
    matches!(input.step, Step::Done) && !input.rolling
}

/// `Degraded`: a reported problem, nothing observed, unhealthy voters or no leader. A learner
/// still catching up (scale-up) does not degrade the group; it only keeps it from being ready.
fn degraded(store: &ToyStore, input: &StatusInput, members: &Members) -> Verdict {
    let unhealthy_voters = members.unhealthy(true);
    if let Some((reason, message)) = &input.problem {
        Verdict::new("True", reason, message.clone())
    } else if members.list.is_empty() {
        not_observed(store, input.obs, input.initialized)
    } else if !unhealthy_voters.is_empty() {
        Verdict::new("True", "MembersUnhealthy", unhealthy_voters.join("; "))
    } else if input.obs.leader().is_none() {
        Verdict::new("True", "NoLeader", "no order replica is leader")
    } else {
        Verdict::new("False", "AsExpected", "every member is healthy")
    }
}

/// `Ready`: the group is whole (not degraded, settled, every desired voter healthy) and the
/// leader reports the toys defined; otherwise the first reason it is not.
fn ready(
    store: &ToyStore,
    input: &StatusInput,
    leader: Option<&RaftStatus>,
    members: &Members,
    degraded: &Verdict,
    healthy_voters: usize,
) -> Verdict {
    let desired = store.spec.orders.replicas as usize;
    let sound = degraded.status == "False";
    let settled = settled(input);
    let whole = sound && settled && healthy_voters >= desired;
    match leader {
        Some(l) if whole && l.inventory_defined => Verdict::new(
            "True",
            "AllMembersHealthy",
            format!(
                "{desired} order replicas, leader {}",
                order_pod_name(&store.name_any(), l.id as i32)
            ),
        ),
        Some(_) if sound && !members.unhealthy.is_empty() => Verdict::new(
            "False",
            "MembersUnhealthy",
            members.unhealthy(false).join("; "),
        ),
        Some(_) if sound && !settled => Verdict::new(
            "False",
            "Reconciling",
            step_message(input.step, input.rolling),
        ),
        Some(_) if whole => Verdict::new(
            "False",
            "InventoryNotDefined",
            "the order group holds no toys yet: the catalog defines them at its first start",
        ),
        Some(_) if sound => Verdict::new(
            "False",
            "MembersUnhealthy",
            format!("{healthy_voters} of {desired} order replicas are healthy voters"),
        ),
        _ => Verdict {
            status: "False",
            ..degraded.clone()
        },
    }
}

/// `Progressing`: a membership step or an upgrade under way.
fn progressing(input: &StatusInput) -> Verdict {
    if settled(input) {
        Verdict::new("False", "Stable", "nothing to do")
    } else {
        Verdict::new(
            "True",
            "Reconciling",
            step_message(input.step, input.rolling),
        )
    }
}

/// The verdict when no replica reports a membership: nothing is known to be healthy.
fn not_observed(store: &ToyStore, obs: &GroupView, initialized: bool) -> Verdict {
    let answered = obs.answers().next().is_some();
    if answered {
        let message = "the order group is not observed yet: no order replica holds its membership";
        return Verdict::new("Unknown", "NotObserved", message);
    }
    let unreachable: Vec<String> = obs
        .statuses
        .iter()
        .filter_map(|(id, s)| {
            let e = s.as_ref().err()?;
            Some(format!(
                "{}: {e}",
                order_pod_name(&store.name_any(), *id as i32)
            ))
        })
        .collect();
    let detail = if unreachable.is_empty() {
        String::new()
    } else {
        format!(" ({})", unreachable.join("; "))
    };
    if initialized {
        let message = format!("no order replica answers{detail}");
        Verdict::new("True", "Unreachable", message)
    } else {
        let message =
            format!("the order group is not observed yet: no order replica has answered{detail}");
        Verdict::new("Unknown", "NotObserved", message)
    }
}

/// What is under way, for `Progressing` and a `Reconciling` `Ready`.
fn step_message(step: &Step, rolling: bool) -> String {
    match step {
        Step::Done if rolling => "rolling upgrade of the order replicas".into(),
        Step::Done => "nothing to do".into(),
        Step::Wait(why) => format!("waiting: {why}"),
        other => format!("membership step: {other:?}"),
    }
}

/// The condition `type_` with `status`, `reason` and `message`, as of `generation`, keeping
/// the transition time of the same condition in `previous` while its status does not change:
/// every condition the operator writes (a store's, a backup's `Completed`).
pub(crate) fn condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let last_transition_time = previous
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

/// [`condition`] of a store's `verdict`.
fn verdict_condition(
    previous: &ToyStoreStatus,
    type_: &str,
    verdict: Verdict,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    condition(
        &previous.conditions,
        type_,
        verdict.status,
        &verdict.reason,
        &verdict.message,
        generation,
        now,
    )
}

/// Members as the leader's membership lists them (or, without a leader, the membership of the
/// answer in the newest term), each with its health as the view judges it.
fn member_statuses(store: &ToyStore, obs: &GroupView) -> Members {
    let Some(view) = obs.membership_view() else {
        return Members {
            list: Vec::new(),
            unhealthy: Vec::new(),
        };
    };
    let mut unhealthy = Vec::new();
    let list = view
        .members
        .iter()
        .map(|m| {
            let own = obs.answer(m.id);
            let pod = order_pod_name(&store.name_any(), m.id as i32);
            let health = obs.health(m.id);
            if let Err(why) = &health {
                unhealthy.push((m.voter, unhealthy_sentence(&pod, why)));
            }
            MemberStatus {
                id: m.id as i64,
                pod,
                role: own.map_or("unreachable".into(), |s| role_name(s.role, m.voter)),
                healthy: health.is_ok(),
                matched_index: m.matched_index.map(|i| i as i64),
            }
        })
        .collect();
    Members { list, unhealthy }
}

/// Why `pod` is unhealthy, as a sentence.
fn unhealthy_sentence(pod: &str, why: &Unhealthy) -> String {
    match why {
        Unhealthy::Unreachable => format!("{pod} is unreachable"),
        Unhealthy::LostData => format!("{pod} lost its data"),
        Unhealthy::Campaigning => format!("{pod} is campaigning: it cannot hear the leader"),
        Unhealthy::Lagging(n) => format!("{pod} is {n} entries behind the leader"),
    }
}

/// The role the status shows: a follower that does not vote is a learner.
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

#[cfg(test)]
mod tests {
    use super::*;
    use api::raft::{MemberInfo, NodeId};
    use api::view::CATCH_UP_LAG;

    const LAST: u64 = 500;

    fn store() -> ToyStore {
        let spec = serde_json::from_value(serde_json::json!({"image": "toystore:1"})).unwrap();
        let mut s = ToyStore::new("toys", spec);
        s.metadata.namespace = Some("shop".into());
        s.metadata.generation = Some(1);
        s
    }

    /// Voters 0, 1, 2 with leader 0; `matched` is the leader's matched index per member.
    fn group(matched: [u64; 3]) -> GroupView {
        let members: Vec<MemberInfo> = (0..3)
            .map(|id| MemberInfo {
                id,
                url: format!("http://o-{id}:7000"),
                raft_url: None,
                voter: true,
                matched_index: Some(matched[id as usize]),
            })
            .collect();
        let statuses = (0..3)
            .map(|id| {
                let s = RaftStatus {
                    id,
                    url: format!("http://o-{id}:7000"),
                    raft_url: None,
                    role: if id == 0 {
                        RaftRole::Leader
                    } else {
                        RaftRole::Follower
                    },
                    term: 2,
                    leader: Some(0),
                    last_log_index: Some(LAST),
                    commit_index: Some(LAST),
                    applied_index: Some(LAST),
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
                (id, Ok(s))
            })
            .collect();
        GroupView { statuses }
    }

    fn with(mut obs: GroupView, id: NodeId, change: impl FnOnce(&mut RaftStatus)) -> GroupView {
        if let Some(Ok(s)) = obs.statuses.get_mut(&id) {
            change(s);
        }
        obs
    }

    fn status_of(obs: &GroupView, initialized: bool) -> ToyStoreStatus {
        let input = StatusInput {
            obs,
            step: &Step::Done,
            rolling: false,
            initialized,
            problem: None,
            restore: Restore::NotRequested,
            scheduled: None,
        };
        build_status(&store(), &input, Timestamp::UNIX_EPOCH)
    }

    fn cond<'a>(s: &'a ToyStoreStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn health_decision_table() {
        let healthy = group([LAST, LAST, LAST]);
        let cases = [
            (
                "all caught up",
                healthy.clone(),
                vec![Ok(()), Ok(()), Ok(())],
            ),
            (
                "exactly at the catch-up lag is healthy",
                group([LAST, LAST - CATCH_UP_LAG, LAST]),
                vec![Ok(()), Ok(()), Ok(())],
            ),
            (
                "one entry past the lag is lagging",
                group([LAST, LAST - CATCH_UP_LAG - 1, LAST]),
                vec![Ok(()), Err(Unhealthy::Lagging(65)), Ok(())],
            ),
            (
                "the leader's own matched index does not matter",
                group([0, LAST, LAST]),
                vec![Ok(()), Ok(()), Ok(())],
            ),
            (
                "unreachable",
                {
                    let mut o = healthy.clone();
                    o.statuses.insert(2, Err("connection refused".into()));
                    o
                },
                vec![Ok(()), Ok(()), Err(Unhealthy::Unreachable)],
            ),
            (
                "not admitted: a new data directory",
                with(healthy.clone(), 1, |s| s.admitted = false),
                vec![Ok(()), Err(Unhealthy::LostData), Ok(())],
            ),
            (
                "no membership: lost its data",
                with(healthy.clone(), 2, |s| s.initialized = false),
                vec![Ok(()), Ok(()), Err(Unhealthy::LostData)],
            ),
        ];
        for (name, obs, want) in cases {
            let got: Vec<_> = (0..3).map(|id| obs.health(id)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_healthy_group_is_ready_and_not_degraded() {
        let s = status_of(&group([LAST, LAST, LAST]), true);
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "Degraded").status, "False");
        assert!(s.members.iter().all(|m| m.healthy));
        assert_eq!(s.ready_order_replicas, 3);
    }

    #[test]
    fn unhealthy_members_are_named_with_the_reason() {
        let mut obs = with(group([LAST, LAST, 10]), 1, |s| s.admitted = false);
        let s = status_of(&obs, true);
        for type_ in ["Ready", "Degraded"] {
            let c = cond(&s, type_);
            assert_eq!(c.reason, "MembersUnhealthy", "{type_}");
            assert_eq!(
                c.message,
                "toys-orders-1 lost its data; toys-orders-2 is 490 entries behind the leader",
                "{type_}"
            );
        }
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Degraded").status, "True");
        let healthy: Vec<bool> = s.members.iter().map(|m| m.healthy).collect();
        assert_eq!(healthy, [true, false, false]);

        obs.statuses.insert(1, Err("timed out".into()));
        let s = status_of(&obs, true);
        assert!(
            cond(&s, "Ready")
                .message
                .starts_with("toys-orders-1 is unreachable"),
            "{:?}",
            cond(&s, "Ready")
        );
    }

    #[test]
    fn a_lagging_learner_keeps_the_store_unready_without_degrading_it() {
        let mut obs = group([LAST, LAST, 0]);
        for s in obs.statuses.values_mut().flatten() {
            s.members[2].voter = false;
        }
        let s = status_of(&obs, true);
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(
            cond(&s, "Ready").message,
            "toys-orders-2 is 500 entries behind the leader"
        );
        assert_eq!(cond(&s, "Degraded").status, "False");
    }

    #[test]
    fn a_store_whose_toys_are_not_defined_is_not_ready_nor_degraded() {
        let undefined = |obs| with(obs, 0, |s| s.inventory_defined = false);
        // The leader's word counts: followers that report the toys defined change nothing.
        let s = status_of(&undefined(group([LAST, LAST, LAST])), true);
        let ready = cond(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InventoryNotDefined")
        );
        assert!(ready.message.contains("catalog defines them"), "{ready:?}");
        assert_eq!(cond(&s, "Degraded").status, "False");
        assert_eq!(s.ready_order_replicas, 3);

        // Unhealthy members come first: they are what a person must look at.
        let s = status_of(&undefined(group([LAST, LAST, 10])), true);
        assert_eq!(cond(&s, "Ready").reason, "MembersUnhealthy");

        // A follower that has not applied the definitions yet does not hold the store back.
        let behind = with(group([LAST, LAST, LAST]), 1, |s| {
            s.inventory_defined = false
        });
        assert_eq!(cond(&status_of(&behind, true), "Ready").status, "True");
    }

    #[test]
    fn nothing_observed_is_never_called_healthy() {
        let refused = GroupView {
            statuses: [(0, Err("connection refused".to_string()))].into(),
        };
        let mut fresh = group([LAST, LAST, LAST]);
        for s in fresh.statuses.values_mut().flatten() {
            s.members.clear();
            s.role = RaftRole::Learner;
            s.initialized = false;
        }
        for (name, obs, initialized, degraded, reason) in [
            (
                "no answer yet",
                GroupView::default(),
                false,
                "Unknown",
                "NotObserved",
            ),
            (
                "first start, refused",
                refused.clone(),
                false,
                "Unknown",
                "NotObserved",
            ),
            (
                "answering, no membership yet",
                fresh,
                false,
                "Unknown",
                "NotObserved",
            ),
            (
                "initialized, nothing answers",
                refused,
                true,
                "True",
                "Unreachable",
            ),
        ] {
            let s = status_of(&obs, initialized);
            assert!(s.members.is_empty(), "{name}");
            let d = cond(&s, "Degraded");
            assert_eq!(
                (d.status.as_str(), d.reason.as_str()),
                (degraded, reason),
                "{name}"
            );
            assert!(!d.message.contains("healthy"), "{name}: {}", d.message);
            let r = cond(&s, "Ready");
            assert_eq!(
                (r.status.as_str(), r.reason.as_str()),
                ("False", reason),
                "{name}"
            );
        }
    }

    #[test]
    fn a_restored_store_has_a_restored_condition_through_its_restore() {
        let mut s = store();
        s.spec.restore = Some(
            serde_json::from_value(serde_json::json!({"from": "s3://b/old/nightly"})).unwrap(),
        );
        let empty = GroupView::default();
        let at = |s: &ToyStore, restore: Restore| {
            let input = StatusInput {
                obs: &empty,
                step: &Step::Wait("restoring".into()),
                rolling: false,
                initialized: false,
                problem: None,
                restore,
                scheduled: None,
            };
            build_status(s, &input, Timestamp::UNIX_EPOCH)
        };
        let running = at(&s, Restore::Running("restore Job shop-restore runs".into()));
        for (type_, status) in [
            ("Ready", "False"),
            ("Progressing", "True"),
            ("Degraded", "False"),
            ("Restored", "False"),
        ] {
            let c = cond(&running, type_);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                (status, "Restoring"),
                "{type_}"
            );
        }
        let failed = at(&s, Restore::Failed("checksum mismatch".into()));
        for (type_, status) in [
            ("Ready", "False"),
            ("Degraded", "True"),
            ("Restored", "False"),
        ] {
            let c = cond(&failed, type_);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
                (status, "RestoreFailed", "checksum mismatch"),
                "{type_}"
            );
        }
        let record = RestoreStatus {
            from: "s3://b/old/nightly".into(),
            source_store: "old".into(),
            index: 1234,
            orders: 1000,
            completed_at: Time(Timestamp::UNIX_EPOCH),
        };
        // A round that cannot tell (an invalid spec) keeps what the last one said, never
        // "not started" of a restore that runs or ran.
        let mut s_running = s.clone();
        s_running.status = Some(running.clone());
        let unknown = at(&s_running, Restore::Unknown);
        assert_eq!(
            cond(&unknown, "Restored"),
            cond(&running, "Restored"),
            "the previous Restored condition stays"
        );
        let fresh = at(&s, Restore::Unknown);
        assert_eq!(cond(&fresh, "Restored").reason, "NotStarted");
        let done = at(&s, Restore::Done(Some(record.clone())));
        assert_eq!(done.restore, Some(record.clone()));
        assert_eq!(cond(&done, "Restored").status, "True");
        // Recorded once, it stays through rounds that do not look at the restore again.
        s.status = Some(done);
        assert_eq!(Restore::recorded(&s), Restore::Done(Some(record.clone())));
        let after_done = at(&s, Restore::Unknown);
        assert_eq!(after_done.restore, Some(record));
        assert_eq!(cond(&after_done, "Restored").status, "True");
        // A store not created from a backup has no such condition.
        let plain = status_of(&group([LAST, LAST, LAST]), true);
        assert!(plain.conditions.iter().all(|c| c.type_ != "Restored"));
    }

    #[test]
    fn the_last_scheduled_backup_is_kept_until_the_next() {
        let obs = group([LAST, LAST, LAST]);
        let mut s = store();
        let scheduled = Scheduled {
            time: Time("2025-03-10T03:00:00Z".parse().unwrap()),
            backup: "toys-202503100300".into(),
        };
        let input = StatusInput {
            obs: &obs,
            step: &Step::Done,
            rolling: false,
            initialized: true,
            problem: None,
            restore: Restore::NotRequested,
            scheduled: Some(scheduled.clone()),
        };
        let first = build_status(&s, &input, Timestamp::UNIX_EPOCH);
        assert_eq!(first.last_schedule_time, Some(scheduled.time.clone()));
        s.status = Some(first.clone());
        let next = build_status(
            &s,
            &StatusInput {
                scheduled: None,
                ..input
            },
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(next, first);
    }
}
