//! The stock side of a purchase, as the order leader sees it.
//!
//! The purchase protocol asks the catalog to `take(key, name, quantity)` between committing
//! `Pending` and `Resolve`. [`StockKeeper`] is that call. This crate ships [`UnlimitedStock`],
//! which confirms every order without a catalog (the order service on its own, for its tests
//! and benchmark), and [`CatalogStock`], which asks the catalog service.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use api::catalog::{CatalogClient, TakeOutcome, TakeRequest};

use crate::types::{RejectReason, Resolution};

/// Why stock could not be asked for: the purchase stays pending and is retried later.
#[derive(Debug, thiserror::Error)]
#[error("stock keeper unavailable: {0}")]
pub struct StockUnavailable(pub String);

/// A boxed future, so the trait can be used as `dyn StockKeeper`.
pub type TakeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Resolution, StockUnavailable>> + Send + 'a>>;

/// A boxed future of whether the stock keeper answers.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// Takes stock for a purchase. Must be idempotent by `key`: a repeat returns the first answer
/// and changes nothing, because a new leader repeats the call for every pending order.
pub trait StockKeeper: Send + Sync + 'static {
    /// Takes `quantity` of `name` for the purchase `key`.
    fn take<'a>(&'a self, key: &'a str, name: &'a str, quantity: u32) -> TakeFuture<'a>;

    /// Whether the stock keeper answers this replica now (asked quickly, within a second).
    fn reachable(&self) -> ProbeFuture<'_>;
}

/// Confirms every purchase: the order service on its own, without a catalog.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnlimitedStock;

impl StockKeeper for UnlimitedStock {
    fn take<'a>(&'a self, _key: &'a str, _name: &'a str, _quantity: u32) -> TakeFuture<'a> {
        Box::pin(async { Ok(Resolution::Confirmed) })
    }

    fn reachable(&self) -> ProbeFuture<'_> {
        Box::pin(async { true })
    }
}

/// Takes stock at the catalog service.
///
/// A take is retried with the same key while the catalog is unreachable, up to `patience`;
/// after that the purchase stays pending (the client gets 503) and the leader's background
/// resolver finishes it once the catalog is back. Never half-done: the take is idempotent and
/// the order is resolved only with the catalog's answer.
#[derive(Debug, Clone)]
pub struct CatalogStock {
    client: CatalogClient,
    patience: Duration,
}

impl CatalogStock {
    /// Stock kept by the catalog at `url`, taken with the cluster `token`; waits up to
    /// `patience` for it per take.
    pub fn new(url: &str, token: &str, patience: Duration) -> Self {
        let http = api::client::http_client(Duration::from_secs(3));
        Self {
            client: CatalogClient::new(http, url).with_token(token),
            patience,
        }
    }

    async fn take_with_retries(
        &self,
        key: &str,
        name: &str,
        quantity: u32,
    ) -> Result<Resolution, StockUnavailable> {
        let req = TakeRequest {
            key: key.to_string(),
            name: name.to_string(),
            quantity,
        };
        let start = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.client.take(&req).await {
                Ok(resp) => {
                    return Ok(match resp.outcome {
                        TakeOutcome::Taken => Resolution::Confirmed,
                        TakeOutcome::Insufficient => Resolution::Rejected(RejectReason::OutOfStock),
                        TakeOutcome::UnknownProduct => {
                            Resolution::Rejected(RejectReason::UnknownProduct)
                        }
                    });
                }
                // The catalog refused the request itself: a bug, not an outage. Reject the
                // order with the catalog's reason rather than retrying forever.
                Err(api::ClientError::Api { status, error }) if status.is_client_error() => {
                    return Ok(Resolution::Rejected(RejectReason::Refused {
                        message: error.message,
                    }));
                }
                Err(e) if start.elapsed() + backoff < self.patience => {
                    tracing::debug!(error = %e, key, "catalog not reachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(StockUnavailable(format!("catalog: {e}"))),
            }
        }
    }
}

impl StockKeeper for CatalogStock {
    fn take<'a>(&'a self, key: &'a str, name: &'a str, quantity: u32) -> TakeFuture<'a> {
        Box::pin(self.take_with_retries(key, name, quantity))
    }

    fn reachable(&self) -> ProbeFuture<'_> {
        Box::pin(async {
            tokio::time::timeout(Duration::from_secs(1), self.client.ready())
                .await
                .is_ok_and(|r| r.is_ok())
        })
    }
}
