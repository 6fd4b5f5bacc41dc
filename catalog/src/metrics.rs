//! Prometheus metrics of the catalog.
//!
//! Counters are bumped as takes and restocks commit; the feed version gauge is refreshed at
//! scrape time from the version watch, so it is never stale. Open long-polls are counted with a
//! guard that decrements on drop, so a client that hangs up is not counted forever.

use api::catalog::TakeOutcome;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The catalog's metrics.
pub struct Metrics {
    registry: Registry,
    takes: Family<Labels, Counter>,
    restocks: Counter,
    restocked_units: Counter,
    products: Gauge,
    feed_version: Gauge,
    feed_waiters: Gauge,
    take_batches: Counter,
    batched_takes: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The label value of an outcome.
fn outcome_label(outcome: TakeOutcome) -> &'static str {
    match outcome {
        TakeOutcome::Taken => "taken",
        TakeOutcome::Insufficient => "insufficient",
        TakeOutcome::UnknownProduct => "unknown_product",
    }
}

impl Metrics {
    /// Registers every metric under the `toystore_catalog` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("toystore_catalog");
        let takes = Family::<Labels, Counter>::default();
        registry.register(
            "takes",
            "Take requests by outcome (taken, insufficient, unknown_product) and whether the key was a repeat",
            takes.clone(),
        );
        let restocks = Counter::default();
        registry.register("restocks", "Products restocked", restocks.clone());
        let restocked_units = Counter::default();
        registry.register(
            "restocked_units",
            "Units added by restocks",
            restocked_units.clone(),
        );
        let products = Gauge::default();
        registry.register("products", "Products in the catalog", products.clone());
        let feed_version = Gauge::default();
        registry.register(
            "feed_version",
            "Current change-feed version",
            feed_version.clone(),
        );
        let feed_waiters = Gauge::default();
        registry.register(
            "feed_waiters",
            "Long-poll requests waiting for a change",
            feed_waiters.clone(),
        );
        let take_batches = Counter::default();
        registry.register(
            "take_batches",
            "Durable transactions that committed takes (group commit)",
            take_batches.clone(),
        );
        let batched_takes = Counter::default();
        registry.register(
            "batched_takes",
            "Takes committed by those transactions (divide by take_batches for the batch size)",
            batched_takes.clone(),
        );
        Self {
            registry,
            takes,
            restocks,
            restocked_units,
            products,
            feed_version,
            feed_waiters,
            take_batches,
            batched_takes,
        }
    }

    /// Counts one answered take.
    pub fn take(&self, outcome: TakeOutcome, repeated: bool) {
        self.takes
            .get_or_create(&vec![
                ("outcome", outcome_label(outcome).to_string()),
                ("repeat", repeated.to_string()),
            ])
            .inc();
    }

    /// Counts one group commit of `takes` takes.
    pub fn take_batch(&self, takes: usize) {
        self.take_batches.inc();
        self.batched_takes.inc_by(takes as u64);
    }

    /// Counts `products` restocked with `units` each.
    pub fn restocked(&self, products: usize, units: u32) {
        self.restocks.inc_by(products as u64);
        self.restocked_units
            .inc_by(products as u64 * u64::from(units));
    }

    /// Sets the number of products.
    pub fn set_products(&self, n: u64) {
        self.products.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts one open long-poll until the returned guard is dropped.
    pub fn feed_waiter(&self) -> WaiterGuard {
        self.feed_waiters.inc();
        WaiterGuard(self.feed_waiters.clone())
    }

    /// Number of long-polls waiting now.
    pub fn feed_waiters(&self) -> i64 {
        self.feed_waiters.get()
    }

    /// Renders every metric in the OpenMetrics text format, with the feed at `version`.
    pub fn render(&self, version: u64) -> String {
        self.feed_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Keeps one long-poll counted in `feed_waiters` while alive.
#[derive(Debug)]
pub struct WaiterGuard(Gauge);

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_takes_restocks_and_waiters() {
        let m = Metrics::new();
        m.take(TakeOutcome::Taken, false);
        m.take(TakeOutcome::Taken, false);
        m.take(TakeOutcome::Insufficient, true);
        m.restocked(2, 100);
        m.set_products(12);
        let guard = m.feed_waiter();
        let text = m.render(7);
        assert!(text.contains(r#"toystore_catalog_takes_total{outcome="taken",repeat="false"} 2"#));
        assert!(
            text.contains(
                r#"toystore_catalog_takes_total{outcome="insufficient",repeat="true"} 1"#
            )
        );
        assert!(text.contains("toystore_catalog_restocks_total 2"));
        assert!(text.contains("toystore_catalog_restocked_units_total 200"));
        assert!(text.contains("toystore_catalog_products 12"));
        assert!(text.contains("toystore_catalog_feed_version 7"));
        assert!(text.contains("toystore_catalog_feed_waiters 1"));
        drop(guard);
        assert!(m.render(7).contains("toystore_catalog_feed_waiters 0"));
    }
}
