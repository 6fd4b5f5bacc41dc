//! The toys a new catalog starts with: a JSON file or the built-in list.
//!
//! The seed is only used on the first start, when the database is empty; afterwards the stored
//! state is the truth and the seed is ignored. Seeds are validated up front (names unique and
//! well-formed, prices finite and not negative) so a typo in a products file stops the service
//! at start-up instead of producing a catalog nobody can buy from.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use api::orders::MAX_NAME_LEN;
use serde::{Deserialize, Serialize};

/// One toy as a products file lists it: `{"name": "Tux", "price": 15.99, "quantity": 100}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProduct {
    /// Unique toy name.
    pub name: String,
    /// Price in the store's currency.
    pub price: f64,
    /// Units in stock at seeding.
    pub quantity: u32,
}

/// Why a seed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The products file could not be read.
    #[error("cannot read products file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The products file is not a JSON array of products.
    #[error("products file {path} is not a JSON array of {{name, price, quantity}}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The products are parsed but not acceptable.
    #[error("invalid products: {0}")]
    Invalid(String),
}

/// Price of every built-in toy.
const DEFAULT_PRICE: f64 = 15.99;
/// Initial stock of every built-in toy.
const DEFAULT_QUANTITY: u32 = 100;
/// Names of the built-in toys.
const DEFAULT_NAMES: [&str; 12] = [
    "Tux", "Whale", "Elephant", "Bird", "Fox", "Python", "Lego", "Barbie", "Frisbee", "Marbles",
    "Yo-yo", "Kite",
];

/// The built-in catalog: twelve toys, 100 of each at 15.99.
pub fn default_products() -> Vec<SeedProduct> {
    DEFAULT_NAMES
        .iter()
        .map(|name| SeedProduct {
            name: (*name).to_string(),
            price: DEFAULT_PRICE,
            quantity: DEFAULT_QUANTITY,
        })
        .collect()
}

/// Reads and validates a products file (a JSON array of [`SeedProduct`]).
pub fn load(path: &Path) -> Result<Vec<SeedProduct>, SeedError> {
    let bytes = std::fs::read(path).map_err(|source| SeedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let products: Vec<SeedProduct> =
        serde_json::from_slice(&bytes).map_err(|source| SeedError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    validate(&products)?;
    Ok(products)
}

/// Checks that a seed is usable: not empty, names non-empty, at most
/// [`MAX_NAME_LEN`] bytes and unique, prices finite and not negative.
pub fn validate(products: &[SeedProduct]) -> Result<(), SeedError> {
    if products.is_empty() {
        return Err(SeedError::Invalid(
            "the catalog needs at least one toy".into(),
        ));
    }
    let mut seen = HashSet::new();
    for p in products {
        if p.name.trim().is_empty() {
            return Err(SeedError::Invalid("a toy has an empty name".into()));
        }
        if p.name.len() > MAX_NAME_LEN {
            return Err(SeedError::Invalid(format!(
                "toy name {:?} is longer than {MAX_NAME_LEN} bytes",
                p.name
            )));
        }
        if !p.price.is_finite() || p.price < 0.0 {
            return Err(SeedError::Invalid(format!(
                "toy {:?} has an invalid price {}",
                p.name, p.price
            )));
        }
        if !seen.insert(p.name.as_str()) {
            return Err(SeedError::Invalid(format!(
                "toy {:?} is listed twice",
                p.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(name: &str, price: f64) -> SeedProduct {
        SeedProduct {
            name: name.into(),
            price,
            quantity: 1,
        }
    }

    #[test]
    fn defaults_have_at_least_ten_distinct_valid_toys() {
        let products = default_products();
        assert!(products.len() >= 10);
        validate(&products).unwrap();
        assert!(products.iter().all(|p| p.quantity == 100));
    }

    #[test]
    fn duplicate_empty_or_badly_priced_toys_are_refused() {
        assert!(validate(&[]).is_err());
        assert!(validate(&[toy("Tux", 1.0), toy("Tux", 2.0)]).is_err());
        assert!(validate(&[toy(" ", 1.0)]).is_err());
        assert!(validate(&[toy("Tux", -1.0)]).is_err());
        assert!(validate(&[toy("Tux", f64::NAN)]).is_err());
        assert!(validate(&[toy(&"x".repeat(MAX_NAME_LEN + 1), 1.0)]).is_err());
        assert!(validate(&[toy("Tux", 0.0), toy("Fox", 2.5)]).is_ok());
    }

    #[test]
    fn load_reads_a_products_file_and_reports_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"[{"name":"Tux","price":1.5,"quantity":3}]"#).unwrap();
        assert_eq!(
            load(&good).unwrap(),
            vec![SeedProduct {
                name: "Tux".into(),
                price: 1.5,
                quantity: 3
            }]
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"[{"name":"Tux","price":1.5,"quantity":-3}]"#).unwrap();
        assert!(matches!(load(&bad), Err(SeedError::Parse { .. })));
        assert!(matches!(
            load(&dir.path().join("missing.json")),
            Err(SeedError::Read { .. })
        ));
    }
}
