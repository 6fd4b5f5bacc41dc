//! The read-back check: every order the store acknowledged must read back as it was placed.
//!
//! [`verify`] is a pure function of what was placed and what was read back, kept apart from the
//! network so it can be tested with corrupted answers.

use std::collections::BTreeMap;
use std::fmt;

use api::orders::{Order, OrderNumber};
use serde::{Deserialize, Serialize};

/// An order the store acknowledged during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    /// The idempotency key it was placed with.
    pub key: String,
    /// The order number the store answered with.
    pub number: OrderNumber,
    /// The toy asked for; the order read back must name it.
    pub name: String,
    /// The units asked for; the order read back must hold them.
    pub quantity: u32,
}

/// Order numbers with what reading them back answered, as [`verify`] takes them.
pub type ReadBack = Vec<(u64, Result<Order, String>)>;

/// Something the read-back found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Mismatch {
    /// Two acknowledged orders were given the same number.
    DuplicateNumber {
        /// The number the store gave to each of `keys`.
        number: OrderNumber,
        /// The keys of the orders that got it.
        keys: Vec<String>,
    },
    /// No answer was read back for an acknowledged order.
    NotReadBack {
        /// The number the store acknowledged the order with.
        number: OrderNumber,
        /// The idempotency key the order was placed with.
        key: String,
    },
    /// Reading the order back failed (404 included: an acknowledged order must exist).
    ReadFailed {
        /// The number the store acknowledged the order with.
        number: OrderNumber,
        /// The idempotency key the order was placed with.
        key: String,
        /// Why the read failed, as the client reported it (a 404, a timeout, ...).
        error: String,
    },
    /// The store answered with another order than the one asked for.
    WrongNumber {
        /// The number asked for.
        number: OrderNumber,
        /// The number in the answer.
        got: OrderNumber,
    },
    /// The order holds another toy than was ordered.
    WrongName {
        /// The number the store acknowledged the order with.
        number: OrderNumber,
        /// The idempotency key the order was placed with.
        key: String,
        /// The toy ordered.
        expected: String,
        /// The toy the store's order holds.
        got: String,
    },
    /// The order holds another quantity than was ordered.
    WrongQuantity {
        /// The number the store acknowledged the order with.
        number: OrderNumber,
        /// The idempotency key the order was placed with.
        key: String,
        /// The units ordered.
        expected: u32,
        /// The units the store's order holds.
        got: u32,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::DuplicateNumber { number, keys } => {
                write!(
                    f,
                    "order {number} was acknowledged for {} keys: {}",
                    keys.len(),
                    keys.join(", ")
                )
            }
            Mismatch::NotReadBack { number, key } => {
                write!(f, "order {number} (key {key}) was not read back")
            }
            Mismatch::ReadFailed { number, key, error } => {
                write!(f, "order {number} (key {key}) could not be read: {error}")
            }
            Mismatch::WrongNumber { number, got } => {
                write!(f, "asked for order {number}, got order {got}")
            }
            Mismatch::WrongName {
                number,
                key,
                expected,
                got,
            } => write!(
                f,
                "order {number} (key {key}): ordered {expected:?}, read back {got:?}"
            ),
            Mismatch::WrongQuantity {
                number,
                key,
                expected,
                got,
            } => write!(
                f,
                "order {number} (key {key}): ordered quantity {expected}, read back {got}"
            ),
        }
    }
}

/// The outcome of checking acknowledged orders against what the store reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Acknowledged orders checked.
    pub checked: u64,
    /// Orders whose read-back matched.
    pub matched: u64,
    /// Everything wrong, in order-number order.
    pub mismatches: Vec<Mismatch>,
}

impl Verification {
    /// True when every acknowledged order was read back as placed and numbers are unique.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.matched == self.checked
    }

    /// One line (plus up to 20 mismatch lines) saying how the check went.
    pub fn summary(&self) -> String {
        if self.passed() {
            return format!(
                "verification passed: {} acknowledged orders read back, all match",
                self.checked
            );
        }
        let mut out = format!(
            "verification FAILED: {} of {} acknowledged orders match; {} problems:",
            self.matched,
            self.checked,
            self.mismatches.len()
        );
        for m in self.mismatches.iter().take(20) {
            out.push_str(&format!("\n  {m}"));
        }
        if self.mismatches.len() > 20 {
            out.push_str(&format!("\n  ... and {} more", self.mismatches.len() - 20));
        }
        out
    }
}

