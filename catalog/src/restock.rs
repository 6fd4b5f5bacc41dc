//! The restock task: every interval, each sold-out toy is restocked.
//!
//! A round is one durable transaction ([`crate::store::Store::restock`]), so a crash mid-round
//! restocks all sold-out toys or none. A failed round (a full disk, say) is logged and the next
//! round tries again; the task never stops on its own. Missed ticks are delayed, not bunched, so
//! a slow disk does not cause a burst of rounds.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::service::Catalog;

/// Runs restock rounds every `interval`, setting toys at 0 to `quantity`. Runs until aborted.
pub async fn run(catalog: Arc<Catalog>, interval: Duration, quantity: u32) {
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match catalog.restock(quantity).await {
            Ok(events) if events.is_empty() => {}
            Ok(events) => {
                for e in &events {
                    tracing::info!(
                        product = %e.product.name,
                        quantity = e.product.quantity,
                        version = e.version,
                        "restocked"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "restock round failed; retrying next round"),
        }
    }
}

#[cfg(test)]
mod tests {
    use api::catalog::{TakeOutcome, TakeRequest};

    use super::*;
    use crate::seed::SeedProduct;

    #[tokio::test]
    async fn the_task_restocks_a_sold_out_toy_and_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let seed = vec![
            SeedProduct {
                name: "Tux".into(),
                price: 1.0,
                quantity: 2,
            },
            SeedProduct {
                name: "Fox".into(),
                price: 1.0,
                quantity: 5,
            },
        ];
        let cat = Catalog::open(dir.path().to_path_buf(), seed).await.unwrap();
        let taken = cat
            .take(TakeRequest {
                key: "all".into(),
                name: "Tux".into(),
                quantity: 2,
            })
            .await
            .unwrap();
        assert_eq!(taken.outcome, TakeOutcome::Taken);
        let task = tokio::spawn(run(cat.clone(), Duration::from_millis(20), 7));
        let mut version = cat.subscribe();
        tokio::time::timeout(Duration::from_secs(10), version.wait_for(|v| *v >= 2))
            .await
            .expect("a restock round within the deadline")
            .unwrap();
        task.abort();
        let products = cat.products().await.unwrap();
        let stock: Vec<(&str, u32)> = products
            .iter()
            .map(|p| (p.name.as_str(), p.quantity))
            .collect();
        assert_eq!(stock, vec![("Fox", 5), ("Tux", 7)]);
    }
}
