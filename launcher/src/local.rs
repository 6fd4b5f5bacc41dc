//! Local mode (`toystore up`): a [`Store`] in a directory of the user's choosing, kept running
//! until Ctrl-C, resumed with all its data when started again on the same directory.
//!
//! Besides the store's own layout the directory holds:
//! - `cluster.json`: what runs where (URLs and pids), rewritten whenever a child (re)starts;
//! - `lock`: held (flock) while a `toystore up` runs there, naming its pid, so a second one
//!   refuses instead of starting children that fight the first one's over ports and data.
//!
//! Addresses are chosen once and kept in `cluster.json`: the order group's membership records
//! each replica's address, so a restart must come back on the same addresses. Every port is
//! checked to be free before anything starts, and the store is announced only once its own
//! children answer (see [`crate::process`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use api::settings;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, Restarts};
use crate::ports;
use crate::store::{CatalogSpec, FrontendSpec, Ports, Store, StoreSpec};

/// An order replica as `cluster.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    /// Raft node id.
    pub id: u64,
    /// Base URL of its client listener.
    pub url: String,
    /// Base URL of its peer listener (Raft RPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_url: Option<String>,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// A single service as `cluster.json` records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub url: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// `DIR/cluster.json`: how scripts and tests find (and kill) the members of a running store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The storefront / public API URL.
    pub frontend: String,
    /// The frontend's process id while running.
    pub frontend_pid: Option<u32>,
    pub catalog: ServiceInfo,
    /// The order replicas.
    pub order: Vec<ReplicaInfo>,
    /// Path of the file holding the cluster token.
    pub token_file: PathBuf,
    /// How often each child (by name: `catalog`, `replica-1`, `frontend-0`, ...) was restarted
    /// by `--supervise` since this `toystore up` started; children never restarted are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub restarts: BTreeMap<String, u32>,
}

impl ClusterFile {
    /// Reads `DIR/cluster.json`.
    pub fn read(data_dir: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(data_dir.join("cluster.json"))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// Units the catalog of `toystore up` restocks a sold-out toy to, every restock interval. Ten
/// times the catalog's own default: `toystore load`'s five clients buy 30-40 units of a toy a
/// second on a small machine, and a restock that lasts a few seconds would leave a toy sold out
/// most of the time (docs/decisions.md, "The default catalog, and local mode's restock").
pub const RESTOCK_QUANTITY: u32 = 1000;

/// Options of `toystore up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Where the store keeps its data, logs, token and `cluster.json`.
    pub data_dir: PathBuf,
    /// The frontend's port (0: any free port).
    pub port: u16,
    /// Number of order replicas.
    pub replicas: u64,
    /// Catalog restock interval, seconds.
    pub restock_interval_secs: f64,
    /// Frontend cache capacity (0: no cache).
    pub cache_capacity: usize,
    /// Directory holding the service binaries.
    pub bin_dir: PathBuf,
    /// An artifact to create the store from (`toystore up --restore-from`): the directory must
    /// be new, and the store starts with the artifact's orders and stock.
    pub restore_from: Option<String>,
}

/// A running local store.
pub struct LocalStore {
    store: Store,
    options: UpOptions,
    cluster: ClusterFile,
    /// Each child's restarts, by name.
    restarts: BTreeMap<String, Restarts>,
    _lock: Flock<File>,
}

impl LocalStore {
    /// Takes the directory's lock, starts catalog, replicas and frontend (reusing earlier
    /// addresses), drives the order group's membership, and waits until the frontend is ready.
    pub async fn up(options: UpOptions) -> anyhow::Result<Self> {
        let seed = match &options.restore_from {
            Some(url) => Some(Arc::new(fetch_for_restore(url, &options.data_dir).await?)),
            None => None,
        };
        std::fs::create_dir_all(&options.data_dir)
            .with_context(|| format!("creating {}", options.data_dir.display()))?;
        let lock = lock_data_dir(&options.data_dir)?;
        let previous = ClusterFile::read(&options.data_dir).unwrap_or_default();
        let port_of = |url: &str| url.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        let mut fixed = Ports {
            catalog: port_of(&previous.catalog.url),
            ..Ports::default()
        };
        for r in &previous.order {
            if let Some(p) = port_of(&r.url) {
                fixed.replicas.insert(r.id, p);
            }
            if let Some(p) = r.raft_url.as_deref().and_then(port_of) {
                fixed.replicas_raft.insert(r.id, p);
            }
        }
        if options.port != 0 {
            fixed.frontends.insert(0, options.port);
        }
        let wanted = fixed
            .catalog
            .iter()
            .map(|p| ("the catalog", *p))
            .chain(fixed.replicas.values().map(|p| ("an order replica", *p)))
            .chain(
                fixed
                    .replicas_raft
                    .values()
                    .map(|p| ("an order replica", *p)),
            )
            .chain(fixed.frontends.values().map(|p| ("the frontend", *p)));
        for (what, port) in wanted {
            anyhow::ensure!(
                ports::is_free(port),
                "port {port} (for {what}) is in use by another program; free it{}",
                if what == "the frontend" {
                    " or choose another with --port"
                } else {
                    " (the store keeps its addresses in cluster.json)"
                }
            );
        }
        let mut spec = StoreSpec::new(&options.data_dir, &options.bin_dir);
        spec.catalog = Some(CatalogSpec {
            settings: settings::Catalog {
                restock_interval_secs: Some(options.restock_interval_secs),
                restock_quantity: Some(RESTOCK_QUANTITY),
                ..CatalogSpec::default().settings
            },
            ..CatalogSpec::default()
        });
        spec.replicas = (1..=options.replicas).collect();
        spec.frontend = FrontendSpec {
            settings: settings::Frontend {
                cache_capacity: Some(options.cache_capacity),
                ..FrontendSpec::default().settings
            },
        };
        spec.ports = fixed;
        spec.frontends = 0;
        spec.seed = seed;
        let mut store = Store::start(spec).await?;
        // The frontend last: cluster.json names every process before the store is ready.
        store.add_frontend(0)?.spawn()?;
        let mut local = Self {
            cluster: ClusterFile::default(),
            store,
            options,
            restarts: BTreeMap::new(),
            _lock: lock,
        };
        local.write_cluster_file()?;
        local
            .store
            .frontend(0)
            .wait_ready(crate::store::START_DEADLINE)
            .await?;
        Ok(local)
    }

