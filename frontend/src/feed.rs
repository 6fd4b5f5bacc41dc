//! The change-feed subscriber: keeps the product cache in step with the catalog.
//!
//! It long-polls `GET /changes?after=V` on one catalog replica (the next one when it fails).
//! A successful poll marks the feed connected (clearing the cache on a reconnect); an error
//! marks it disconnected, which makes the cache bypassed until the feed is back. A reset from
//! the catalog clears the cache: some change may have been missed. Versions are the order
//! group's log indexes, so they are not dense: the catalog answers every change after `after`,
//! or a reset.
//!
//! Every event is also passed on to the storefront's live streams ([`Live`]), which are told
//! to resynchronise whenever the cache is cleared, for the same reason.

use std::sync::Arc;
use std::time::Duration;

use crate::catalogs::Catalogs;

use crate::cache::ProductCache;
use crate::live::Live;

/// How long one long-poll waits for news.
const POLL_WAIT: Duration = Duration::from_secs(20);

/// Follows the catalog's change feed forever, keeping `cache` correct and telling `live`.
pub async fn follow(catalogs: Arc<Catalogs>, cache: Arc<ProductCache>, live: Arc<Live>) {
    // From the start: the catalog answers with the changes it keeps, or a reset.
    let mut after = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        // While not connected, ask without waiting: an answer at once says the feed is back.
        let wait = if cache.feed_connected() {
            POLL_WAIT
        } else {
            Duration::ZERO
        };
        match catalogs.current().changes(after, wait).await {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                if !cache.feed_connected() {
                    // Changes while disconnected were missed (the cache clears itself).
                    live.resync();
                }
                cache.set_feed_connected(true);
                if batch.reset {
                    cache.clear();
                    live.resync();
                    after = batch.version;
                    continue;
                }
                for event in &batch.events {
                    cache.apply(event);
                    live.changed(event);
                }
                after = after.max(batch.version);
            }
            Err(e) => {
                if cache.feed_connected() {
                    tracing::warn!(error = %e, "change feed lost; bypassing the cache");
                }
                cache.set_feed_connected(false);
                catalogs.advance();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
