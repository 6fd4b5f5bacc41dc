//! A load run: the concurrent sessions, then the read-back of every acknowledged order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api::catalog::{ProductView, encode_path_segment};
use api::client::{ClientError, ReplicaClient, decode_data, http_client};
use api::orders::PlaceOrder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;

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
    orders: AtomicU64,
    sessions: AtomicU64,
}

/// What one session task brings back.
#[derive(Debug, Default)]
struct SessionLog {
    latencies: BTreeMap<RequestKind, LatencyHistogram>,
    failures: BTreeMap<RequestKind, BTreeMap<String, u64>>,
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

    fn record<T>(
        &mut self,
        counters: &Counters,
        kind: RequestKind,
        sent: Duration,
        latency: Duration,
        result: &Result<T, ClientError>,
    ) {
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if self.keep_timeline {
            self.timeline.push(TimedSample {
                sent,
                latency,
                kind,
                ok: result.is_ok(),
            });
        }
        match result {
            Ok(_) => self.latencies.entry(kind).or_default().record(latency),
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
        for (k, v) in other.latencies {
            self.latencies.entry(k).or_default().merge(&v);
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
    keep_timeline: bool,
    bound: Bound,
    started: Instant,
) -> SessionLog {
    let mut rng = StdRng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut log = SessionLog::new(keep_timeline);
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
            opts.timeline,
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
            &log.latencies(kind),
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
        &log.latencies(RequestKind::Lookup),
        log.failures
            .get(&RequestKind::Lookup)
            .unwrap_or(&BTreeMap::new()),
        elapsed,
    );
    Ok((answers, report))
}
