//! Order throughput and latency of a three-replica group, fsync on.
//!
//! `cargo bench -p order-replica --bench orders` starts three real `order-replica` processes
//! (release build) on loopback with their data in a temporary directory, initializes the group,
//! and for 1, 8 and 64 concurrent clients places orders against the leader for
//! `BENCH_SECONDS` (default 10) each. It prints throughput and latency percentiles.
//! Each purchase is two Raft commits (Pending, Resolve), each fsynced on a majority.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{Cluster, Options, order};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let cluster = Cluster::three(Options::default()).await;
    let leader = cluster.leader().await;
    let client = cluster.client(leader);
    println!(
        "three replicas, fsync on, data in {}; {seconds} s per run",
        cluster.dir.path().display()
    );
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "clients", "orders", "orders/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let run_id = Arc::new(AtomicU64::new(0));
    for clients in [1usize, 8, 64] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..clients {
            let client = client.clone();
            let run_id = run_id.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let n = run_id.fetch_add(1, Ordering::Relaxed);
                    let key = format!("bench-{clients}-{worker}-{n}");
                    let t = Instant::now();
                    match client.place_order(&key, &order(1)).await {
                        Ok(_) => latencies.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            latencies.extend(l);
            errors += e;
        }
        let elapsed = start.elapsed();
        latencies.sort_unstable();
        println!(
            "{:>8} {:>10} {:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            clients,
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().unwrap()),
            errors
        );
    }
}
