//! The membership driver: moves the order group's Raft membership to a desired set of members.
//! Local mode (`toystore up`) and the operator both drive the group through it.
//!
//! It is written as *observe → decide → act*, one step per round, so that every round is
//! idempotent and a driver that crashes mid-way simply observes again and carries on:
//!
//! - [`observe`](MembershipDriver::observe) asks every known replica for its `/raft/status`
//!   (a [`GroupView`](api::view::GroupView));
//! - [`next_step`] is a pure function from that observation and the desired members to the one
//!   safe step to take next (unit-tested as a decision table);
//! - [`execute`](MembershipDriver::execute) performs that step through the admin API.
//!
//! The order of steps is the safe order of `docs/design.md` ("Membership"): initialize only a
//! group where no member holds anything beyond the founding membership, every founding member
//! alike; replace a member that lost its volume (removed, then added again as a learner); grow
//! by adding learners, waiting until they caught up, then promoting; shrink by first handing
//! leadership away from a leaving leader, then changing the voters (openraft uses joint
//! consensus, so quorum holds throughout), then dropping leftover learners.
//!
//! Who leads, which voter is the most caught up and which member is healthy are the
//! [`GroupView`](api::view::GroupView)'s judgements, shared with the operator and the clients.

mod driver;
mod step;

pub use driver::{DriverError, MembershipDriver};
pub use step::{Step, next_step};
