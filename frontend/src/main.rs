//! `frontend`: parses flags, binds the listener and serves the public API.

use api::settings::{DEFAULT_LOG_FORMAT, Frontend as FrontendSettings};
use clap::Parser;

use frontend::args::Args;
use frontend::{Frontend, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let given = Args::parse().settings;
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    let log_format = given.log_format.as_deref().unwrap_or(DEFAULT_LOG_FORMAT);
    servicekit::init_tracing(log_format, "info").map_err(anyhow::Error::msg)?;
    let settings = Settings::try_from(&given)?;
    let listen = given.listen.unwrap_or(FrontendSettings::DEFAULT_LISTEN);
    let listener = servicekit::bind(listen).await?;
    tracing::info!(%listen, "frontend serving");
    let drain = settings.shutdown_delay;
    frontend::serve(Frontend::start(settings), listener, drain, shutdown).await;
    Ok(())
}
