//! Operator metrics: reconcile rounds by result, their durations, and failures by kind.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::reconcile::ErrorKind;

type Labels = Vec<(&'static str, String)>;

/// The operator's metrics, rendered at `/metrics` with the prefix `toystore_operator`.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("toystore_operator");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile rounds by result (ok, error)",
            reconciles.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconcile rounds by kind: transient (retried soon), invalid_spec (waits for \
             a spec change; an invalid spec the round reported itself counts too), \
             misconfigured (a permission or the token Secret)",
            errors.clone(),
        );
        for kind in ErrorKind::ALL {
            let _ = errors.get_or_create(&kind_label(kind));
        }
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile rounds",
            duration.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
        }
    }
}

impl Metrics {
    /// Records one reconcile round.
    pub fn reconciled(&self, took: Duration, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Records a failed round of this kind.
    pub fn failed(&self, kind: ErrorKind) {
        self.errors.get_or_create(&kind_label(kind)).inc();
    }

    /// Every metric in the Prometheus text format, for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn kind_label(kind: ErrorKind) -> Labels {
    vec![("kind", kind.label().to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_kind_and_every_kind_shows_from_the_start() {
        let metrics = Metrics::default();
        let text = metrics.render();
        for kind in ["transient", "invalid_spec", "misconfigured"] {
            let line = format!("toystore_operator_reconcile_errors_total{{kind=\"{kind}\"}} 0");
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        metrics.failed(ErrorKind::Transient);
        metrics.failed(ErrorKind::Transient);
        metrics.failed(ErrorKind::InvalidSpec);
        let text = metrics.render();
        assert!(
            text.contains("toystore_operator_reconcile_errors_total{kind=\"transient\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("toystore_operator_reconcile_errors_total{kind=\"invalid_spec\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("toystore_operator_reconcile_errors_total{kind=\"misconfigured\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn rounds_keep_their_metric_names() {
        let metrics = Metrics::default();
        metrics.reconciled(Duration::from_millis(3), true);
        let text = metrics.render();
        assert!(
            text.contains("toystore_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("toystore_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }
}
