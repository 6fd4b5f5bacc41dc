//! Latency and throughput figures shared by the load client, the evaluation and the baseline.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencyStats {
    /// Computes the figures from raw samples (nearest-rank percentiles); zeros when empty.
    pub fn from_samples(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Self {
            count: ms.len() as u64,
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: *ms.last().unwrap(),
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
    /// Builds a result from latency samples of successful operations.
    pub fn new(clients: usize, samples: &[Duration], errors: u64, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            clients,
            ops: samples.len() as u64,
            errors,
            seconds,
            throughput: if seconds > 0.0 {
                samples.len() as f64 / seconds
            } else {
                0.0
            },
            latency: LatencyStats::from_samples(samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = LatencyStats::from_samples(&samples);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p90_ms, 90.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        assert_eq!(LatencyStats::from_samples(&[]), LatencyStats::default());
    }

    #[test]
    fn throughput_counts_successes_only() {
        let r = WorkloadResult::new(
            4,
            &[Duration::from_millis(2); 10],
            3,
            Duration::from_secs(2),
        );
        assert_eq!(r.ops, 10);
        assert_eq!(r.errors, 3);
        assert_eq!(r.throughput, 5.0);
    }
}
