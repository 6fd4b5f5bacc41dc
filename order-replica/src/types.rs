//! The Raft type configuration and the commands of the order state machine.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state_machine::SnapshotData;

pub use crate::record::{OrderRecord, OrderStatus, RejectReason};

pub use api::raft::NodeId;

openraft::declare_raft_types!(
    /// Raft types of the order group: commands in, command results out, nodes addressed by URL.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = ReplicaNode,
);

/// How a member is reached, as the membership stores it: its client API, and its peer listener
/// for Raft RPC when it has one. Stored as `{"addr": ...}` (openraft's `BasicNode`) plus an
/// optional `raft_addr`, so memberships written before the peer listener read as they were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaNode {
    /// Base URL of the client API.
    pub addr: String,
    /// Base URL of the peer listener (Raft RPC); `None`: `addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_addr: Option<String>,
}

impl ReplicaNode {
    /// A node reached at `member`'s URLs.
    pub fn of(member: &api::raft::Member) -> Self {
        Self {
            addr: member.url.clone(),
            raft_addr: member.raft_url.clone(),
        }
    }

    /// Where Raft RPC goes.
    pub fn raft_url(&self) -> &str {
        self.raft_addr.as_deref().unwrap_or(&self.addr)
    }
}

impl fmt::Display for ReplicaNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raft_addr {
            Some(raft) => write!(f, "{} (raft {raft})", self.addr),
            None => f.write_str(&self.addr),
        }
    }
}

/// The Raft handle of an order replica.
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachineStore>;
/// A log entry.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A log id (term, node, index).
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// A membership as stored with the log id that introduced it.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot of the order state machine (see [`SnapshotData`]).
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// A command of the purchase protocol, committed through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Step 1: record the intent to buy. A repeat of a known key changes nothing.
    Pending {
        /// Idempotency key of the purchase.
        key: String,
        /// Toy name.
        name: String,
        /// Quantity.
        quantity: u32,
    },
    /// Step 3: record the catalog's answer. Confirmation assigns the next order number.
    Resolve {
        /// Idempotency key of the purchase.
        key: String,
        /// The catalog's answer.
        outcome: Resolution,
    },
}

/// How a pending order ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// Stock was taken: the order is confirmed.
    Confirmed,
    /// Stock was not taken, for this reason.
    #[serde(deserialize_with = "crate::record::legacy::reject_reason")]
    Rejected(RejectReason),
}

/// What applying a command returned: the order's record after the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// The order as it now stands.
    Order(OrderRecord),
    /// `Resolve` for a key that was never `Pending` (cannot happen through the leader's
    /// protocol; kept as an explicit answer rather than a panic).
    UnknownKey(String),
    /// Entries that are not commands (blank, membership).
    None,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Pending {
                key,
                name,
                quantity,
            } => write!(f, "Pending({key}: {quantity} x {name})"),
            Command::Resolve { key, outcome } => write!(f, "Resolve({key}: {outcome:?})"),
        }
    }
}
