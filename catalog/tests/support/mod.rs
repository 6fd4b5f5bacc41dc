//! A store of real processes for the catalog's tests: three order replicas forming a group and
//! catalogs over it (through the launcher), no frontend. Every wait has a deadline; none is a
//! fixed sleep.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use api::PlaceOrder;
use api::catalog::{CatalogClient, Product};
use api::inventory::Audit;
use launcher::{CatalogSpec, RaftSpec, Store, StoreSpec};
use reqwest::StatusCode;
use serde_json::Value;

pub use testkit::wait_for;

/// A store with `catalogs` catalog processes defining the toys of `products` (a JSON array)
/// and restocking every 200 ms to 7 units.
pub async fn store(dir: &Path, catalogs: usize, products: &str) -> Store {
    let file = dir.join("products.json");
    std::fs::write(&file, products).unwrap();
    let mut spec = StoreSpec::new(
        &dir.join("store"),
        &testkit::bin_dir(&["order-replica", "catalog"]),
    );
    spec.catalog = Some(CatalogSpec {
        replicas: catalogs,
        restock_interval_secs: 0.2,
        restock_quantity: 7,
        products: Some(file),
    });
    spec.frontends = 0;
    spec.raft = RaftSpec::fast();
    spec.rust_log = Some("info,openraft=warn".into());
    Store::start(spec).await.expect("the store starts")
}

/// A client of catalog `i`.
pub fn catalog(store: &mut Store, i: usize) -> CatalogClient {
    CatalogClient::new(reqwest::Client::new(), store.catalog_at(i).url())
}

/// Buys `quantity` of `name` with `key` through the group; returns the purchase's version.
pub async fn buy(store: &Store, key: &str, name: &str, quantity: i64) -> u64 {
    let order = PlaceOrder {
        name: name.into(),
        quantity,
    };
    store
        .group(Duration::from_secs(20))
        .place_order(key, &order)
        .await
        .expect("the purchase")
        .version
}

/// The leader's books.
pub async fn audit(store: &Store) -> Audit {
    let leader = wait_for("a leader", Duration::from_secs(30), || store.leader()).await;
    store
        .replica_client(leader)
        .audit()
        .await
        .expect("the audit")
}

/// Waits until catalog `client` shows `name` with `quantity`.
pub async fn shows(client: &CatalogClient, name: &str, quantity: u32) -> Product {
    wait_for(
        &format!("{} to show {quantity} {name}", client.base()),
        Duration::from_secs(20),
        || async {
            let p = client.product(name, 0).await.ok()?;
            (p.quantity == quantity).then_some(p)
        },
    )
    .await
}

/// Sends a request; returns the status and the decoded JSON body.
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("the catalog answers");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?} (status {status})"));
    (status, body)
}

/// Asserts a JSON error answer with `expected` status and a message.
pub fn assert_error(what: &str, status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"]["code"], expected.as_u16(), "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error has a message: {body}"
    );
}
