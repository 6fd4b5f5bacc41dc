//! `order-replica`: parses flags, binds the listeners and runs one member of the order group.

use anyhow::Context;
use api::settings::{DEFAULT_LOG_FORMAT, OrderReplica};
use clap::Parser;

use order_replica::args::Args;
use order_replica::server::{self, Listeners, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let given = Args::parse().settings;
    // Installed first, so a signal during start-up is not lost.
    let shutdown = servicekit::stop_signal();
    let log_format = given.log_format.as_deref().unwrap_or(DEFAULT_LOG_FORMAT);
    servicekit::init_tracing(log_format, "info,openraft=warn").map_err(anyhow::Error::msg)?;
    let settings = Settings::try_from(&given)?;
    let listeners = Listeners {
        client: servicekit::bind(given.listen.unwrap_or(OrderReplica::DEFAULT_LISTEN)).await?,
        peers: match given.raft_listen {
            Some(addr) => Some(servicekit::bind(addr).await?),
            None => None,
        },
    };
    server::run(settings, listeners, shutdown)
        .await
        .context("order replica failed")
}
