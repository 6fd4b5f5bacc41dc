//! A short run of every fault scenario: real processes, clients recording every operation, the
//! faults, healing, and every history check. Each prints its report.

use std::time::Duration;

use faults::Fault;

const SECONDS: u64 = 6;
const CLIENTS: usize = 8;

async fn scenario(fault: Fault) {
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
async fn leader_kills_lose_no_acknowledged_order() {
    scenario(Fault::LeaderKills).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_kills_including_quorum_loss_keep_every_property() {
    scenario(Fault::RandomKills).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_leader_keeps_every_property() {
    scenario(Fault::PauseLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_follower_keeps_every_property() {
    scenario(Fault::PauseFollower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_kills_keep_stock_and_orders_in_step() {
    scenario(Fault::CatalogKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_catalog_keeps_stock_and_orders_in_step() {
    scenario(Fault::CatalogPause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_down_at_once_loses_no_acknowledged_order() {
    scenario(Fault::AllDown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_volume_loses_no_acknowledged_order() {
    scenario(Fault::LostVolume).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_loses_no_acknowledged_order() {
    scenario(Fault::DiskFull).await;
}
