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
        assert!(
            std::env::var_os("CI").is_none(),
            "network fault scenarios cannot run under CI: {why}"
        );
        eprintln!("skipped: {}: {why}", fault.name());
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
async fn a_leader_cut_from_the_catalog_keeps_stock_and_orders_in_step() {
    scenario(Fault::LeaderCutFromCatalog).await;
}

/// Availability, not only safety: when the leader cannot reach the catalog but its followers
/// can, it hands leadership to one of them, and purchases succeed again while the cut lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_from_the_catalog_hands_leadership_to_a_follower_that_reaches_it() {
    use faults::target::{Target, TargetOptions};
    if let Err(why) = Net::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot run under CI: {why}"
        );
        eprintln!("skipped: leader cut from the catalog: {why}");
        return;
    }
    let target = Target::start(&TargetOptions {
        network: true,
        ..TargetOptions::default()
    })
    .await
    .expect("the store starts");
    let leader = testkit::wait_for("a leader", Duration::from_secs(30), || target.leader()).await;
    let net = target.net.as_ref().unwrap();
    net.cut(&format!("replica-{leader}"), "catalog").unwrap();

    let http = reqwest::Client::new();
    let frontend = target.frontends()[0].clone();
    let mut attempt = 0;
    let number = testkit::wait_for(
        "a purchase to succeed while the leader is cut from the catalog",
        Duration::from_secs(40),
        || {
            attempt += 1;
            let req = http
                .post(format!("{frontend}/orders"))
                .header("Idempotency-Key", format!("cut-{attempt}"))
                .json(&serde_json::json!({"name": "Tux", "quantity": 1}))
                .timeout(Duration::from_secs(15))
                .send();
            async move {
                let resp = req.await.ok()?;
                if !resp.status().is_success() {
                    return None;
                }
                let body: serde_json::Value = resp.json().await.ok()?;
                body["data"]["order_number"].as_u64()
            }
        },
    )
    .await;
    let now = testkit::wait_for("a leader", Duration::from_secs(10), || target.leader()).await;
    assert_ne!(
        now, leader,
        "order {number} was placed through another leader"
    );
}
