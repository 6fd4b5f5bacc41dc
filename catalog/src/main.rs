//! `catalog`: parses flags and runs the ToyStore catalog service.

use anyhow::Context;
use clap::Parser;

use catalog::args::Args;
use catalog::server;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    servicekit::init_tracing(&args.log_format, "info").map_err(anyhow::Error::msg)?;
    server::run(args.settings().map_err(anyhow::Error::msg)?, shutdown)
        .await
        .context("catalog failed")
}
