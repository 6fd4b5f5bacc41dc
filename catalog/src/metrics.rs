//! Prometheus metrics of the catalog.
//!
//! Counters are bumped as things happen; the view's version is refreshed at scrape time, so it
//! is never stale. Open long-polls are counted with a guard that decrements on drop, so a
//! client that hangs up is not counted forever.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The catalog's metrics.
pub struct Metrics {
    registry: Registry,
    restocks: Counter,
    stream: Family<Labels, Counter>,
    stale_reads: Counter,
    products: Gauge,
    version: Gauge,
    feed_waiters: Gauge,
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

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("toystore_catalog");
        let restocks = Counter::default();
        registry.register(
            "restocks",
            "Sold-out toys this catalog restocked through the order group",
            restocks.clone(),
        );
        let stream = Family::<Labels, Counter>::default();
        registry.register(
            "stream_answers",
            "Answers of the order group's change stream (outcome: changes, empty, reset, error)",
            stream.clone(),
        );
        let stale_reads = Counter::default();
        registry.register(
            "stale_reads",
            "Reads refused (503) because the view did not reach their min_version in time",
            stale_reads.clone(),
        );
        let products = Gauge::default();
        registry.register("products", "Toys in the view", products.clone());
        let version = Gauge::default();
        registry.register(
            "view_version",
            "How far the view of the inventory goes (a log index of the order group)",
            version.clone(),
        );
        let feed_waiters = Gauge::default();
        registry.register(
            "feed_waiters",
            "Long-poll requests waiting for a change",
            feed_waiters.clone(),
        );
        Self {
            registry,
            restocks,
            stream,
            stale_reads,
            products,
            version,
            feed_waiters,
        }
    }

    /// Counts one toy restocked by this catalog.
    pub fn restocked(&self) {
        self.restocks.inc();
    }

    /// Counts one answer (or failure) of the change stream.
    pub fn stream_answer(&self, outcome: &'static str) {
        self.stream
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// Counts one read refused as too stale.
    pub fn stale_read(&self) {
        self.stale_reads.inc();
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

    /// Renders every metric in the OpenMetrics text format, with the view at `version` holding
    /// `products` toys.
    pub fn render(&self, version: u64, products: usize) -> String {
        self.version.set(i64::try_from(version).unwrap_or(i64::MAX));
        self.products
            .set(i64::try_from(products).unwrap_or(i64::MAX));
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
    fn render_shows_restocks_stream_and_waiters() {
        let m = Metrics::new();
        m.restocked();
        m.stream_answer("changes");
        m.stream_answer("changes");
        m.stale_read();
        let guard = m.feed_waiter();
        let text = m.render(7, 12);
        assert!(text.contains("toystore_catalog_restocks_total 1"), "{text}");
        assert!(text.contains(r#"toystore_catalog_stream_answers_total{outcome="changes"} 2"#));
        assert!(text.contains("toystore_catalog_stale_reads_total 1"));
        assert!(text.contains("toystore_catalog_products 12"));
        assert!(text.contains("toystore_catalog_view_version 7"));
        assert!(text.contains("toystore_catalog_feed_waiters 1"));
        drop(guard);
        assert!(m.render(7, 12).contains("toystore_catalog_feed_waiters 0"));
    }
}