    fn write_cluster_file(&mut self) -> anyhow::Result<()> {
        let store = &mut self.store;
        let catalog = store.catalog();
        let cluster = ClusterFile {
            catalog: ServiceInfo {
                url: catalog.url(),
                pid: catalog.pid(),
            },
            order: store
                .replica_ids()
                .into_iter()
                .map(|id| {
                    let raft_url = Some(store.replica_raft_url(id));
                    let r = store.replica(id);
                    ReplicaInfo {
                        id,
                        url: r.url(),
                        raft_url,
                        pid: r.pid(),
                    }
                })
                .collect(),
            frontend: store.frontend_url(0),
            frontend_pid: store.frontend(0).pid(),
            token_file: store.token_file(),
            restarts: self
                .restarts
                .iter()
                .filter(|(_, r)| r.total() > 0)
                .map(|(name, r)| (name.clone(), r.total()))
                .collect(),
        };
        let path = self.options.data_dir.join("cluster.json");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&cluster)?)?;
        std::fs::rename(tmp, path)?;
        self.cluster = cluster;
        Ok(())
    }

    /// The running store's description.
    pub fn cluster(&self) -> &ClusterFile {
        &self.cluster
    }

    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Waits until `shutdown` completes, reporting children that die (and restarting them when
    /// `supervise` is set, with growing back-off: [`crate::backoff`]), then stops every child.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
        supervise: bool,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let started = Instant::now();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let mut restarted = false;
            for p in self.store.processes() {
                let name = p.name().to_string();
                let now = Instant::now();
                if let Some(status) = p.exited() {
                    if !supervise {
                        tracing::warn!(%name, %status, "child exited unexpectedly (use --supervise to restart children); see {}", p.log().display());
                        continue;
                    }
                    let restarts = self
                        .restarts
                        .entry(name.clone())
                        .or_insert_with(|| Restarts::new(Backoff::default(), started));
                    let due = restarts.exited(now);
                    tracing::warn!(
                        %name,
                        %status,
                        restart = restarts.total() + 1,
                        in_secs = due.saturating_duration_since(now).as_secs_f64(),
                        "child exited unexpectedly; restarting it after a back-off; see {}",
                        p.log().display()
                    );
                }
                let Some(restarts) = self.restarts.get_mut(&name) else {
                    continue;
                };
                if p.is_running() || restarts.due().is_none_or(|due| now < due) {
                    continue;
                }
                restarts.restarting(now);
                restarted = true;
                match p.start(crate::store::START_DEADLINE).await {
                    Ok(()) => tracing::info!(%name, restarts = restarts.total(), "child restarted"),
                    Err(e) => {
                        // Exited again while starting: back off before the next attempt.
                        if !p.is_running() {
                            restarts.exited(Instant::now());
                        }
                        tracing::error!(
                            error = %e,
                            restarts = restarts.total(),
                            "restart failed; will back off and try again"
                        );
                    }
                }
            }
            if restarted {
                self.write_cluster_file()?;
            }
        }
        self.stop().await;
        Ok(())
    }

    /// Stops every child: frontend, then the replicas together, then the catalog.
    pub async fn stop(&mut self) {
        self.store.stop().await;
    }
}

/// The verified state of the artifact at `url`, for a new store in `dir`: a restore never
/// writes over a store (it would make a second group under its members' ids).
async fn fetch_for_restore(url: &str, dir: &Path) -> anyhow::Result<Vec<u8>> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    anyhow::ensure!(
        !occupied,
        "--restore-from creates a new store, but {} is not empty; choose a new --data-dir",
        dir.display()
    );
    let dest = backup::Destination::parse(url)?;
    let verified = backup::fetch_verified(&dest)
        .await
        .with_context(|| format!("restoring from {url}"))?;
    let state = &verified.manifest.state;
    tracing::info!(
        url,
        store = verified.manifest.store,
        taken = verified.manifest.created_at,
        index = state.index,
        orders = state.orders,
        "restoring a backup into a new store"
    );
    Ok(verified.state)
}

/// Takes `dir/lock` for this process, or explains who holds it.
fn lock_data_dir(dir: &Path) -> anyhow::Result<Flock<File>> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            anyhow::bail!(
                "{} is in use by another toystore (pid {}); stop it first, or use another \
                 --data-dir",
                dir.display(),
                holder.trim()
            );
        }
    };
    lock.set_len(0)?;
    lock.rewind()?;
    writeln!(lock, "{}", std::process::id())?;
    lock.sync_all()?;
    Ok(lock)
}
