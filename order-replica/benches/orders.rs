//! Order throughput and latency of a three-replica group, fsync on.
//!
//! `cargo bench -p order-replica --bench orders` starts three real `order-replica` processes
//! (release build) on loopback through the launcher, with their data in a temporary directory,
//! forms the group, and for 1, 8 and 64 concurrent clients places orders against the leader for
//! `BENCH_SECONDS` (default 10) each. It prints throughput and latency percentiles.
//! Each purchase is one Raft command, fsynced on a majority.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::PlaceOrder;
use launcher::{Store, StoreSpec};
use loadgen::stats::LatencyHistogram;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let mut spec = StoreSpec::new(dir.path(), &testkit::bin_dir(&["order-replica"]));
    spec.catalog = None;
    spec.inventory = Some(vec![api::inventory::ProductDef {
        name: "Tux".into(),
        price: 1.0,
        quantity: api::inventory::MAX_STOCK,
    }]);
    spec.frontends = 0;
    let store = Store::start(spec)
        .await
        .expect("three replicas form a group");
    let leader = testkit::wait_for("a leader", Duration::from_secs(30), || store.leader()).await;
    let client = store.replica_client(leader);
    println!(
        "three replicas, fsync on, data in {}; {seconds} s per run",
        dir.path().display()
    );
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "clients", "orders", "orders/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let order = PlaceOrder {
        name: "Tux".into(),
        quantity: 1,
    };
    let run_id = Arc::new(AtomicU64::new(0));
    for clients in [1usize, 8, 64] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..clients {
            let client = client.clone();
            let run_id = run_id.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = LatencyHistogram::default();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let n = run_id.fetch_add(1, Ordering::Relaxed);
                    let key = format!("bench-{clients}-{worker}-{n}");
                    let t = Instant::now();
                    match client.place_order(&key, &order).await {
                        Ok(_) => latencies.record(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = LatencyHistogram::default();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            latencies.merge(&l);
            errors += e;
        }
        let elapsed = start.elapsed();
        let stats = latencies.stats();
        println!(
            "{:>8} {:>10} {:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            clients,
            stats.count,
            stats.count as f64 / elapsed.as_secs_f64(),
            stats.p50_ms,
            stats.p99_ms,
            stats.max_ms,
            errors
        );
    }
}
