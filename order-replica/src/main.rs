//! `order-replica`: parses flags and runs one member of the order group.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use order_replica::replica::RaftTiming;
use order_replica::server::{self, Settings};
use order_replica::stock::{CatalogStock, StockKeeper, UnlimitedStock};

/// One replica of the ToyStore order service (Raft-replicated, durable).
///
/// The replica never initializes a group by itself: the membership driver (`toystore up` or the
/// operator) initializes a new group once and adds members through the admin API.
#[derive(Debug, Parser)]
#[command(version = api::VERSION, about)]
struct Args {
    /// Raft node id of this replica; stable for its whole life.
    #[arg(long, env = "ORDER_ID")]
    id: u64,
    /// Address to listen on for clients, peers and admin calls.
    #[arg(long, env = "ORDER_LISTEN", default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// URL peers and clients reach this replica at (default: http://<listen>).
    #[arg(long, env = "ORDER_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// Directory for the Raft log, state machine and snapshots.
    #[arg(long, env = "ORDER_DATA_DIR")]
    data_dir: PathBuf,
    /// Cluster token required on Raft RPC and admin calls.
    #[arg(
        long,
        env = "ORDER_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// File holding the cluster token (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "ORDER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Leader heartbeat interval, milliseconds.
    #[arg(long, env = "ORDER_HEARTBEAT_MS", default_value_t = 100)]
    heartbeat_ms: u64,
    /// Minimum election timeout, milliseconds.
    #[arg(long, env = "ORDER_ELECTION_TIMEOUT_MIN_MS", default_value_t = 500)]
    election_timeout_min_ms: u64,
    /// Maximum election timeout, milliseconds.
    #[arg(long, env = "ORDER_ELECTION_TIMEOUT_MAX_MS", default_value_t = 1000)]
    election_timeout_max_ms: u64,
    /// Build a snapshot and compact the log after this many new entries.
    #[arg(long, env = "ORDER_SNAPSHOT_THRESHOLD", default_value_t = 5000)]
    snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot.
    #[arg(long, env = "ORDER_LOGS_TO_KEEP", default_value_t = 1000)]
    logs_to_keep: u64,
    /// Catalog service that owns stock (e.g. http://127.0.0.1:7100). Without it every
    /// order is confirmed without taking stock (the order service on its own).
    #[arg(long, env = "ORDER_CATALOG_URL")]
    catalog_url: Option<String>,
    /// How long a purchase waits for an unreachable catalog before answering 503.
    #[arg(long, env = "ORDER_CATALOG_PATIENCE_MS", default_value_t = 5000)]
    catalog_patience_ms: u64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "ORDER_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    servicekit::init_tracing(&args.log_format, "info,openraft=warn").map_err(anyhow::Error::msg)?;
    let token = servicekit::read_token(args.token.clone(), args.token_file.as_deref())
        .map_err(anyhow::Error::msg)?
        .context("a cluster token is required: --token or --token-file")?;
    let settings = Settings {
        id: args.id,
        listen: args.listen,
        advertise_url: args
            .advertise_url
            .unwrap_or_else(|| format!("http://{}", args.listen)),
        data_dir: args.data_dir.clone(),
        token,
        timing: RaftTiming {
            heartbeat: Duration::from_millis(args.heartbeat_ms),
            election_min: Duration::from_millis(args.election_timeout_min_ms),
            election_max: Duration::from_millis(args.election_timeout_max_ms),
            snapshot_threshold: args.snapshot_threshold,
            logs_to_keep: args.logs_to_keep,
        },
    };
    let stock: Arc<dyn StockKeeper> = match &args.catalog_url {
        Some(url) => Arc::new(CatalogStock::new(
            url,
            Duration::from_millis(args.catalog_patience_ms),
        )),
        None => Arc::new(UnlimitedStock),
    };
    server::run(settings, stock, shutdown)
        .await
        .context("order replica failed")
}
