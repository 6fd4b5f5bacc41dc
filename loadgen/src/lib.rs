//! The load client behind `toystore load`: it measures the store and checks it at the same time.
//!
//! N concurrent sessions each query a random toy (`GET /products/{name}`) and, when it is in
//! stock, buy one with probability p (`POST /orders` with the session's own idempotency key).
//! Every request's latency is recorded by type (query, order, lookup). A load run is also a
//! correctness check: when the sessions are done, every order the store acknowledged is read
//! back (`GET /orders/{number}`) and compared with what was asked for. That comparison is the pure
//! function [`verify`], kept apart from the network so it can be tested with corrupted answers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api::catalog::{ProductView, encode_path_segment};
use api::client::{ClientError, ReplicaClient, decode_data, http_client};
use api::orders::{Order, OrderNumber, PlaceOrder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::stats::{LatencyStats, WorkloadResult};

pub mod stats;

/// How long a run lasts when neither a duration nor a number of iterations is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// How long one request may take before it counts as a timeout. Longer than the frontend's own
/// order deadline (10 s), so a slow fail-over shows as a slow answer, not as a client timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The frontend's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Concurrent sessions.
    pub clients: usize,
    /// Stop starting sessions after this long.
    pub duration: Option<Duration>,
    /// Sessions per client (takes precedence over `duration` when both are set).
    pub iterations: Option<u64>,
    /// Probability of ordering a toy that is in stock.
    pub p: f64,
    /// Seed of the sessions' random choices (toy, buy or not); random when absent.
    pub seed: Option<u64>,
    /// Skip the query: every session just orders a random toy (order throughput runs).
    pub orders_only: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            clients: 5,
            duration: None,
            iterations: None,
            p: 0.5,
            seed: None,
            orders_only: false,
        }
    }
}

/// What can stop a load run from producing a report.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options make no sense.
    #[error("invalid load options: {0}")]
    Options(String),
    /// The toy list could not be fetched.
    #[error("listing the toys at {url}: {source}")]
    Toys {
        /// The frontend URL.
        url: String,
        /// Why.
        source: ClientError,
    },
    /// The store lists no toys, so there is nothing to query.
    #[error("the store at {0} lists no toys")]
    NoToys(String),
    /// A session task died.
    #[error("a load session failed: {0}")]
    Task(String),
    /// Writing results failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding results failed.
    #[error("encoding results: {0}")]
    Encode(#[from] serde_json::Error),
}

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

/// Which part of a run is going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sessions are querying and ordering.
    Load,
    /// Acknowledged orders are being read back.
    ReadBack,
}

/// A snapshot of a running load, for progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// What is going on.
    pub phase: Phase,
    /// Time since the phase started.
    pub elapsed: Duration,
    /// Requests answered so far in this phase.
    pub requests: u64,
    /// Failed requests so far in this phase (409 out of stock included).
    pub errors: u64,
    /// Orders acknowledged so far.
    pub orders: u64,
    /// Fraction done (0..=1), when known.
    pub fraction: Option<f64>,
}

/// Renders a one-line progress bar, e.g. `load [#####.....] 5.0s 1234 req 0 err 321 orders`.
pub fn progress_line(p: &Progress) -> String {
    const WIDTH: usize = 24;
    let bar = match p.fraction {
        Some(f) => {
            let filled = ((f.clamp(0.0, 1.0) * WIDTH as f64).round()) as usize;
            format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
        }
        None => String::new(),
    };
    let phase = match p.phase {
        Phase::Load => "load",
        Phase::ReadBack => "read-back",
    };
    format!(
        "{phase:<9} {bar} {:>6.1}s {:>8} req {:>6} err {:>8} orders",
        p.elapsed.as_secs_f64(),
        p.requests,
        p.errors,
        p.orders
    )
}

