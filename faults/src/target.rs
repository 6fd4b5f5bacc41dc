//! The store under test: real processes started through the launcher (order replicas, catalog
//! replicas, frontends), and the faults done to them (SIGKILL, SIGSTOP, a lost data directory,
//! a full disk), healed at the end, then read whole into a [`FinalState`] for the checkers:
//! every replica's orders and its audit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use api::ReplicaClient;
use api::client::ClientError;
use api::inventory::ProductDef;
use api::orders::OrderStatus;
use api::settings;
use futures_util::StreamExt;
use history::{FinalState, ReplicaOrders, StoredOrder, StoredStatus};
use launcher::{CatalogSpec, FrontendSpec, Store, StoreSpec};
use nix::sys::signal::Signal;
use testkit::Tmpfs;

use crate::net::Net;

/// A subnet for each network this process creates, starting at a random one so that concurrent
/// test processes rarely meet.
fn next_subnet() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let _ = NEXT.compare_exchange(
        0,
        100 + rand::random::<u8>() % 100,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    if n == 0 { 100 } else { n }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// Order replicas (odd, so that a majority is well defined).
    pub replicas: u64,
    /// Catalog replicas (stateless, side by side; the frontends use them in turn).
    pub catalogs: usize,
    /// Frontends; with more than one, clients' requests cross frontends (and their caches).
    pub frontends: usize,
    /// Give each replica's data directory a small filesystem of its own, so that one can be
    /// filled (needs root; without it [`Target::fill_disk`] says why it cannot).
    pub small_disks: bool,
    /// Run every catalog and every replica in a network namespace of its own, so the network
    /// between them can be cut (needs root, `ip` and `iptables`; see [`Net::available`]).
    pub network: bool,
    /// Where the service binaries are (`None`: the workspace's, built first if needed).
    pub bin_dir: Option<PathBuf>,
    /// The toys the store starts with (`None`: the catalog's built-in ones). The default is
    /// [`scarce_toys`], so that toys sell out and are restocked again and again while faults
    /// happen.
    pub products: Option<Vec<ProductDef>>,
}

/// Units a sold-out toy is restocked to, every second.
pub const RESTOCK_QUANTITY: u32 = 100;

/// Ten toys with a few dozen units each: a short scenario's clients sell each of them out
/// several times, so refusals for want of stock and restocks by both catalog replicas happen
/// under every fault.
pub fn scarce_toys() -> Vec<ProductDef> {
    [
        ("Tux", 15.99, 60),
        ("Whale", 24.50, 50),
        ("Elephant", 34.00, 40),
        ("Bird", 7.25, 30),
        ("Fox", 18.75, 25),
        ("Python", 12.40, 45),
        ("Lego", 89.99, 20),
        ("Barbie", 29.99, 35),
        ("Frisbee", 6.50, 55),
        ("Kite", 21.00, 30),
    ]
    .into_iter()
    .map(|(name, price, quantity)| ProductDef {
        name: name.into(),
        price,
        quantity,
    })
    .collect()
}

impl Default for TargetOptions {
    fn default() -> Self {
        Self {
            replicas: 3,
            catalogs: 2,
            frontends: 2,
            small_disks: false,
            network: false,
            bin_dir: None,
            products: Some(scarce_toys()),
        }
    }
}

