//! A short run of every network fault scenario, each process in a network namespace of its own.
//! Needs root, `ip` and `iptables`; elsewhere each test prints why it is skipped and passes,
//! except under CI (`CI` set), where a missing prerequisite fails.

use std::time::Duration;

use faults::Fault;
use faults::net::Net;

const SECONDS: u64 = 6;
const CLIENTS: usize = 8;

async fn scenario(fault: Fault) {
    if let Err(why) = Net::available() {
        testkit::skip_or_fail(format!("{}: {why}", fault.name()));
        return;
    }
    let report = faults::run(fault, 42, Duration::from_secs(SECONDS), CLIENTS)
        .await
        .expect("the scenario runs");
    println!("{report}");
    assert!(
        report.ops.confirmed > 0,
        "no purchase went through: {report}"
    );
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_leader_loses_no_acknowledged_order() {
    scenario(Fault::IsolateLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_from_its_peers_loses_no_acknowledged_order() {
    scenario(Fault::LeaderCutFromPeers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minority_split_keeps_every_property() {
    scenario(Fault::SplitMinority).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_way_loss_keeps_every_property() {
    scenario(Fault::OneWay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_loss_keeps_every_property() {
    scenario(Fault::RandomLoss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_catalogs_fail_no_purchase_and_keep_every_property() {
    scenario(Fault::CatalogPartition).await;
}

/// Availability, not only safety: with every catalog replica cut from every order replica and
/// from the frontends, purchases need no catalog and go on at once through every frontend;
/// once the network heals, the catalogs catch up on the group's change stream and the
/// frontends show the stock the purchases left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_go_on_while_every_catalog_is_cut_off() {
    use faults::target::{Target, TargetOptions, catalog_name};
    if let Err(why) = Net::available() {
        testkit::skip_or_fail(format!("every catalog cut off: {why}"));
        return;
    }
    let target = Target::start(&TargetOptions {
        network: true,
        ..TargetOptions::default()
    })
    .await
    .expect("the store starts");
    let net = target.net.as_ref().unwrap();
    for i in 0..target.catalogs() {
        for id in target.replicas() {
            net.cut(&catalog_name(i), &format!("replica-{id}")).unwrap();
        }
        net.cut(&catalog_name(i), "outside").unwrap();
    }

    let http = reqwest::Client::new();
    let toy = "Tux";
    for round in 0..5 {
        for (f, frontend) in target.frontends().iter().enumerate() {
            let key = format!("cut-{f}-{round}");
            let started = std::time::Instant::now();
            let resp = http
                .post(format!("{frontend}/orders"))
                .header("Idempotency-Key", &key)
                .json(&serde_json::json!({"name": toy, "quantity": 1}))
                .timeout(Duration::from_secs(15))
                .send()
                .await
                .unwrap_or_else(|e| panic!("purchase {key} through frontend {f}: {e}"));
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "purchase {key} through frontend {f} answered {status} with every catalog cut \
                 off: {body}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "purchase {key} took {:?} with every catalog cut off",
                started.elapsed()
            );
        }
    }

    let stock = target
        .stock_on_leader(toy)
        .await
        .expect("the leader's stock");
    net.heal().unwrap();
    for (f, frontend) in target.frontends().iter().enumerate() {
        let url = format!("{frontend}/products/{toy}");
        testkit::wait_for(
            &format!("frontend {f} to show the {stock} units of {toy} the purchases left"),
            Duration::from_secs(20),
            || {
                let req = http.get(&url).timeout(Duration::from_secs(5)).send();
                async move {
                    let body: serde_json::Value = req.await.ok()?.json().await.ok()?;
                    (body["data"]["quantity"].as_u64()? == stock).then_some(())
                }
            },
        )
        .await;
    }
}