/// An order the store acknowledged during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    /// The idempotency key it was placed with.
    pub key: String,
    /// The order number the store answered with.
    pub number: OrderNumber,
    /// Toy asked for.
    pub name: String,
    /// Quantity asked for.
    pub quantity: u32,
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
    fn new(
        clients: usize,
        samples: &[Duration],
        failures: &BTreeMap<String, u64>,
        elapsed: Duration,
    ) -> Self {
        let rejected = failures.get("409").copied().unwrap_or(0);
        let all: u64 = failures.values().sum();
        Self {
            result: WorkloadResult::new(clients, samples, all - rejected, elapsed),
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
    /// Every request of the load phase, in no particular order (not written to `load.json`).
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

/// Something the read-back found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Mismatch {
    /// Two acknowledged orders were given the same number.
    DuplicateNumber {
        /// The number.
        number: OrderNumber,
        /// The keys of the orders that got it.
        keys: Vec<String>,
    },
    /// No answer was read back for an acknowledged order.
    NotReadBack {
        /// The order number.
        number: OrderNumber,
        /// Its key.
        key: String,
    },
    /// Reading the order back failed (404 included: an acknowledged order must exist).
    ReadFailed {
        /// The order number.
        number: OrderNumber,
        /// Its key.
        key: String,
        /// What the read answered.
        error: String,
    },
    /// The store answered with another order than the one asked for.
    WrongNumber {
        /// The number asked for.
        number: OrderNumber,
        /// The number in the answer.
        got: OrderNumber,
    },
    /// The order holds another toy than was ordered.
    WrongName {
        /// The order number.
        number: OrderNumber,
        /// Its key.
        key: String,
        /// Toy ordered.
        expected: String,
        /// Toy read back.
        got: String,
    },
    /// The order holds another quantity than was ordered.
    WrongQuantity {
        /// The order number.
        number: OrderNumber,
        /// Its key.
        key: String,
        /// Quantity ordered.
        expected: u32,
        /// Quantity read back.
        got: u32,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::DuplicateNumber { number, keys } => {
                write!(
                    f,
                    "order {number} was acknowledged for {} keys: {}",
                    keys.len(),
                    keys.join(", ")
                )
            }
            Mismatch::NotReadBack { number, key } => {
                write!(f, "order {number} (key {key}) was not read back")
            }
            Mismatch::ReadFailed { number, key, error } => {
                write!(f, "order {number} (key {key}) could not be read: {error}")
            }
            Mismatch::WrongNumber { number, got } => {
                write!(f, "asked for order {number}, got order {got}")
            }
            Mismatch::WrongName {
                number,
                key,
                expected,
                got,
            } => write!(
                f,
                "order {number} (key {key}): ordered {expected:?}, read back {got:?}"
            ),
            Mismatch::WrongQuantity {
                number,
                key,
                expected,
                got,
            } => write!(
                f,
                "order {number} (key {key}): ordered quantity {expected}, read back {got}"
            ),
        }
    }
}

/// The outcome of checking acknowledged orders against what the store reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Acknowledged orders checked.
    pub checked: u64,
    /// Orders whose read-back matched.
    pub matched: u64,
    /// Everything wrong, in order-number order.
    pub mismatches: Vec<Mismatch>,
}

impl Verification {
    /// True when every acknowledged order was read back as placed and numbers are unique.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.matched == self.checked
    }

    /// One line (plus up to 20 mismatch lines) saying how the check went.
    pub fn summary(&self) -> String {
        if self.passed() {
            return format!(
                "verification passed: {} acknowledged orders read back, all match",
                self.checked
            );
        }
        let mut out = format!(
            "verification FAILED: {} of {} acknowledged orders match; {} problems:",
            self.matched,
            self.checked,
            self.mismatches.len()
        );
        for m in self.mismatches.iter().take(20) {
            out.push_str(&format!("\n  {m}"));
        }
        if self.mismatches.len() > 20 {
            out.push_str(&format!("\n  ... and {} more", self.mismatches.len() - 20));
        }
        out
    }
}

