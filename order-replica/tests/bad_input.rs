//! Bad input gets a clear 4xx JSON error, never a crash and never a change.

mod support;

use reqwest::StatusCode;
use serde_json::Value;

use support::{Cluster, Options, TOKEN, assert_dense};

/// Sends a request and returns the status and the decoded JSON error body.
async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("the replica answers");
    let status = resp.status();
    let body: Value = resp.json().await.expect("the body is JSON");
    (status, body)
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "body: {body}");
    assert_eq!(body["error"]["code"], expected.as_u16(), "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error has a message: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_client_input_is_refused_with_json_errors_and_changes_nothing() {
    let cluster = Cluster::three_in_process(Options::default()).await;
    let leader = cluster.leader().await;
    let url = cluster.url(leader);
    let http = reqwest::Client::new();
    let post = |body: &'static str| {
        http.post(format!("{url}/orders"))
            .header("content-type", "application/json")
            .body(body)
    };

    let bad_bodies = [
        r#"{"name": "Tux", "quantity": 2"#,
        r#"not json at all"#,
        r#"{"name": "Tux", "quantity": 0}"#,
        r#"{"name": "Tux", "quantity": -5}"#,
        r#"{"name": "Tux", "quantity": 10001}"#,
        r#"{"name": "Tux", "quantity": 99999999999999999999999}"#,
        r#"{"name": "Tux", "quantity": 1.5}"#,
        r#"{"name": "Tux", "quantity": "2"}"#,
        r#"{"name": "", "quantity": 1}"#,
        r#"{"quantity": 1}"#,
        r#"{"name": "Tux", "quantity": 1, "price": 0}"#,
        r#"[]"#,
    ];
    for body in bad_bodies {
        let (status, json) = send(post(body)).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST);
    }

    let (status, json) = send(
        http.post(format!("{url}/orders"))
            .body(r#"{"name": "Tux", "quantity": 1}"#),
    )
    .await;
    assert_error(status, &json, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let big = format!(r#"{{"name": "{}", "quantity": 1}}"#, "x".repeat(64 * 1024));
    let (status, json) = send(
        http.post(format!("{url}/orders"))
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_error(status, &json, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, json) =
        send(post(r#"{"name": "Tux", "quantity": 1}"#).header("Idempotency-Key", "has spaces"))
            .await;
    assert_error(status, &json, StatusCode::BAD_REQUEST);

    for path in ["/orders/0", "/orders/123456"] {
        let (status, json) = send(http.get(format!("{url}{path}"))).await;
        assert_error(status, &json, StatusCode::NOT_FOUND);
    }
    for path in ["/orders/abc", "/orders/-1", "/orders/1.5"] {
        let (status, json) = send(http.get(format!("{url}{path}"))).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST);
    }
    let (status, json) = send(http.get(format!("{url}/no/such/thing"))).await;
    assert_error(status, &json, StatusCode::NOT_FOUND);
    let (status, json) = send(http.delete(format!("{url}/orders"))).await;
    assert_error(status, &json, StatusCode::METHOD_NOT_ALLOWED);

    // Nothing above created an order, and the replica still works.
    assert_dense(&cluster, leader, 0).await;
    let (status, json) = send(post(r#"{"name": "Tux", "quantity": 1}"#)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["data"]["order_number"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raft_and_admin_endpoints_need_the_cluster_token() {
    let cluster = Cluster::three_in_process(Options::default()).await;
    let url = cluster.url(1);
    let http = reqwest::Client::new();
    let endpoints = [
        ("GET", "/raft/status"),
        ("GET", "/raft/read-index"),
        ("POST", "/raft/append"),
        ("POST", "/raft/vote"),
        ("POST", "/raft/snapshot"),
        ("POST", "/admin/initialize"),
        ("POST", "/admin/admit"),
        ("POST", "/admin/learners"),
        ("POST", "/admin/membership"),
        ("POST", "/admin/transfer-leader"),
        ("POST", "/admin/elect"),
        ("POST", "/admin/snapshot"),
        ("POST", "/inventory/define"),
        ("POST", "/inventory/restock"),
        ("GET", "/inventory/changes?after=0"),
        ("GET", "/audit"),
    ];
    for (method, path) in endpoints {
        for token in [None, Some("wrong-token")] {
            let mut req = http.request(method.parse().unwrap(), format!("{url}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let (status, json) =
                send(req.header("content-type", "application/json").body("{}")).await;
            assert_error(status, &json, StatusCode::UNAUTHORIZED);
        }
    }
    // The right token opens the door.
    let resp = http
        .get(format!("{url}/raft/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Bad admin input with the right token is a 400, not a crash.
    let (status, json) = send(
        http.post(format!("{url}/admin/membership"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(r#"{"voters": []}"#),
    )
    .await;
    assert_error(status, &json, StatusCode::BAD_REQUEST);
    // The read-only view of the group needs no token (the frontends find the leader with it).
    let view: api::raft::GroupInfo = http
        .get(format!("{url}/group"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view.members.len(), 3);
    assert!(view.inventory_defined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_inventory_commands_are_refused_and_change_nothing() {
    let cluster = Cluster::three_in_process(Options::default()).await;
    let leader = cluster.leader().await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let http = reqwest::Client::new();
    let post = |id: u64, path: &str, body: &str| {
        http.post(format!("{}{path}", cluster.url(id)))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let before = cluster.client(leader).audit().await.unwrap();
    for (path, body) in [
        ("/inventory/define", r#"{"products": []}"#),
        (
            "/inventory/define",
            r#"{"products": [{"name": "", "price": 1, "quantity": 1}]}"#,
        ),
        (
            "/inventory/define",
            r#"{"products": [{"name": "A", "price": -1, "quantity": 1}]}"#,
        ),
        (
            "/inventory/define",
            r#"{"products": [{"name": "A", "price": 1, "quantity": 1}, {"name": "A", "price": 2, "quantity": 1}]}"#,
        ),
        ("/inventory/define", r#"{"products": "Tux"}"#),
        (
            "/inventory/restock",
            r#"{"name": "Tux", "to": 0, "only_if_at": 0}"#,
        ),
        (
            "/inventory/restock",
            r#"{"name": "Tux", "to": 5, "only_if_at": 7}"#,
        ),
        (
            "/inventory/restock",
            r#"{"name": "Tux", "to": 2000000, "only_if_at": 0}"#,
        ),
        ("/inventory/restock", "not json"),
    ] {
        let (status, json) = send(post(leader, path, body)).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST);
    }
    let (status, _) = send(
        http.get(format!("{}/inventory/changes?after=x", cluster.url(leader)))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A follower does not take commands: it names the leader.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_follow
        .post(format!("{}/inventory/restock", cluster.url(follower)))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "Tux", "to": 5, "only_if_at": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    // Nothing changed.
    assert_eq!(cluster.client(leader).audit().await.unwrap(), before);

    // A good definition names the toys it defined and its version: the change stream holds the
    // new toy at exactly that version.
    let req = api::inventory::DefineRequest {
        products: vec![api::inventory::ProductDef {
            name: "Robot".into(),
            price: 3.0,
            quantity: 4,
        }],
    };
    let defined = cluster.client(leader).define(&req).await.unwrap();
    assert_eq!(defined.defined, ["Robot"]);
    let changes = cluster
        .client(leader)
        .inventory_changes(defined.version - 1, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(changes.events[0].version, defined.version);
    assert_eq!(changes.events[0].product.name, "Robot");
    // Defining it again defines nothing.
    let again = cluster.client(leader).define(&req).await.unwrap();
    assert!(again.defined.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_never_re_addresses_a_voter() {
    let cluster = Cluster::three_in_process(Options::default()).await;
    let leader = cluster.leader().await;
    let voter = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let http = reqwest::Client::new();
    let admin = |path: &str, body: String| {
        http.post(format!("{}{path}", cluster.url(leader)))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
    };
    let learner = |url: &str| format!(r#"{{"member": {{"id": {voter}, "url": "{url}"}}}}"#);
    for bad in [
        "not a url",
        "127.0.0.1:7001",
        "ftp://r:1",
        "http://r:1/raft?x=1",
    ] {
        let (status, json) = send(admin("/admin/learners", learner(bad))).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST);
    }
    let (status, json) = send(admin(
        "/admin/initialize",
        r#"{"members": [{"id": 1, "url": "garbage"}]}"#.into(),
    ))
    .await;
    assert_error(status, &json, StatusCode::BAD_REQUEST);
    // A well-formed address for an existing voter is refused too: voters are not moved in place.
    let (status, json) = send(admin("/admin/learners", learner("http://127.0.0.1:1"))).await;
    assert_error(status, &json, StatusCode::CONFLICT);

    let s = cluster.status(leader).await.unwrap();
    let member = s.members.iter().find(|m| m.id == voter).unwrap();
    assert_eq!(
        member.url,
        cluster.url(voter),
        "the voter's address is unchanged"
    );
    assert!(member.voter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_reused_for_another_purchase_is_refused_by_a_new_leader_too() {
    let mut cluster = Cluster::three(Options::default()).await;
    let group = cluster.group();
    let first = group
        .place_order("k-1", &support::order(2))
        .await
        .expect("the first purchase")
        .order_number;
    let old = cluster.leader().await;
    cluster.kill(old);
    let new = cluster.leader().await;
    assert_ne!(new, old);
    let refused = group.place_order("k-1", &support::order(3)).await;
    match refused {
        Err(api::ClientError::Api { status, error }) => {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(error.message.contains("k-1"), "{}", error.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }
    assert_eq!(
        group
            .place_order("k-1", &support::order(2))
            .await
            .unwrap()
            .order_number,
        first
    );
    assert_dense(&cluster, new, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_redirects_writes_to_the_leader() {
    let cluster = Cluster::three_in_process(Options::default()).await;
    let leader = cluster.leader().await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/orders", cluster.url(follower)))
        .json(&serde_json::json!({"name": "Tux", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let leader_url = cluster.url(leader);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("{leader_url}/orders")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["leader"]["id"], leader);
    assert_eq!(body["error"]["leader"]["url"], leader_url);
    // Nothing was written by the refused request.
    assert_dense(&cluster, leader, 0).await;
}
