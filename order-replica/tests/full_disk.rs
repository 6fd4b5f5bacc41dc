//! A full disk stops writes with a clear error, loses nothing acknowledged, and does not wedge
//! the replica: it exits so that its supervisor restarts it, and serves again once space is back.
//!
//! Needs a small filesystem to fill: the test mounts a 16 MiB tmpfs (root only); where it
//! cannot, it skips with a message, except under CI (`CI` set), where it fails.

mod support;

use std::sync::Arc;
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

    // Sixteen clients at once, so appends are queued back to back when the disk refuses one.
    // Writes that still fit into already allocated pages succeed; every success is
    // acknowledged and must survive. At the first refusal space comes back at once, while
    // appends queued behind the failed one are still on their way to the log: none of them may
    // be written after the failed record and reported flushed.
    let url = cluster.url(1);
    let http = reqwest::Client::new();
    let refused_at = Arc::new(tokio::sync::OnceCell::new());
    let mut clients = Vec::new();
    for c in 0..16 {
        let (url, http, refused_at) = (url.clone(), http.clone(), refused_at.clone());
        let filler_path = filler_path.clone();
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..500 {
                if refused_at.initialized() {
                    break;
                }
                let key = format!("while-full-{c}-{i}");
                let Ok(resp) = http
                    .post(format!("{url}/orders"))
                    .header("Idempotency-Key", &key)
                    .json(&order(1))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await
                else {
                    break; // the replica exited while this one was in flight
                };
                let status = resp.status();
                let Ok(body) = resp.json::<serde_json::Value>().await else {
                    break;
                };
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
                if refused_at.set(key).is_ok() {
                    eprintln!("answer on a full disk: {body}");
                    let _ = std::fs::remove_file(&filler_path);
                }
                break;
            }
            acked
        }));
    }
    let mut acked = acked;
    for client in clients {
        acked.extend(client.await.unwrap());
    }
    let refused = refused_at.get().cloned();
    let refused = refused.expect("a full disk eventually refuses writes");
    // Raft stopped: the replica exits with a failure status rather than stay up and useless.
    let status = wait_for("the replica to exit", Duration::from_secs(20), || {
        let exited = cluster.exited(1);
        async move { exited }
    })
    .await;
    assert!(!status.success(), "exit status {status}");

    // Space is back; restarted, everything acknowledged is there and orders flow again.
    assert!(!filler_path.exists());
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
        .unwrap()
        .order_number;
    // Requests in flight when the replica exited were not acknowledged either, and may have
    // committed too: the numbers stay dense whatever they did.
    let highest_acked = acked.iter().map(|a| a.number).max().unwrap_or(0);
    let mut count = retried.max(highest_acked) + 1;
    while cluster.client(1).get_order(count).await.is_ok() {
        count += 1;
    }
    assert!(count > acked.len() as u64, "{count} orders");
    assert_dense(&cluster, 1, count).await;
    let more = place_orders(cluster.group(), "after-full", 5, 1).await;
    assert!(more.iter().all(|a| a.number > retried));
}
