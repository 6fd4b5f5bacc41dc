//! The controllers' own requests (the start-up check and the watches) against kube-rs's mocked
//! API server: each is granted by `rbac::rules()`, a list of watched namespaces keeps every
//! request inside those namespaces, and a missing CRD stops the start with an install hint.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::Reporter;

use operator::cache::Caches;
use operator::controller::{self, StartError};
use operator::events::Events;
use operator::metrics::Metrics;
use operator::order_group::HttpOrderGroup;
use operator::rbac::{self, Access};
use operator::reconcile::{Context, Memory};

/// The kinds the controllers list and watch: stores and every kind they manage (cached), and
/// backups and their Jobs.
const WATCHED: [&str; 12] = [
    "toystore.dev/toystores",
    "toystore.dev/toystorebackups",
    "batch/jobs",
    "/configmaps",
    "/serviceaccounts",
    "/services",
    "apps/statefulsets",
    "apps/deployments",
    "policy/poddisruptionbudgets",
    "networking.k8s.io/networkpolicies",
    "/pods",
    "/persistentvolumeclaims",
];

fn context(client: Client) -> Arc<Context> {
    Arc::new(Context {
        client: client.clone(),
        events: Events::new(client, Reporter::from("toystore-operator")),
        group: Arc::new(HttpOrderGroup::default()),
        metrics: Arc::new(Metrics::default()),
        default_storage_class: None,
        cache: Caches::new().0,
        memory: Arc::new(Memory::default()),
    })
}

/// Runs the controllers of `listed` namespaces against an empty cluster until each watched
/// kind was listed and watched in each namespace; returns every request's access.
async fn watches(listed: &[&str]) -> Vec<Access> {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = context(client.clone());
    let namespaces = controller::watched(&listed.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let expected = namespaces.len() * WATCHED.len() * 2;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        controller::run(client, &namespaces, ctx, async {
            let _ = stopped.await;
        })
        .await
    });

    let mut seen = Vec::new();
    let mut distinct = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while distinct.len() < expected {
        let (req, send) = tokio::time::timeout_at(deadline, handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("only {distinct:?} of {expected} list/watch requests"))
            .expect("a request");
        let query = req.uri().query().unwrap_or("");
        let accesses = Access::of_request(req.method().as_str(), req.uri().path(), query, false)
            .unwrap_or_else(|| panic!("not a resource request: {}", req.uri()));
        for a in &accesses {
            distinct.insert((
                a.verb.clone(),
                a.group.clone(),
                a.resource.clone(),
                a.namespace.clone(),
            ));
        }
        seen.extend(accesses);
        // An empty list, and a watch that ends at once (the watcher simply watches again).
        let body = if query.contains("watch=") {
            Vec::new()
        } else {
            br#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#
                .to_vec()
        };
        send.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(body))
                .unwrap(),
        );
    }
    let _ = stop.send(());
    running.abort();
    seen
}

fn kinds(seen: &[Access], verb: &str, namespace: Option<&str>) -> BTreeSet<String> {
    seen.iter()
        .filter(|a| a.verb == verb && a.namespace.as_deref() == namespace)
        .map(|a| format!("{}/{}", a.group, a.resource))
        .collect()
}

#[tokio::test]
async fn cluster_wide_watches_are_granted() {
    let seen = watches(&[]).await;
    let all: BTreeSet<String> = WATCHED.iter().map(|s| s.to_string()).collect();
    assert_eq!(kinds(&seen, "list", None), all);
    assert_eq!(kinds(&seen, "watch", None), all);
    for access in &seen {
        assert!(
            rbac::allows(&rbac::rules(), access),
            "not granted: {access:?}"
        );
    }
}

#[tokio::test]
async fn listed_namespaces_are_the_only_ones_watched() {
    let seen = watches(&["shop", "toys"]).await;
    let all: BTreeSet<String> = WATCHED.iter().map(|s| s.to_string()).collect();
    for ns in ["shop", "toys"] {
        assert_eq!(kinds(&seen, "list", Some(ns)), all, "{ns}");
        assert_eq!(kinds(&seen, "watch", Some(ns)), all, "{ns}");
    }
    for access in &seen {
        assert!(
            matches!(access.namespace.as_deref(), Some("shop" | "toys")),
            "request outside the watched namespaces: {access:?}"
        );
        assert!(
            rbac::allows(&rbac::rules(), access),
            "not granted: {access:?}"
        );
    }
}

/// Runs the start-up check against an API server answering every request with `status`.
async fn start_check(status: u16, namespaces: &[Option<String>]) -> Result<(), StartError> {
    start_check_of(move |_| status, namespaces).await
}

/// Runs the start-up check against an API server answering each request with the status
/// `status_of(path)` gives.
async fn start_check_of(
    status_of: impl Fn(&str) -> u16 + Send + 'static,
    namespaces: &[Option<String>],
) -> Result<(), StartError> {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let server = tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let status = status_of(req.uri().path());
            let query = req.uri().query().unwrap_or("").to_string();
            let needed =
                Access::of_request(req.method().as_str(), req.uri().path(), &query, false).unwrap();
            assert!(needed.iter().all(|a| rbac::allows(&rbac::rules(), a)));
            assert!(query.contains("limit=1"), "{query}");
            let body = if status == 200 {
                r#"{"apiVersion":"toystore.dev/v1alpha1","kind":"ToyStoreList","metadata":{},"items":[]}"#
                    .to_string()
            } else {
                format!(
                    r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":{status}}}"#
                )
            };
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(body.into_bytes()))
                    .unwrap(),
            );
        }
    });
    let result = controller::check_crd(&client, namespaces).await;
    server.abort();
    result
}

#[tokio::test]
async fn a_missing_crd_stops_the_start_with_an_install_hint() {
    let err = start_check(404, &[None]).await.unwrap_err();
    assert!(matches!(err, StartError::CrdMissing(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("kubectl apply -f crds/toystore.yaml"),
        "{err}"
    );
    let err = start_check(403, &[Some("shop".into())]).await.unwrap_err();
    assert!(matches!(err, StartError::Forbidden(..)), "{err:?}");
    start_check(200, &[Some("shop".into()), Some("toys".into())])
        .await
        .unwrap();
    // An older install with the ToyStore CRD alone: the missing one is named.
    let only_stores = |path: &str| {
        if path.ends_with("/toystorebackups") {
            404
        } else {
            200
        }
    };
    let err = start_check_of(only_stores, &[None]).await.unwrap_err();
    assert!(
        matches!(&err, StartError::CrdMissing(crd) if crd == "toystorebackups.toystore.dev"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("kubectl apply -f crds/toystore.yaml"),
        "{err}"
    );
}
