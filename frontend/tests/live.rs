//! The storefront's live stock, `GET /events`, on real processes: a snapshot of the catalog
//! first, then every change (a purchase made by anyone), and the stream ends as soon as the
//! frontend is asked to stop.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Store, StoreOptions};

/// A server-sent event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(url: &str) -> Self {
        let response = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .expect("GET /events answers");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's name and JSON data (comments skipped), or `None` when the stream
    /// ended. Fails the test after 10 s without one.
    async fn next(&mut self) -> Option<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_string())
                };
                let Some(data) = field("data:") else {
                    continue; // a keep-alive comment
                };
                let name = field("event:").unwrap_or_else(|| "message".into());
                return Some((name, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = tokio::time::timeout_at(deadline.into(), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("reading the stream")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_stock_sends_a_snapshot_then_every_change_and_ends_when_the_frontend_stops() {
    let mut store = Store::start(StoreOptions::default()).await;
    let mut events = Events::open(&format!("{}/events", store.frontend(0))).await;

    let (name, snapshot) = events.next().await.expect("a snapshot");
    assert_eq!(name, "snapshot");
    let products = snapshot["products"].as_array().unwrap();
    assert!(products.len() >= 10, "{snapshot}");
    let tux = products.iter().find(|p| p["name"] == "Tux").unwrap();
    let (stock, version) = (
        tux["quantity"].as_u64().unwrap(),
        tux["version"].as_u64().unwrap(),
    );
    assert!(tux["price"].as_f64().unwrap() > 0.0);

    // Any client's purchase reaches the stream, with a newer version than the snapshot's.
    assert_eq!(store.buy(0, "Tux", 2, None).await.0, StatusCode::OK);
    let (name, change) = events.next().await.expect("a change");
    assert_eq!(name, "change");
    assert_eq!(change["product"]["name"], "Tux");
    assert_eq!(change["product"]["quantity"].as_u64(), Some(stock - 2));
    assert!(change["version"].as_u64().unwrap() > version, "{change}");

    // Asked to stop, the frontend ends the stream at once, not after its drain timeout.
    let asked = Instant::now();
    store.frontend_process(0).signal(Signal::SIGTERM);
    assert_eq!(events.next().await, None, "the stream ends");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}
