//! SIGKILL and restart on the same data directory: stock, take records and the feed version
//! survive, and the feed continues without reusing a version.

mod support;

use std::time::Duration;

use api::catalog::TakeOutcome;
use support::{Server, default_stock, take};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_keep_stock_take_records_and_the_feed_version() {
    let mut server = Server::start(&[]).await;
    let client = server.client();

    let taken = client.take(&take("k-taken", "Tux", 5)).await.unwrap();
    assert_eq!(taken.outcome, TakeOutcome::Taken);
    client.take(&take("k-fox", "Fox", 1)).await.unwrap();
    let (tux_stock, whale_stock) = (default_stock("Tux"), default_stock("Whale"));
    let short = client
        .take(&take("k-short", "Whale", whale_stock + 1))
        .await
        .unwrap();
    assert_eq!(short.outcome, TakeOutcome::Insufficient);
    let unknown = client.take(&take("k-unknown", "Unicorn", 1)).await.unwrap();
    assert_eq!(unknown.outcome, TakeOutcome::UnknownProduct);

    let products_before = client.products().await.unwrap();
    let audit_before = client.audit().await.unwrap();
    let feed_before = client.changes(0, Duration::ZERO).await.unwrap();
    assert_eq!(feed_before.version, 2);

    // Every take was acknowledged, so it must be on disk: kill without any chance to flush.
    server.kill();
    server.restart().await;

    assert_eq!(client.products().await.unwrap(), products_before);
    assert_eq!(client.audit().await.unwrap(), audit_before);
    assert_eq!(
        client.changes(0, Duration::ZERO).await.unwrap(),
        feed_before
    );

    // Repeated keys still answer their first outcome and change nothing.
    let again = client.take(&take("k-taken", "Tux", 5)).await.unwrap();
    assert_eq!(again.outcome, TakeOutcome::Taken);
    assert_eq!(again.product.unwrap().quantity, tux_stock - 5);
    let again = client.take(&take("k-short", "Whale", 1)).await.unwrap();
    assert_eq!(again.outcome, TakeOutcome::Insufficient);
    let again = client.take(&take("k-unknown", "Tux", 1)).await.unwrap();
    assert_eq!(again.outcome, TakeOutcome::UnknownProduct);
    assert_eq!(client.product("Tux").await.unwrap().quantity, tux_stock - 5);
    assert_eq!(client.product("Whale").await.unwrap().quantity, whale_stock);
    assert_eq!(client.audit().await.unwrap(), audit_before);

    // The feed continues after the stored version: no version is handed out twice.
    let next = client.take(&take("k-next", "Tux", 1)).await.unwrap();
    assert_eq!(next.product.unwrap().version, 3);
    let feed = client.changes(2, Duration::ZERO).await.unwrap();
    assert!(!feed.reset);
    assert_eq!(feed.version, 3);
    assert_eq!(feed.events.len(), 1);
    assert_eq!(feed.events[0].product.quantity, tux_stock - 6);

    // A subscriber that saw a version from before the crash is not told to reset.
    let from_start = client.changes(0, Duration::ZERO).await.unwrap();
    let versions: Vec<u64> = from_start.events.iter().map(|e| e.version).collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_stored_catalog_even_with_another_products_file() {
    let mut server =
        Server::with_products(r#"[{"name": "Tux", "price": 1.0, "quantity": 4}]"#, &[]).await;
    let client = server.client();
    client.take(&take("k", "Tux", 1)).await.unwrap();
    server.kill();
    // Overwrite the products file: the stored state must win.
    std::fs::write(
        server.dir.path().join("products.json"),
        r#"[{"name": "Fox", "price": 2.0, "quantity": 50}]"#,
    )
    .unwrap();
    server.restart().await;
    let products = client.products().await.unwrap();
    let names: Vec<(&str, u32)> = products
        .iter()
        .map(|p| (p.name.as_str(), p.quantity))
        .collect();
    assert_eq!(names, vec![("Tux", 3)]);
}
