//! `order-replica`: parses flags and runs one member of the order group.

use anyhow::Context;
use clap::Parser;

use order_replica::args::Args;
use order_replica::server;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::stop_signal();
    servicekit::init_tracing(&args.log_format, "info,openraft=warn").map_err(anyhow::Error::msg)?;
    let settings = args.settings()?;
    server::run(settings, shutdown)
        .await
        .context("order replica failed")
}
