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
