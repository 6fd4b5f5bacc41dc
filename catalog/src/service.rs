//! The running catalog: the store behind `spawn_blocking`, the feed version watch and metrics.
//!
//! redb calls block (a durable commit waits for fsync), so every store call runs on tokio's
//! blocking pool and never stalls the HTTP workers. After each commit that hands out a feed
//! version, the version watch is raised, which wakes the long-polls waiting on it
//! ([`crate::feed`]). The watch only ever moves forward, so two commits finishing in either
//! order leave it at the larger version.
//!
//! A storage error (a full disk) leaves redb refusing every later transaction. The catalog then
//! closes the database and opens it again, at most every [`REOPEN_INTERVAL`], until it works:
//! it recovers by itself once space is back. Meanwhile failed requests answer 503 (the order
//! leader retries takes by key, so every purchase still reaches one outcome); reads work again
//! as soon as the reopened store can be read. If the store stays unusable for
//! [`GIVE_UP_AFTER`], `/healthz` fails, so that a supervisor restarts the process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

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
    /// The store failed and is being reopened; retry later.
    #[error("catalog storage is recovering from an error ({0}); retry later")]
    Recovering(String),
}

/// Most takes committed in one transaction.
pub const MAX_TAKE_BATCH: usize = 256;

/// A take waiting for its batch, and where its answer goes.
type QueuedTake = (
    TakeRequest,
    oneshot::Sender<Result<crate::store::Take, CatalogError>>,
);

