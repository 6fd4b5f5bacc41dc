//! The Raft type configuration and the commands of the order state machine.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state_machine::SnapshotData;

pub use crate::record::{OrderRecord, OrderStatus, ProductRecord, RejectReason};

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
/// A vote: the term and the candidate voted for, and whether it was committed (a leader).
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// A membership as stored with the log id that introduced it.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot of the order state machine (see [`SnapshotData`]).
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// A command of the order group's state machine, committed through Raft. Each is applied
/// atomically and changes nothing when repeated (see docs/design.md, "Stock and orders").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A purchase: a known key returns its outcome; an unknown toy or too little stock is a
    /// recorded refusal; otherwise the stock goes down and the order takes the next number.
    Purchase {
        /// Idempotency key of the purchase.
        key: String,
        /// Toy name.
        name: String,
        /// Units to buy (1..=`api::orders::MAX_QUANTITY`, checked before it is proposed).
        quantity: u32,
    },
    /// Sets a toy's stock to `to`, only if it is `only_if_at` now.
    Restock {
        /// Toy name.
        name: String,
        /// The stock afterwards.
        to: u32,
        /// The stock it must have now.
        only_if_at: u32,
    },
    /// Defines the toys not defined yet; a defined toy keeps its price and stock.
    Define {
        /// The toys.
        products: Vec<api::inventory::ProductDef>,
    },
}

/// What applying a command returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// The purchase as it now stands (its first outcome, for a known key).
    Order(OrderRecord),
    /// A restock: whether it changed the stock, and the toy after it (`None`: no such toy).
    Restock {
        /// Whether the stock changed.
        restocked: bool,
        /// The toy afterwards.
        product: Option<crate::record::ProductRecord>,
    },
    /// A definition: the toys it defined, and the log index of the command.
    Defined {
        /// The toys defined by this command (those already defined are left as they are).
        names: Vec<String>,
        /// The command's log index.
        version: u64,
    },
    /// Entries that are not commands (blank, membership).
    None,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Purchase {
                key,
                name,
                quantity,
            } => write!(f, "Purchase({key}: {quantity} x {name})"),
            Command::Restock {
                name,
                to,
                only_if_at,
            } => write!(f, "Restock({name} to {to} if at {only_if_at})"),
            Command::Define { products } => write!(f, "Define({} toys)", products.len()),
        }
    }
}
