//! Bad input on every endpoint gets a clear 4xx JSON error, never a crash and never a change.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use support::Server;

/// Sends a request; returns the status and the decoded JSON body.
async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("the catalog answers");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?} (status {status})"));
    (status, body)
}

fn assert_error(what: &str, status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"]["code"], expected.as_u16(), "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error has a message: {body}"
    );
}

/// An HTTP client that sends the cluster token with every request.
fn with_token() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", support::TOKEN);
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_stock_and_the_audit_need_the_cluster_token() {
    let server = Server::start(&[]).await;
    let url = server.url();
    let http = reqwest::Client::new();
    let take = r#"{"key": "k1", "name": "Tux", "quantity": 1}"#;
    for token in [None, Some("wrong-token")] {
        let mut post = http
            .post(format!("{url}/take"))
            .header("content-type", "application/json")
            .body(take);
        let mut get = http.get(format!("{url}/audit"));
        if let Some(t) = token {
            post = post.bearer_auth(t);
            get = get.bearer_auth(t);
        }
        for (what, req) in [("take", post), ("audit", get)] {
            let (status, json) = send(req).await;
            assert_error(what, status, &json, StatusCode::UNAUTHORIZED);
        }
    }
    // Reads need no token; nothing was taken.
    let anonymous = server.anonymous();
    assert_eq!(
        anonymous.product("Tux").await.unwrap().quantity,
        support::default_stock("Tux")
    );
    assert!(server.client().audit().await.unwrap().takes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_json_errors_and_changes_nothing() {
    let server = Server::start(&[]).await;
    let url = server.url();
    let http = with_token();
    let client = server.client();
    let products_before = client.products().await.unwrap();

    let post_take = |body: String| {
        http.post(format!("{url}/take"))
            .header("content-type", "application/json")
            .body(body)
    };
    let long_key = "k".repeat(129);
    let long_name = "n".repeat(129);
    let bad_takes = [
        r#"{"key": "k1", "name": "Tux", "quantity": 2"#.to_string(),
        "not json at all".into(),
        "[]".into(),
        "{}".into(),
        r#"{"key": "k1", "name": "Tux", "quantity": 0}"#.into(),
        r#"{"key": "k1", "name": "Tux", "quantity": -1}"#.into(),
        r#"{"key": "k1", "name": "Tux", "quantity": 10001}"#.into(),
        r#"{"key": "k1", "name": "Tux", "quantity": 4294967296}"#.into(),
        r#"{"key": "k1", "name": "Tux", "quantity": 99999999999999999999999}"#.into(),
        r#"{"key": "k1", "name": "Tux", "quantity": 1.5}"#.into(),
        r#"{"key": "k1", "name": "Tux", "quantity": "2"}"#.into(),
        r#"{"key": "k1", "name": "Tux"}"#.into(),
        r#"{"name": "Tux", "quantity": 1}"#.into(),
        r#"{"key": "", "name": "Tux", "quantity": 1}"#.into(),
        r#"{"key": "has space", "name": "Tux", "quantity": 1}"#.into(),
        r#"{"key": "sl/ash", "name": "Tux", "quantity": 1}"#.into(),
        format!(r#"{{"key": "{long_key}", "name": "Tux", "quantity": 1}}"#),
        r#"{"key": "k1", "name": "", "quantity": 1}"#.into(),
        r#"{"key": "k1", "name": "   ", "quantity": 1}"#.into(),
        format!(r#"{{"key": "k1", "name": "{long_name}", "quantity": 1}}"#),
    ];
    for body in bad_takes {
        let (status, json) = send(post_take(body.clone())).await;
        assert_error(&body, status, &json, StatusCode::BAD_REQUEST);
    }

    let (status, json) = send(
        http.post(format!("{url}/take"))
            .body(r#"{"key": "k1", "name": "Tux", "quantity": 1}"#),
    )
    .await;
    assert_error(
        "no content type",
        status,
        &json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );

    let big = format!(
        r#"{{"key": "k1", "name": "{}", "quantity": 1}}"#,
        "x".repeat(32 * 1024)
    );
    let (status, json) = send(post_take(big)).await;
    assert_error(
        "oversized body",
        status,
        &json,
        StatusCode::PAYLOAD_TOO_LARGE,
    );

    let (status, json) = send(http.get(format!("{url}/products/Unicorn"))).await;
    assert_error("unknown toy", status, &json, StatusCode::NOT_FOUND);
    let (status, json) = send(http.get(format!("{url}/products/%FF%FE"))).await;
    assert!(
        status.is_client_error(),
        "invalid UTF-8 name: {status} {json}"
    );
    assert_eq!(json["error"]["code"], status.as_u16());

    let bad_queries = [
        "",
        "?",
        "?after=",
        "?after=abc",
        "?after=-1",
        "?after=1.5",
        "?after=18446744073709551616",
        "?after=0&wait_ms=30001",
        "?after=0&wait_ms=-5",
        "?after=0&wait_ms=soon",
        "?wait_ms=10",
        "?after=0&afterr=1",
    ];
    for q in bad_queries {
        let (status, json) = send(http.get(format!("{url}/changes{q}"))).await;
        assert_error(
            &format!("/changes{q}"),
            status,
            &json,
            StatusCode::BAD_REQUEST,
        );
    }

    for (method, path, expected) in [
        ("GET", "/no-such-endpoint", StatusCode::NOT_FOUND),
        ("GET", "/products/Tux/extra", StatusCode::NOT_FOUND),
        ("GET", "/take", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/products", StatusCode::METHOD_NOT_ALLOWED),
        ("DELETE", "/products/Tux", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/changes", StatusCode::METHOD_NOT_ALLOWED),
        ("PUT", "/audit", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let req = http.request(method.parse().unwrap(), format!("{url}{path}"));
        let (status, json) = send(req).await;
        assert_error(&format!("{method} {path}"), status, &json, expected);
    }

    // Nothing changed: same stock, no take recorded, the feed never moved.
    assert_eq!(client.products().await.unwrap(), products_before);
    let audit = client.audit().await.unwrap();
    assert!(audit.takes.is_empty(), "{:?}", audit.takes);
    let feed = client.changes(0, Duration::ZERO).await.unwrap();
    assert_eq!(feed.version, 0);
    assert!(feed.events.is_empty());

    // And the catalog still works.
    let ok = client
        .take(&support::take("k1", "Tux", 1))
        .await
        .expect("a good take after all that");
    assert_eq!(
        ok.product.unwrap().quantity,
        support::default_stock("Tux") - 1
    );
}
