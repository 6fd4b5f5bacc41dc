//! The inventory commands and the audit of the order group (cluster token required).
//!
//! The order group's state machine holds the toys with their stock (see docs/design.md, "Stock
//! and orders"). The catalog defines them at a store's first start and restocks sold-out toys
//! through these commands; each is conditional, so a repeat, or two catalog replicas sending
//! the same one, changes nothing twice:
//! - `POST /inventory/define` with [`DefineRequest`] → [`DefineResponse`]: defines the toys not
//!   defined yet (a defined toy keeps its price and stock);
//! - `POST /inventory/restock` with [`RestockRequest`] → [`RestockResponse`]: sets a toy's stock
//!   to `to` only if it is `only_if_at` now;
//! - `GET /inventory/changes?after=V&wait_ms=W` → [`crate::catalog::ChangeBatch`]: the changes
//!   this replica has applied after version V (a snapshot of the inventory first when V is
//!   older than what it holds), waiting up to W ms for one;
//! - `GET /audit` → [`Audit`]: the books, for checkers.

use serde::{Deserialize, Serialize};

use crate::catalog::Product;

/// Largest price a toy may have.
pub const MAX_PRICE: f64 = 1_000_000.0;
/// Largest stock a toy may be defined or restocked to.
pub const MAX_STOCK: u32 = 1_000_000;
/// Most toys one store may define.
pub const MAX_PRODUCTS: usize = 1_000;

/// A toy to define: name, price and initial stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductDef {
    /// Unique name.
    pub name: String,
    /// Price in the store's currency.
    pub price: f64,
    /// Initial stock.
    pub quantity: u32,
}

impl ProductDef {
    /// Checks the definition, or says what is wrong with it.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name != self.name {
            return Err(format!(
                "toy name {:?} must be non-empty without surrounding spaces",
                self.name
            ));
        }
        if self.name.chars().count() > crate::orders::MAX_NAME_LEN {
            return Err(format!(
                "toy name {:?} is longer than {} characters",
                self.name,
                crate::orders::MAX_NAME_LEN
            ));
        }
        if !(self.price.is_finite() && self.price >= 0.0 && self.price <= MAX_PRICE) {
            return Err(format!(
                "{}: price must be between 0 and {MAX_PRICE}, got {}",
                self.name, self.price
            ));
        }
        if self.quantity > MAX_STOCK {
            return Err(format!(
                "{}: quantity must be at most {MAX_STOCK}, got {}",
                self.name, self.quantity
            ));
        }
        Ok(())
    }
}

/// `POST /inventory/define`: the toys of a new store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineRequest {
    /// The toys; names must be unique.
    pub products: Vec<ProductDef>,
}

impl DefineRequest {
    /// Checks every toy and that names are unique, or says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.products.is_empty() {
            return Err("products must not be empty".into());
        }
        if self.products.len() > MAX_PRODUCTS {
            return Err(format!("at most {MAX_PRODUCTS} products"));
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.products {
            p.validate()?;
            if !names.insert(p.name.as_str()) {
                return Err(format!("toy {:?} is listed twice", p.name));
            }
        }
        Ok(())
    }
}

/// Answer to `POST /inventory/define`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefineResponse {
    /// The toys this command defined (those already defined are left as they are).
    pub defined: Vec<String>,
    /// Log index of the command.
    pub version: u64,
}

/// `POST /inventory/restock`: set a toy's stock to `to`, only if it is `only_if_at` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    /// Toy name.
    pub name: String,
    /// The stock afterwards.
    pub to: u32,
    /// The stock it must have now; otherwise nothing changes.
    pub only_if_at: u32,
}

impl RestockRequest {
    /// Checks the request, or says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.to <= self.only_if_at || self.to > MAX_STOCK {
            return Err(format!(
                "to must be more than only_if_at ({}) and at most {MAX_STOCK}, got {}",
                self.only_if_at, self.to
            ));
        }
        Ok(())
    }
}

/// Answer to `POST /inventory/restock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestockResponse {
    /// Whether this command changed the stock.
    pub restocked: bool,
    /// The toy after the command (`None`: no such toy).
    pub product: Option<Product>,
}

/// One toy's books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAudit {
    /// Toy name.
    pub name: String,
    /// Stock when it was defined.
    pub initial: u64,
    /// Units added by restocks.
    pub restocked: u64,
    /// Units sold, as the toy's books count them.
    pub sold: u64,
    /// Stock now.
    pub stock: u64,
    /// Units of the confirmed orders of this toy, counted from the orders themselves.
    pub ordered: u64,
}

/// `GET /audit`: a replica's books as of `applied_index`, for checkers of `stock = initial +
/// restocked − sold`, `sold = ordered`, and of the orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// How far this replica's state goes.
    pub applied_index: u64,
    /// Every toy.
    pub products: Vec<ProductAudit>,
    /// Confirmed orders (their numbers are 0 .. this).
    pub confirmed: u64,
    /// Purchases refused (unknown toy, too little stock), recorded under their keys.
    pub refused: u64,
}
