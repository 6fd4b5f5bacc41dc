//! The operator process: `/metrics`, `/healthz` and `/readyz` on an already-bound listener, and
//! the controllers, until shutdown.
//!
//! `main` only parses arguments, connects and binds; tests run [`run`] on `127.0.0.1:0`
//! against a mocked API server. `/healthz` answers while the process serves HTTP; `/readyz`
//! only once every controller's watch caches have synced ([`Readiness`]), else 503 with a
//! JSON error body: until then a round would wait for them, and an operator that has not
//! seen the cluster yet should not count as available.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use kube::Client;
use servicekit::HttpError;
use tokio::net::TcpListener;

use crate::cache::Readiness;
use crate::controller::{self, Controllers, StartError};
use crate::metrics::Metrics;
use crate::reconcile::Context;

/// The health and metrics routes.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State((m, _)): State<(Arc<Metrics>, Readiness)>| async move { m.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state((metrics, readiness))
}

/// 200 once every controller's caches have synced, else 503.
async fn readyz(
    State((_, readiness)): State<(Arc<Metrics>, Readiness)>,
) -> Result<impl IntoResponse, HttpError> {
    if readiness.is_ready() {
        Ok("ok")
    } else {
        Err(HttpError::unavailable(
            "not ready: the watch caches have not synced yet",
        ))
    }
}

/// Serves the health and metrics routes on `listener`, checks that the CRD is installed in
/// every namespace to watch, and runs the controllers until `shutdown` completes; then stops
/// serving.
pub async fn run(
    listener: TcpListener,
    client: Client,
    namespaces: &[Option<String>],
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let controllers = Controllers::new(&client, namespaces, &ctx);
    let app = router(ctx.metrics.clone(), controllers.readiness());
    let (stop_serving, serving_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(servicekit::serve(
        listener,
        app,
        servicekit::Limits::PUBLIC,
        async {
            let _ = serving_stopped.await;
        },
    ));
    let result = match controller::check_crd(&client, namespaces).await {
        Ok(()) => {
            tracing::info!(?namespaces, "toystore operator running");
            controllers.run(shutdown).await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    let _ = stop_serving.send(());
    let _ = server.await;
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{Request, Response};
    use kube::client::Body;

    use super::*;
    use crate::cache::Caches;

    /// Answers every request of the mocked API server: an empty list, or a watch that ends at
    /// once (the watcher simply watches again), but only once `open` is set.
    async fn empty_cluster(
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
        open: tokio::sync::watch::Receiver<bool>,
    ) {
        while let Some((req, send)) = handle.next_request().await {
            let mut open = open.clone();
            tokio::spawn(async move {
                let _ = open.wait_for(|o| *o).await;
                let body = if req.uri().query().unwrap_or("").contains("watch=") {
                    Vec::new()
                } else {
                    br#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#
                        .to_vec()
                };
                send.send_response(Response::builder().body(Body::from(body)).unwrap());
            });
        }
    }

    async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
        let response = http.get(url).send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn readyz_answers_ready_only_once_the_caches_have_synced() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let ctx = crate::reconcile::tests::context(client.clone());
        let (open, opened) = tokio::sync::watch::channel(false);
        let api_server = tokio::spawn(empty_cluster(handle, opened));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let namespaces = [Some("shop".to_string()), Some("toys".to_string())];
        let operator = tokio::spawn(async move {
            run(listener, client, &namespaces, ctx, async {
                let _ = stopped.await;
            })
            .await
        });
        let http = reqwest::Client::new();

        // The API server has answered nothing yet: alive, not ready.
        assert_eq!(get(&http, &format!("{base}/healthz")).await.0, 200);
        let (status, body) = get(&http, &format!("{base}/readyz")).await;
        assert_eq!(status, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
        assert_eq!(body["error"]["code"], 503);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("watch caches"),
            "{body}"
        );

        // Every list answered: ready.
        open.send(true).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = get(&http, &format!("{base}/readyz")).await;
            if status == 200 {
                assert_eq!(body, "ok");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not ready after every list was answered: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, metrics) = get(&http, &format!("{base}/metrics")).await;
        assert_eq!(status, 200);
        assert!(
            metrics.contains("toystore_operator_reconcile_errors_total"),
            "{metrics}"
        );

        let _ = stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(20), operator).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "the operator stops on shutdown: {stopped:?}"
        );
        api_server.abort();
    }

    #[test]
    fn without_controllers_nothing_is_ready() {
        assert!(!Readiness::default().is_ready());
    }

    #[tokio::test]
    async fn a_controller_is_ready_once_each_of_its_caches_has_its_first_list() {
        use kube::runtime::{reflector, watcher};

        let (stores, mut stores_w) = reflector::store::<crate::crd::ToyStore>();
        let (caches, mut w) = Caches::new();
        let mut readiness = Readiness::default();
        readiness.add(stores, caches);
        assert!(!readiness.is_ready());
        // Each cache in turn gets its first list; only the last makes the controller ready.
        stores_w.apply_watcher_event(&watcher::Event::InitDone);
        assert!(!readiness.is_ready());
        w.config_maps.apply_watcher_event(&watcher::Event::InitDone);
        w.service_accounts
            .apply_watcher_event(&watcher::Event::InitDone);
        w.services.apply_watcher_event(&watcher::Event::InitDone);
        w.stateful_sets
            .apply_watcher_event(&watcher::Event::InitDone);
        w.deployments.apply_watcher_event(&watcher::Event::InitDone);
        w.pod_disruption_budgets
            .apply_watcher_event(&watcher::Event::InitDone);
        w.network_policies
            .apply_watcher_event(&watcher::Event::InitDone);
        w.pods.apply_watcher_event(&watcher::Event::InitDone);
        w.jobs.apply_watcher_event(&watcher::Event::InitDone);
        w.backups.apply_watcher_event(&watcher::Event::InitDone);
        assert!(!readiness.is_ready());
        w.persistent_volume_claims
            .apply_watcher_event(&watcher::Event::InitDone);
        assert!(readiness.is_ready());
    }
}
