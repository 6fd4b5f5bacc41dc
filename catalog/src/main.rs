//! `catalog`: parses flags and runs the ToyStore catalog service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use catalog::server::{self, Settings};

/// The ToyStore catalog: owns the toys and their stock (durable, fsync on every change),
/// answers idempotent stock takes, restocks sold-out toys and serves a long-poll change feed.
#[derive(Debug, Parser)]
#[command(version = api::VERSION)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "CATALOG_LISTEN", default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Directory of the catalog database (created if missing).
    #[arg(long, env = "CATALOG_DATA_DIR")]
    data_dir: PathBuf,
    /// JSON array of {"name", "price", "quantity"} used on the first start only
    /// (default: twelve built-in toys, 100 of each).
    #[arg(long, env = "CATALOG_PRODUCTS")]
    products: Option<PathBuf>,
    /// Seconds between restock rounds (fractions allowed).
    #[arg(long, env = "CATALOG_RESTOCK_INTERVAL_SECS", default_value_t = 10.0, value_parser = parse_interval)]
    restock_interval_secs: f64,
    /// Stock a sold-out toy is restocked to.
    #[arg(long, env = "CATALOG_RESTOCK_QUANTITY", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    restock_quantity: u32,
    /// Log format: `text` or `json`.
    #[arg(long, env = "CATALOG_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    log_format: String,
}

/// Accepts a positive, finite number of seconds up to one day.
fn parse_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "must be more than 0 and at most 86400 seconds, got {s}"
        ));
    }
    Ok(secs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    servicekit::init_tracing(&args.log_format, "info").map_err(anyhow::Error::msg)?;
    let settings = Settings {
        listen: args.listen,
        data_dir: args.data_dir,
        products_file: args.products,
        restock_interval: Duration::from_secs_f64(args.restock_interval_secs),
        restock_quantity: args.restock_quantity,
    };
    server::run(settings, shutdown)
        .await
        .context("catalog failed")
}
