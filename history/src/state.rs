//! What the store holds at the end of a test, read once every fault has healed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where an order stands in a replica's final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredStatus {
    /// Not resolved yet (a final state read after healing should have none).
    Pending,
    /// Confirmed under this number.
    Confirmed {
        /// Order number.
        number: u64,
    },
    /// Refused.
    Rejected,
}

/// One order as a replica holds it, by idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOrder {
    /// Toy name.
    pub name: String,
    /// Quantity.
    pub quantity: u32,
    /// Status.
    pub status: StoredStatus,
}

/// The store's final state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    /// Per replica id: every order it holds, by idempotency key (at least every key the history
    /// used), and its confirmed orders by number.
    pub replicas: BTreeMap<u64, ReplicaOrders>,
    /// The catalog's audit: products with their totals, and every take record.
    pub catalog: Option<api::catalog::Audit>,
}

/// One replica's orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaOrders {
    /// By idempotency key.
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