/// Checks every acknowledged order against what was read back for its number.
///
/// `read_back` pairs an order number with the store's answer (or the error it gave). Fails on:
/// two acknowledged orders sharing a number, an order not read back or not readable, an answer
/// for another number, another toy or another quantity.
pub fn verify(placed: &[PlacedOrder], read_back: &[(u64, Result<Order, String>)]) -> Verification {
    let mut mismatches = Vec::new();
    let mut by_number: BTreeMap<OrderNumber, Vec<&PlacedOrder>> = BTreeMap::new();
    for order in placed {
        by_number.entry(order.number).or_default().push(order);
    }
    for (number, orders) in &by_number {
        if orders.len() > 1 {
            mismatches.push(Mismatch::DuplicateNumber {
                number: *number,
                keys: orders.iter().map(|o| o.key.clone()).collect(),
            });
        }
    }
    let mut answers: BTreeMap<OrderNumber, &Result<Order, String>> = BTreeMap::new();
    for (number, answer) in read_back {
        answers.entry(*number).or_insert(answer);
    }
    let mut matched = 0;
    for order in by_number.values().flatten() {
        let (number, key) = (order.number, order.key.clone());
        let got = match answers.get(&number) {
            None => {
                mismatches.push(Mismatch::NotReadBack { number, key });
                continue;
            }
            Some(Err(error)) => {
                mismatches.push(Mismatch::ReadFailed {
                    number,
                    key,
                    error: error.clone(),
                });
                continue;
            }
            Some(Ok(got)) => got,
        };
        let before = mismatches.len();
        if got.number != number {
            mismatches.push(Mismatch::WrongNumber {
                number,
                got: got.number,
            });
        }
        if got.name != order.name {
            mismatches.push(Mismatch::WrongName {
                number,
                key: key.clone(),
                expected: order.name.clone(),
                got: got.name.clone(),
            });
        }
        if got.quantity != order.quantity {
            mismatches.push(Mismatch::WrongQuantity {
                number,
                key,
                expected: order.quantity,
                got: got.quantity,
            });
        }
        if mismatches.len() == before {
            matched += 1;
        }
    }
    Verification {
        checked: placed.len() as u64,
        matched,
        mismatches,
    }
}

/// Short label of a failed request for the error counts: the HTTP status, or what went wrong
/// below HTTP.
pub fn failure_label(e: &ClientError) -> String {
    match e {
        ClientError::Api { status, .. } => status.as_u16().to_string(),
        ClientError::Transport { source, .. } if source.is_timeout() => "timeout".into(),
        ClientError::Transport { source, .. } if source.is_connect() => "connect".into(),
        ClientError::Transport { .. } => "transport".into(),
        ClientError::NotLeader { .. } => "redirect".into(),
        ClientError::Decode { .. } => "bad answer".into(),
        ClientError::Deadline(..) => "deadline".into(),
    }
}

/// The public API as the sessions use it. Orders go through [`ReplicaClient`]: the frontend's
/// `POST /orders` and `GET /orders/{n}` are the order service's client API, same wire types.
#[derive(Debug, Clone)]
struct Store {
    http: reqwest::Client,
    base: String,
    orders: ReplicaClient,
}

impl Store {
    fn new(url: &str) -> Self {
        let http = http_client(REQUEST_TIMEOUT);
        let base = url.trim_end_matches('/').to_string();
        Self {
            orders: ReplicaClient::new(http.clone(), base.clone(), None),
            http,
            base,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        decode_data(&url, self.http.get(&url).send().await).await
    }

    async fn products(&self) -> Result<Vec<ProductView>, ClientError> {
        self.get("/products").await
    }

    async fn product(&self, name: &str) -> Result<ProductView, ClientError> {
        self.get(&format!("/products/{}", encode_path_segment(name)))
            .await
    }
}

/// Counters shared by the sessions, read by the progress display.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    orders: AtomicU64,
    sessions: AtomicU64,
}

/// What one session task brings back.
#[derive(Debug, Default)]
struct SessionLog {
    samples: BTreeMap<RequestKind, Vec<Duration>>,
    failures: BTreeMap<RequestKind, BTreeMap<String, u64>>,
    timeline: Vec<TimedSample>,
    placed: Vec<PlacedOrder>,
}

