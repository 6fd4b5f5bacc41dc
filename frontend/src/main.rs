//! `frontend`: parses flags and serves the public API.

use clap::Parser;

use frontend::Frontend;
use frontend::args::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::shutdown_signal();
    servicekit::init_tracing(&args.log_format, "info").map_err(anyhow::Error::msg)?;
    let frontend = Frontend::start(args.settings()?);
    let listener = servicekit::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, "frontend serving");
    frontend::serve(frontend, listener, args.shutdown_delay(), shutdown).await;
    Ok(())
}
