//! The order service's own records: what the Raft log's commands carry and what the state
//! machine stores and snapshots.
//!
//! These are storage types, not wire types. The HTTP layer maps them to `api` types and to
//! status codes (`http/orders.rs`), so nothing stored says how it is shown to a client: the
//! log holds *why* a purchase was refused ([`RejectReason`]), never an HTTP status.
//!
//! Storage format 0 (before versions were recorded) stored a refusal as
//! `{"code": <http status>, "reason": <text>}`; it is still read (see [`legacy`]), and written
//! anew in the current form.

use serde::{Deserialize, Serialize};

/// The on-disk format this binary writes: recorded in the Raft log, the state database and
/// every snapshot. A store written in a newer format is refused, not guessed at.
pub const STORAGE_FORMAT: u32 = 1;

/// Refuses a stored format newer than [`STORAGE_FORMAT`], naming what holds it.
pub fn check_format(found: u32, what: &str) -> std::io::Result<()> {
    if found > STORAGE_FORMAT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{what} is in storage format {found}, but this order-replica reads formats up to \
                 {STORAGE_FORMAT}: it was written by a newer ToyStore; run that version (a \
                 downgrade is not supported)"
            ),
        ));
    }
    Ok(())
}

/// One purchase as the order service keeps it, by idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Idempotency key.
    pub key: String,
    /// Toy name.
    pub name: String,
    /// Quantity.
    pub quantity: u32,
    /// Where the purchase stands.
    pub status: OrderStatus,
}

/// Where a purchase stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Committed, waiting for the catalog's answer.
    Pending,
    /// Stock taken; confirmed under this dense order number.
    Confirmed {
        /// Dense order number.
        number: u64,
    },
    /// Refused, for this reason.
    #[serde(deserialize_with = "legacy::reject_reason")]
    Rejected(RejectReason),
}

/// Why a purchase was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The catalog has fewer of the toy than asked for.
    OutOfStock,
    /// The catalog lists no toy of that name.
    UnknownProduct,
    /// The catalog refused the request itself, with this message.
    Refused {
        /// The catalog's message.
        message: String,
    },
}

/// Reading storage format 0.
pub mod legacy {
    use serde::{Deserialize, Deserializer};

    use super::RejectReason;

    /// A refusal in the current form, or format 0's `{"code", "reason"}`.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum AnyRejectReason {
        Current(RejectReason),
        Format0 { code: u16, reason: String },
    }

    /// Deserializes a [`RejectReason`] written in any known format.
    pub fn reject_reason<'de, D: Deserializer<'de>>(d: D) -> Result<RejectReason, D::Error> {
        Ok(match AnyRejectReason::deserialize(d)? {
            AnyRejectReason::Current(r) => r,
            AnyRejectReason::Format0 { code: 409, .. } => RejectReason::OutOfStock,
            AnyRejectReason::Format0 { code: 404, .. } => RejectReason::UnknownProduct,
            AnyRejectReason::Format0 { reason, .. } => RejectReason::Refused { message: reason },
        })
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
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            json,
            r#"{"key":"k","name":"Tux","quantity":2,"status":{"rejected":"out_of_stock"}}"#
        );
        assert_eq!(serde_json::from_str::<OrderRecord>(&json).unwrap(), rec);
    }

    #[test]
    fn format_0_refusals_are_read() {
        let cases = [
            (
                r#"{"code":409,"reason":"not enough"}"#,
                RejectReason::OutOfStock,
            ),
            (
                r#"{"code":404,"reason":"no toy"}"#,
                RejectReason::UnknownProduct,
            ),
            (
                r#"{"code":400,"reason":"bad name"}"#,
                RejectReason::Refused {
                    message: "bad name".into(),
                },
            ),
        ];
        for (old, want) in cases {
            let json = format!(r#"{{"rejected":{old}}}"#);
            let status: OrderStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(status, OrderStatus::Rejected(want), "{old}");
        }
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        assert!(check_format(STORAGE_FORMAT, "raft-log").is_ok());
        assert!(check_format(0, "raft-log").is_ok());
        let err = check_format(STORAGE_FORMAT + 1, "state.redb").unwrap_err();
        assert!(
            err.to_string()
                .contains("state.redb is in storage format 2")
        );
    }
}