impl SessionLog {
    fn record<T>(
        &mut self,
        counters: &Counters,
        kind: RequestKind,
        sent: Duration,
        latency: Duration,
        result: &Result<T, ClientError>,
    ) {
        counters.requests.fetch_add(1, Ordering::Relaxed);
        self.timeline.push(TimedSample {
            sent,
            latency,
            kind,
            ok: result.is_ok(),
        });
        match result {
            Ok(_) => self.samples.entry(kind).or_default().push(latency),
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                *self
                    .failures
                    .entry(kind)
                    .or_default()
                    .entry(failure_label(e))
                    .or_default() += 1;
            }
        }
    }

    fn merge(&mut self, other: SessionLog) {
        for (k, v) in other.samples {
            self.samples.entry(k).or_default().extend(v);
        }
        for (k, v) in other.failures {
            let into = self.failures.entry(k).or_default();
            for (status, n) in v {
                *into.entry(status).or_default() += n;
            }
        }
        self.timeline.extend(other.timeline);
        self.placed.extend(other.placed);
    }
}

/// When a client stops starting sessions.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Iterations(u64),
    Until(Instant),
}

/// One client: sessions until the bound is reached.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    store: Store,
    toys: Arc<Vec<String>>,
    counters: Arc<Counters>,
    client: usize,
    run_id: u64,
    seed: u64,
    p: f64,
    orders_only: bool,
    bound: Bound,
    started: Instant,
) -> SessionLog {
    let mut rng = StdRng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut log = SessionLog::default();
    let mut session = 0u64;
    loop {
        match bound {
            Bound::Iterations(n) if session >= n => break,
            Bound::Until(t) if Instant::now() >= t => break,
            _ => {}
        }
        session += 1;
        counters.sessions.fetch_add(1, Ordering::Relaxed);
        let name = toys[rng.random_range(0..toys.len())].clone();
        if !orders_only {
            let sent = Instant::now();
            let answer = store.product(&name).await;
            log.record(
                &counters,
                RequestKind::Query,
                sent - started,
                sent.elapsed(),
                &answer,
            );
            // Draw the coin whatever the stock, so the sequence of choices depends on the seed only.
            let buy = rng.random_bool(p);
            match answer {
                Ok(product) if product.quantity > 0 && buy => {}
                _ => continue,
            }
        }
        let key = format!("load-{run_id:016x}-{client}-{session}");
        let order = PlaceOrder {
            name: name.clone(),
            quantity: 1,
        };
        let sent = Instant::now();
        let answer = store.orders.place_order(&key, &order).await;
        log.record(
            &counters,
            RequestKind::Order,
            sent - started,
            sent.elapsed(),
            &answer,
        );
        if let Ok(number) = answer {
            counters.orders.fetch_add(1, Ordering::Relaxed);
            log.placed.push(PlacedOrder {
                key,
                number,
                name,
                quantity: 1,
            });
        }
    }
    log
}

/// Joins every task of `set`, calling `tick` every 200 ms while waiting.
async fn join_all<T: 'static>(
    mut set: tokio::task::JoinSet<T>,
    tick: impl Fn(),
) -> Result<Vec<T>, LoadError> {
    let mut out = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(v)) => out.push(v),
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(e)) => return Err(LoadError::Task(e.to_string())),
            },
            _ = interval.tick() => tick(),
        }
    }
    tick();
    Ok(out)
}

