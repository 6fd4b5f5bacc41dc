//! `toystore`: run the store locally.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use cli::local::{LocalStore, UpOptions};

/// ToyStore on one machine.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the whole store (catalog, order replicas, frontend) as local processes and keep
    /// it running until Ctrl-C.
    Up {
        /// Where all data, logs and `cluster.json` live. Reusing it resumes with all data.
        #[arg(long, default_value = "toystore-data")]
        data_dir: PathBuf,
        /// The frontend's (storefront's) port; the other services take free ports.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Catalog restock interval, seconds.
        #[arg(long, default_value_t = 10.0)]
        restock_interval: f64,
        /// Frontend cache capacity; 0 turns the cache off.
        #[arg(long, default_value_t = 1000)]
        cache_capacity: usize,
        /// Number of order replicas (odd, 1-9).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
        replicas: u64,
        /// Restart children that die unexpectedly.
        #[arg(long)]
        supervise: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Args::parse().command {
        Cmd::Up {
            data_dir,
            port,
            restock_interval,
            cache_capacity,
            replicas,
            supervise,
        } => {
            let bin_dir = std::env::current_exe()?
                .parent()
                .context("locating the toystore binary")?
                .to_path_buf();
            let store = LocalStore::up(UpOptions {
                data_dir: data_dir.clone(),
                port,
                replicas,
                restock_interval_secs: restock_interval,
                cache_capacity,
                bin_dir,
            })
            .await
            .context("starting the local store")?;
            let cluster = store.cluster();
            println!("catalog at {}", cluster.catalog.url);
            for r in &cluster.order {
                println!("order replica {} at {}", r.id, r.url);
            }
            println!("storefront: {}/", cluster.frontend);
            println!(
                "store ready; described in {}; Ctrl-C stops it",
                data_dir.join("cluster.json").display()
            );
            store.run_until(shutdown_signal(), supervise).await
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
