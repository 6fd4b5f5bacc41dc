//! `toystore load` as a user runs it: the real command against a real local store (its orders
//! verify), and against a fake frontend that corrupts one order (the check must fail, and the
//! command must say so with a non-zero exit).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use launcher::{LocalStore, UpOptions};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::{Value, json};
use testkit::binary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

/// SIGKILLs a store's processes if the test panics before stopping it.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = signal::kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
    }
}

async fn start_store(dir: &Path) -> (LocalStore, KillOnDrop) {
    for service in ["catalog", "order-replica", "frontend"] {
        binary(service);
    }
    let bin_dir = binary("frontend").parent().unwrap().to_path_buf();
    let store = LocalStore::up(UpOptions {
        data_dir: dir.to_path_buf(),
        port: 0,
        replicas: 3,
        restock_interval_secs: 1.0,
        cache_capacity: 1000,
        bin_dir,
        restore_from: None,
    })
    .await
    .expect("local store starts");
    let c = store.cluster();
    let mut pids: Vec<u32> = c.order.iter().filter_map(|r| r.pid).collect();
    pids.extend(c.catalog.pid);
    pids.extend(c.frontend_pid);
    (store, KillOnDrop(pids))
}

async fn toystore_load(args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(binary("toystore"))
            .arg("load")
            .args(args)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("toystore load finishes within 2 minutes")
    .expect("running toystore load")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("load.json written")).expect("valid JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_against_a_running_store_verifies_every_order_and_writes_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, mut guard) = start_store(&tmp.path().join("store")).await;
    let url = store.cluster().frontend.clone();
    let out = tmp.path().join("results");
    let run = toystore_load(&[
        "--url",
        &url,
        "--clients",
        "4",
        "--iterations",
        "30",
        "--p",
        "0.5",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    let orders_only = toystore_load(&[
        "--url",
        &url,
        "--clients",
        "2",
        "--iterations",
        "10",
        "--orders-only",
    ])
    .await;
    store.stop().await;
    guard.0.clear(); // stopped: nothing to kill

    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(
        run.status.success(),
        "exit {}\n{stdout}\n{stderr}",
        run.status
    );
    assert!(stdout.contains("verification passed"), "{stdout}");

    let report = read_json(&out.join("load.json"));
    let orders = report["order"]["result"]["ops"].as_u64().unwrap();
    let queries = report["query"]["result"]["ops"].as_u64().unwrap();
    assert!(orders > 0, "no order placed: {report}");
    assert_eq!(queries, 4 * 30, "every session queries once: {report}");
    assert_eq!(report["sessions"], 4 * 30);
    assert_eq!(report["verification"]["checked"].as_u64(), Some(orders));
    assert_eq!(report["verification"]["matched"].as_u64(), Some(orders));
    assert_eq!(report["verification"]["mismatches"], json!([]));
    assert_eq!(report["lookup"]["result"]["ops"].as_u64(), Some(orders));
    assert_eq!(report["order"]["result"]["errors"], 0, "{report}");
    assert!(
        report["order"]["result"]["latency"]["p50_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Sold out is an outcome with one name everywhere, never an error.
    let sold_out = report["order"]["sold_out"].as_u64().unwrap();
    assert!(
        report["order"]["errors_by_status"].get("409").is_none(),
        "{report}"
    );
    let wanted = report["wanted"].as_u64().unwrap();
    let found_sold_out = report["found_sold_out"].as_u64().unwrap();
    assert!(wanted <= 4 * 30 && found_sold_out <= wanted, "{report}");
    assert_eq!(
        orders + sold_out + found_sold_out,
        wanted,
        "every purchase wanted was bought or met a sold-out toy: {report}"
    );
    assert!(
        stdout.contains("sold out") && stdout.contains("purchases: "),
        "{stdout}"
    );
    assert!(
        !stdout.contains("rejected") && !stdout.contains("failures:"),
        "{stdout}"
    );

    // The latency-over-time chart, next to the results, named in the output.
    for chart in ["latency_over_time.svg", "latency_over_time.png"] {
        let bytes = std::fs::read(out.join(chart)).expect("chart written");
        assert!(bytes.len() > 1000, "{chart} is {} bytes", bytes.len());
        assert!(stdout.contains(chart), "{stdout}");
    }
    let svg = std::fs::read_to_string(out.join("latency_over_time.svg")).unwrap();
    assert!(svg.contains("latency (ms)") && svg.contains("4 clients, p = 0.5"));
    assert!(
        report["over_time"]["slices"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );

    let csv = std::fs::read_to_string(out.join("load.csv")).expect("load.csv written");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows[0].starts_with("kind,ok,sold_out,unknown_toy,errors,"),
        "{csv}"
    );
    let order_row = rows.iter().find(|r| r.starts_with("order,")).unwrap();
    assert_eq!(
        order_row.split(',').nth(1),
        Some(orders.to_string().as_str())
    );

    let stdout = text(&orders_only.stdout);
    assert!(
        orders_only.status.success(),
        "{stdout}\n{}",
        text(&orders_only.stderr)
    );
    assert!(
        stdout.contains("verification passed: 20 acknowledged orders"),
        "{stdout}"
    );
}

/// What the fake frontend remembers: order number → toy.
type Orders = Arc<Mutex<BTreeMap<u64, String>>>;

/// Answers one request the way the real frontend would, except that order 2 reads back with
/// the wrong quantity and, when `failing_queries`, every product query answers 503.
fn fake_answer(
    method: &str,
    path: &str,
    body: &[u8],
    orders: &Orders,
    failing_queries: bool,
) -> (u16, Value) {
    let toy = |name: &str| json!({"name": name, "price": 9.99, "quantity": 50});
    match (method, path) {
        ("GET", p) if failing_queries && p.starts_with("/products/") => (
            503,
            json!({"error": {"code": 503, "message": "catalog unavailable"}}),
        ),
        ("GET", "/products") => (200, json!({"data": [toy("Tux"), toy("Whale")]})),
        ("GET", p) if p.starts_with("/products/") => (200, json!({"data": toy(&p[10..])})),
        ("POST", "/orders") => {
            let order: Value = serde_json::from_slice(body).unwrap();
            let mut orders = orders.lock().unwrap();
            let number = orders.len() as u64;
            orders.insert(number, order["name"].as_str().unwrap().to_string());
            (200, json!({"data": {"order_number": number}}))
        }
        ("GET", p) if p.starts_with("/orders/") => {
            let number: u64 = p[8..].parse().unwrap();
            match orders.lock().unwrap().get(&number) {
                Some(name) => {
                    let quantity = if number == 2 { 3 } else { 1 };
                    let order = json!({"number": number, "name": name, "quantity": quantity});
                    (200, json!({"data": order}))
                }
                None => (
                    404,
                    json!({"error": {"code": 404, "message": "no such order"}}),
                ),
            }
        }
        _ => (404, json!({"error": {"code": 404, "message": "not found"}})),
    }
}

/// A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) serving [`fake_answer`].
async fn fake_frontend(failing_queries: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let orders: Orders = Arc::default();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let orders = orders.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let length: usize = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map_or(0, |(_, v)| v.trim().parse().unwrap());
                    while buf.len() < end + 4 + length {
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf[end + 4..end + 4 + length].to_vec();
                    buf.drain(..end + 4 + length);
                    let mut words = head.split_whitespace();
                    let (method, path) = (words.next().unwrap(), words.next().unwrap());
                    let (status, answer) =
                        fake_answer(method, path, &body, &orders, failing_queries);
                    let answer = answer.to_string();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if conn.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_fails_when_the_store_reads_an_order_back_corrupted() {
    let url = fake_frontend(false).await;
    let out = tempfile::tempdir().unwrap();
    let run = toystore_load(&[
        "--url",
        &url,
        "--clients",
        "1",
        "--iterations",
        "5",
        "--p",
        "1",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .await;
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(
        !run.status.success(),
        "a corrupted order must fail the run\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("verification FAILED: 4 of 5"), "{stdout}");
    assert!(stderr.contains("verification failed"), "{stderr}");

    let report = read_json(&out.path().join("load.json"));
    assert_eq!(report["order"]["result"]["ops"], 5);
    let mismatches = report["verification"]["mismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 1, "{report}");
    assert_eq!(mismatches[0]["problem"], "wrong_quantity");
    assert_eq!(mismatches[0]["number"], 2);
    assert_eq!(mismatches[0]["expected"], 1);
    assert_eq!(mismatches[0]["got"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_errors_turns_failed_requests_into_a_failed_run() {
    let url = fake_frontend(true).await;
    let args = ["--url", &url, "--clients", "1", "--iterations", "5"];
    let tolerant = toystore_load(&args).await;
    assert!(
        tolerant.status.success(),
        "without --max-errors failures are only reported\n{}",
        text(&tolerant.stderr)
    );

    let strict = toystore_load(&[&args[..], &["--max-errors", "0"]].concat()).await;
    let stderr = text(&strict.stderr);
    assert!(!strict.status.success(), "5 failed queries > 0 allowed");
    assert!(
        stderr.contains("5 requests failed, more than --max-errors 0"),
        "{stderr}"
    );
}