/// Runs the load described by `opts`, reads back every acknowledged order, and reports.
///
/// `progress` is called about five times a second with the current figures.
pub async fn run(
    opts: &LoadOptions,
    progress: impl Fn(&Progress),
) -> Result<LoadReport, LoadError> {
    if opts.clients == 0 {
        return Err(LoadError::Options("at least one client is needed".into()));
    }
    if !(0.0..=1.0).contains(&opts.p) {
        return Err(LoadError::Options(format!(
            "p must be between 0 and 1, got {}",
            opts.p
        )));
    }
    let store = Store::new(&opts.url);
    let toys: Vec<String> = store
        .products()
        .await
        .map_err(|source| LoadError::Toys {
            url: opts.url.clone(),
            source,
        })?
        .into_iter()
        .map(|p| p.name)
        .collect();
    if toys.is_empty() {
        return Err(LoadError::NoToys(opts.url.clone()));
    }
    let toys = Arc::new(toys);
    let seed = opts.seed.unwrap_or_else(rand::random);
    let run_id: u64 = rand::random();
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let (bound, duration) = match (opts.iterations, opts.duration) {
        (Some(n), _) => (Bound::Iterations(n), None),
        (None, d) => {
            let d = d.unwrap_or(DEFAULT_DURATION);
            (Bound::Until(started + d), Some(d))
        }
    };

    let mut set = tokio::task::JoinSet::new();
    for client in 0..opts.clients {
        set.spawn(client_loop(
            store.clone(),
            toys.clone(),
            counters.clone(),
            client,
            run_id,
            seed,
            opts.p,
            opts.orders_only,
            bound,
            started,
        ));
    }
    let total_sessions = opts.iterations.map(|n| n * opts.clients as u64);
    let logs = join_all(set, || {
        let elapsed = started.elapsed();
        progress(&Progress {
            phase: Phase::Load,
            elapsed,
            requests: counters.requests.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            orders: counters.orders.load(Ordering::Relaxed),
            fraction: match (total_sessions, duration) {
                (Some(total), _) => {
                    Some(counters.sessions.load(Ordering::Relaxed) as f64 / total.max(1) as f64)
                }
                (None, Some(d)) => Some(elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9)),
                (None, None) => None,
            },
        })
    })
    .await?;
    let elapsed = started.elapsed();
    let mut log = SessionLog::default();
    for l in logs {
        log.merge(l);
    }
    log.placed.sort_by_key(|o| o.number);

    let (read_back, lookup) = read_back(&store, &log.placed, opts.clients, &progress).await?;
    let verification = verify(&log.placed, &read_back);

    let kind_report = |kind: RequestKind| {
        KindReport::new(
            opts.clients,
            log.samples.get(&kind).map(Vec::as_slice).unwrap_or(&[]),
            log.failures.get(&kind).unwrap_or(&BTreeMap::new()),
            elapsed,
        )
    };
    Ok(LoadReport {
        url: opts.url.clone(),
        clients: opts.clients,
        p: opts.p,
        seed,
        orders_only: opts.orders_only,
        iterations: opts.iterations,
        duration_secs: duration.map(|d| d.as_secs_f64()),
        sessions: counters.sessions.load(Ordering::Relaxed),
        elapsed_secs: elapsed.as_secs_f64(),
        query: kind_report(RequestKind::Query),
        order: kind_report(RequestKind::Order),
        lookup,
        verification,
        placed: log.placed,
        timeline: log.timeline,
        started,
    })
}

/// Order numbers with what reading them back answered, as [`verify`] takes them.
pub type ReadBack = Vec<(u64, Result<Order, String>)>;