/// A running store and the faults done to it.
pub struct Target {
    /// The launcher's handle on the processes, for what the fault methods do not cover
    /// (clients, logs, membership).
    pub store: Store,
    /// The network between its processes, when they run in namespaces (dropped after the
    /// store, so the processes stop first).
    pub net: Option<Net>,
    paused: BTreeSet<String>,
    disks: BTreeMap<u64, Tmpfs>,
    /// Why the small disks asked for could not be mounted.
    no_small_disks: Option<String>,
    fillers: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Target {
    /// Keeps the store's directory (data and logs) after the target is gone, for a look at a
    /// failure; returns where it is.
    pub fn keep(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_path_buf()
    }

    /// Starts the replicas, the catalogs (fast restock) and the frontends.
    pub async fn start(options: &TargetOptions) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("store");
        let mut disks = BTreeMap::new();
        let mut no_small_disks = None;
        if options.small_disks {
            for id in 1..=options.replicas {
                let disk = match Tmpfs::try_mount("24m") {
                    Ok(disk) => disk,
                    Err(why) => {
                        no_small_disks = Some(why);
                        break;
                    }
                };
                std::fs::create_dir_all(&root)?;
                let link = root.join(format!("replica-{id}"));
                std::os::unix::fs::symlink(disk.path(), &link)?;
                disks.insert(id, disk);
            }
        }
        let bin_dir = match &options.bin_dir {
            Some(dir) => dir.clone(),
            None => testkit::bin_dir(&["catalog", "order-replica", "frontend"]),
        };
        let products = match &options.products {
            Some(toys) => {
                std::fs::create_dir_all(&root)?;
                let path = root.join("products.json");
                std::fs::write(&path, serde_json::to_vec_pretty(toys)?)?;
                Some(path)
            }
            None => None,
        };
        let mut spec = StoreSpec::new(&root, &bin_dir);
        spec.catalog = Some(CatalogSpec {
            replicas: options.catalogs,
            settings: settings::Catalog {
                restock_interval_secs: Some(1.0),
                restock_quantity: Some(RESTOCK_QUANTITY),
                products,
                ..settings::Catalog::default()
            },
        });
        spec.replicas = (1..=options.replicas).collect();
        spec.frontends = options.frontends;
        spec.raft = launcher::fast_raft();
        spec.frontend = FrontendSpec {
            settings: settings::Frontend {
                cache_capacity: Some(1000),
                order_deadline_ms: Some(10_000),
                shutdown_delay_ms: Some(0),
                ..settings::Frontend::default()
            },
        };
        spec.rust_log = Some("info,openraft=warn".into());
        let net = if options.network {
            let mut names: Vec<String> = (0..options.catalogs).map(catalog_name).collect();
            names.extend((1..=options.replicas).map(|id| format!("replica-{id}")));
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let net = Net::create(&names, next_subnet())?;
            spec.hosts = net.hosts();
            Some(net)
        } else {
            None
        };
        let store = Store::start(spec).await?;
        Ok(Self {
            store,
            net,
            paused: BTreeSet::new(),
            disks,
            no_small_disks,
            fillers: Vec::new(),
            dir,
        })
    }

    /// The frontends' URLs, where clients send their requests.
    pub fn frontends(&self) -> Vec<String> {
        self.store.frontend_urls()
    }

    /// The order replicas' ids, as the fault methods take them.
    pub fn replicas(&self) -> Vec<u64> {
        self.store.replica_ids()
    }

    /// The current leader, if one is known.
    pub async fn leader(&self) -> Option<u64> {
        self.store.leader().await
    }

    /// The stock of `toy` in the leader's books (waits up to 10 s for a leader).
    pub async fn stock_on_leader(&self, toy: &str) -> anyhow::Result<u64> {
        let leader = testkit::wait_for("a leader", Duration::from_secs(10), || self.leader()).await;
        let audit = self.store.replica_client(leader).audit().await?;
        audit
            .products
            .iter()
            .find(|p| p.name == toy)
            .map(|p| p.stock)
            .with_context(|| format!("{toy} is not defined on leader {leader}"))
    }

    /// SIGKILLs replica `id`.
    pub fn kill_replica(&mut self, id: u64) {
        self.store.replica(id).kill();
    }

    /// Restarts replica `id` if it is not running.
    pub async fn restart_replica(&mut self, id: u64) -> anyhow::Result<()> {
        if !self.store.is_running(id) {
            self.store.start_replica(id).await?;
        }
        Ok(())
    }

    /// SIGSTOPs replica `id`; [`heal`](Self::heal) resumes it if nothing else does.
    pub fn pause_replica(&mut self, id: u64) {
        self.store.replica(id).signal(Signal::SIGSTOP);
        self.paused.insert(format!("replica-{id}"));
    }

