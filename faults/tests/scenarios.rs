//! A short run of every fault scenario: real processes, clients recording every operation, the
//! faults, healing, and every history check. Each prints its report. A fault that cannot be
//! done here (a full disk needs root) makes its test say "skipped", except under CI (`CI` set),
//! where it fails.

use std::time::Duration;

use faults::Fault;
use faults::target::{Target, TargetOptions};

const SECONDS: u64 = 6;
const CLIENTS: usize = 8;

async fn scenario(fault: Fault) {
    let report = faults::run(fault, 42, Duration::from_secs(SECONDS), CLIENTS)
        .await
        .expect("the scenario runs");
    println!("{report}");
    if let Some(why) = &report.skipped {
        testkit::skip_or_fail(format!("{}: the fault was not done: {why}", fault.name()));
    }
    assert!(
        report.ops.confirmed > 0,
        "no purchase went through: {report}"
    );
    assert!(report.passed(), "{report}");
    if fault.is_catalog() {
        // Purchases are one command of the order group: losing catalogs never stops one.
        assert_eq!(
            report.ops.failed_purchases, 0,
            "purchases failed while only catalogs were hit: {report}"
        );
    }
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
async fn catalog_kills_fail_no_purchase_and_keep_every_property() {
    scenario(Fault::CatalogKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_catalogs_fail_no_purchase_and_keep_every_property() {
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

/// POSTs one unit of `toy` to `frontend` with `key`; returns the order number or what went
/// wrong.
async fn buy(http: &reqwest::Client, frontend: &str, key: &str, toy: &str) -> Result<u64, String> {
    let resp = http
        .post(format!("{frontend}/orders"))
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({"name": toy, "quantity": 1}))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    body["data"]["order_number"]
        .as_u64()
        .ok_or_else(|| format!("{status}: {body}"))
}

/// The design's promise, directly: with every catalog replica killed, every purchase through
/// every frontend is confirmed (none fails, none waits for a catalog), and once the catalogs
/// are back (stateless: they start from a snapshot of the group's inventory) the frontends
/// show the stock those purchases left (nothing restocks a toy that is not sold out).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_go_on_with_every_catalog_down() {
    let mut target = Target::start(&TargetOptions::default())
        .await
        .expect("the store starts");
    assert_eq!(target.catalogs(), 2);
    let toy = "Tux";
    let http = reqwest::Client::new();
    for i in 0..target.catalogs() {
        target.kill_catalog(i);
    }
    let frontends = target.frontends();
    let mut numbers = Vec::new();
    for round in 0..10 {
        for (f, frontend) in frontends.iter().enumerate() {
            let key = format!("no-catalog-{f}-{round}");
            let started = std::time::Instant::now();
            match buy(&http, frontend, &key, toy).await {
                Ok(n) => numbers.push(n),
                Err(e) => panic!(
                    "purchase {key} through frontend {f} failed with every catalog down: {e}\n{}",
                    target.store.log_tails(20)
                ),
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "purchase {key} took {:?} with every catalog down",
                started.elapsed()
            );
        }
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        10 * frontends.len(),
        "one number per purchase"
    );

    // The books after the purchases, from the leader.
    let stock = target
        .stock_on_leader(toy)
        .await
        .expect("the leader's stock");
    target
        .restart_catalogs()
        .await
        .expect("the catalogs restart");
    for (f, frontend) in frontends.iter().enumerate() {
        let url = format!("{frontend}/products/{toy}");
        testkit::wait_for(
            &format!("frontend {f} to show the {stock} units of {toy} the purchases left"),
            Duration::from_secs(15),
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
