//! What a load run reports: figures per request type, the printed table, `load.json`,
//! `load.csv` and the latency-over-time chart.
//!
//! Every answer is counted once, under one name: a success (`ok`), one of the two answers a
//! correct store gives a shopper it cannot serve, **sold out** (409, not enough stock) and
//! **unknown toy** (404 to a query or an order), or an **error** (anything else: 5xx, time-outs,
//! refused connections, a 404 for an order read back). Sold out and unknown toy are outcomes,
//! not errors: they never count towards `--max-errors`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use api::client::ClientError;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::over_time::OverTime;
use crate::plot;
use crate::run::failure_label;
use crate::stats::{LatencyHistogram, LatencyStats, WorkloadResult};
use crate::verify::{PlacedOrder, Verification};

/// The file names a run writes (in the directory given to [`LoadReport::write`]).
pub const JSON_FILE: &str = "load.json";
/// The figures per request type as CSV, one row each, next to [`JSON_FILE`].
pub const CSV_FILE: &str = "load.csv";
/// The latency-over-time chart, written as `.svg` and `.png`.
pub const CHART_FILE: &str = "latency_over_time";

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

/// How one answer counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A successful answer.
    Ok,
    /// 409 to an order: not enough stock.
    SoldOut,
    /// 404 to a query or an order: no such toy.
    UnknownToy,
    /// A failed request, by cause (`"503"`, `"timeout"`, ...).
    Error(String),
}

impl Answer {
    /// How the answer to a request of `kind` counts.
    pub(crate) fn of<T>(kind: RequestKind, result: &Result<T, ClientError>) -> Self {
        match result {
            Ok(_) => Answer::Ok,
            Err(ClientError::Api { status, .. })
                if *status == StatusCode::CONFLICT && kind == RequestKind::Order =>
            {
                Answer::SoldOut
            }
            // A 404 for an order read back is an acknowledged order gone missing: an error.
            Err(ClientError::Api { status, .. })
                if *status == StatusCode::NOT_FOUND && kind != RequestKind::Lookup =>
            {
                Answer::UnknownToy
            }
            Err(e) => Answer::Error(failure_label(e)),
        }
    }
}

/// The answers of one request type that were not successes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Outcomes {
    /// Answered sold out.
    pub(crate) sold_out: u64,
    /// Answered unknown toy.
    pub(crate) unknown_toy: u64,
    /// Failed, by cause.
    pub(crate) errors: BTreeMap<String, u64>,
}

impl Outcomes {
    /// Counts one answer (successes are counted by their latency histogram).
    pub(crate) fn count(&mut self, answer: &Answer) {
        match answer {
            Answer::Ok => {}
            Answer::SoldOut => self.sold_out += 1,
            Answer::UnknownToy => self.unknown_toy += 1,
            Answer::Error(cause) => *self.errors.entry(cause.clone()).or_default() += 1,
        }
    }

