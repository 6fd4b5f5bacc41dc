//! `catalog`: parses flags, binds the listener and runs the ToyStore catalog service.

use anyhow::Context;
use api::settings::{Catalog, DEFAULT_LOG_FORMAT};
use clap::Parser;

use catalog::args::Args;
use catalog::server::{self, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let given = Args::parse().settings;
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    let log_format = given.log_format.as_deref().unwrap_or(DEFAULT_LOG_FORMAT);
    servicekit::init_tracing(log_format, "info").map_err(anyhow::Error::msg)?;
    let settings = Settings::try_from(&given).map_err(anyhow::Error::msg)?;
    let listener = servicekit::bind(given.listen.unwrap_or(Catalog::DEFAULT_LISTEN)).await?;
    server::run(settings, listener, shutdown)
        .await
        .context("catalog failed")
}
