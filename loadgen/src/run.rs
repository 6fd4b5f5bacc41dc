//! A load run: the concurrent sessions, then the read-back of every acknowledged order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::catalog::{ProductView, encode_path_segment};
use api::client::{ClientError, ReplicaClient, decode_data, http_client};
use api::orders::PlaceOrder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;

use crate::over_time::Recorder;
use crate::report::{Answer, Outcomes};
use crate::stats::LatencyHistogram;
use crate::{
    DEFAULT_DURATION, KindReport, LoadError, LoadOptions, LoadReport, Phase, PlacedOrder, Progress,
    REQUEST_TIMEOUT, ReadBack, RequestKind, TimedSample, verify,
};

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
    sold_out: AtomicU64,
    unknown_toy: AtomicU64,
    orders: AtomicU64,
    sessions: AtomicU64,
}

impl Counters {
    fn progress(&self, phase: Phase, elapsed: Duration, fraction: Option<f64>) -> Progress {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Progress {
            phase,
            elapsed,
            requests: get(&self.requests),
            errors: get(&self.errors),
            sold_out: get(&self.sold_out),
            unknown_toy: get(&self.unknown_toy),
            orders: get(&self.orders),
            fraction,
        }
    }
}

/// What one session task brings back.
#[derive(Debug, Default)]
struct SessionLog {
    latencies: BTreeMap<RequestKind, LatencyHistogram>,
    outcomes: BTreeMap<RequestKind, Outcomes>,
    /// Sessions that set out to buy.
    wanted: u64,
    /// Of those, sessions whose query showed the toy sold out.
    found_sold_out: u64,
    /// Whether to keep every request in `timeline` (only when asked: it grows with the run).
    keep_timeline: bool,
    timeline: Vec<TimedSample>,
    placed: Vec<PlacedOrder>,
}

impl SessionLog {
    fn new(keep_timeline: bool) -> Self {
        Self {
            keep_timeline,
            ..Self::default()
        }
    }

    /// The latencies of the successful requests of `kind`.
    fn latencies(&self, kind: RequestKind) -> LatencyHistogram {
        self.latencies.get(&kind).cloned().unwrap_or_default()
    }

    /// The figures of `kind` over a phase that lasted `elapsed`.
    fn report(&self, kind: RequestKind, clients: usize, elapsed: Duration) -> KindReport {
        KindReport::new(
            clients,
            &self.latencies(kind),
            self.outcomes.get(&kind).unwrap_or(&Outcomes::default()),
            elapsed,
        )
    }

    /// Counts one answer; returns how it counted.
    fn record<T>(
        &mut self,
        counters: &Counters,
        kind: RequestKind,
        sent: Duration,
        latency: Duration,
        result: &Result<T, ClientError>,
    ) -> Answer {
        let answer = Answer::of(kind, result);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if self.keep_timeline {
            self.timeline.push(TimedSample {
                sent,
                latency,
                kind,
                ok: answer == Answer::Ok,
            });
        }
        let counter = match answer {
            Answer::Ok => {
                self.latencies.entry(kind).or_default().record(latency);
                None
            }
            Answer::SoldOut => Some(&counters.sold_out),
            Answer::UnknownToy => Some(&counters.unknown_toy),
            Answer::Error(_) => Some(&counters.errors),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
            self.outcomes.entry(kind).or_default().count(&answer);
        }
        answer
    }

