//! The etcd baseline against a real three-member etcd cluster on loopback.
//!
//! Needs etcd 3.4 or later (`bash tests/tools/install-etcd.sh` installs Debian's etcd-server);
//! where there is none, the test prints `skipped: etcd baseline: <reason>` (which says what to
//! install) and passes, except under CI (`CI` set), where it fails.

use std::time::Duration;

use eval::etcd::{self, EtcdCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_workload_against_a_real_three_member_cluster() {
    let bin = match etcd::find_binary() {
        Ok(bin) => bin,
        Err(e) => {
            testkit::skip_or_fail(format!("etcd baseline: {e}"));
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = EtcdCluster::start_with(&bin, dir.path()).await.unwrap();
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    println!("etcd {} at {endpoints:?}", cluster.version());

    let result = etcd::put_workload(&endpoints, 4, Duration::from_secs(2))
        .await
        .unwrap();
    println!("{result:?}");
    assert_eq!(result.clients, 4);
    assert!(result.ops > 0, "no successful put: {result:?}");
    assert_eq!(result.errors, 0, "{result:?}");
    assert_eq!(result.latency.count, result.ops);
    assert!(result.seconds >= 2.0, "{result:?}");

    // The writes landed: client 3's first order reads back, through another member than the
    // one it was written to (client 3 wrote through endpoints[0]).
    let http = api::client::http_client(Duration::from_secs(5));
    let value = etcd::get(&http, &endpoints[1], &etcd::order_key(3, 0))
        .await
        .unwrap()
        .expect("order/3/0 was written");
    assert_eq!(value, etcd::order_value(3, 0).into_bytes());
    assert_eq!(
        etcd::get(&http, &endpoints[2], "order/none/0")
            .await
            .unwrap(),
        None
    );

    cluster.stop().await;
}
