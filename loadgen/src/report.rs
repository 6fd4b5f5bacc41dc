//! What a load run reports: figures per request type, the printed table, `load.json` and
//! `load.csv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::stats::{LatencyHistogram, LatencyStats, WorkloadResult};
use crate::verify::{PlacedOrder, Verification};

/// The three request types a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// `GET /products/{name}`.
    Query,
    /// `POST /orders`.
    Order,
    /// `GET /orders/{number}` (the read-back at the end).
    Lookup,
}

impl RequestKind {
    /// All kinds, in report order.
    pub const ALL: [RequestKind; 3] = [RequestKind::Query, RequestKind::Order, RequestKind::Lookup];

    /// Lower-case name, as in the reports.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Query => "query",
            RequestKind::Order => "order",
            RequestKind::Lookup => "lookup",
        }
    }
}

/// One request as it happened, for latency-over-time plots.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimedSample {
    /// When the request was sent, since the start of the run.
    pub sent: Duration,
    /// How long it took.
    pub latency: Duration,
    /// Its type.
    pub kind: RequestKind,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Figures for one request type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// Successes, throughput and latency of the successes. `result.errors` excludes
    /// out-of-stock rejections, which are counted in `rejected`.
    pub result: WorkloadResult,
    /// Orders refused with 409 (not enough stock): a correct answer under contention.
    pub rejected: u64,
    /// Failures by status (`"503"`, `"409"`, `"timeout"`, `"transport"`, ...).
    pub errors_by_status: BTreeMap<String, u64>,
}

impl KindReport {
    pub(crate) fn new(
        clients: usize,
        latencies: &LatencyHistogram,
        failures: &BTreeMap<String, u64>,
        elapsed: Duration,
    ) -> Self {
        let rejected = failures.get("409").copied().unwrap_or(0);
        let all: u64 = failures.values().sum();
        Self {
            result: WorkloadResult::new(clients, latencies, all - rejected, elapsed),
            rejected,
            errors_by_status: failures.clone(),
        }
    }

    /// Latency of the successful requests.
    pub fn latency(&self) -> &LatencyStats {
        &self.result.latency
    }
}

/// Everything a load run measured and found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// The frontend that was loaded.
    pub url: String,
    /// Concurrent sessions.
    pub clients: usize,
    /// Probability of ordering a toy in stock.
    pub p: f64,
    /// Seed of the sessions' random choices.
    pub seed: u64,
    /// Whether sessions skipped the query.
    pub orders_only: bool,
    /// Sessions per client, when the run was bounded by iterations.
    pub iterations: Option<u64>,
    /// Configured duration in seconds, when the run was bounded by time.
    pub duration_secs: Option<f64>,
    /// Sessions run (all clients).
    pub sessions: u64,
    /// Wall-clock seconds of the load phase (read-back excluded).
    pub elapsed_secs: f64,
    /// Queries.
    pub query: KindReport,
    /// Orders.
    pub order: KindReport,
    /// Read-back of acknowledged orders.
    pub lookup: KindReport,
    /// The read-back check.
    pub verification: Verification,
    /// Every acknowledged order (not written to `load.json`: it can be long).
    #[serde(skip)]
    pub placed: Vec<PlacedOrder>,
    /// Every request of the load phase, in no particular order, when
    /// [`LoadOptions::timeline`](crate::LoadOptions::timeline) asked for it (not written to
    /// `load.json`).
    #[serde(skip)]
    pub timeline: Vec<TimedSample>,
    /// When the load phase started; [`TimedSample::sent`] counts from here.
    #[serde(skip, default = "Instant::now")]
    pub started: Instant,
}

impl LoadReport {
    /// The figures of one request type.
    pub fn kind(&self, kind: RequestKind) -> &KindReport {
        match kind {
            RequestKind::Query => &self.query,
            RequestKind::Order => &self.order,
            RequestKind::Lookup => &self.lookup,
        }
    }

    /// Failed requests of every type (rejections for lack of stock excluded).
    pub fn errors(&self) -> u64 {
        self.query.result.errors + self.order.result.errors + self.lookup.result.errors
    }

    /// The human-readable summary `toystore load` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} clients, p = {}, {} sessions in {:.1} s{}\n",
            self.clients,
            self.p,
            self.sessions,
            self.elapsed_secs,
            if self.orders_only {
                " (orders only)"
            } else {
                ""
            }
        );
        out.push_str(&format!(
            "{:<8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7}\n",
            "request", "ok", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "rejected", "errors"
        ));
        for kind in RequestKind::ALL {
            let k = self.kind(kind);
            let l = k.latency();
            out.push_str(&format!(
                "{:<8} {:>8} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>9} {:>7}\n",
                kind.name(),
                k.result.ops,
                k.result.throughput,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms,
                k.rejected,
                k.result.errors
            ));
        }
        let failures: Vec<String> = RequestKind::ALL
            .iter()
            .flat_map(|kind| {
                self.kind(*kind)
                    .errors_by_status
                    .iter()
                    .map(move |(status, n)| format!("{} {status}: {n}", kind.name()))
            })
            .collect();
        if !failures.is_empty() {
            out.push_str(&format!("failures: {}\n", failures.join(", ")));
        }
        out.push_str(&self.verification.summary());
        out.push('\n');
        out
    }

    /// One CSV row per request type.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "kind,ok,rejected,errors,seconds,throughput_per_s,mean_ms,p50_ms,p90_ms,p99_ms,max_ms\n",
        );
        for kind in RequestKind::ALL {
            let k = self.kind(kind);
            let l = k.latency();
            out.push_str(&format!(
                "{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}\n",
                kind.name(),
                k.result.ops,
                k.rejected,
                k.result.errors,
                k.result.seconds,
                k.result.throughput,
                l.mean_ms,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms
            ));
        }
        out
    }

    /// Writes `DIR/load.json` (the report) and `DIR/load.csv`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), LoadError> {
        let write = |path: PathBuf, bytes: Vec<u8>| {
            std::fs::write(&path, bytes)
                .map(|_| path.clone())
                .map_err(|source| LoadError::Write { path, source })
        };
        std::fs::create_dir_all(dir).map_err(|source| LoadError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let json = write(dir.join("load.json"), serde_json::to_vec_pretty(self)?)?;
        let csv = write(dir.join("load.csv"), self.csv().into_bytes())?;
        Ok((json, csv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_split_into_rejections_and_errors() {
        let failures = BTreeMap::from([("409".to_string(), 4), ("503".to_string(), 1)]);
        let k = KindReport::new(
            2,
            &[Duration::from_millis(1); 10].into_iter().collect(),
            &failures,
            Duration::from_secs(1),
        );
        assert_eq!((k.result.ops, k.rejected, k.result.errors), (10, 4, 1));
    }
}
