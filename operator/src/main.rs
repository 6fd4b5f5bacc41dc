//! `toystore-operator`: wires the controller, the metrics/health server and logging.
//!
//! High availability: run one replica (the chart's Deployment uses the `Recreate` strategy).
//! Reconciles are idempotent and every membership step resumes after a restart, so a crashed
//! operator loses only the seconds until its replacement starts; two operators at once would
//! not corrupt a store either, but could publish duplicate events.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};

use operator::crd::ToyStore;
use operator::membership::HttpOrderGroup;
use operator::metrics::Metrics;
use operator::reconcile::{Context, error_policy, reconcile};

/// The ToyStore operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "OPERATOR_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Log format: `json` or `text`.
    #[arg(long, env = "OPERATOR_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shutdown = api::server::shutdown_signal();
    api::server::init_tracing(&args.log_format, "info,kube=warn").map_err(anyhow::Error::msg)?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let ns = args.watch_namespace.as_deref();
    let (stores, stateful_sets, deployments, services, config_maps) = (
        scoped::<ToyStore>(&client, ns),
        scoped::<StatefulSet>(&client, ns),
        scoped::<Deployment>(&client, ns),
        scoped::<Service>(&client, ns),
        scoped::<ConfigMap>(&client, ns),
    );
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), Reporter::from("toystore-operator")),
        group: Arc::new(HttpOrderGroup::default()),
        metrics: metrics.clone(),
    });

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move { m.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(metrics);
    tokio::spawn(async move { axum::serve(listener, app).await });

    tracing::info!(namespace = ?args.watch_namespace, "toystore operator running");
    Controller::new(stores, watcher::Config::default())
        .owns(stateful_sets, watcher::Config::default())
        .owns(deployments, watcher::Config::default())
        .owns(services, watcher::Config::default())
        .owns(config_maps, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    tracing::info!("toystore operator stopped");
    Ok(())
}

/// An Api over one namespace, or all of them.
fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