/// Group commit of takes: waits for one, gathers every take queued meanwhile (up to
/// [`MAX_TAKE_BATCH`]), applies them in one durable transaction, answers each. One fsync
/// serves every purchase that arrived while the previous one was on its way to disk, so the
/// catalog keeps up with many concurrent buyers instead of queueing them behind a single
/// writer. Ends when the catalog is dropped.
async fn commit_takes(catalog: Weak<Catalog>, mut queued: mpsc::UnboundedReceiver<QueuedTake>) {
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_TAKE_BATCH {
            match queued.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let Some(catalog) = catalog.upgrade() else {
            return;
        };
        let (reqs, answers): (Vec<TakeRequest>, Vec<_>) = batch.into_iter().unzip();
        let size = reqs.len();
        match catalog.blocking(move |s| s.take_batch(&reqs)).await {
            Ok(takes) => {
                for (take, answer) in takes.into_iter().zip(answers) {
                    let _ = answer.send(take.map_err(CatalogError::Store));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for answer in answers {
                    let _ = answer.send(Err(CatalogError::Recovering(why.clone())));
                }
            }
        }
        catalog.metrics().take_batch(size);
    }
}

/// Shortest time between two attempts to reopen a failed store.
pub const REOPEN_INTERVAL: Duration = Duration::from_millis(500);
/// How long a store may stay broken before `/healthz` fails.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Opens the store; called again to reopen it after a storage error.
type Opener = Box<dyn Fn() -> Result<Store, StoreError> + Send + Sync>;

/// The open store, or why there is none.
enum Slot {
    Open(Arc<Store>),
    /// Failed; `old` is the failed store, which must be dropped (by the calls still using it)
    /// before the file can be opened again.
    Broken {
        old: Weak<Store>,
        reason: String,
        since: Instant,
        last_attempt: Option<Instant>,
    },
}

/// The catalog service state shared by the HTTP handlers and the restock task.
pub struct Catalog {
    open: Arc<Opener>,
    slot: Mutex<Slot>,
    takes: mpsc::UnboundedSender<QueuedTake>,
    version: watch::Sender<u64>,
    shutting_down: watch::Sender<bool>,
    metrics: Metrics,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
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
        open: impl Fn() -> Result<Store, StoreError> + Send + Sync + 'static,
        seed: Vec<SeedProduct>,
    ) -> Result<Arc<Self>, CatalogError> {
        let open: Arc<Opener> = Arc::new(Box::new(open));
        let opener = open.clone();
        let (store, seeded, version, count) = tokio::task::spawn_blocking(move || {
            let store = opener()?;
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
        let (takes, queued) = mpsc::unbounded_channel();
        let catalog = Arc::new(Self {
            open,
            slot: Mutex::new(Slot::Open(Arc::new(store))),
            version: watch::Sender::new(version),
            shutting_down: watch::Sender::new(false),
            metrics,
            takes,
        });
        tokio::spawn(commit_takes(Arc::downgrade(&catalog), queued));
        Ok(catalog)
    }

    /// Runs `f` on the store in the blocking pool. A storage error that poisons the database
    /// marks the store broken; the next calls reopen it.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let store = self.store().await?;
        let used = store.clone();
        let result = tokio::task::spawn_blocking(move || f(&used)).await?;
        if let Err(e) = &result
            && e.needs_reopen()
        {
            self.mark_broken(&store, e.to_string());
        }
        Ok(result?)
    }

    /// The open store, reopening a broken one when it is time to try.
    async fn store(&self) -> Result<Arc<Store>, CatalogError> {
        let reason = {
            let mut slot = self.slot.lock().unwrap();
            match &mut *slot {
                Slot::Open(store) => return Ok(store.clone()),
                Slot::Broken {
                    old,
                    reason,
                    last_attempt,
                    ..
                } => {
                    let due = last_attempt.is_none_or(|t| t.elapsed() >= REOPEN_INTERVAL);
                    if !due || old.strong_count() > 0 {
                        return Err(CatalogError::Recovering(reason.clone()));
                    }
                    *last_attempt = Some(Instant::now());
                    reason.clone()
                }
            }
        };
        let open = self.open.clone();
        let reopened = tokio::task::spawn_blocking(move || open()).await?;
        let mut slot = self.slot.lock().unwrap();
        match reopened {
            Ok(store) => {
                tracing::info!(previous_error = %reason, "catalog storage reopened");
                let store = Arc::new(store);
                *slot = Slot::Open(store.clone());
                Ok(store)
            }
            Err(e) => {
                tracing::debug!(error = %e, "catalog storage cannot be reopened yet");
                if let Slot::Broken { reason, .. } = &mut *slot {
                    *reason = e.to_string();
                }
                Err(CatalogError::Recovering(e.to_string()))
            }
        }
    }

    /// Takes `failed` out of service (if it is still the open store).
    fn mark_broken(&self, failed: &Arc<Store>, reason: String) {
        let mut slot = self.slot.lock().unwrap();
        if matches!(&*slot, Slot::Open(s) if Arc::ptr_eq(s, failed)) {
            tracing::error!(error = %reason, "catalog storage failed; reopening it");
            *slot = Slot::Broken {
                old: Arc::downgrade(failed),
                reason,
                since: Instant::now(),
                last_attempt: None,
            };
        }
    }

    /// Why the store has been unusable for longer than [`GIVE_UP_AFTER`], if it has.
    pub fn stuck(&self) -> Option<String> {
        match &*self.slot.lock().unwrap() {
            Slot::Broken { reason, since, .. } if since.elapsed() >= GIVE_UP_AFTER => Some(
                format!("catalog storage broken for {:?}: {reason}", since.elapsed()),
            ),
            _ => None,
        }
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

    /// Takes stock for a purchase (see [`Store::take`]). Concurrent takes are committed
    /// together, one durable transaction per batch ([`commit_takes`]).
    pub async fn take(&self, req: TakeRequest) -> Result<TakeResponse, CatalogError> {
        let (key, name, quantity) = (req.key.clone(), req.name.clone(), req.quantity);
        let (answer, answered) = oneshot::channel();
        self.takes
            .send((req, answer))
            .map_err(|_| CatalogError::Recovering("the catalog is stopping".into()))?;
        let take = answered
            .await
            .map_err(|_| CatalogError::Recovering("the take was dropped".into()))??;
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