    /// SIGCONTs replica `id`.
    pub fn resume_replica(&mut self, id: u64) {
        self.store.replica(id).signal(Signal::SIGCONT);
        self.paused.remove(&format!("replica-{id}"));
    }

    /// How many catalog replicas the store runs.
    pub fn catalogs(&self) -> usize {
        self.store.catalog_count()
    }

    /// SIGKILLs catalog replica `i`.
    pub fn kill_catalog(&mut self, i: usize) {
        self.store.catalog_at(i).kill();
    }

    /// Restarts catalog replica `i` if it is not running (it is ready once its view of the
    /// inventory is, so the group must be reachable).
    pub async fn restart_catalog(&mut self, i: usize) -> anyhow::Result<()> {
        if !self.store.catalog_at(i).is_running() {
            self.store.start_catalog_at(i).await?;
        }
        Ok(())
    }

    /// SIGSTOPs catalog replica `i`.
    pub fn pause_catalog(&mut self, i: usize) {
        self.store.catalog_at(i).signal(Signal::SIGSTOP);
        self.paused.insert(catalog_name(i));
    }

    /// SIGCONTs catalog replica `i`.
    pub fn resume_catalog(&mut self, i: usize) {
        self.store.catalog_at(i).signal(Signal::SIGCONT);
        self.paused.remove(&catalog_name(i));
    }

    /// SIGKILLs every replica and every catalog at once.
    pub fn kill_everything(&mut self) {
        for i in 0..self.catalogs() {
            self.store.catalog_at(i).kill();
        }
        for id in self.replicas() {
            self.store.replica(id).kill();
        }
    }

    /// Restarts every catalog that is not running (after the replicas: a catalog is ready
    /// only once it has read the group's inventory).
    pub async fn restart_catalogs(&mut self) -> anyhow::Result<()> {
        for i in 0..self.catalogs() {
            let _ = self.store.catalog_at(i).exited();
            self.restart_catalog(i).await?;
        }
        Ok(())
    }

    /// Kills replica `id`, deletes its data directory, and starts it on an empty one.
    pub async fn lose_volume(&mut self, id: u64) -> anyhow::Result<()> {
        self.kill_replica(id);
        let dir = self.store.replica_data_dir(id);
        // On a small disk the directory is a link to the mount: empty it, keep the link.
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path)?;
            } else {
                std::fs::remove_file(path)?;
            }
        }
        self.store.start_replica(id).await?;
        Ok(())
    }

    /// Fills replica `id`'s disk; an error says why it has no disk of its own to fill.
    pub fn fill_disk(&mut self, id: u64) -> Result<(), String> {
        let Some(disk) = self.disks.get(&id) else {
            let why = self
                .no_small_disks
                .as_deref()
                .unwrap_or("the store was started without small disks");
            return Err(format!("replica {id} has no small disk of its own: {why}"));
        };
        self.fillers.push(disk.fill());
        Ok(())
    }

    /// Undoes every fault: heals the network, frees disks, resumes paused processes, restarts
    /// dead ones (replicas first, then catalogs, then frontends), drives the membership back to
    /// every replica as a voter, and waits until every replica has applied the leader's log.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        if let Some(net) = &self.net {
            net.heal()?;
        }
        for filler in self.fillers.drain(..) {
            let _ = std::fs::remove_file(filler);
        }
        let paused: Vec<String> = self.paused.iter().cloned().collect();
        for name in paused {
            if let Some(id) = name.strip_prefix("replica-").and_then(|i| i.parse().ok()) {
                self.resume_replica(id);
            } else if let Some(i) = (0..self.catalogs()).find(|i| catalog_name(*i) == name) {
                self.resume_catalog(i);
            }
        }
        for id in self.replicas() {
            let _ = self.store.replica(id).exited();
            self.restart_replica(id).await?;
        }
        self.restart_catalogs().await?;
        for i in 0..self.frontends().len() {
            if self.store.frontend(i).exited().is_some() {
                self.store.start_frontend(i).await?;
            }
        }
        let ids = self.replicas();
        self.store.converge(&ids).await?;
        self.wait_settled().await
    }

    /// Waits until there is a leader and every replica has applied the leader's last log
    /// index.
    async fn wait_settled(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the store did not settle within 60 s after healing"
            );
            let Some(leader) = self.leader().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(status) = self.store.replica_client(leader).status().await else {
                continue;
            };
            let last = status.last_log_index;
            let mut behind = false;
            for id in self.replicas() {
                let applied = self
                    .store
                    .replica_client(id)
                    .status()
                    .await
                    .ok()
                    .and_then(|s| s.applied_index);
                behind |= applied < last;
            }
            if !behind {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reads what every replica holds (after [`heal`](Self::heal)): see [`final_state`].
    pub async fn final_state(&self, keys: &[String]) -> anyhow::Result<FinalState> {
        let replicas = self
            .replicas()
            .into_iter()
            .map(|id| (id, self.store.replica_client(id)))
            .collect();
        final_state(&replicas, keys).await
    }
}

