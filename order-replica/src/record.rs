//! The order service's own records: what the Raft log's commands carry and what the state
//! machine stores and snapshots.
//!
//! These are storage types, not wire types. The HTTP layer maps them to `api` types and to
//! status codes (`http/orders.rs`), so nothing stored says how it is shown to a client: the
//! log holds *why* a purchase was refused ([`RejectReason`]), never an HTTP status.

use serde::{Deserialize, Serialize};

/// The on-disk format this binary reads and writes: recorded in the Raft log, the state
/// database and every snapshot. Format 2 holds the inventory in the state machine (one command
/// per purchase); data written in any other format is refused, not guessed at: the project has
/// had no release, so no migration is owed.
pub const STORAGE_FORMAT: u32 = 2;

/// Refuses a stored format other than [`STORAGE_FORMAT`], naming what holds it.
pub fn check_format(found: u32, what: &str) -> std::io::Result<()> {
    let why = match found {
        f if f == STORAGE_FORMAT => return Ok(()),
        f if f > STORAGE_FORMAT => {
            "it was written by a newer ToyStore; run that version (a \
                                    downgrade is not supported)"
        }
        _ => {
            "it was written by an earlier ToyStore, and pre-release formats have no \
              migration: start this store on a new data directory"
        }
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{what} is in storage format {found}, but this order-replica reads format \
             {STORAGE_FORMAT} only: {why}"
        ),
    ))
}

/// One purchase as the order service keeps it, by idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Idempotency key.
    pub key: String,
    /// Toy name.
    pub name: String,
    /// Units bought (or asked for, when refused).
    pub quantity: u32,
    /// How the purchase ended.
    pub status: OrderStatus,
    /// Index of the log entry that decided it (the version of its stock change).
    pub version: u64,
}

/// How a purchase ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stock taken; confirmed under this dense order number.
    Confirmed {
        /// Dense order number.
        number: u64,
    },
    /// Refused, for this reason; recorded, so a retry with the key gets the same answer.
    Rejected(RejectReason),
}

/// Why a purchase was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Fewer of the toy in stock than asked for.
    OutOfStock,
    /// No toy of that name.
    UnknownProduct,
}

/// A toy with its stock and books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    /// Unique name.
    pub name: String,
    /// Price of one unit.
    pub price: f64,
    /// Units in stock.
    pub stock: u32,
    /// Units when it was defined.
    pub initial: u64,
    /// Units added by restocks.
    pub restocked: u64,
    /// Units sold.
    pub sold: u64,
    /// Index of the log entry that last changed its stock.
    pub version: u64,
}

impl ProductRecord {
    /// The toy as the catalog and its change feed show it.
    pub fn product(&self) -> api::catalog::Product {
        api::catalog::Product {
            name: self.name.clone(),
            price: self.price,
            quantity: self.stock,
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_stored_as_reasons_without_http_codes() {
        let rec = OrderRecord {
            key: "k".into(),
            name: "Tux".into(),
            quantity: 2,
            status: OrderStatus::Rejected(RejectReason::OutOfStock),
            version: 7,
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            json,
            r#"{"key":"k","name":"Tux","quantity":2,"status":{"rejected":"out_of_stock"},"version":7}"#
        );
        assert_eq!(serde_json::from_str::<OrderRecord>(&json).unwrap(), rec);
    }

    #[test]
    fn any_other_format_is_refused_by_name() {
        assert!(check_format(STORAGE_FORMAT, "raft-log").is_ok());
        let newer = check_format(STORAGE_FORMAT + 1, "state.redb").unwrap_err();
        assert!(
            newer
                .to_string()
                .contains("state.redb is in storage format 3"),
            "{newer}"
        );
        let older = check_format(1, "raft-log").unwrap_err();
        assert!(older.to_string().contains("no migration"), "{older}");
    }
}
