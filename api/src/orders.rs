//! Orders as clients and replicas exchange them.

use serde::{Deserialize, Serialize};

/// Dense order number: confirmed orders are numbered 0, 1, 2, ... in commit order.
pub type OrderNumber = u64;

/// Largest quantity one order may ask for. Anything above is refused as bad input: no toy store
/// stocks that many of one toy, and it keeps arithmetic on stock far from overflow.
pub const MAX_QUANTITY: i64 = 10_000;

/// Longest accepted toy name (in characters) or idempotency key (ASCII only).
pub const MAX_NAME_LEN: usize = 128;

/// Body of `POST /orders`: `{"name": "Tux", "quantity": 2}`.
///
/// `quantity` is signed on the wire so that a negative number is reported as "quantity must be
/// at least 1" rather than as a JSON type error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceOrder {
    /// Toy name as listed in the catalog.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = r"\S")
    )]
    pub name: String,
    /// How many to buy, 1..=[`MAX_QUANTITY`].
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    #[serde(deserialize_with = "whole_number")]
    pub quantity: i64,
}

/// Reads a JSON number that is a whole number: an integer, or a number with no fractional part
/// (`2.0`, which JSON Schema also counts as an integer). Out-of-range values saturate, so that
/// validation reports them as too large or too small rather than as a type error.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            if v.is_finite() && v.fract() == 0.0 {
                Ok(v as i64) // saturating
            } else {
                Err(E::custom(format!("{v} is not a whole number")))
            }
        }
    }
    d.deserialize_any(Whole)
}

impl PlaceOrder {
    /// Checks the request and returns the quantity as an unsigned number, or a message for a 400.
    pub fn validate(&self) -> Result<u32, String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.name.chars().count() > MAX_NAME_LEN {
            return Err(format!("name is longer than {MAX_NAME_LEN} characters"));
        }
        if self.quantity < 1 {
            return Err(format!(
                "quantity must be at least 1, got {}",
                self.quantity
            ));
        }
        if self.quantity > MAX_QUANTITY {
            return Err(format!(
                "quantity must be at most {MAX_QUANTITY}, got {}",
                self.quantity
            ));
        }
        Ok(self.quantity as u32)
    }
}

/// Checks an idempotency key supplied by a client.
pub fn validate_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_NAME_LEN {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err("Idempotency-Key may only hold letters, digits and - _ . :".into());
    }
    Ok(())
}

/// A fresh idempotency key, for a request that brought none.
pub fn new_idempotency_key() -> String {
    format!("auto-{:032x}", rand::random::<u128>())
}

/// Success body of `POST /orders`: `{"data": {"order_number": N}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceOrderResponse {
    /// The number the order was confirmed under.
    pub order_number: OrderNumber,
}

/// What an order replica answers to `POST /orders` (the frontend answers
/// [`PlaceOrderResponse`]): the number, and the version of the stock change, so that the
/// frontend reads at least that far afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    /// The number the order was confirmed under.
    pub order_number: OrderNumber,
    /// Index of the order group's log entry that took the stock (0 in a frontend's answer,
    /// which is the public [`PlaceOrderResponse`] and has none).
    #[serde(default)]
    pub version: u64,
}

/// A confirmed order as `GET /orders/{number}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    /// Dense order number.
    pub number: OrderNumber,
    /// Toy name.
    pub name: String,
    /// Quantity bought.
    pub quantity: u32,
}

/// Where an order stands, as `GET /orders/by-key/{key}` on a replica shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Confirmed under this order number.
    Confirmed {
        /// Dense order number.
        number: u64,
    },
    /// Refused.
    Rejected {
        /// HTTP status to answer with.
        code: u16,
        /// Why.
        reason: String,
    },
}

/// An order found by its idempotency key (`GET /orders/by-key/{key}` on a replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Idempotency key.
    pub key: String,
    /// Toy name.
    pub name: String,
    /// Units asked for.
    pub quantity: u32,
    /// Confirmed (with its number) or refused (with the reason), as first decided.
    pub status: OrderStatus,
}

/// Success envelope `{"data": ...}` used by every client-facing endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(name: &str, quantity: i64) -> PlaceOrder {
        PlaceOrder {
            name: name.into(),
            quantity,
        }
    }

    #[test]
    fn quantity_outside_one_to_max_is_refused() {
        assert!(order("Tux", 0).validate().is_err());
        assert!(order("Tux", -3).validate().is_err());
        assert!(order("Tux", MAX_QUANTITY + 1).validate().is_err());
        assert_eq!(order("Tux", 1).validate(), Ok(1));
        assert_eq!(
            order("Tux", MAX_QUANTITY).validate(),
            Ok(MAX_QUANTITY as u32)
        );
    }

    #[test]
    fn quantities_are_whole_numbers_in_any_json_spelling() {
        let parse = |q: &str| {
            serde_json::from_str::<PlaceOrder>(&format!(r#"{{"name":"Tux","quantity":{q}}}"#))
                .map(|o| o.quantity)
        };
        assert_eq!(parse("2").unwrap(), 2);
        assert_eq!(parse("2.0").unwrap(), 2);
        assert_eq!(parse("-3").unwrap(), -3);
        assert_eq!(parse("99999999999999999999999").unwrap(), i64::MAX);
        assert!(parse("1.5").is_err());
        assert!(parse(r#""2""#).is_err());
        assert!(parse("null").is_err());
    }

    #[test]
    fn empty_or_long_names_are_refused() {
        assert!(order("  ", 1).validate().is_err());
        assert!(order(&"x".repeat(MAX_NAME_LEN + 1), 1).validate().is_err());
    }

    #[test]
    fn idempotency_keys_are_short_and_plain() {
        assert!(validate_idempotency_key("abc-123_x.y:z").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("a b").is_err());
        assert!(validate_idempotency_key(&"k".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