    fn merge(&mut self, other: SessionLog) {
        for (k, v) in other.latencies {
            self.latencies.entry(k).or_default().merge(&v);
        }
        for (k, v) in other.outcomes {
            self.outcomes.entry(k).or_default().merge(&v);
        }
        self.wanted += other.wanted;
        self.found_sold_out += other.found_sold_out;
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

/// What every session of a run shares.
#[derive(Debug)]
struct Shared {
    store: Store,
    toys: Vec<String>,
    counters: Counters,
    over_time: Mutex<Recorder>,
    run_id: u64,
    seed: u64,
    p: f64,
    orders_only: bool,
    keep_timeline: bool,
    bound: Bound,
    started: Instant,
}

impl Shared {
    /// Counts the answer to a request of the load phase sent at `sent`.
    fn record<T>(
        &self,
        log: &mut SessionLog,
        kind: RequestKind,
        sent: Instant,
        result: &Result<T, ClientError>,
    ) {
        let latency = sent.elapsed();
        let since_start = sent - self.started;
        let answer = log.record(&self.counters, kind, since_start, latency, result);
        self.over_time
            .lock()
            .expect("a session panicked while recording")
            .record(kind, since_start, latency, &answer);
    }
}

/// One client: sessions until the bound is reached.
async fn client_loop(run: Arc<Shared>, client: usize) -> SessionLog {
    let mut rng =
        StdRng::seed_from_u64(run.seed ^ (client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut log = SessionLog::new(run.keep_timeline);
    let mut session = 0u64;
    loop {
        match run.bound {
            Bound::Iterations(n) if session >= n => break,
            Bound::Until(t) if Instant::now() >= t => break,
            _ => {}
        }
        session += 1;
        run.counters.sessions.fetch_add(1, Ordering::Relaxed);
        let name = run.toys[rng.random_range(0..run.toys.len())].clone();
        if !run.orders_only {
            let sent = Instant::now();
            let answer = run.store.product(&name).await;
            run.record(&mut log, RequestKind::Query, sent, &answer);
            // Draw the coin whatever the stock, so the sequence of choices depends on the seed only.
            if !rng.random_bool(run.p) {
                continue;
            }
            log.wanted += 1;
            match answer {
                Ok(product) if product.quantity > 0 => {}
                Ok(_) => {
                    log.found_sold_out += 1;
                    run.over_time
                        .lock()
                        .expect("a session panicked while recording")
                        .found_sold_out(sent - run.started);
                    continue;
                }
                Err(_) => continue,
            }
        } else {
            log.wanted += 1;
        }
        let key = format!("load-{:016x}-{client}-{session}", run.run_id);
        let order = PlaceOrder {
            name: name.clone(),
            quantity: 1,
        };
        let sent = Instant::now();
        let answer = run.store.orders.place_order(&key, &order).await;
        run.record(&mut log, RequestKind::Order, sent, &answer);
        if let Ok(placed) = answer {
            run.counters.orders.fetch_add(1, Ordering::Relaxed);
            log.placed.push(PlacedOrder {
                key,
                number: placed.order_number,
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
    let seed = opts.seed.unwrap_or_else(rand::random);
    let started = Instant::now();
    let (bound, duration) = match (opts.iterations, opts.duration) {
        (Some(n), _) => (Bound::Iterations(n), None),
        (None, d) => {
            let d = d.unwrap_or(DEFAULT_DURATION);
            (Bound::Until(started + d), Some(d))
        }
    };
    let shared = Arc::new(Shared {
        store: store.clone(),
        toys,
        counters: Counters::default(),
        over_time: Mutex::new(Recorder::default()),
        run_id: rand::random(),
        seed,
        p: opts.p,
        orders_only: opts.orders_only,
        keep_timeline: opts.timeline,
        bound,
        started,
    });

    let mut set = tokio::task::JoinSet::new();
    for client in 0..opts.clients {
        set.spawn(client_loop(shared.clone(), client));
    }
    let total_sessions = opts.iterations.map(|n| n * opts.clients as u64);
    let counters = &shared.counters;
    let logs = join_all(set, || {
        let elapsed = started.elapsed();
        let fraction = match (total_sessions, duration) {
            (Some(total), _) => {
                Some(counters.sessions.load(Ordering::Relaxed) as f64 / total.max(1) as f64)
            }
            (None, Some(d)) => Some(elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9)),
            (None, None) => None,
        };
        progress(&counters.progress(Phase::Load, elapsed, fraction))
    })
    .await?;
    let elapsed = started.elapsed();
    let mut log = SessionLog::default();
    for l in logs {
        log.merge(l);
    }
    log.placed.sort_by_key(|o| o.number);
    let over_time = shared
        .over_time
        .lock()
        .expect("a session panicked while recording")
        .finish(elapsed);

    let (read_back, lookup) = read_back(&store, &log.placed, opts.clients, &progress).await?;
    let verification = verify(&log.placed, &read_back);

    Ok(LoadReport {
        url: opts.url.clone(),
        clients: opts.clients,
        p: opts.p,
        seed,
        orders_only: opts.orders_only,
        iterations: opts.iterations,
        duration_secs: duration.map(|d| d.as_secs_f64()),
        sessions: counters.sessions.load(Ordering::Relaxed),
        wanted: log.wanted,
        found_sold_out: log.found_sold_out,
        elapsed_secs: elapsed.as_secs_f64(),
        query: log.report(RequestKind::Query, opts.clients, elapsed),
        order: log.report(RequestKind::Order, opts.clients, elapsed),
        lookup,
        verification,
        over_time,
        placed: log.placed,
        timeline: log.timeline,
        started,
    })
}

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
        let done = counters.requests.load(Ordering::Relaxed) as f64 / total;
        progress(&Progress {
            orders: placed.len() as u64,
            ..counters.progress(Phase::ReadBack, started.elapsed(), Some(done))
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
    Ok((
        answers,
        log.report(RequestKind::Lookup, clients.max(8), elapsed),
    ))
}
