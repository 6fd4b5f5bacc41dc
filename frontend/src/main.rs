//! `frontend`: parses flags and serves the public API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use frontend::{Frontend, Settings};

/// The ToyStore frontend: public REST API, product cache and storefront page.
#[derive(Debug, Parser)]
#[command(version = api::VERSION, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FRONTEND_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The catalog's base URL.
    #[arg(long, env = "FRONTEND_CATALOG_URL")]
    catalog_url: String,
    /// Seed list of order replica URLs, comma-separated; the rest is learned.
    #[arg(
        long,
        env = "FRONTEND_ORDER_REPLICAS",
        value_delimiter = ',',
        required = true
    )]
    order_replicas: Vec<String>,
    /// Cluster token, to learn the order group's membership and leader.
    #[arg(
        long,
        env = "FRONTEND_ORDER_TOKEN",
        hide_env_values = true,
        conflicts_with = "order_token_file"
    )]
    order_token: Option<String>,
    /// File holding the cluster token.
    #[arg(long, env = "FRONTEND_ORDER_TOKEN_FILE")]
    order_token_file: Option<PathBuf>,
    /// Product cache capacity (entries); 0 turns the cache off.
    #[arg(long, env = "FRONTEND_CACHE_CAPACITY", default_value_t = 1000)]
    cache_capacity: usize,
    /// Deadline for placing an order, retries included, in milliseconds.
    #[arg(long, env = "FRONTEND_ORDER_DEADLINE_MS", default_value_t = 10_000)]
    order_deadline_ms: u64,
    /// On SIGTERM, keep serving this long (milliseconds) with /readyz failing before shutting
    /// down, so a load balancer or Service stops sending clients first. The operator sets it;
    /// 0 (local mode) stops at once.
    #[arg(long, env = "FRONTEND_SHUTDOWN_DELAY_MS", default_value_t = 0)]
    shutdown_delay_ms: u64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "FRONTEND_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    servicekit::init_tracing(&args.log_format, "info").map_err(anyhow::Error::msg)?;
    let order_token = servicekit::read_token(args.order_token, args.order_token_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    if args.order_replicas.iter().any(|u| u.trim().is_empty()) {
        bail!("--order-replicas must not contain empty URLs");
    }
    let frontend = Frontend::start(Settings {
        catalog_url: args.catalog_url,
        order_replicas: args.order_replicas,
        order_token,
        cache_capacity: args.cache_capacity,
        order_deadline: Duration::from_millis(args.order_deadline_ms),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %args.listen, "frontend serving");
    let delay = Duration::from_millis(args.shutdown_delay_ms);
    let state = frontend.clone();
    let drain_then_stop = async move {
        shutdown.await;
        if !delay.is_zero() {
            tracing::info!(?delay, "draining before shutdown");
            state.draining.store(true, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    };
    axum::serve(listener, frontend::http::router(frontend))
        .with_graceful_shutdown(drain_then_stop)
        .await
        .context("frontend server failed")
}
