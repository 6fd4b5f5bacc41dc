//! The change-feed subscriber: keeps the product cache in step with the catalog.
//!
//! It long-polls `GET /changes?after=V`. A successful poll marks the feed connected (clearing
//! the cache on a reconnect); an error marks it disconnected, which makes the cache bypassed
//! until the feed is back. A reset from the catalog, or a gap between the version we asked
//! after and the first event, clears the cache: some change may have been missed.
//!
//! Every event is also passed on to the storefront's live streams ([`Live`]), which are told
//! to resynchronise whenever the cache is cleared, for the same reason.

use std::sync::Arc;
use std::time::Duration;

use api::catalog::CatalogClient;

use crate::cache::ProductCache;
use crate::live::Live;

/// How long one long-poll waits for news.
const POLL_WAIT: Duration = Duration::from_secs(20);

/// Follows the catalog's change feed forever, keeping `cache` correct and telling `live`.
pub async fn follow(catalog: CatalogClient, cache: Arc<ProductCache>, live: Arc<Live>) {
    // Asking for events after a version from the future answers with a reset and the current
    // version: the starting point.
    let mut after = u64::MAX;
    let mut backoff = Duration::from_millis(100);
    loop {
        match catalog.changes(after, POLL_WAIT).await {
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
                if let Some(first) = batch.events.first()
                    && first.version != after + 1
                {
                    tracing::warn!(after, first = first.version, "gap in the change feed");
                    cache.clear();
                    live.resync();
                }
                for event in &batch.events {
                    cache.apply(event);
                    live.changed(event);
                }
                after = batch.events.last().map_or(batch.version, |e| e.version);
            }
            Err(e) => {
                if cache.feed_connected() {
                    tracing::warn!(error = %e, "change feed lost; bypassing the cache");
                }
                cache.set_feed_connected(false);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
