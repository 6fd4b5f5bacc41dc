//! The round's membership step: one step of the shared membership driver, announced as an
//! event when it changed the group.
//!
//! A step that would initialize a group again after it lost its state is refused (see
//! [`crate::order_group::allowed`]): a Warning event and a `Degraded` status, never a new,
//! empty group.

use kube::runtime::events::EventType;

use api::raft::Member;
use api::view::GroupView;
use membership::{Step, next_step};

use super::report::{announce, publish};
use super::{Context, Error};
use crate::crd::ToyStore;
use crate::order_group::allowed;

/// What the membership step of a round did.
pub(super) struct Round {
    /// The step decided (and, unless it is `Done` or `Wait`, executed).
    pub step: Step,
    /// Whether the group has been initialized, now.
    pub initialized: bool,
    /// A refused step, to report as `Degraded`, with its reason.
    pub problem: Option<(&'static str, String)>,
}

/// Decides the next membership step, refuses one that would re-initialize a group that lost
/// its state, and executes it.
pub(super) async fn step(
    store: &ToyStore,
    ctx: &Context,
    token: &str,
    obs: &GroupView,
    desired: &[Member],
    mut initialized: bool,
) -> Result<Round, Error> {
    let mut step = next_step(obs, desired);
    let mut problem = None;
    if let Err(refusal) = allowed(&step, initialized, obs) {
        let reason = "GroupLostState";
        publish(
            ctx,
            store,
            EventType::Warning,
            reason,
            "Membership",
            &refusal,
        )
        .await;
        problem = Some((reason, refusal));
        step = Step::Wait("refused to re-initialize".into());
    }
    if !matches!(step, Step::Done | Step::Wait(_)) {
        let (reason, note) = describe(&step);
        execute(ctx, store, token, &step, (reason, "Membership"), &note).await?;
    }
    if matches!(step, Step::Done | Step::Initialize { .. }) {
        initialized = true;
    }
    Ok(Round {
        step,
        initialized,
        problem,
    })
}

/// The event reason and note of an executed step.
fn describe(step: &Step) -> (&'static str, String) {
    match step {
        Step::Initialize { members, .. } => (
            "Initialized",
            format!("order group initialized with {} members", members.len()),
        ),
        Step::AddLearner { member, .. } => (
            "MemberAdded",
            format!("replica {} added as a learner", member.id),
        ),
        Step::ChangeVoters { voters, .. } => {
            ("MembershipChanged", format!("voters are now {voters:?}"))
        }
        Step::RemoveNodes { ids, .. } => {
            ("MemberRemoved", format!("replicas {ids:?} left the group"))
        }
        Step::TransferLeader { to, .. } => (
            "LeaderTransferred",
            format!("leadership handed to replica {to}"),
        ),
        Step::Done | Step::Wait(_) => ("Observed", String::new()),
    }
}

/// Carries out `step` on the order group and announces it, as `(reason, action)` with `note`,
/// only when it changed the group: a repeat of a step that had already taken effect is no news.
pub(super) async fn execute(
    ctx: &Context,
    store: &ToyStore,
    token: &str,
    step: &Step,
    (reason, action): (&str, &str),
    note: &str,
) -> Result<(), Error> {
    let changed = ctx
        .group
        .execute(token, step)
        .await
        .map_err(Error::Membership)?;
    if changed {
        announce(ctx, store, reason, action, note).await;
    }
    Ok(())
}
