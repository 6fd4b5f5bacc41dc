//! The store through its public API: shapes and codes, cache correctness, exactly-once
//! purchases across crashes, stock rules, bad input. Real processes where a test kills, signals
//! or restarts one; in this process otherwise.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use api::orders::OrderStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Buyer, Store, StoreOptions, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_buy_and_look_up_with_the_lab_shapes_and_codes() {
    let store = Store::start_in_process(StoreOptions::default()).await;

    let (status, body) = store.get(0, "/products/Tux").await;
    assert_eq!(status, StatusCode::OK);
    let data = body["data"].as_object().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["name", "price", "quantity"]
    );
    assert_eq!(data["name"], "Tux");
    let before = data["quantity"].as_u64().unwrap();

    let (status, body) = store.buy(0, "Tux", 2, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"data": {"order_number": 0}}));

    let (status, body) = store.get(0, "/orders/0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": {"number": 0, "name": "Tux", "quantity": 2}})
    );
    assert_eq!(store.stock(0, "Tux").await, before - 2);

    let (status, body) = store.get(0, "/products").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"].as_array().unwrap().len() >= 10, "{body}");

    for (status, body) in [
        store.get(0, "/products/NoSuchToy").await,
        store.get(0, "/orders/17").await,
        store.buy(0, "NoSuchToy", 1, None).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], 404);
        assert!(body["error"]["message"].as_str().is_some());
    }
    // The refused order for an unknown toy did not take a number.
    let (_, body) = store.buy(0, "Tux", 1, None).await;
    assert_eq!(body["data"]["order_number"], 1);

    let (status, doc) = store.get(0, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/products",
        "/products/{name}",
        "/orders",
        "/orders/{number}",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    let page = store.http.get(store.frontend(0)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("id=\"products\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_reused_for_another_purchase_is_refused_and_changes_nothing() {
    let store = Store::start_in_process(StoreOptions::default()).await;
    let (status, first) = store.buy(0, "Tux", 2, Some("my-key")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let tux = store.stock(0, "Tux").await;
    let lego = store.stock(0, "Lego").await;

    for (name, quantity) in [("Lego", 7), ("Tux", 3)] {
        let (status, body) = store.buy(0, name, quantity, Some("my-key")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("my-key"), "{message}");
    }
    // The same body gets the first outcome; nothing else was bought.
    let (status, again) = store.buy(0, "Tux", 2, Some("my-key")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(store.stock(0, "Tux").await, tux);
    assert_eq!(store.stock(0, "Lego").await, lego);
    let (status, _) = store.get(0, "/orders/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no second order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_hits_and_purchases_are_visible_here_at_once_and_elsewhere_within_a_second() {
    let store = Store::start_in_process(StoreOptions {
        frontends: 2,
        ..Default::default()
    })
    .await;
    let before = store.stock(0, "Whale").await;
    let hits = store
        .metric(0, "toystore_frontend_cache_lookups_total", "hit")
        .await;
    assert_eq!(store.stock(0, "Whale").await, before);
    let after = store
        .metric(0, "toystore_frontend_cache_lookups_total", "hit")
        .await;
    assert_eq!(after, hits + 1.0, "the second query is a cache hit");

    // A purchase through this frontend is visible here at once.
    let (status, _) = store.buy(0, "Whale", 3, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store.stock(0, "Whale").await, before - 3);

    // A purchase through the other frontend is visible here within one second.
    assert_eq!(store.stock(1, "Whale").await, before - 3);
    let (status, _) = store.buy(1, "Whale", 4, None).await;
    assert_eq!(status, StatusCode::OK);
    let acked = Instant::now();
    wait_for(
        "frontend 0 to see frontend 1's purchase",
        Duration::from_secs(1),
        || async { (store.stock(0, "Whale").await == before - 7).then_some(()) },
    )
    .await;
    assert!(acked.elapsed() <= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feed_disconnect_bypasses_the_cache() {
    let mut store = Store::start(StoreOptions::default()).await;
    assert_eq!(store.get(0, "/products/Fox").await.0, StatusCode::OK);
    assert_eq!(store.get(0, "/products/Fox").await.0, StatusCode::OK); // now cached

    store.catalog().kill();
    // A cache that kept serving would answer 200 from memory; with the feed down it must ask
    // the catalog, which is gone.
    wait_for(
        "the frontend to notice the feed is down",
        Duration::from_secs(10),
        || async {
            (store.get(0, "/products/Fox").await.0 == StatusCode::SERVICE_UNAVAILABLE).then_some(())
        },
    )
    .await;
    let bypass = store
        .metric(0, "toystore_frontend_cache_lookups_total", "bypass")
        .await;
    assert!(bypass >= 1.0);

    store.restart_catalog().await;
    wait_for("the feed to reconnect", Duration::from_secs(20), || async {
        let (_, body) = store.get(0, "/readyz").await;
        (body["catalog_feed"] == true).then_some(())
    })
    .await;
    let stock = store.stock(0, "Fox").await;
    let hits = store
        .metric(0, "toystore_frontend_cache_lookups_total", "hit")
        .await;
    assert_eq!(store.stock(0, "Fox").await, stock);
    let after = store
        .metric(0, "toystore_frontend_cache_lookups_total", "hit")
        .await;
    assert_eq!(
        after,
        hits + 1.0,
        "the cache is used again after the feed reconnects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_stock_is_409_with_stock_unchanged_and_restock_brings_it_back() {
    let store = Store::start_in_process(StoreOptions {
        restock_interval_secs: 0.3,
        restock_quantity: 7,
        products: Some(vec![
            ("Rare", 10.0, 3),
            ("Tux", 15.99, 100),
            ("Whale", 12.5, 100),
            ("Fox", 9.0, 100),
            ("Bird", 4.5, 100),
            ("Lego", 49.0, 100),
            ("Kite", 19.0, 100),
            ("Yo-yo", 2.5, 100),
            ("Marbles", 3.0, 100),
            ("Frisbee", 8.0, 100),
        ]),
        ..Default::default()
    })
    .await;
    assert_eq!(store.buy(0, "Rare", 2, None).await.0, StatusCode::OK);
    assert_eq!(store.stock(0, "Rare").await, 1);
    let (status, body) = store.buy(0, "Rare", 5, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], 409);
    assert_eq!(
        store.stock(0, "Rare").await,
        1,
        "a refused order changes no stock"
    );

    assert_eq!(store.buy(0, "Rare", 1, None).await.0, StatusCode::OK);
    wait_for("restock of Rare", Duration::from_secs(10), || async {
        (store.stock(0, "Rare").await == 7).then_some(())
    })
    .await;
    assert_eq!(store.buy(0, "Rare", 7, None).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_on_every_public_endpoint_is_a_clear_4xx_and_changes_nothing() {
    let store = Store::start_in_process(StoreOptions::default()).await;
    let before = store.get(0, "/products").await.1;
    let url = store.frontend(0);
    let post = |body: &'static str| {
        store
            .http
            .post(format!("{url}/orders"))
            .header("content-type", "application/json")
            .body(body)
    };
    let mut cases = Vec::new();
    for body in [
        "{",
        "null",
        r#"{"name": "Tux"}"#,
        r#"{"name": "Tux", "quantity": 0}"#,
        r#"{"name": "Tux", "quantity": -1}"#,
        r#"{"name": "Tux", "quantity": 1000000}"#,
        r#"{"name": "Tux", "quantity": 1e40}"#,
        r#"{"name": "", "quantity": 1}"#,
    ] {
        cases.push((post(body), StatusCode::BAD_REQUEST));
    }
    cases.push((
        post(r#"{"name": "Tux", "quantity": 1}"#).header("Idempotency-Key", "bad key!"),
        StatusCode::BAD_REQUEST,
    ));
    cases.push((
        store
            .http
            .post(format!("{url}/orders"))
            .body(r#"{"name":"Tux","quantity":1}"#),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ));
    cases.push((
        store
            .http
            .post(format!("{url}/orders"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"name":"{}","quantity":1}}"#,
                "x".repeat(100_000)
            )),
        StatusCode::PAYLOAD_TOO_LARGE,
    ));
    for path in ["/orders/x", "/orders/-3", "/orders/99999999999999999999999"] {
        cases.push((
            store.http.get(format!("{url}{path}")),
            StatusCode::BAD_REQUEST,
        ));
    }
    cases.push((
        store.http.get(format!("{url}/orders/5")),
        StatusCode::NOT_FOUND,
    ));
    cases.push((
        store.http.get(format!("{url}/products/%00weird")),
        StatusCode::NOT_FOUND,
    ));
    cases.push((store.http.get(format!("{url}/nope")), StatusCode::NOT_FOUND));
    cases.push((
        store.http.put(format!("{url}/products")),
        StatusCode::METHOD_NOT_ALLOWED,
    ));
    for (req, expected) in cases {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.expect("error body is JSON");
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["error"]["code"], expected.as_u16(), "{body}");
    }
    assert_eq!(
        store.get(0, "/products").await.1,
        before,
        "no stock changed"
    );
    assert_eq!(
        store.get(0, "/orders/0").await.0,
        StatusCode::NOT_FOUND,
        "no order created"
    );
}

/// One purchase attempt made by the load in the exactly-once tests.
#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    name: String,
    quantity: u32,
    number: Option<u64>,
}

const TOYS: [&str; 4] = ["Tux", "Whale", "Fox", "Lego"];

/// `clients` concurrent buyers through the frontends, `per_client` purchases each; a 503 is
/// retried with the same key a few times, like a careful client.
async fn buy_concurrently(buyer: Buyer, clients: usize, per_client: usize) -> Vec<Attempt> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = buyer.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            for i in 0..per_client {
                let key = format!("c{c}-{i}");
                let name = TOYS[(c + i) % TOYS.len()].to_string();
                let quantity = 1 + (i % 3) as u32;
                let mut number = None;
                for _ in 0..5 {
                    let (status, body) = store
                        .buy(c % store.frontends(), &name, quantity as i64, Some(&key))
                        .await;
                    match status {
                        StatusCode::OK => {
                            number = body["data"]["order_number"].as_u64();
                            break;
                        }
                        StatusCode::SERVICE_UNAVAILABLE => continue,
                        other => panic!("unexpected {other} for {key}: {body}"),
                    }
                }
                attempts.push(Attempt {
                    key,
                    name,
                    quantity,
                    number,
                });
            }
            attempts
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// For every key one outcome; every acknowledged order confirmed under its number; the
/// books balance (stock = initial + restocked − sold, sold = the confirmed orders'
/// quantities, which are the attempts' confirmed quantities); numbers dense and readable.
async fn assert_exactly_once(store: &Store, attempts: &[Attempt]) {
    let group = store.group();
    let mut records = HashMap::new();
    for a in attempts {
        let record = match group.order_by_key(&a.key).await {
            Ok(r) => Some(r),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => None,
            Err(e) => panic!("reading {}: {e}", a.key),
        };
        records.insert(a.key.clone(), record);
    }
    let audit = store.audit().await;
    let mut confirmed_by_toy: BTreeMap<String, u64> = BTreeMap::new();
    let mut confirmed = 0u64;
    for a in attempts {
        let record = &records[&a.key];
        if let Some(number) = a.number {
            assert_eq!(
                record.as_ref().map(|r| r.status.clone()),
                Some(OrderStatus::Confirmed { number }),
                "acknowledged order {} ({}) lost or renumbered",
                number,
                a.key
            );
        }
        if matches!(record, Some(r) if matches!(r.status, OrderStatus::Confirmed { .. })) {
            confirmed += 1;
            *confirmed_by_toy.entry(a.name.clone()).or_default() += u64::from(a.quantity);
        }
    }
    assert_eq!(audit.confirmed, confirmed, "confirmed orders in the books");
    for p in &audit.products {
        assert_eq!(
            p.stock,
            p.initial + p.restocked - p.sold,
            "stock of {}",
            p.name
        );
        assert_eq!(p.sold, p.ordered, "{}", p.name);
        assert_eq!(
            p.sold,
            confirmed_by_toy.get(&p.name).copied().unwrap_or(0),
            "{}",
            p.name
        );
    }
    // Dense numbering and every acknowledged order readable through a frontend.
    if confirmed > 0 {
        assert_eq!(
            store.get(0, &format!("/orders/{}", confirmed - 1)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        store.get(0, &format!("/orders/{confirmed}")).await.0,
        StatusCode::NOT_FOUND
    );
    for a in attempts.iter().filter(|a| a.number.is_some()) {
        let (status, body) = store
            .get(0, &format!("/orders/{}", a.number.unwrap()))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["name"], a.name.as_str());
        assert_eq!(body["data"]["quantity"], a.quantity);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_sigkill_during_purchases_is_exactly_once() {
    let mut store = Store::start(StoreOptions {
        frontends: 2,
        ..Default::default()
    })
    .await;
    let load = tokio::spawn(buy_concurrently(store.buyer(), 8, 25));
    wait_for("some orders", Duration::from_secs(30), || async {
        (store.get(0, "/orders/20").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let leader = store.leader().await;
    store.replica(leader).kill();
    let attempts = load.await.unwrap();
    assert!(
        attempts.iter().all(|a| a.number.is_some()),
        "the frontend hides fail-over: every purchase succeeded"
    );
    assert_exactly_once(&store, &attempts).await;
    // The old leader comes back and the store keeps selling.
    store.restart_replica(leader).await;
    assert_eq!(store.buy(0, "Tux", 1, None).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_go_on_and_frontends_stay_ready_while_the_catalog_is_down() {
    let mut store = Store::start(StoreOptions {
        frontends: 2,
        ..Default::default()
    })
    .await;
    let load = tokio::spawn(buy_concurrently(store.buyer(), 8, 25));
    wait_for("some orders", Duration::from_secs(30), || async {
        (store.get(0, "/orders/20").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    store.catalog().kill();
    // Queries have nowhere to go: 503, with a JSON error.
    wait_for(
        "queries to fail while the catalog is down",
        Duration::from_secs(10),
        || async {
            let (status, body) = store.get(1, "/products/Kite").await;
            (status == StatusCode::SERVICE_UNAVAILABLE && body["error"]["code"] == 503)
                .then_some(())
        },
    )
    .await;
    // Every frontend stays in its load balancer: it can still sell.
    for i in 0..2 {
        let r = store
            .http
            .get(format!("{}/readyz", store.frontend(i)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "frontend {i} ready without a catalog"
        );
    }
    let attempts = load.await.unwrap();
    assert!(
        attempts.iter().all(|a| a.number.is_some()),
        "no purchase waited for the catalog: {:?}",
        attempts
            .iter()
            .filter(|a| a.number.is_none())
            .collect::<Vec<_>>()
    );
    // The catalog comes back and queries do too, showing every purchase.
    store.restart_catalog().await;
    wait_for("queries to come back", Duration::from_secs(20), || async {
        (store.get(1, "/products/Kite").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert_exactly_once(&store, &attempts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_unready_but_serving_then_exits() {
    let mut store = Store::start(StoreOptions {
        shutdown_delay_ms: 3000,
        ..StoreOptions::default()
    })
    .await;
    let url = store.frontend(0);
    let sent = Instant::now();
    store
        .frontend_process(0)
        .signal(nix::sys::signal::Signal::SIGTERM);

    // Draining: out of rotation, still serving, and asking clients to reconnect elsewhere.
    let ready = wait_for("/readyz to fail", Duration::from_secs(2), || async {
        let r = store.http.get(format!("{url}/readyz")).send().await.ok()?;
        (r.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
    })
    .await;
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["message"], "shutting down", "{body}");
    let r = store
        .http
        .post(format!("{url}/orders"))
        .json(&json!({"name": "Tux", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "orders are still taken while draining"
    );
    assert_eq!(r.headers()["connection"], "close");
    assert!(
        sent.elapsed() < Duration::from_millis(3000),
        "checked within the drain period"
    );

    // Then it stops by itself, cleanly, not before the delay.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = store.frontend_process(0).exited() {
            break status;
        }
        assert!(Instant::now() < deadline, "the frontend did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(sent.elapsed() >= Duration::from_millis(3000));
}
