//! What the store holds at the end of a test, read once every fault has healed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where an order stands in a replica's final state. A purchase is one command, so an order
/// the group knows has its outcome: there is nothing in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredStatus {
    /// Confirmed under this number.
    Confirmed {
        /// The number `GET /orders/{number}` serves it under.
        number: u64,
    },
    /// Refused (unknown toy, too little stock), recorded under the key.
    Rejected,
}

/// One order as a replica holds it, by idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOrder {
    /// The toy the purchase asked for.
    pub name: String,
    /// The units it asked for (taken from stock only if confirmed).
    pub quantity: u32,
    /// Confirmed with its number, or refused: a key has exactly one outcome.
    pub status: StoredStatus,
}

/// The store's final state.
///
/// Read once the store is settled and quiet: every replica has applied the leader's log, and
/// the audits are one cut (every replica's at the same applied index), so that replicas whose
/// books differ really disagree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    /// Per replica id: every order it holds, by idempotency key (at least every key the history
    /// used), and its confirmed orders by number.
    pub replicas: BTreeMap<u64, ReplicaOrders>,
    /// Per replica id: its audit (`GET /audit`): every toy's books, and the counts of confirmed
    /// and refused orders.
    pub audits: BTreeMap<u64, api::inventory::Audit>,
    /// The stock the catalogs restock a sold-out toy to, when known: every restock is then
    /// `Restock{to: it, only_if_at: 0}`, which [`crate::check::restocks_only_when_sold_out`]
    /// holds the books and the reads to.
    pub restock_quantity: Option<u64>,
}

/// One replica's orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaOrders {
    /// Its order under each key the history used (`GET /orders/by-key/{key}`); a key it does
    /// not know is absent.
    pub by_key: BTreeMap<String, StoredOrder>,
    /// Confirmed orders by number: `(name, quantity)`, from `GET /orders/{n}` for n = 0, 1, ...
    /// until the first 404.
    pub by_number: BTreeMap<u64, (String, u32)>,
}

impl FinalState {
    /// The replica the checkers read when one view is enough: the lowest id.
    pub fn reference(&self) -> Option<&ReplicaOrders> {
        self.replicas.values().next()
    }
}