/// Checks every acknowledged order against what was read back for its number.
///
/// `read_back` pairs an order number with the store's answer (or the error it gave). Fails on:
/// two acknowledged orders sharing a number, an order not read back or not readable, an answer
/// for another number, another toy or another quantity.
pub fn verify(placed: &[PlacedOrder], read_back: &[(u64, Result<Order, String>)]) -> Verification {
    let mut mismatches = Vec::new();
    let mut by_number: BTreeMap<OrderNumber, Vec<&PlacedOrder>> = BTreeMap::new();
    for order in placed {
        by_number.entry(order.number).or_default().push(order);
    }
    for (number, orders) in &by_number {
        if orders.len() > 1 {
            mismatches.push(Mismatch::DuplicateNumber {
                number: *number,
                keys: orders.iter().map(|o| o.key.clone()).collect(),
            });
        }
    }
    let mut answers: BTreeMap<OrderNumber, &Result<Order, String>> = BTreeMap::new();
    for (number, answer) in read_back {
        answers.entry(*number).or_insert(answer);
    }
    let mut matched = 0;
    for order in by_number.values().flatten() {
        let (number, key) = (order.number, order.key.clone());
        let got = match answers.get(&number) {
            None => {
                mismatches.push(Mismatch::NotReadBack { number, key });
                continue;
            }
            Some(Err(error)) => {
                mismatches.push(Mismatch::ReadFailed {
                    number,
                    key,
                    error: error.clone(),
                });
                continue;
            }
            Some(Ok(got)) => got,
        };
        let before = mismatches.len();
        if got.number != number {
            mismatches.push(Mismatch::WrongNumber {
                number,
                got: got.number,
            });
        }
        if got.name != order.name {
            mismatches.push(Mismatch::WrongName {
                number,
                key: key.clone(),
                expected: order.name.clone(),
                got: got.name.clone(),
            });
        }
        if got.quantity != order.quantity {
            mismatches.push(Mismatch::WrongQuantity {
                number,
                key,
                expected: order.quantity,
                got: got.quantity,
            });
        }
        if mismatches.len() == before {
            matched += 1;
        }
    }
    Verification {
        checked: placed.len() as u64,
        matched,
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(number: u64, name: &str, quantity: u32) -> PlacedOrder {
        PlacedOrder {
            key: format!("k{number}"),
            number,
            name: name.into(),
            quantity,
        }
    }

    fn answer(number: u64, name: &str, quantity: u32) -> (u64, Result<Order, String>) {
        (
            number,
            Ok(Order {
                number,
                name: name.into(),
                quantity,
            }),
        )
    }

    fn good() -> (Vec<PlacedOrder>, ReadBack) {
        (
            vec![
                placed(0, "Tux", 1),
                placed(1, "Whale", 2),
                placed(2, "Fox", 1),
            ],
            vec![
                answer(0, "Tux", 1),
                answer(1, "Whale", 2),
                answer(2, "Fox", 1),
            ],
        )
    }

    #[test]
    fn faithful_answers_pass() {
        let (placed, read) = good();
        let v = verify(&placed, &read);
        assert!(v.passed(), "{}", v.summary());
        assert_eq!((v.checked, v.matched), (3, 3));
        assert!(v.summary().starts_with("verification passed"));
        assert!(verify(&[], &[]).passed());
    }

    #[test]
    fn wrong_quantity_fails() {
        let (placed, mut read) = good();
        read[1] = answer(1, "Whale", 3);
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert_eq!(v.matched, 2);
        assert_eq!(
            v.mismatches,
            vec![Mismatch::WrongQuantity {
                number: 1,
                key: "k1".into(),
                expected: 2,
                got: 3
            }]
        );
    }

    #[test]
    fn wrong_name_fails() {
        let (placed, mut read) = good();
        read[2] = answer(2, "Tux", 1);
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert!(matches!(
            &v.mismatches[..],
            [Mismatch::WrongName { number: 2, expected, got, .. }] if expected == "Fox" && got == "Tux"
        ));
        assert!(v.summary().contains("FAILED"), "{}", v.summary());
    }

    #[test]
    fn answer_for_another_number_fails() {
        let (placed, mut read) = good();
        read[0] = (0, read[1].1.clone());
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert!(
            v.mismatches
                .contains(&Mismatch::WrongNumber { number: 0, got: 1 })
        );
    }

    #[test]
    fn missing_or_unreadable_order_fails() {
        let (placed, mut read) = good();
        read.retain(|(number, _)| *number != 0);
        let v = verify(&placed, &read);
        assert_eq!(
            v.mismatches,
            vec![Mismatch::NotReadBack {
                number: 0,
                key: "k0".into()
            }]
        );

        let (placed, mut read) = good();
        read[0].1 = Err("404 Not Found: no order 0".into());
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert!(matches!(
            &v.mismatches[..],
            [Mismatch::ReadFailed { number: 0, .. }]
        ));
    }

    #[test]
    fn duplicate_numbers_fail() {
        let (mut placed, read) = good();
        placed.push(PlacedOrder {
            key: "other".into(),
            number: 1,
            name: "Whale".into(),
            quantity: 2,
        });
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert_eq!(
            v.mismatches,
            vec![Mismatch::DuplicateNumber {
                number: 1,
                keys: vec!["k1".into(), "other".into()]
            }]
        );
    }
}
