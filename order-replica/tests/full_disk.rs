//! A full disk stops writes with a clear error and loses nothing acknowledged.
//!
//! Needs a small filesystem to fill: the test mounts a 16 MiB tmpfs (root only) and skips with
//! a message where it cannot.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use support::{Cluster, Options, assert_dense, assert_orders_on, order, place_orders, wait_for};

struct Tmpfs<'a>(&'a Path);

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_refuses_orders_with_json_error_and_keeps_acknowledged_ones() {
    let mnt = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(mnt.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root) to fill a disk");
        return;
    }
    let _guard = Tmpfs(mnt.path());

    let mut cluster = Cluster::start(&[], Options::default()).await;
    cluster.data_root = mnt.path().to_path_buf();
    cluster.add_node(1).await;
    cluster.converge(&[1]).await;
    let acked = place_orders(cluster.group(), "before-full", 20, 2).await;

    // Fill the filesystem.
    let filler_path = mnt.path().join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while filler.write_all(&block).is_ok() {}
    drop(filler);

    // Writes that still fit into already allocated pages succeed; keep ordering until the disk
    // refuses. Every success is acknowledged and must survive.
    let url = cluster.nodes[&1].url();
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
    // The process is alive and says it is unhealthy.
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Space comes back; after a restart everything acknowledged is there and orders flow again.
    std::fs::remove_file(&filler_path).unwrap();
    cluster.kill(1);
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
