//! Latency and throughput figures shared by the load client, the evaluation and the baseline.
//!
//! There is one definition of a latency percentile in the project: [`LatencyHistogram`], an
//! [HdrHistogram](https://hdrhistogram.github.io/HdrHistogram/) of microseconds with three
//! significant digits. Recording is O(1) and the memory is bounded by the range of values, not by
//! their number, so a long run keeps no samples; histograms of concurrent clients merge by
//! addition. A figure read from it is within 0.1 % of the exact one (HdrHistogram reports the
//! highest value equivalent to the sample at that precision); percentiles are nearest-rank.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant decimal digits the histograms keep.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies recorded into an HdrHistogram (microseconds, [`SIGNIFICANT_DIGITS`] digits).
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        // Auto-resizing: the histogram grows to the largest latency seen, whatever it is.
        Self(Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits is a valid precision"))
    }
}

impl LatencyHistogram {
    /// Records one latency (sub-microsecond ones count as 1 µs).
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // Auto-resizing, so `record` fails only beyond u64 range; clamp there.
        if self.0.record(micros).is_err() {
            self.0.saturating_record(micros);
        }
    }

    /// Adds every sample of `other` (e.g. another client's).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.0
            .add(&other.0)
            .expect("auto-resizing histograms of the same precision always add");
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The figures of the recorded latencies.
    pub fn stats(&self) -> LatencyStats {
        LatencyStats::from_histogram(self)
    }
}

impl FromIterator<Duration> for LatencyHistogram {
    fn from_iter<I: IntoIterator<Item = Duration>>(samples: I) -> Self {
        let mut h = Self::default();
        for s in samples {
            h.record(s);
        }
        h
    }
}

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: u64,
    /// Mean of the samples; one slow outlier moves it, unlike the percentiles.
    pub mean_ms: f64,
    /// Median: half of the samples took at most this long.
    pub p50_ms: f64,
    /// 90 % of the samples took at most this long.
    pub p90_ms: f64,
    /// 99 % of the samples took at most this long.
    pub p99_ms: f64,
    /// The slowest sample.
    pub max_ms: f64,
}

impl LatencyStats {
    /// The figures of a histogram (nearest-rank percentiles); zeros when it is empty.
    pub fn from_histogram(h: &LatencyHistogram) -> Self {
        let h = &h.0;
        if h.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The outcome of running one workload for a while.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Concurrent clients.
    pub clients: usize,
    /// Successful operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Wall-clock seconds the workload ran.
    pub seconds: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Latency of the successful operations.
    pub latency: LatencyStats,
}

impl WorkloadResult {
    /// Builds a result from the latencies of the successful operations.
    pub fn new(
        clients: usize,
        latencies: &LatencyHistogram,
        errors: u64,
        elapsed: Duration,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        let ops = latencies.count();
        Self {
            clients,
            ops,
            errors,
            seconds,
            throughput: if seconds > 0.0 {
                ops as f64 / seconds
            } else {
                0.0
            },
            latency: latencies.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal within the histogram's precision (0.1 %).
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want.abs() * 1e-3
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: LatencyHistogram = (1..=100).map(Duration::from_millis).collect();
        let s = samples.stats();
        assert_eq!(s.count, 100);
        assert!(close(s.p50_ms, 50.0), "{s:?}");
        assert!(close(s.p90_ms, 90.0), "{s:?}");
        assert!(close(s.p99_ms, 99.0), "{s:?}");
        assert!(close(s.max_ms, 100.0), "{s:?}");
        assert!(close(s.mean_ms, 50.5), "{s:?}");
        assert_eq!(LatencyHistogram::default().stats(), LatencyStats::default());
    }

    #[test]
    fn merged_histograms_count_every_sample() {
        let mut a: LatencyHistogram = (1..=50).map(Duration::from_millis).collect();
        let b: LatencyHistogram = (51..=100).map(Duration::from_millis).collect();
        a.merge(&b);
        let s = a.stats();
        assert_eq!(s.count, 100);
        assert!(close(s.p50_ms, 50.0) && close(s.max_ms, 100.0), "{s:?}");
        // Small latencies are exact below 2 ms (2048 µs).
        let small: LatencyHistogram = [Duration::from_micros(250)].into_iter().collect();
        assert_eq!(small.stats().p50_ms, 0.25);
    }

    #[test]
    fn throughput_counts_successes_only() {
        let r = WorkloadResult::new(
            4,
            &[Duration::from_millis(2); 10].into_iter().collect(),
            3,
            Duration::from_secs(2),
        );
        assert_eq!(r.ops, 10);
        assert_eq!(r.errors, 3);
        assert_eq!(r.throughput, 5.0);
    }
}
