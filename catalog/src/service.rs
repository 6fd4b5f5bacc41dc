//! The running catalog: the store behind `spawn_blocking`, the feed version watch and metrics.
//!
//! redb calls block (a durable commit waits for fsync), so every store call runs on tokio's
//! blocking pool and never stalls the HTTP workers. After each commit that hands out a feed
//! version, the version watch is raised, which wakes the long-polls waiting on it
//! ([`crate::feed`]). The watch only ever moves forward, so two commits finishing in either
//! order leave it at the larger version.

use std::path::PathBuf;
use std::sync::Arc;

use api::catalog::{Audit, ChangeBatch, ChangeEvent, Product, TakeRequest, TakeResponse};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::seed::SeedProduct;
use crate::store::{MAX_BATCH, Store, StoreError};

/// Errors of catalog operations.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task running a store call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The catalog service state shared by the HTTP handlers and the restock task.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<Store>,
    version: watch::Sender<u64>,
    shutting_down: watch::Sender<bool>,
    metrics: Metrics,
}

impl Catalog {
    /// Opens the store in `data_dir` and seeds it with `seed` if it was never seeded.
    pub async fn open(
        data_dir: PathBuf,
        seed: Vec<SeedProduct>,
    ) -> Result<Arc<Self>, CatalogError> {
        Self::open_store(move || Store::open(&data_dir), seed).await
    }

    /// Like [`Catalog::open`] with a store opened by `open` (tests use a small event retention).
    pub async fn open_store(
        open: impl FnOnce() -> Result<Store, StoreError> + Send + 'static,
        seed: Vec<SeedProduct>,
    ) -> Result<Arc<Self>, CatalogError> {
        let (store, seeded, version, count) = tokio::task::spawn_blocking(move || {
            let store = open()?;
            let seeded = store.seed(&seed)?;
            let version = store.version()?;
            let count = store.product_count()?;
            Ok::<_, StoreError>((store, seeded, version, count))
        })
        .await??;
        if seeded {
            tracing::info!(products = count, "seeded a new catalog");
        } else {
            tracing::info!(products = count, version, "opened the stored catalog");
        }
        let metrics = Metrics::new();
        metrics.set_products(count);
        Ok(Arc::new(Self {
            store: Arc::new(store),
            version: watch::Sender::new(version),
            shutting_down: watch::Sender::new(false),
            metrics,
        }))
    }

    /// Runs `f` on the store in the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }

    /// Raises the version watch to `version` if that is newer.
    fn publish(&self, version: u64) {
        self.version.send_if_modified(|v| {
            let newer = version > *v;
            if newer {
                *v = version;
            }
            newer
        });
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The last committed feed version.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// A receiver of the feed version, raised after each commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A receiver that turns `true` when the service begins to shut down.
    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutting_down.subscribe()
    }

    /// Tells long-polls to answer now: the server is going away.
    pub fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
    }

    /// Takes stock for a purchase (see [`Store::take`]).
    pub async fn take(&self, req: TakeRequest) -> Result<TakeResponse, CatalogError> {
        let (key, name, quantity) = (req.key.clone(), req.name.clone(), req.quantity);
        let take = self.blocking(move |s| s.take(&req)).await?;
        if take.mismatched {
            tracing::warn!(
                %key, %name, quantity,
                "take key reused for another toy or quantity; answering its first outcome"
            );
        }
        if let Some(v) = take.new_version {
            self.publish(v);
        }
        self.metrics.take(take.response.outcome, take.repeated);
        Ok(take.response)
    }

    /// Restocks sold-out toys to `quantity` (see [`Store::restock`]).
    pub async fn restock(&self, quantity: u32) -> Result<Vec<ChangeEvent>, CatalogError> {
        let events = self.blocking(move |s| s.restock(quantity)).await?;
        if let Some(last) = events.last() {
            self.publish(last.version);
            self.metrics.restocked(events.len(), quantity);
        }
        Ok(events)
    }

    /// Every product, sorted by name.
    pub async fn products(&self) -> Result<Vec<Product>, CatalogError> {
        self.blocking(Store::products).await
    }

    /// The product called `name`.
    pub async fn product(&self, name: String) -> Result<Option<Product>, CatalogError> {
        self.blocking(move |s| s.product(&name)).await
    }

    /// The feed after `after` as it is now (no waiting; see [`crate::feed`] for long-polls).
    pub async fn changes_now(&self, after: u64) -> Result<ChangeBatch, CatalogError> {
        self.blocking(move |s| s.changes(after, MAX_BATCH)).await
    }

    /// Every product's bookkeeping and every take record.
    pub async fn audit(&self) -> Result<Audit, CatalogError> {
        self.blocking(Store::audit).await
    }

    /// Whether the store can be read and holds its seeded products.
    pub async fn is_ready(&self) -> Result<bool, CatalogError> {
        self.blocking(Store::is_seeded).await
    }
}
