//! The toys a store starts with: a JSON file or the built-in list.
//!
//! The catalog defines them through the order group at a store's first start, when the group's
//! inventory has never been defined; afterwards the group's state is the truth and the seed is
//! ignored. Seeds are validated up front (names unique and well-formed, prices finite and not
//! negative) so a typo in a products file stops the service at start-up instead of producing a
//! store nobody can buy from.

use std::path::{Path, PathBuf};

use api::inventory::{DefineRequest, ProductDef};

/// One toy as a products file lists it: `{"name": "Tux", "price": 15.99, "quantity": 100}`.
pub type SeedProduct = ProductDef;

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

/// The built-in toys: `(name, price, initial stock)`. Prices vary as in a real shop, and so does
/// stock: plenty of pocket-money toys, a few of the dear ones. Together (19,600 units) they last
/// a default `toystore load` run on a small machine (its 5 clients buy 350-500 units a second,
/// spread evenly over the toys), while the scarcest (Lego, Barbie) sell out in it, so a run
/// still meets the sold-out answer and the restock. See docs/decisions.md, "The default
/// catalog, and local mode's restock".
const DEFAULT_TOYS: [(&str, f64, u32); 12] = [
    ("Tux", 15.99, 1500),
    ("Whale", 24.50, 1200),
    ("Elephant", 34.00, 800),
    ("Bird", 7.25, 2500),
    ("Fox", 18.75, 1000),
    ("Python", 12.40, 1800),
    ("Lego", 89.99, 300),
    ("Barbie", 29.99, 600),
    ("Frisbee", 6.50, 2000),
    ("Marbles", 3.20, 3000),
    ("Yo-yo", 2.49, 4000),
    ("Kite", 21.00, 900),
];

/// The built-in catalog: twelve toys, each with its own price and stock.
pub fn default_products() -> Vec<SeedProduct> {
    DEFAULT_TOYS
        .iter()
        .map(|&(name, price, quantity)| SeedProduct {
            name: name.to_string(),
            price,
            quantity,
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

/// Checks that a seed is usable: not empty, names non-empty, well-formed and unique, prices
/// finite and not negative (the same rules the order group applies to a definition).
pub fn validate(products: &[SeedProduct]) -> Result<(), SeedError> {
    DefineRequest {
        products: products.to_vec(),
    }
    .validate()
    .map_err(SeedError::Invalid)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use api::orders::MAX_NAME_LEN;

    use super::*;

    fn toy(name: &str, price: f64) -> SeedProduct {
        SeedProduct {
            name: name.into(),
            price,
            quantity: 1,
        }
    }

    #[test]
    fn defaults_have_at_least_ten_distinct_valid_toys_of_varied_price_and_stock() {
        let products = default_products();
        assert!(products.len() >= 10);
        validate(&products).unwrap();
        let distinct = |values: Vec<String>| values.into_iter().collect::<HashSet<_>>().len();
        let prices = distinct(products.iter().map(|p| p.price.to_string()).collect());
        let stocks = distinct(products.iter().map(|p| p.quantity.to_string()).collect());
        assert!(
            prices >= 10 && stocks >= 10,
            "{prices} prices, {stocks} stocks"
        );
        // The names the tests and the e2e suite order by.
        for name in [
            "Tux", "Whale", "Elephant", "Bird", "Fox", "Lego", "Barbie", "Kite",
        ] {
            assert!(products.iter().any(|p| p.name == name), "{name} missing");
        }
        let total: u32 = products.iter().map(|p| p.quantity).sum();
        assert!(total >= 10_000, "stock for a default load run: {total}");
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
