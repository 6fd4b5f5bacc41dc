//! Opening the catalog and serving it until shutdown.
//!
//! Start-up order: validate the seed (a broken products file stops the service before it
//! touches the disk), bind the listen address, open and seed the store, start the restock task,
//! serve. On shutdown, waiting long-polls are answered at once so the graceful shutdown does not
//! hang for their full wait.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::seed::{self, SeedError};
use crate::service::{Catalog, CatalogError};

/// Everything needed to run the catalog.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// Products file used on the first start (default: the built-in toys).
    pub products_file: Option<PathBuf>,
    /// Time between restock rounds.
    pub restock_interval: Duration,
    /// Stock a sold-out toy is restocked to.
    pub restock_quantity: u32,
    /// The cluster token `/take` and `/audit` require.
    pub token: String,
}

/// Errors that stop the catalog.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The products file is unusable.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] servicekit::BindError),
    /// The store could not be opened or seeded.
    #[error("cannot open the catalog in {dir}: {source}")]
    Open {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: CatalogError,
    },
}

/// Opens the catalog, serves it until `shutdown` completes, then stops the restock task.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let products = match &settings.products_file {
        Some(path) => seed::load(path)?,
        None => seed::default_products(),
    };
    let listener = servicekit::bind(settings.listen).await?;
    let catalog = Catalog::open(settings.data_dir.clone(), products)
        .await
        .map_err(|source| ServeError::Open {
            dir: settings.data_dir.clone(),
            source,
        })?;
    tracing::info!(
        listen = %settings.listen,
        data_dir = %settings.data_dir.display(),
        restock_interval = ?settings.restock_interval,
        restock_quantity = settings.restock_quantity,
        version = catalog.version(),
        "catalog serving"
    );
    let restocker = tokio::spawn(crate::restock::run(
        catalog.clone(),
        settings.restock_interval,
        settings.restock_quantity,
    ));
    let app = crate::http::router(catalog.clone(), &settings.token);
    let releasing = catalog.clone();
    servicekit::serve(listener, app, servicekit::Limits::PUBLIC, async move {
        shutdown.await;
        releasing.begin_shutdown();
    })
    .await;
    restocker.abort();
    tracing::info!("catalog stopped");
    Ok(())
}
