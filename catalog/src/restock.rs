//! The inventory's life through the order group: the toys defined at a store's first start,
//! and sold-out toys restocked every interval.
//!
//! Both are conditional commands (define only toys not defined yet; restock only a toy still at
//! 0), so any number of catalog replicas may send them at once and each takes effect once.

use std::sync::Arc;
use std::time::Duration;

use api::inventory::{DefineRequest, ProductDef, RestockRequest};
use tokio::time::{Instant, MissedTickBehavior};

use crate::state::Catalog;

/// Defines `products` once the view has heard from the group and the group's inventory is not
/// defined yet; retries until it is defined (by this catalog or another).
pub async fn define_at_first_start(catalog: Arc<Catalog>, products: Vec<ProductDef>) {
    let mut version = catalog.view.subscribe();
    loop {
        if catalog.view.is_defined() {
            return;
        }
        if catalog.view.is_synced() {
            let req = DefineRequest {
                products: products.clone(),
            };
            match catalog.group.define(&req).await {
                Ok(resp) => {
                    tracing::info!(defined = ?resp.defined, version = resp.version, "defined the store's toys");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot define the toys yet; retrying"),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), version.changed()).await;
    }
}

/// Every `interval`, restocks each sold-out toy to `quantity`. Runs until aborted.
pub async fn run(catalog: Arc<Catalog>, interval: Duration, quantity: u32) {
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for name in catalog.view.sold_out() {
            let req = RestockRequest {
                name: name.clone(),
                to: quantity,
                only_if_at: 0,
            };
            match catalog.group.restock(&req).await {
                Ok(resp) if resp.restocked => {
                    catalog.metrics.restocked();
                    tracing::info!(toy = %name, quantity, "restocked");
                }
                // Restocked by another catalog, or sold since: nothing to do.
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(toy = %name, error = %e, "restock failed; retrying next round")
                }
            }
        }
    }
}
