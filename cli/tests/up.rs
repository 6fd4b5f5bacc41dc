//! `toystore up` as a user runs it: the real command, its children, SIGKILL of a replica,
//! Ctrl-C (SIGTERM), and a restart on the same directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use api::ReplicaClient;
use api::raft::RaftRole;
use launcher::ClusterFile;
use launcher::ports::free_port;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{binary, wait_for};

mod support;

/// Starts `toystore up` and waits until the storefront answers ready.
async fn up(dir: &Path, port: u16) -> Child {
    up_with(dir, port, &[]).await
}

async fn up_with(dir: &Path, port: u16, extra: &[&str]) -> Child {
    for service in ["catalog", "order-replica", "frontend"] {
        binary(service); // built beside `toystore`, which starts them
    }
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let child = Command::new(binary("toystore"))
        .args(["up", "--port", &port.to_string(), "--restock-interval", "1"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting toystore up");
    support::wait_ready(dir, port).await;
    child
}

async fn buy(http: &reqwest::Client, port: u16, key: &str) -> u64 {
    let resp = http
        .post(format!("http://127.0.0.1:{port}/orders"))
        .header("Idempotency-Key", key)
        .json(&json!({"name": "Lego", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "order {key}");
    let body: Value = resp.json().await.unwrap();
    body["data"]["order_number"].as_u64().unwrap()
}

async fn assert_orders(http: &reqwest::Client, port: u16, numbers: &[u64]) {
    for n in numbers {
        let resp = http
            .get(format!("http://127.0.0.1:{port}/orders/{n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "order {n} lost");
    }
}

/// Sends `sig` to `pid` (signal `None` only checks that the process exists).
fn send(pid: u32, sig: impl Into<Option<Signal>>) -> nix::Result<()> {
    signal::kill(Pid::from_raw(pid as i32), sig)
}

fn alive(pid: u32) -> bool {
    send(pid, None).is_ok()
}

/// SIGKILLs `toystore up` when a test fails before stopping it (its children follow by their
/// parent-death signal): a supervising `toystore up` left behind restarts its children forever.
struct KillOnFailure(u32);

impl Drop for KillOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = send(self.0, Signal::SIGKILL);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_serves_survives_a_replica_sigkill_stops_cleanly_and_resumes_with_all_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let port = free_port().unwrap();
    let http = reqwest::Client::new();
    let mut toystore = up(&dir, port).await;
    let _first = KillOnFailure(toystore.id());

    let cluster = ClusterFile::read(&dir).expect("cluster.json written");
    assert_eq!(cluster.frontend, format!("http://127.0.0.1:{port}"));
    assert_eq!(cluster.order.len(), 3);
    let mut pids: Vec<u32> = cluster.order.iter().filter_map(|r| r.pid).collect();
    pids.extend(cluster.catalog.pid);
    pids.extend(cluster.frontend_pid);
    assert_eq!(pids.len(), 5, "every child's pid is recorded: {cluster:?}");

    let mut numbers = Vec::new();
    for i in 0..10 {
        numbers.push(buy(&http, port, &format!("before-{i}")).await);
    }

    // SIGKILL the leader replica; the store keeps selling.
    let token = std::fs::read_to_string(&cluster.token_file).unwrap();
    let mut leader = None;
    for r in &cluster.order {
        let client = ReplicaClient::new(http.clone(), &r.url, Some(token.trim().to_string()));
        if client
            .status()
            .await
            .is_ok_and(|s| s.role == RaftRole::Leader)
        {
            leader = Some(r.pid.unwrap());
        }
    }
    let leader = leader.expect("a leader among the replicas");
    send(leader, Signal::SIGKILL).unwrap();
    for i in 0..10 {
        numbers.push(buy(&http, port, &format!("after-kill-{i}")).await);
    }
    assert_orders(&http, port, &numbers).await;

    // Ctrl-C: every child stops.
    send(toystore.id(), Signal::SIGINT).unwrap();
    let status = tokio::task::spawn_blocking(move || toystore.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "toystore up exits 0 on Ctrl-C");
    wait_for("all children to exit", Duration::from_secs(15), || async {
        pids.iter().all(|p| !alive(*p)).then_some(())
    })
    .await;

    // Again on the same directory: same addresses, all orders, and new orders continue.
    let mut toystore = up(&dir, port).await;
    let _second = KillOnFailure(toystore.id());
    let again = ClusterFile::read(&dir).unwrap();
    assert_eq!(again.catalog.url, cluster.catalog.url);
    assert_eq!(
        again.order.iter().map(|r| &r.url).collect::<Vec<_>>(),
        cluster.order.iter().map(|r| &r.url).collect::<Vec<_>>()
    );
    assert_orders(&http, port, &numbers).await;
    let next = buy(&http, port, "after-restart").await;
    assert!(!numbers.contains(&next));
    send(toystore.id(), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || toystore.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn supervise_restarts_a_child_that_dies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let port = free_port().unwrap();
    let http = reqwest::Client::new();
    let mut toystore = up_with(&dir, port, &["--supervise"]).await;
    let _guard = KillOnFailure(toystore.id());
    let before = ClusterFile::read(&dir).unwrap();
    let victim = before.order[1].pid.unwrap();
    send(victim, Signal::SIGKILL).unwrap();

    let restarted = wait_for(
        "the replica to be restarted",
        Duration::from_secs(20),
        || async {
            let now = ClusterFile::read(&dir).ok()?;
            let pid = now.order[1].pid?;
            (pid != victim && alive(pid)).then_some(pid)
        },
    )
    .await;
    // The restarted replica rejoins on its data and serves linearizable reads again.
    let url = before.order[1].url.clone();
    let number = buy(&http, port, "after-restart").await;
    wait_for(
        "the restarted replica to serve the order",
        Duration::from_secs(20),
        || async {
            let r = http
                .get(format!("{url}/orders/{number}"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    assert!(alive(restarted));
    assert_eq!(ClusterFile::read(&dir).unwrap().restarts["replica-2"], 1);

    // Now it fails at every start (its log file cannot be opened): it is restarted with a
    // growing back-off, not at every poll, and cluster.json counts the restarts.
    let data = dir.join("replica-2");
    std::fs::rename(data.join("raft-log"), data.join("raft-log.moved")).unwrap();
    std::fs::create_dir(data.join("raft-log")).unwrap();
    let killed = std::time::Instant::now();
    send(restarted, Signal::SIGKILL).unwrap();
    wait_for(
        "two more restarts of replica-2",
        Duration::from_secs(40),
        || async {
            let restarts = ClusterFile::read(&dir)
                .ok()?
                .restarts
                .get("replica-2")
                .copied();
            (restarts >= Some(3)).then_some(())
        },
    )
    .await;
    // The second restart in a row waits 2 s, the third 4 s.
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_secs(6),
        "restarted after {waited:?}"
    );
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(log.contains("restarting it after a back-off"), "{log}");
    send(toystore.id(), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || toystore.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}
