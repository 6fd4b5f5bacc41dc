//! A full disk stops writes with a clear error, loses nothing acknowledged, and does not wedge
//! the replica: it exits so that its supervisor restarts it, and serves again once space is back.
//!
//! Needs a small filesystem to fill: the test mounts a 16 MiB tmpfs (root only) and skips with
//! a message where it cannot.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::{Cluster, Options, assert_dense, assert_orders_on, order, place_orders, wait_for};
use testkit::Tmpfs;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_refuses_orders_with_json_error_and_keeps_acknowledged_ones() {
    let Some(mnt) = Tmpfs::mount("16m") else {
        return;
    };

    let mut cluster = Cluster::start_in(mnt.path(), &[1], Options::default()).await;
    cluster.converge(&[1]).await;
    let acked = place_orders(cluster.group(), "before-full", 20, 2).await;

    let filler_path = mnt.fill();

    // Writes that still fit into already allocated pages succeed; keep ordering until the disk
    // refuses. Every success is acknowledged and must survive.
    let url = cluster.url(1);
    let http = reqwest::Client::new();
    let mut acked = acked;
    let mut refused = None;
    for i in 0..500 {
        let key = format!("while-full-{i}");
        let resp = http
            .post(format!("{url}/orders"))
            .header("Idempotency-Key", &key)
            .json(&order(1))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("the replica answers instead of crashing");
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.expect("a JSON body");
        if status == StatusCode::OK {
            acked.push(support::Acked {
                key,
                number: body["data"]["order_number"].as_u64().unwrap(),
                quantity: 1,
            });
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], 503, "{body}");
        eprintln!("answer on a full disk: {body}");
        refused = Some(key);
        break;
    }
    let refused = refused.expect("a full disk eventually refuses writes");
    // Raft stopped: the replica exits with a failure status rather than stay up and useless.
    let status = wait_for("the replica to exit", Duration::from_secs(20), || {
        let exited = cluster.exited(1);
        async move { exited }
    })
    .await;
    assert!(!status.success(), "exit status {status}");

    // Space comes back; restarted, everything acknowledged is there and orders flow again.
    std::fs::remove_file(&filler_path).unwrap();
    cluster.restart(1).await;
    wait_for("replica 1 to lead", Duration::from_secs(30), || async {
        let s = cluster.status(1).await.ok()?;
        (s.leader == Some(1)).then_some(())
    })
    .await;
    assert_orders_on(&cluster, 1, &acked).await;
    // The refused request was never acknowledged: it may or may not have committed. Retrying it
    // with its key gives exactly one order either way.
    let retried = cluster
        .group()
        .place_order(&refused, &order(1))
        .await
        .unwrap();
    assert_eq!(retried, acked.len() as u64);
    assert_dense(&cluster, 1, acked.len() as u64 + 1).await;
    let more = place_orders(cluster.group(), "after-full", 5, 1).await;
    assert!(more.iter().all(|a| a.number > retried));
}
