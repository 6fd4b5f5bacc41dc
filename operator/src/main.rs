//! `toystore-operator`: parses its arguments, connects, binds its listener and runs
//! [`operator::server::run`].
//!
//! High availability: run one replica (the chart's Deployment uses the `Recreate` strategy).
//! Reconciles are idempotent and every membership step resumes after a restart, so a crashed
//! operator loses only the seconds until its replacement starts; two operators at once would
//! not corrupt a store either, but could publish duplicate events.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use kube::Client;
use kube::runtime::events::Reporter;

use operator::cache::Caches;
use operator::events::Events;
use operator::metrics::Metrics;
use operator::order_group::HttpOrderGroup;
use operator::reconcile::{Context, Memory};
use operator::{controller, server};

/// The ToyStore operator.
#[derive(Debug, Parser)]
#[command(version = api::VERSION, about)]
struct Args {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Watch only these namespaces, comma-separated (default: all namespaces). With a list,
    /// the operator needs permissions in those namespaces only.
    #[arg(long, env = "OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// Storage class for the volumes of new stores whose spec names none (default: the
    /// cluster's default class).
    #[arg(long, env = "OPERATOR_DEFAULT_STORAGE_CLASS")]
    default_storage_class: Option<String>,
    /// Log format: `json` or `text`.
    #[arg(long, env = "OPERATOR_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shutdown = servicekit::shutdown_signal();
    servicekit::init_tracing(&args.log_format, "info,kube=warn").map_err(anyhow::Error::msg)?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let ctx = Arc::new(Context {
        client: client.clone(),
        events: Events::new(client.clone(), Reporter::from("toystore-operator")),
        group: Arc::new(HttpOrderGroup::default()),
        metrics: Arc::new(Metrics::default()),
        // An empty value means "unset", not the empty class (which disables provisioning).
        default_storage_class: args.default_storage_class.clone().filter(|c| !c.is_empty()),
        // Each controller gets its own caches (see `controller::Controllers`).
        cache: Caches::new().0,
        memory: Arc::new(Memory::default()),
    });
    let listener = servicekit::bind(args.listen).await?;
    let namespaces = controller::watched(&args.watch_namespaces);
    server::run(listener, client, &namespaces, ctx, shutdown).await?;
    tracing::info!("toystore operator stopped");
    Ok(())
}
