//! Prometheus metrics of an order replica.
//!
//! Request counters and latencies are recorded as requests happen; the Raft gauges are read
//! from openraft's metrics channel at scrape time, so they are never stale.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use api::raft::{RaftRole, RaftStatus};

type Labels = Vec<(&'static str, String)>;

/// The replica's metrics.
pub struct Metrics {
    registry: Registry,
    orders: Family<Labels, Counter>,
    order_seconds: Histogram,
    step_seconds: Family<Labels, Histogram>,
    raft: Family<Labels, Gauge>,
    torn_bytes: Gauge,
    confirmed: Gauge,
    refused_rpcs: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("toystore_order");
        let orders = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Order requests by outcome (confirmed, rejected, redirected, failed, bad_request, key_reused)",
            orders.clone(),
        );
        let order_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "place_duration_seconds",
            "Time to place an order on the leader, from the request to the applied command",
            order_seconds.clone(),
        );
        let step_seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "purchase_step_duration_seconds",
            "Time of each step of a purchase on the leader: commit (the Purchase command committed and applied)",
            step_seconds.clone(),
        );
        let raft = Family::<Labels, Gauge>::default();
        registry.register(
            "raft",
            "Raft state of this replica (term, last_log_index, commit_index, applied_index, is_leader, members)",
            raft.clone(),
        );
        let torn_bytes = Gauge::default();
        registry.register(
            "log_torn_bytes",
            "Bytes of a torn log tail cut off at start-up",
            torn_bytes.clone(),
        );
        let confirmed = Gauge::default();
        registry.register(
            "confirmed_orders",
            "Confirmed orders in the state machine",
            confirmed.clone(),
        );
        let refused_rpcs = Family::<Labels, Counter>::default();
        registry.register(
            "raft_rpc_refused",
            "Raft RPCs refused because this replica is not admitted to the group, by path",
            refused_rpcs.clone(),
        );
        Self {
            registry,
            orders,
            order_seconds,
            step_seconds,
            raft,
            torn_bytes,
            confirmed,
            refused_rpcs,
        }
    }

    /// Counts one order request with its outcome.
    pub fn order_outcome(&self, outcome: &str) {
        self.orders
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// Counts a Raft RPC refused while not admitted.
    pub fn refused_rpc(&self, path: &str) {
        self.refused_rpcs
            .get_or_create(&vec![("path", path.to_string())])
            .inc();
    }

    /// Records how long one step of a purchase took (`commit`).
    pub fn purchase_step(&self, step: &'static str, seconds: f64) {
        self.step_seconds
            .get_or_create(&vec![("step", step.to_string())])
            .observe(seconds);
    }

    /// Records how long placing an order took.
    pub fn order_duration(&self, seconds: f64) {
        self.order_seconds.observe(seconds);
    }

    /// Renders the metrics in Prometheus text format, refreshing the Raft gauges from `status`.
    pub fn render(&self, status: &RaftStatus, confirmed: u64) -> String {
        let set = |name: &str, v: i64| {
            self.raft
                .get_or_create(&vec![("field", name.to_string())])
                .set(v);
        };
        let idx = |v: Option<u64>| v.map_or(-1, |v| v as i64);
        set("term", status.term as i64);
        set("last_log_index", idx(status.last_log_index));
        set("commit_index", idx(status.commit_index));
        set("applied_index", idx(status.applied_index));
        set("snapshot_index", idx(status.snapshot_index));
        set("is_leader", i64::from(status.role == RaftRole::Leader));
        set("members", status.members.len() as i64);
        set("admitted", i64::from(status.admitted));
        self.torn_bytes.set(status.recovered_torn_bytes as i64);
        self.confirmed.set(confirmed as i64);
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
