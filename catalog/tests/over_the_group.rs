//! The catalog as a stateless service over the order group: the toys defined once at first
//! start, reads that name a version, the relayed feed, a restock that two catalogs make once, a
//! restart that defines nothing again (real processes), and bad input.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use reqwest::StatusCode;

use support::{Store, assert_error, audit, buy, catalog, send, shows, wait_for};

const TOYS: &str = r#"[
    {"name": "Tux", "price": 15.99, "quantity": 50},
    {"name": "Kite", "price": 21.0, "quantity": 2},
    {"name": "Fox", "price": 18.75, "quantity": 9}
]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_catalogs_define_the_toys_once_read_by_version_and_restock_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::in_process(tmp.path(), 2, TOYS).await;
    let (first, second) = (catalog(&mut store, 0), catalog(&mut store, 1));

    // Defined once, through the group, from the products file.
    let books = audit(&store).await;
    let initial: Vec<(&str, u64)> = books
        .products
        .iter()
        .map(|p| (p.name.as_str(), p.initial))
        .collect();
    assert_eq!(initial, [("Fox", 9), ("Kite", 2), ("Tux", 50)]);
    assert_eq!(first.products(0).await.unwrap().len(), 3);

    // A read naming a purchase's version shows that purchase, on either catalog.
    let version = buy(&store, "k1", "Tux", 3).await;
    for c in [&first, &second] {
        let tux = c.product("Tux", version).await.unwrap();
        assert_eq!((tux.quantity, tux.version), (47, version));
    }
    // The feed relays the group's changes with the group's versions.
    let feed = second.changes(0, Duration::ZERO).await.unwrap();
    assert!(feed.events.iter().any(|e| e.version == version));

    // Kite sells out: both catalogs see it at 0 and restock it, but it is restocked once.
    let sold_out = buy(&store, "k2", "Kite", 2).await;
    assert!(sold_out > version);
    shows(&first, "Kite", 7).await;
    shows(&second, "Kite", 7).await;
    let kite = |books: &api::inventory::Audit| {
        let k = books.products.iter().find(|p| p.name == "Kite").unwrap();
        (k.restocked, k.sold, k.stock)
    };
    assert_eq!(kite(&audit(&store).await), (7, 2, 7));
    // Exactly one of the two catalogs' restock commands took effect.
    let mut restocks = 0.0;
    for c in [&first, &second] {
        let text = reqwest::get(format!("{}/metrics", c.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        restocks += text
            .lines()
            .find_map(|l| l.strip_prefix("toystore_catalog_restocks_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert_eq!(restocks, 1.0);

    // The books balance.
    for p in audit(&store).await.products {
        assert_eq!(p.stock, p.initial + p.restocked - p.sold, "{p:?}");
        assert_eq!(p.sold, p.ordered, "{p:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_catalog_defines_nothing_again_and_purchases_never_wait_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::processes(tmp.path(), 1, TOYS).await;
    buy(&store, "before", "Fox", 1).await;

    // Every catalog down: purchases go on.
    store.processes_mut().catalog().kill();
    let version = buy(&store, "while-down", "Fox", 1).await;

    // Back with another products file: it reads the group's toys and defines nothing.
    std::fs::write(
        tmp.path().join("products.json"),
        r#"[{"name": "Robot", "price": 1.0, "quantity": 5}]"#,
    )
    .unwrap();
    store
        .processes_mut()
        .start_catalog()
        .await
        .expect("the catalog restarts");
    let client = catalog(&mut store, 0);
    let fox = client.product("Fox", version).await.unwrap();
    assert_eq!(fox.quantity, 7);
    let names: Vec<String> = audit(&store)
        .await
        .products
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Fox", "Kite", "Tux"]);
    let (status, body) =
        send(reqwest::Client::new().get(format!("{}/products/Robot", client.base()))).await;
    assert_error(
        "a toy only in the new file",
        status,
        &body,
        StatusCode::NOT_FOUND,
    );

    // SIGTERM answers waiting feed polls at once and exits cleanly.
    let url = client.base().to_string();
    let poll = tokio::spawn(async move {
        reqwest::get(format!(
            "{url}/changes?after={}&wait_ms=30000",
            u64::MAX / 2
        ))
        .await
    });
    wait_for("the poll to wait", Duration::from_secs(10), || async {
        let text = reqwest::get(format!("{}/metrics", client.base()))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("toystore_catalog_feed_waiters 1")
            .then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let status = store
        .processes_mut()
        .catalog()
        .stop(Signal::SIGTERM, Duration::from_secs(20))
        .await
        .expect("it exits");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let answered = poll.await.unwrap().expect("the waiting poll is answered");
    assert_eq!(answered.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_json_errors_and_a_read_too_new_waits_then_503() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::in_process(tmp.path(), 1, TOYS).await;
    let url = store.catalog_url(0);
    let http = reqwest::Client::new();
    for (what, req, expected) in [
        (
            "unknown toy",
            http.get(format!("{url}/products/Bear")),
            StatusCode::NOT_FOUND,
        ),
        (
            "bad min_version",
            http.get(format!("{url}/products/Tux?min_version=x")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown parameter",
            http.get(format!("{url}/products?sort=1")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad after",
            http.get(format!("{url}/changes?after=-1")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wait too long",
            http.get(format!("{url}/changes?after=0&wait_ms=99999")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown route",
            http.get(format!("{url}/take")),
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong method",
            http.post(format!("{url}/products")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let (status, body) = send(req).await;
        assert_error(what, status, &body, expected);
    }
    // A version the group has not reached: the catalog waits a bounded time, then says so.
    let started = std::time::Instant::now();
    let (status, body) = send(http.get(format!("{url}/products/Tux?min_version=1000000000"))).await;
    assert_error(
        "a version from the future",
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("behind"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn help_and_a_missing_token_say_what_the_catalog_needs() {
    let bin = testkit::binary("catalog");
    let help = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--order-replicas") && text.contains("CATALOG_ORDER_REPLICAS"),
        "{text}"
    );
    assert!(!text.contains("--data-dir"), "{text}");
    let out = std::process::Command::new(&bin)
        .args([
            "--order-replicas",
            "http://127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("CATALOG_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token"), "{err}");
}