/// Reads every acknowledged order back through the public API, `clients` (at least 8) at a time.
async fn read_back(
    store: &Store,
    placed: &[PlacedOrder],
    clients: usize,
    progress: &impl Fn(&Progress),
) -> Result<(ReadBack, KindReport), LoadError> {
    let mut numbers: Vec<u64> = placed.iter().map(|o| o.number).collect();
    numbers.dedup();
    let numbers = Arc::new(numbers);
    let next = Arc::new(AtomicUsize::new(0));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients.max(8).min(numbers.len()) {
        let (store, numbers, next, counters) = (
            store.clone(),
            numbers.clone(),
            next.clone(),
            counters.clone(),
        );
        set.spawn(async move {
            let mut log = SessionLog::default();
            let mut answers = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&number) = numbers.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let answer = store.orders.get_order(number).await;
                log.record(
                    &counters,
                    RequestKind::Lookup,
                    sent - started,
                    sent.elapsed(),
                    &answer,
                );
                answers.push((number, answer.map_err(|e| e.to_string())));
            }
            (log, answers)
        });
    }
    let total = numbers.len().max(1) as f64;
    let parts = join_all(set, || {
        progress(&Progress {
            phase: Phase::ReadBack,
            elapsed: started.elapsed(),
            requests: counters.requests.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            orders: placed.len() as u64,
            fraction: Some(counters.requests.load(Ordering::Relaxed) as f64 / total),
        })
    })
    .await?;
    let elapsed = started.elapsed();
    let mut log = SessionLog::default();
    let mut answers = Vec::new();
    for (l, a) in parts {
        log.merge(l);
        answers.extend(a);
    }
    let report = KindReport::new(
        clients.max(8),
        log.samples
            .get(&RequestKind::Lookup)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        log.failures
            .get(&RequestKind::Lookup)
            .unwrap_or(&BTreeMap::new()),
        elapsed,
    );
    Ok((answers, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(number: u64, name: &str, quantity: u32) -> PlacedOrder {
        PlacedOrder {
            key: format!("k{number}"),
            number,
            name: name.into(),
            quantity,
        }
    }

    fn answer(number: u64, name: &str, quantity: u32) -> (u64, Result<Order, String>) {
        (
            number,
            Ok(Order {
                number,
                name: name.into(),
                quantity,
            }),
        )
    }

    fn good() -> (Vec<PlacedOrder>, ReadBack) {
        (
            vec![
                placed(0, "Tux", 1),
                placed(1, "Whale", 2),
                placed(2, "Fox", 1),
            ],
            vec![
                answer(0, "Tux", 1),
                answer(1, "Whale", 2),
                answer(2, "Fox", 1),
            ],
        )
    }

    #[test]
    fn faithful_answers_pass() {
        let (placed, read) = good();
        let v = verify(&placed, &read);
        assert!(v.passed(), "{}", v.summary());
        assert_eq!((v.checked, v.matched), (3, 3));
        assert!(v.summary().starts_with("verification passed"));
        assert!(verify(&[], &[]).passed());
    }

    #[test]
    fn wrong_quantity_fails() {
        let (placed, mut read) = good();
        read[1] = answer(1, "Whale", 3);
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert_eq!(v.matched, 2);
        assert_eq!(
            v.mismatches,
            vec![Mismatch::WrongQuantity {
                number: 1,
                key: "k1".into(),
                expected: 2,
                got: 3
            }]
        );
    }

    #[test]
    fn wrong_name_fails() {
        let (placed, mut read) = good();
        read[2] = answer(2, "Tux", 1);
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert!(matches!(
            &v.mismatches[..],
            [Mismatch::WrongName { number: 2, expected, got, .. }] if expected == "Fox" && got == "Tux"
        ));
        assert!(v.summary().contains("FAILED"), "{}", v.summary());
    }

    #[test]
    fn answer_for_another_number_fails() {
        let (placed, mut read) = good();
        read[0] = (0, read[1].1.clone());
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert!(
            v.mismatches
                .contains(&Mismatch::WrongNumber { number: 0, got: 1 })
        );
    }

    #[test]
    fn missing_or_unreadable_order_fails() {
        let (placed, mut read) = good();
        read.retain(|(number, _)| *number != 0);
        let v = verify(&placed, &read);
        assert_eq!(
            v.mismatches,
            vec![Mismatch::NotReadBack {
                number: 0,
                key: "k0".into()
            }]
        );

        let (placed, mut read) = good();
        read[0].1 = Err("404 Not Found: no order 0".into());
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert!(matches!(
            &v.mismatches[..],
            [Mismatch::ReadFailed { number: 0, .. }]
        ));
    }

    #[test]
    fn duplicate_numbers_fail() {
        let (mut placed, read) = good();
        placed.push(PlacedOrder {
            key: "other".into(),
            number: 1,
            name: "Whale".into(),
            quantity: 2,
        });
        let v = verify(&placed, &read);
        assert!(!v.passed());
        assert_eq!(
            v.mismatches,
            vec![Mismatch::DuplicateNumber {
                number: 1,
                keys: vec!["k1".into(), "other".into()]
            }]
        );
    }

    #[test]
    fn progress_line_shows_the_figures() {
        let line = progress_line(&Progress {
            phase: Phase::Load,
            elapsed: Duration::from_millis(2500),
            requests: 120,
            errors: 3,
            orders: 40,
            fraction: Some(0.5),
        });
        assert!(line.contains("[############............]"), "{line}");
        assert!(line.contains("2.5s") && line.contains("120 req") && line.contains("3 err"));
    }

    #[test]
    fn failures_are_split_into_rejections_and_errors() {
        let failures = BTreeMap::from([("409".to_string(), 4), ("503".to_string(), 1)]);
        let k = KindReport::new(
            2,
            &[Duration::from_millis(1); 10],
            &failures,
            Duration::from_secs(1),
        );
        assert_eq!((k.result.ops, k.rejected, k.result.errors), (10, 4, 1));
    }
}
