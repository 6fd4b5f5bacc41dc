//! Starting the catalog and serving it on the listener it is given until shutdown.
//!
//! Start-up order: validate the seed (a broken products file stops the service before anything
//! starts), start following the order group's change stream, define the toys if the store has
//! none yet, start the restock task, serve. On shutdown, waiting long-polls are answered at
//! once so the graceful shutdown does not hang for their full wait.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::seed::{self, SeedError};
use crate::state::Catalog;

/// Everything needed to run the catalog, from its command line (see [`crate::args`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seed list of the order replicas' client URLs (the rest is learned).
    pub order_replicas: Vec<String>,
    /// Products file defining the toys at a store's first start (default: the built-in toys).
    pub products_file: Option<PathBuf>,
    /// Time between restock rounds.
    pub restock_interval: Duration,
    /// Stock a sold-out toy is restocked to.
    pub restock_quantity: u32,
    /// The cluster token (the change stream and the inventory commands need it).
    pub token: String,
}

/// Errors that stop the catalog.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The products file is unusable.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The listener's address could not be read.
    #[error("listener address: {0}")]
    Listener(#[source] std::io::Error),
}

/// Serves a catalog with `settings` in a task of this process, on a listener bound to loopback
/// port 0, until the task is aborted (see [`servicekit::Spawned`]). A catalog that fails to
/// start logs why.
pub async fn spawn_on_loopback(settings: Settings) -> std::io::Result<servicekit::Spawned> {
    let (listener, url) = servicekit::bind_loopback().await?;
    let task = tokio::spawn(async move {
        if let Err(e) = run(settings, listener, std::future::pending()).await {
            tracing::error!(error = %e, "catalog stopped");
        }
    });
    Ok(servicekit::Spawned { url, task })
}

/// Runs the catalog on `listener` until `shutdown` completes, then stops its tasks.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let products = match &settings.products_file {
        Some(path) => seed::load(path)?,
        None => seed::default_products(),
    };
    let listen = listener.local_addr().map_err(ServeError::Listener)?;
    let catalog = Catalog::new(settings.order_replicas.clone(), settings.token.clone());
    tracing::info!(
        %listen,
        order_replicas = ?settings.order_replicas,
        restock_interval = ?settings.restock_interval,
        restock_quantity = settings.restock_quantity,
        "catalog serving"
    );
    let tasks = [
        tokio::spawn(refresh_group(catalog.clone())),
        tokio::spawn(crate::follow::run(catalog.clone())),
        tokio::spawn(crate::restock::define_at_first_start(
            catalog.clone(),
            products,
        )),
        tokio::spawn(crate::restock::run(
            catalog.clone(),
            settings.restock_interval,
            settings.restock_quantity,
        )),
    ];
    let app = crate::http::router(catalog.clone());
    let releasing = catalog.clone();
    servicekit::serve(listener, app, servicekit::Limits::PUBLIC, async move {
        shutdown.await;
        releasing.begin_shutdown();
    })
    .await;
    for task in tasks {
        task.abort();
    }
    tracing::info!("catalog stopped");
    Ok(())
}

/// Re-learns the order group's membership and leader every second.
async fn refresh_group(catalog: std::sync::Arc<Catalog>) {
    loop {
        catalog.group.refresh().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
