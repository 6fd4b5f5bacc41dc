//! The stock side of a purchase, as the order leader sees it.
//!
//! The purchase protocol asks the catalog to `take(key, name, quantity)` between committing
//! `Pending` and `Resolve`. [`StockKeeper`] is that call. This crate ships [`UnlimitedStock`],
//! which confirms every order without a catalog; the catalog service plugs its own client in
//! behind the same trait.

use std::future::Future;
use std::pin::Pin;

use crate::types::Resolution;

/// Why stock could not be asked for: the purchase stays pending and is retried later.
#[derive(Debug, thiserror::Error)]
#[error("stock keeper unavailable: {0}")]
pub struct StockUnavailable(pub String);

/// A boxed future, so the trait can be used as `dyn StockKeeper`.
pub type TakeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Resolution, StockUnavailable>> + Send + 'a>>;

/// Takes stock for a purchase. Must be idempotent by `key`: a repeat returns the first answer
/// and changes nothing, because a new leader repeats the call for every pending order.
pub trait StockKeeper: Send + Sync + 'static {
    /// Takes `quantity` of `name` for the purchase `key`.
    fn take<'a>(&'a self, key: &'a str, name: &'a str, quantity: u32) -> TakeFuture<'a>;
}

/// Confirms every purchase: the order service on its own, without a catalog.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnlimitedStock;

impl StockKeeper for UnlimitedStock {
    fn take<'a>(&'a self, _key: &'a str, _name: &'a str, _quantity: u32) -> TakeFuture<'a> {
        Box::pin(async { Ok(Resolution::Confirmed) })
    }
}