/// Reads what every replica holds: its orders by key (every key in `keys`) and by number, and
/// its audit. Any store's replicas, given clients with its token (a restored store's too).
pub async fn final_state(
    replicas: &BTreeMap<u64, ReplicaClient>,
    keys: &[String],
) -> anyhow::Result<FinalState> {
    let mut state = FinalState {
        audits: audits(replicas).await?,
        restock_quantity: Some(RESTOCK_QUANTITY.into()),
        ..FinalState::default()
    };
    for (&id, client) in replicas {
        let mut orders = ReplicaOrders::default();
        // Many keys: read concurrently, a few at a time (each is a linearizable read).
        let mut reads = futures_util::stream::iter(keys)
            .map(|key| async move { (key, client.order_by_key(key).await) })
            .buffer_unordered(CONCURRENT_READS);
        while let Some((key, read)) = reads.next().await {
            match read {
                Ok(r) => {
                    let status = match r.status {
                        OrderStatus::Confirmed { number } => StoredStatus::Confirmed { number },
                        OrderStatus::Rejected { .. } => StoredStatus::Rejected,
                    };
                    orders.by_key.insert(
                        key.clone(),
                        StoredOrder {
                            name: r.name,
                            quantity: r.quantity,
                            status,
                        },
                    );
                }
                Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {}
                Err(e) => return Err(e).context(format!("replica {id}: order {key}")),
            }
        }
        for n in 0.. {
            match client.get_order(n).await {
                Ok(o) => {
                    orders.by_number.insert(n, (o.name, o.quantity));
                }
                Err(ClientError::Api { status, .. }) if status.as_u16() == 404 => break,
                Err(e) => return Err(e).context(format!("replica {id}: order {n}")),
            }
        }
        state.replicas.insert(id, orders);
    }
    Ok(state)
}

/// How many reads of the final state are in flight at once, per replica.
const CONCURRENT_READS: usize = 16;

/// Every replica's audit, as one cut: read again (the catalogs may restock in between) until
/// every replica answers at the same applied index.
async fn audits(
    replicas: &BTreeMap<u64, ReplicaClient>,
) -> anyhow::Result<BTreeMap<u64, api::inventory::Audit>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut audits = BTreeMap::new();
        for (&id, client) in replicas {
            let audit = client
                .audit()
                .await
                .with_context(|| format!("replica {id}: audit"))?;
            audits.insert(id, audit);
        }
        let indexes: BTreeSet<u64> = audits.values().map(|a| a.applied_index).collect();
        if indexes.len() <= 1 || std::time::Instant::now() > deadline {
            // Past the deadline the books are compared as they are: the checker then says
            // which replica differs.
            return Ok(audits);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The launcher's name of catalog replica `i`: `catalog`, `catalog-1`, ...
pub fn catalog_name(i: usize) -> String {
    if i == 0 {
        "catalog".into()
    } else {
        format!("catalog-{i}")
    }
}
