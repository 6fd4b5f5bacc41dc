//! The catalog's HTTP API against the real binary: idempotent takes, out of stock and restock,
//! and the long-poll change feed.

mod support;

use std::time::{Duration, Instant};

use api::catalog::{Audit, TakeOutcome};
use support::{Server, default_stock, take, wait_for};

/// `quantity = initial − taken + restocked` for every product, and `taken` equals the sum of
/// the `Taken` records.
fn assert_audit_consistent(audit: &Audit) {
    for p in &audit.products {
        assert_eq!(
            i128::from(p.quantity),
            i128::from(p.initial) - i128::from(p.taken) + i128::from(p.restocked),
            "{p:?}"
        );
        let recorded: u64 = audit
            .takes
            .iter()
            .filter(|t| t.name == p.name && t.outcome == TakeOutcome::Taken)
            .map(|t| u64::from(t.quantity))
            .sum();
        assert_eq!(p.taken, recorded, "{}", p.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_catalog_lists_at_least_ten_toys_sorted_by_name() {
    let server = Server::start(&[]).await;
    let client = server.client();
    let products = client.products().await.unwrap();
    assert!(products.len() >= 10, "{products:?}");
    let mut names: Vec<&str> = products.iter().map(|p| p.name.as_str()).collect();
    let listed = names.clone();
    names.sort_unstable();
    assert_eq!(listed, names, "sorted by name");
    assert!(
        products
            .iter()
            .all(|p| p.quantity == default_stock(&p.name) && p.version == 0)
    );
    let tux = client.product("Tux").await.unwrap();
    assert_eq!(tux.quantity, default_stock("Tux"));
    assert!(tux.price > 0.0);
    let yoyo = client.product("Yo-yo").await.unwrap();
    assert_eq!(yoyo.name, "Yo-yo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_is_idempotent_over_http() {
    let server = Server::start(&[]).await;
    let client = server.client();

    let first = client.take(&take("order-1", "Tux", 2)).await.unwrap();
    assert_eq!(first.outcome, TakeOutcome::Taken);
    let tux = first.product.clone().unwrap();
    let tux_stock = default_stock("Tux");
    assert_eq!((tux.quantity, tux.version), (tux_stock - 2, 1));

    // The same key again, even with another toy and quantity, answers the first outcome and
    // changes nothing.
    for repeat in [take("order-1", "Tux", 2), take("order-1", "Fox", 7)] {
        let again = client.take(&repeat).await.unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(client.product("Tux").await.unwrap().quantity, tux_stock - 2);
    assert_eq!(
        client.product("Fox").await.unwrap().quantity,
        default_stock("Fox")
    );

    let unknown = client.take(&take("order-2", "Unicorn", 1)).await.unwrap();
    assert_eq!(unknown.outcome, TakeOutcome::UnknownProduct);
    assert_eq!(unknown.product, None);

    let audit = client.audit().await.unwrap();
    let takes: Vec<(&str, &str, u32, TakeOutcome)> = audit
        .takes
        .iter()
        .map(|t| (t.key.as_str(), t.name.as_str(), t.quantity, t.outcome))
        .collect();
    assert_eq!(
        takes,
        vec![
            ("order-1", "Tux", 2, TakeOutcome::Taken),
            ("order-2", "Unicorn", 1, TakeOutcome::UnknownProduct),
        ]
    );
    assert_audit_consistent(&audit);
    let batch = client.changes(0, Duration::ZERO).await.unwrap();
    assert_eq!(batch.version, 1, "only the first take moved the feed");
    assert_eq!(batch.events.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_leaves_stock_unchanged_and_restock_brings_it_back() {
    let products = r#"[
        {"name": "Tux", "price": 15.99, "quantity": 3},
        {"name": "Fox", "price": 9.5, "quantity": 5}
    ]"#;
    let server = Server::with_products(
        products,
        &["--restock-interval-secs", "0.2", "--restock-quantity", "10"],
    )
    .await;
    let client = server.client();

    // More than is there: refused, nothing changes (Fox is never restocked: it is not at 0).
    let short = client.take(&take("fox-too-many", "Fox", 6)).await.unwrap();
    assert_eq!(short.outcome, TakeOutcome::Insufficient);
    assert_eq!(short.product.unwrap().quantity, 5);
    let fox = client.product("Fox").await.unwrap();
    assert_eq!((fox.quantity, fox.version), (5, 0));

    let all = client.take(&take("tux-all", "Tux", 3)).await.unwrap();
    assert_eq!(all.outcome, TakeOutcome::Taken);
    assert_eq!(all.product.unwrap().quantity, 0);
    // Whether or not a restock already ran, 50 is more than there can be.
    let none_left = client.take(&take("tux-more", "Tux", 50)).await.unwrap();
    assert_eq!(none_left.outcome, TakeOutcome::Insufficient);

    let tux = wait_for("Tux to be restocked", Duration::from_secs(10), || async {
        let tux = client.product("Tux").await.ok()?;
        (tux.quantity > 0).then_some(tux)
    })
    .await;
    assert_eq!(tux.quantity, 10);

    let audit = client.audit().await.unwrap();
    assert_audit_consistent(&audit);
    let tux_audit = audit.products.iter().find(|p| p.name == "Tux").unwrap();
    assert_eq!(
        (tux_audit.initial, tux_audit.taken, tux_audit.restocked),
        (3, 3, 10)
    );
    let fox_audit = audit.products.iter().find(|p| p.name == "Fox").unwrap();
    assert_eq!(
        (fox_audit.quantity, fox_audit.taken, fox_audit.restocked),
        (5, 0, 0)
    );

    // The restock is on the feed, after the take.
    let batch = client.changes(0, Duration::ZERO).await.unwrap();
    let events: Vec<(u64, &str, u32)> = batch
        .events
        .iter()
        .map(|e| (e.version, e.product.name.as_str(), e.product.quantity))
        .collect();
    assert_eq!(events, vec![(1, "Tux", 0), (2, "Tux", 10)]);
    assert!(
        server.metric("toystore_catalog_restocks_total").await >= Some(1.0),
        "restocks are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_a_take_promptly_and_reset_for_a_future_version() {
    let server = Server::start(&[]).await;
    let client = server.client();
    client.take(&take("warm-up", "Kite", 1)).await.unwrap();
    let now = client.changes(0, Duration::ZERO).await.unwrap();
    assert_eq!(now.version, 1);

    let poll = tokio::spawn({
        let client = client.clone();
        async move { client.changes(1, Duration::from_secs(25)).await }
    });
    wait_for("the poll to wait", Duration::from_secs(10), || async {
        (server.metric("toystore_catalog_feed_waiters").await == Some(1.0)).then_some(())
    })
    .await;
    let started = Instant::now();
    client.take(&take("wake-up", "Tux", 4)).await.unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the long-poll answers promptly after the take")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!batch.reset);
    assert_eq!(batch.version, 2);
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].version, 2);
    assert_eq!(batch.events[0].product.name, "Tux");
    assert_eq!(batch.events[0].product.quantity, default_stock("Tux") - 4);

    // A version from the future: reset at once, no events, the current version.
    let started = Instant::now();
    let batch = client.changes(100, Duration::from_secs(25)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(batch.reset);
    assert!(batch.events.is_empty());
    assert_eq!(batch.version, 2);

    // Nothing new: an empty answer after the wait.
    let started = Instant::now();
    let batch = client.changes(2, Duration::from_millis(300)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!batch.reset && batch.events.is_empty());
    assert_eq!(batch.version, 2);
    assert_eq!(
        server.metric("toystore_catalog_feed_waiters").await,
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_waiting_polls_and_exits_cleanly() {
    let mut server = Server::start(&[]).await;
    let client = server.client();
    let poll = tokio::spawn({
        let client = client.clone();
        async move { client.changes(0, Duration::from_secs(30)).await }
    });
    wait_for("the poll to wait", Duration::from_secs(10), || async {
        (server.metric("toystore_catalog_feed_waiters").await == Some(1.0)).then_some(())
    })
    .await;
    let (ok, took) = server.terminate().await;
    assert!(ok, "clean exit on SIGTERM; log:\n{}", server.log());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let batch = poll.await.unwrap().expect("the waiting poll got an answer");
    assert!(batch.events.is_empty());
}