    /// Adds another session's counts.
    pub(crate) fn merge(&mut self, other: &Outcomes) {
        self.sold_out += other.sold_out;
        self.unknown_toy += other.unknown_toy;
        for (cause, n) in &other.errors {
            *self.errors.entry(cause.clone()).or_default() += n;
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
    /// Query, order or read-back lookup.
    pub kind: RequestKind,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Figures for one request type. Each answer counts in exactly one of `result.ops` (successes),
/// `sold_out`, `unknown_toy` and `result.errors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// Successes, throughput and latency of the successes; `result.errors` counts the failed
    /// requests (sold out and unknown toy are not failures).
    pub result: WorkloadResult,
    /// Orders answered 409, not enough stock: a correct answer, not an error.
    pub sold_out: u64,
    /// Queries and orders answered 404, no such toy: a correct answer, not an error.
    pub unknown_toy: u64,
    /// The failed requests by cause (`"503"`, `"timeout"`, `"connect"`, ...); they add up to
    /// `result.errors`.
    pub errors_by_status: BTreeMap<String, u64>,
}

impl KindReport {
    pub(crate) fn new(
        clients: usize,
        latencies: &LatencyHistogram,
        outcomes: &Outcomes,
        elapsed: Duration,
    ) -> Self {
        Self {
            result: WorkloadResult::new(
                clients,
                latencies,
                outcomes.errors.values().sum(),
                elapsed,
            ),
            sold_out: outcomes.sold_out,
            unknown_toy: outcomes.unknown_toy,
            errors_by_status: outcomes.errors.clone(),
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
    /// Sessions that set out to buy: the coin said "buy" (every session with `orders_only`).
    pub wanted: u64,
    /// Sessions that set out to buy but whose query showed the toy sold out, so they placed no
    /// order. (Orders answered sold out are [`KindReport::sold_out`] of `order`.)
    pub found_sold_out: u64,
    /// Wall-clock seconds of the load phase (read-back excluded).
    pub elapsed_secs: f64,
    /// Queries (`GET /products/{name}`), one per session; none with `orders_only`.
    pub query: KindReport,
    /// Orders (`POST /orders`), one per session that set out to buy a toy its query showed in
    /// stock (every session with `orders_only`).
    pub order: KindReport,
    /// Read-back of acknowledged orders.
    pub lookup: KindReport,
    /// The read-back check.
    pub verification: Verification,
    /// Queries and orders slice by slice: what the latency-over-time chart shows.
    pub over_time: OverTime,
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

/// The files [`LoadReport::write`] wrote; shown as their paths separated by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written(pub Vec<PathBuf>);

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, path) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", path.display())?;
        }
        Ok(())
    }
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

    /// Failed requests of every type (sold out and unknown toy are not failures).
    pub fn errors(&self) -> u64 {
        self.query.result.errors + self.order.result.errors + self.lookup.result.errors
    }

    /// Of the sessions that set out to buy, the share (0..=1) that met a sold-out toy: at the
    /// query, or at the order (409). `None` when no session set out to buy.
    pub fn sold_out_share(&self) -> Option<f64> {
        (self.wanted > 0)
            .then(|| (self.found_sold_out + self.order.sold_out) as f64 / self.wanted as f64)
    }

    /// The run's settings in a few words, e.g. `5 clients, p = 0.5`.
    pub fn setup(&self) -> String {
        if self.orders_only {
            format!("{} clients, orders only", self.clients)
        } else {
            format!("{} clients, p = {}", self.clients, self.p)
        }
    }

    /// The human-readable summary `toystore load` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{}: {} sessions in {:.1} s\n",
            self.setup(),
            self.sessions,
            self.elapsed_secs,
        );
        out.push_str(&format!(
            "{:<8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}\n",
            "request",
            "ok",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "sold out",
            "unknown",
            "errors"
        ));
        for kind in RequestKind::ALL {
            let k = self.kind(kind);
            let l = k.latency();
            out.push_str(&format!(
                "{:<8} {:>8} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>9} {:>8} {:>7}\n",
                kind.name(),
                k.result.ops,
                k.result.throughput,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms,
                k.sold_out,
                k.unknown_toy,
                k.result.errors
            ));
        }
        if let Some(share) = self.sold_out_share() {
            out.push_str(&format!(
                "purchases: {} wanted, {} bought; {} ({:.1} %) met a sold-out toy: {} at the \
                 query, {} at the order\n",
                self.wanted,
                self.order.result.ops,
                self.found_sold_out + self.order.sold_out,
                share * 100.0,
                self.found_sold_out,
                self.order.sold_out
            ));
        }
        let errors: Vec<String> = RequestKind::ALL
            .iter()
            .flat_map(|kind| {
                self.kind(*kind)
                    .errors_by_status
                    .iter()
                    .map(move |(cause, n)| format!("{} {cause}: {n}", kind.name()))
            })
            .collect();
        if !errors.is_empty() {
            out.push_str(&format!("errors: {}\n", errors.join(", ")));
        }
        out.push_str(&self.verification.summary());
        out.push('\n');
        out
    }

    /// One CSV row per request type.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "kind,ok,sold_out,unknown_toy,errors,seconds,throughput_per_s,mean_ms,p50_ms,p90_ms,p99_ms,max_ms\n",
        );
        for kind in RequestKind::ALL {
            let k = self.kind(kind);
            let l = k.latency();
            out.push_str(&format!(
                "{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}\n",
                kind.name(),
                k.result.ops,
                k.sold_out,
                k.unknown_toy,
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

    /// Writes `DIR/load.json` (the report), `DIR/load.csv` and the latency-over-time chart as
    /// `DIR/latency_over_time.svg` and `.png`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Written, LoadError> {
        let write = |path: PathBuf, bytes: Vec<u8>| {
            std::fs::write(&path, bytes)
                .map(|_| path.clone())
                .map_err(|source| LoadError::Write { path, source })
        };
        std::fs::create_dir_all(dir).map_err(|source| LoadError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = vec![
            write(dir.join(JSON_FILE), serde_json::to_vec_pretty(self)?)?,
            write(dir.join(CSV_FILE), self.csv().into_bytes())?,
        ];
        let charts = self.over_time.charts(&self.setup());
        if !charts.is_empty() {
            let svg = dir.join(format!("{CHART_FILE}.svg"));
            written.push(write(svg, plot::svg(&charts)?.into_bytes())?);
            let png = dir.join(format!("{CHART_FILE}.png"));
            plot::png(&charts, &png)?;
            written.push(png);
        }
        Ok(Written(written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(status: u16) -> Result<(), ClientError> {
        Err(ClientError::Api {
            status: StatusCode::from_u16(status).unwrap(),
            error: api::ApiError {
                code: status,
                message: "no".into(),
                leader: None,
            },
        })
    }

    #[test]
    fn sold_out_and_unknown_toy_are_outcomes_not_errors() {
        use RequestKind::{Lookup, Order, Query};
        assert_eq!(Answer::of(Order, &api_error(409)), Answer::SoldOut);
        assert_eq!(Answer::of(Order, &api_error(404)), Answer::UnknownToy);
        assert_eq!(Answer::of(Query, &api_error(404)), Answer::UnknownToy);
        assert_eq!(Answer::of(Order, &Ok(())), Answer::Ok);
        assert_eq!(
            Answer::of(Lookup, &api_error(404)),
            Answer::Error("404".into()),
            "an acknowledged order that reads back as unknown is an error"
        );
        assert_eq!(
            Answer::of(Order, &api_error(503)),
            Answer::Error("503".into())
        );

        let mut outcomes = Outcomes::default();
        for status in [409, 409, 409, 409, 404, 503] {
            outcomes.count(&Answer::of(Order, &api_error(status)));
        }
        let k = KindReport::new(
            2,
            &[Duration::from_millis(1); 10].into_iter().collect(),
            &outcomes,
            Duration::from_secs(1),
        );
        assert_eq!(
            (k.result.ops, k.sold_out, k.unknown_toy, k.result.errors),
            (10, 4, 1, 1)
        );
        assert_eq!(k.errors_by_status, BTreeMap::from([("503".into(), 1)]));
    }

    fn report() -> LoadReport {
        let mut order = KindReport::default();
        order.result.ops = 90;
        order.sold_out = 7;
        LoadReport {
            url: "http://127.0.0.1:8080".into(),
            clients: 5,
            p: 0.5,
            seed: 1,
            orders_only: false,
            iterations: None,
            duration_secs: Some(1.0),
            sessions: 200,
            wanted: 100,
            found_sold_out: 3,
            elapsed_secs: 1.0,
            query: KindReport::default(),
            order,
            lookup: KindReport::default(),
            verification: Verification::default(),
            over_time: OverTime::default(),
            placed: Vec::new(),
            timeline: Vec::new(),
            started: Instant::now(),
        }
    }

    #[test]
    fn a_sold_out_answer_is_shown_once_under_one_name() {
        let mut r = report();
        r.order.result.errors = 2;
        r.order.errors_by_status = BTreeMap::from([("503".into(), 2)]);
        let table = r.table();
        assert!(!table.contains("409"), "{table}");
        assert!(!table.contains("rejected"), "{table}");
        let header = table.lines().nth(1).unwrap();
        assert!(
            header.contains("sold out") && header.contains("errors"),
            "{table}"
        );
        let order = table.lines().find(|l| l.starts_with("order")).unwrap();
        let cells: Vec<&str> = order.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 3..], ["7", "0", "2"], "{table}");
        assert!(table.contains("errors: order 503: 2"), "{table}");
        assert!(
            table.contains("purchases: 100 wanted, 90 bought; 10 (10.0 %) met a sold-out toy"),
            "{table}"
        );
        assert_eq!(r.sold_out_share(), Some(0.1));

        let csv = r.csv();
        assert!(
            csv.starts_with("kind,ok,sold_out,unknown_toy,errors,"),
            "{csv}"
        );
        assert!(csv.contains("\norder,90,7,0,2,"), "{csv}");

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["order"]["sold_out"], 7);
        assert!(json["order"].get("rejected").is_none());
    }

    #[test]
    fn write_puts_the_chart_next_to_the_results() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = report();
        r.over_time = OverTime {
            slice_secs: 1.0,
            elapsed_secs: 2.0,
            slices: vec![
                crate::over_time::Slice {
                    start_secs: 0.0,
                    order: crate::over_time::SliceFigures {
                        ok: 10,
                        p50_ms: Some(5.0),
                        p99_ms: Some(9.0),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                2
            ],
        };
        let written = r.write(dir.path()).unwrap();
        let names: Vec<String> = written
            .0
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "load.json",
                "load.csv",
                "latency_over_time.svg",
                "latency_over_time.png"
            ]
        );
        assert!(written.to_string().contains("load.csv "));
        let png = std::fs::read(dir.path().join("latency_over_time.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(dir.path().join("latency_over_time.svg")).unwrap();
        assert!(svg.contains("Order latency") && svg.contains("5 clients, p = 0.5"));
    }
}
