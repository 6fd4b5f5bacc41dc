//! Clients that work the store while faults happen: each is a sequential process that buys a
//! random toy, reads a product or reads an order, through the frontends, and records every
//! operation (invocation, completion, outcome) in a [`Recorder`].
//!
//! An answer is definite only when it proves something: 200 (it happened) or 4xx (it did not).
//! A timeout, a refused connection or a 5xx is recorded as unknown: the purchase may or may not
//! have taken effect, and the checkers treat it so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use history::{Op, Outcome, Recorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

/// A toy no catalog lists: buying it must be refused (404) without an order number.
pub const UNKNOWN_TOY: &str = "Unicorn";

/// How the clients behave.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Concurrent clients, each one request at a time.
    pub clients: usize,
    /// Frontend URLs; client `i` uses frontend `i % len`.
    pub frontends: Vec<String>,
    /// The toys to buy and read (the catalogs', plus [`UNKNOWN_TOY`] now and then).
    pub toys: Vec<String>,
    /// Seed of the clients' choices.
    pub seed: u64,
}

/// Counts of what the clients did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Purchases confirmed.
    pub confirmed: u64,
    /// Purchases refused (4xx).
    pub refused: u64,
    /// Operations with no definite answer.
    pub unknown: u64,
    /// Of those, purchases: a timeout, a refused connection or a 5xx to `POST /orders`.
    pub failed_purchases: u64,
    /// Reads (orders and products) answered.
    pub reads: u64,
}

impl OpCounts {
    /// Counts the events of a history.
    pub fn of(events: &[history::Event]) -> Self {
        let mut c = Self::default();
        for e in events {
            match (&e.op, &e.outcome) {
                (Op::Purchase { .. }, Outcome::Unknown { .. }) => {
                    c.unknown += 1;
                    c.failed_purchases += 1;
                }
                (_, Outcome::Unknown { .. }) => c.unknown += 1,
                (Op::Purchase { .. }, Outcome::Confirmed { .. }) => c.confirmed += 1,
                (Op::Purchase { .. }, Outcome::Refused { .. }) => c.refused += 1,
                _ => c.reads += 1,
            }
        }
        c
    }
}

/// Runs the clients until `stop` turns true; returns every idempotency key used.
pub async fn run(
    workload: Workload,
    recorder: Recorder,
    stop: watch::Receiver<bool>,
) -> Vec<String> {
    let highest = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("an HTTP client");
    let mut tasks = Vec::new();
    for client in 0..workload.clients {
        let frontend = workload.frontends[client % workload.frontends.len()].clone();
        let server = client % workload.frontends.len();
        let recorder = recorder.clone();
        let mut stop = stop.clone();
        let http = http.clone();
        let highest = highest.clone();
        let seed = workload.seed;
        let mut toys = workload.toys.clone();
        toys.push(UNKNOWN_TOY.into());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9E37_79B9));
            let mut keys = Vec::new();
            let mut n = 0u64;
            while !*stop.borrow_and_update() {
                let roll: f64 = rng.random();
                let toy = toys[rng.random_range(0..toys.len())].as_str();
                if roll < 0.5 {
                    let key = format!("s{seed}-c{client}-{n}");
                    n += 1;
                    let quantity = rng.random_range(1..=3u32);
                    keys.push(key.clone());
                    let op = Op::Purchase {
                        key: key.clone(),
                        name: toy.into(),
                        quantity,
                    };
                    let call = recorder.invoke(client, server, op);
                    let outcome = purchase(&http, &frontend, &key, toy, quantity).await;
                    if let Outcome::Confirmed { number } = outcome {
                        highest.fetch_max(number, Ordering::Relaxed);
                    }
                    call.complete(outcome);
                } else if roll < 0.8 {
                    let call =
                        recorder.invoke(client, server, Op::ReadProduct { name: toy.into() });
                    call.complete(read_product(&http, &frontend, toy).await);
                } else {
                    let number = rng.random_range(0..=highest.load(Ordering::Relaxed) + 3);
                    let call = recorder.invoke(client, server, Op::ReadOrder { number });
                    call.complete(read_order(&http, &frontend, number).await);
                }
            }
            keys
        }));
    }
    let mut keys = Vec::new();
    for t in tasks {
        keys.extend(t.await.expect("a client task"));
    }
    keys
}

fn unknown(e: impl std::fmt::Display) -> Outcome {
    Outcome::Unknown {
        error: e.to_string(),
    }
}

async fn purchase(
    http: &reqwest::Client,
    frontend: &str,
    key: &str,
    toy: &str,
    quantity: u32,
) -> Outcome {
    let sent = http
        .post(format!("{frontend}/orders"))
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({"name": toy, "quantity": quantity}))
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return unknown(e),
    };
    let status = resp.status();
    if status.is_client_error() {
        return Outcome::Refused {
            status: status.as_u16(),
        };
    }
    if !status.is_success() {
        return unknown(status);
    }
    match resp.json::<serde_json::Value>().await {
        Ok(body) => match body["data"]["order_number"].as_u64() {
            Some(number) => Outcome::Confirmed { number },
            None => unknown(format!("no order number in {body}")),
        },
        Err(e) => unknown(e),
    }
}

async fn read_product(http: &reqwest::Client, frontend: &str, toy: &str) -> Outcome {
    let resp = match http.get(format!("{frontend}/products/{toy}")).send().await {
        Ok(r) => r,
        Err(e) => return unknown(e),
    };
    if !resp.status().is_success() {
        return unknown(resp.status());
    }
    let version = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_matches('"').parse().ok());
    match (version, resp.json::<serde_json::Value>().await) {
        (Some(version), Ok(body)) => match body["data"]["quantity"].as_u64() {
            Some(q) => Outcome::Product {
                quantity: q as u32,
                version,
            },
            None => unknown(format!("no quantity in {body}")),
        },
        (None, _) => unknown("no ETag version"),
        (_, Err(e)) => unknown(e),
    }
}

async fn read_order(http: &reqwest::Client, frontend: &str, number: u64) -> Outcome {
    let resp = match http.get(format!("{frontend}/orders/{number}")).send().await {
        Ok(r) => r,
        Err(e) => return unknown(e),
    };
    match resp.status().as_u16() {
        404 => Outcome::NoOrder,
        200 => match resp.json::<serde_json::Value>().await {
            Ok(body) => {
                let data = &body["data"];
                match (data["name"].as_str(), data["quantity"].as_u64()) {
                    (Some(name), Some(q)) => Outcome::Order {
                        name: name.into(),
                        quantity: q as u32,
                    },
                    _ => unknown(format!("bad order body {body}")),
                }
            }
            Err(e) => unknown(e),
        },
        other => unknown(other),
    }
}
