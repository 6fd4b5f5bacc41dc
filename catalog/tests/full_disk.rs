//! A full disk does not wedge the catalog: takes answer 503 while it lasts (nothing half done),
//! and once space is back the catalog reopens its store by itself and every key still gets
//! exactly one outcome.
//!
//! Needs a small filesystem to fill: the test mounts a tmpfs (root only) and skips with a
//! message where it cannot.

mod support;

use std::time::Duration;

use api::catalog::TakeOutcome;
use api::client::ClientError;
use support::{Server, take, wait_for};
use testkit::Tmpfs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_heals_by_itself_once_space_is_back() {
    let Some(mnt) = Tmpfs::mount("8m") else {
        return;
    };
    let server = Server::with_data_dir(mnt.path().join("catalog"), &[]).await;
    let client = server.client();
    assert_eq!(
        client
            .take(&take("before", "Tux", 1))
            .await
            .unwrap()
            .outcome,
        TakeOutcome::Taken
    );

    let filler = mnt.fill();
    // Takes go on until a commit finds no room; that one answers 503 and is not recorded.
    let mut refused = None;
    for i in 0..5000 {
        let key = format!("while-full-{i}");
        match client.take(&take(&key, "Tux", 1)).await {
            Ok(r) => assert_eq!(r.outcome, TakeOutcome::Taken),
            Err(ClientError::Api { status, error }) => {
                assert_eq!(status.as_u16(), 503, "{}", error.message);
                refused = Some(key);
                break;
            }
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    let refused = refused.expect("a full disk eventually refuses a take");
    let healthy = server.http.get(format!("{}/healthz", server.url())).send();
    assert!(
        healthy.await.unwrap().status().is_success(),
        "still alive: it will recover"
    );

    std::fs::remove_file(filler).unwrap();
    // Without a restart, the refused key's retry succeeds once the store is reopened.
    let retried = wait_for("the catalog to take again", Duration::from_secs(30), || {
        let client = client.clone();
        let refused = refused.clone();
        async move { client.take(&take(&refused, "Tux", 1)).await.ok() }
    })
    .await;
    assert_eq!(retried.outcome, TakeOutcome::Taken);
    let again = client.take(&take(&refused, "Tux", 1)).await.unwrap();
    assert_eq!(again.product, retried.product, "a repeat changes nothing");
    let audit = client.audit().await.unwrap();
    let tux = audit.products.iter().find(|p| p.name == "Tux").unwrap();
    assert_eq!(
        u64::from(tux.quantity),
        u64::from(tux.initial) - tux.taken + tux.restocked
    );
    assert_eq!(
        tux.taken,
        audit
            .takes
            .iter()
            .filter(|t| t.outcome == TakeOutcome::Taken)
            .count() as u64
    );
    assert!(audit.takes.iter().any(|t| t.key == "before"));
}
