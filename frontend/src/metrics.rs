//! Prometheus metrics of the frontend: requests, cache hits and misses, upstream latencies.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The frontend's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    cache: Family<Labels, Counter>,
    upstream: Family<Labels, Histogram>,
    feed_connected: Gauge,
    cache_entries: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("toystore_frontend");
        let requests = Family::<Labels, Counter>::default();
        registry.register("requests", "Requests by route and status", requests.clone());
        let cache = Family::<Labels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Product cache lookups by result (hit, miss, bypass)",
            cache.clone(),
        );
        let upstream = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0002, 2.0, 18))
        });
        registry.register(
            "upstream_duration_seconds",
            "Latency of calls to the catalog (list, get) and the order group (place, get)",
            upstream.clone(),
        );
        let feed_connected = Gauge::default();
        registry.register(
            "feed_connected",
            "1 while the catalog change feed is connected",
            feed_connected.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register(
            "cache_entries",
            "Products in the cache",
            cache_entries.clone(),
        );
        Self {
            registry,
            requests,
            cache,
            upstream,
            feed_connected,
            cache_entries,
        }
    }

    /// Counts a finished request.
    pub fn request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// Counts a cache lookup (`hit`, `miss` or `bypass`).
    pub fn cache_lookup(&self, result: &str) {
        self.cache
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// Records an upstream call's latency: `catalog` (`list`, `get`) or `orders` (`place`, `get`).
    pub fn upstream(&self, upstream: &str, call: &str, seconds: f64) {
        self.upstream
            .get_or_create(&vec![
                ("upstream", upstream.to_string()),
                ("call", call.to_string()),
            ])
            .observe(seconds);
    }

    /// Renders the metrics in Prometheus text format.
    pub fn render(&self, feed_connected: bool, cache_entries: usize) -> String {
        self.feed_connected.set(i64::from(feed_connected));
        self.cache_entries.set(cache_entries as i64);
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
