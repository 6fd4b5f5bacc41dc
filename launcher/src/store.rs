//! A whole store as local processes: the order replicas, the catalogs and the frontends, started
//! in order (the group formed through the membership driver before the catalogs, which define
//! the inventory through it), every process's log kept.
//!
//! This is the one way to run a store from code: `toystore up` ([`crate::local`]), the
//! evaluation, the benchmarks and the integration and fault tests all build on it.
//!
//! Layout under the store's directory: `replica-N/` (data), `logs/<name>.log` (each process's
//! stdout and stderr), `token` (the cluster token, mode 0600). The catalogs keep no data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api::GroupClient;
use api::catalog::CatalogClient;
use api::client::{ReplicaClient, http_client};
use api::inventory::{DefineRequest, ProductDef};
use api::raft::Member;
use api::settings::{self, CommandLine};
use api::view::GroupView;
use membership::MembershipDriver;
use nix::sys::signal::Signal;

use crate::ports;
use crate::process::{Host, LaunchError, Process};

/// How long a process may take to become ready.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long forming the order group may take.
pub const FORM_DEADLINE: Duration = Duration::from_secs(60);
/// How long a process may take to stop before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The catalogs: how many, and the settings each of them gets.
#[derive(Debug, Clone)]
pub struct CatalogSpec {
    /// How many catalog processes (stateless, side by side; the frontends use them in turn).
    pub replicas: usize,
    /// The settings every catalog of the store gets (`None`: the binary's default). Its
    /// address, the order group's and the token are the launcher's, added per process.
    pub settings: settings::Catalog,
}

impl Default for CatalogSpec {
    /// One catalog restocking as the binary does by default, with its built-in toys.
    fn default() -> Self {
        Self {
            replicas: 1,
            settings: settings::Catalog {
                restock_interval_secs: Some(settings::Catalog::DEFAULT_RESTOCK_INTERVAL_SECS),
                restock_quantity: Some(settings::Catalog::DEFAULT_RESTOCK_QUANTITY),
                ..settings::Catalog::default()
            },
        }
    }
}

/// Fast elections, for tests: 50 ms heartbeats, 400–800 ms election timeouts; every other
/// setting of a replica is the binary's default. Put it in [`StoreSpec::raft`].
pub fn fast_raft() -> settings::OrderReplica {
    settings::OrderReplica {
        heartbeat_ms: Some(50),
        election_timeout_min_ms: Some(400),
        election_timeout_max_ms: Some(800),
        ..settings::OrderReplica::default()
    }
}

/// The frontends' settings.
#[derive(Debug, Clone)]
pub struct FrontendSpec {
    /// The settings every frontend of the store gets (`None`: the binary's default). Its
    /// address, the catalogs' and the order group's are the launcher's, added per process.
    pub settings: settings::Frontend,
}

impl Default for FrontendSpec {
    /// The binary's cache, and a frontend that stops at once when told to (local mode).
    fn default() -> Self {
        Self {
            settings: settings::Frontend {
                cache_capacity: Some(settings::Frontend::DEFAULT_CACHE_CAPACITY),
                shutdown_delay_ms: Some(0),
                ..settings::Frontend::default()
            },
        }
    }
}

/// Fixed ports to use (all others: any free port).
#[derive(Debug, Clone, Default)]
pub struct Ports {
    /// The first catalog's.
    pub catalog: Option<u16>,
    /// Each replica's client port, by id.
    pub replicas: BTreeMap<u64, u16>,
    /// Each replica's peer (Raft RPC) port, by id.
    pub replicas_raft: BTreeMap<u64, u16>,
    /// Each frontend's, by index.
    pub frontends: BTreeMap<usize, u16>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// Data, logs and the token live here.
    pub dir: PathBuf,
    /// Where the `catalog`, `order-replica` and `frontend` binaries are.
    pub bin_dir: PathBuf,
    /// The cluster token (written to `dir/token` when that file does not exist yet).
    pub token: Option<String>,
    /// The catalogs (`None`: none; the toys are then `inventory`, if given).
    pub catalog: Option<CatalogSpec>,
    /// Toys [`Store::start`] defines through the group once it is formed, for a store without
    /// catalogs (the order service on its own, in its tests and benchmark).
    pub inventory: Option<Vec<ProductDef>>,
    /// Replicas started by [`Store::start`].
    pub replicas: Vec<u64>,
    /// Whether [`Store::start`] forms the order group from those replicas.
    pub form_group: bool,
    /// Frontends started by [`Store::start`].
    pub frontends: usize,
    /// The settings every replica gets (`None`: the binary's default; [`fast_raft`] for
    /// tests). Its id, addresses, data directory and token are the launcher's, added per
    /// process.
    pub raft: settings::OrderReplica,
    /// Settings of every frontend.
    pub frontend: FrontendSpec,
    /// Fixed ports.
    pub ports: Ports,
    /// `RUST_LOG` for every child (`None`: inherited).
    pub rust_log: Option<String>,
    /// Where each process runs, by name (`catalog[-I]`, `replica-N`, `frontend[-I]`); the others
    /// run on loopback in the launcher's own network namespace.
    pub hosts: BTreeMap<String, Host>,
    /// A backed-up state the first replica's new data directory is seeded with before it
    /// starts (a restore): the group forms around it instead of being initialized empty.
    pub seed: Option<Arc<Vec<u8>>>,
}

impl StoreSpec {
    /// A catalog, three replicas forming a group, and one frontend, in `dir`.
    pub fn new(dir: &Path, bin_dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            token: None,
            catalog: Some(CatalogSpec::default()),
            inventory: None,
            replicas: vec![1, 2, 3],
            form_group: true,
            frontends: 1,
            raft: settings::OrderReplica::default(),
            frontend: FrontendSpec::default(),
            ports: Ports::default(),
            rust_log: None,
            hosts: BTreeMap::new(),
            seed: None,
        }
    }
}

/// A running store. Dropping it kills every process; when dropped during a panic (a failing
/// test) it first prints the end of every process's log.
pub struct Store {
    spec: StoreSpec,
    token: String,
    catalogs: Vec<Process>,
    replicas: BTreeMap<u64, Process>,
    raft_ports: BTreeMap<u64, u16>,
    frontends: Vec<Process>,
    http: reqwest::Client,
}

impl Store {
    /// Prepares the directory and the token; starts nothing.
    pub fn new(spec: StoreSpec) -> Result<Self, LaunchError> {
        let other = |what: &str, e: std::io::Error| LaunchError::Other(format!("{what}: {e}"));
        std::fs::create_dir_all(spec.dir.join("logs")).map_err(|e| other("data directory", e))?;
        let token = load_or_create_token(&spec.dir, spec.token.as_deref())
            .map_err(|e| other("token file", e))?;
        Ok(Self {
            spec,
            token,
            catalogs: Vec::new(),
            replicas: BTreeMap::new(),
            raft_ports: BTreeMap::new(),
            frontends: Vec::new(),
            http: http_client(Duration::from_secs(30)),
        })
    }

    /// Starts what `spec` describes, in order: replicas, the group, the catalogs (the first
    /// defines the toys at a store's first start; each is ready once its view of the inventory
    /// is), frontends. The first process that exits or stays unready stops the start with its
    /// name and log tail.
    pub async fn start(spec: StoreSpec) -> Result<Self, LaunchError> {
        let mut store = Self::new(spec)?;
        let ids = store.spec.replicas.clone();
        // Taken: a state seeds one new directory once, and is not held for the store's life.
        if let (Some(state), Some(&first)) = (store.spec.seed.take(), ids.first()) {
            store
                .seed_replica(first, Arc::unwrap_or_clone(state))
                .await?;
        }
        for &id in &ids {
            store.start_replica(id).await?;
        }
        if store.spec.form_group && !ids.is_empty() {
            store.converge(&ids).await?;
            if let Some(products) = store.spec.inventory.clone() {
                store.define(products).await?;
            }
        }
        let catalogs = store.spec.catalog.as_ref().map_or(0, |c| c.replicas);
        for i in 0..catalogs {
            store.start_catalog_at(i).await?;
        }
        for i in 0..store.spec.frontends {
            store.start_frontend(i).await?;
        }
        Ok(store)
    }

    /// The spec it runs.
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Path of the file holding the cluster token.
    pub fn token_file(&self) -> PathBuf {
        self.spec.dir.join("token")
    }

    /// Starts (or restarts) the first catalog.
    pub async fn start_catalog(&mut self) -> Result<(), LaunchError> {
        self.start_catalog_at(0).await
    }

    /// Starts (or restarts) catalog `i`; it is ready once its view of the inventory is.
    pub async fn start_catalog_at(&mut self, i: usize) -> Result<(), LaunchError> {
        while self.catalogs.len() <= i {
            let n = self.catalogs.len();
            let fixed = if n == 0 {
                self.spec.ports.catalog
            } else {
                None
            };
            let port = self.port(fixed)?;
            let process = self.catalog_process(n, port);
            self.catalogs.push(process);
        }
        self.catalogs[i].start(START_DEADLINE).await
    }

    /// Defines `products` through the group (those already defined stay as they are).
    pub async fn define(&self, products: Vec<ProductDef>) -> Result<(), LaunchError> {
        self.group(FORM_DEADLINE)
            .define(&DefineRequest { products })
            .await
            .map(drop)
            .map_err(|e| LaunchError::Other(format!("defining the toys: {e}")))
    }

    /// Seeds replica `id`'s new data directory with a backed-up state, as a group of which it is
    /// the only voter (see `order_replica::restore`); its addresses are chosen here, since the
    /// membership it is seeded with records them.
    pub async fn seed_replica(&mut self, id: u64, state: Vec<u8>) -> Result<(), LaunchError> {
        self.add_replica(id)?;
        let node = order_replica::types::ReplicaNode {
            addr: self.replica_url(id),
            raft_addr: Some(self.replica_raft_url(id)),
        };
        let summary = order_replica::restore::seed(&self.replica_data_dir(id), id, node, state)
            .await
            .map_err(|e| LaunchError::Other(format!("seeding replica-{id}: {e}")))?;
        tracing::info!(
            id,
            index = summary.index,
            orders = summary.orders,
            "replica seeded from a backup"
        );
        Ok(())
    }

    /// Replica `id`'s process, created (not started, its ports chosen) if it does not exist.
    fn add_replica(&mut self, id: u64) -> Result<(), LaunchError> {
        if !self.replicas.contains_key(&id) {
            let port = self.port(self.spec.ports.replicas.get(&id).copied())?;
            let raft = self.port(self.spec.ports.replicas_raft.get(&id).copied())?;
            let process = self.replica_process(id, port, raft);
            self.replicas.insert(id, process);
            self.raft_ports.insert(id, raft);
        }
        Ok(())
    }

    /// Starts (or restarts) replica `id` on its data directory; it answers before it is part of
    /// any group (see [`converge`](Self::converge)). It listens on two ports: one for clients,
    /// one for its peers' Raft RPC.
    pub async fn start_replica(&mut self, id: u64) -> Result<(), LaunchError> {
        self.add_replica(id)?;
        let raft = self.raft_ports[&id];
        if self.host(&format!("replica-{id}")).netns.is_none() && !ports::is_free(raft) {
            return Err(LaunchError::PortTaken {
                name: format!("replica-{id} (raft)"),
                port: raft,
            });
        }
        let replica = self.replicas.get_mut(&id).expect("just created");
        replica.start(START_DEADLINE).await
    }

    /// Starts (or restarts) frontend `i`; it is started when it is ready (feed connected,
    /// order leader known).
    pub async fn start_frontend(&mut self, i: usize) -> Result<(), LaunchError> {
        self.add_frontend(i)?.start(START_DEADLINE).await
    }

    /// Frontend `i`'s process, created (not started) if it does not exist yet.
    pub fn add_frontend(&mut self, i: usize) -> Result<&mut Process, LaunchError> {
        while self.frontends.len() <= i {
            let n = self.frontends.len();
            let port = self.port(self.spec.ports.frontends.get(&n).copied())?;
            let process = self.frontend_process(n, port);
            self.frontends.push(process);
        }
        Ok(&mut self.frontends[i])
    }

    fn port(&self, fixed: Option<u16>) -> Result<u16, LaunchError> {
        match fixed {
            Some(p) if p != 0 => Ok(p),
            _ => ports::free_port().map_err(|e| LaunchError::Other(format!("no free port: {e}"))),
        }
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.spec.dir.join("logs").join(format!("{name}.log"))
    }

    fn with_log_filter(&self, p: Process) -> Process {
        match &self.spec.rust_log {
            Some(filter) => p.env("RUST_LOG", filter),
            None => p,
        }
    }

    fn catalog_process(&self, i: usize, port: u16) -> Process {
        let name = if i == 0 {
            "catalog".to_string()
        } else {
            format!("catalog-{i}")
        };
        let host = self.host(&name);
        let settings = settings::Catalog {
            listen: Some((host.ip, port).into()),
            order_replicas: self.replica_seeds(),
            token: None,
            token_file: Some(self.token_file()),
            ..self.spec.catalog.clone().unwrap_or_default().settings
        };
        let p = Process::new(
            &name,
            self.spec.bin_dir.join("catalog"),
            port,
            self.log_path(&name),
        )
        .args(settings.to_args())
        .on(host)
        .ready_at("/readyz");
        self.with_log_filter(p)
    }

    fn host(&self, name: &str) -> Host {
        self.spec.hosts.get(name).cloned().unwrap_or_default()
    }

    fn replica_process(&self, id: u64, port: u16, raft_port: u16) -> Process {
        let name = format!("replica-{id}");
        let host = self.host(&name);
        let settings = settings::OrderReplica {
            id: Some(id),
            listen: Some((host.ip, port).into()),
            advertise_url: None,
            raft_listen: Some((host.ip, raft_port).into()),
            raft_advertise_url: None,
            data_dir: Some(self.replica_data_dir(id)),
            token: None,
            token_file: Some(self.token_file()),
            ..self.spec.raft.clone()
        };
        let p = Process::new(
            &name,
            self.spec.bin_dir.join("order-replica"),
            port,
            self.log_path(&name),
        )
        .args(settings.to_args())
        .on(host);
        self.with_log_filter(p)
    }

    fn frontend_process(&self, i: usize, port: u16) -> Process {
        let name = if self.spec.frontends <= 1 && i == 0 {
            "frontend".to_string()
        } else {
            format!("frontend-{i}")
        };
        let host = self.host(&name);
        let settings = settings::Frontend {
            listen: Some((host.ip, port).into()),
            catalog_url: self.catalogs.iter().map(Process::url).collect(),
            order_replicas: self.replica_seeds(),
            ..self.spec.frontend.settings.clone()
        };
        let p = Process::new(
            &name,
            self.spec.bin_dir.join("frontend"),
            port,
            self.log_path(&name),
        )
        .args(settings.to_args())
        .on(host)
        .ready_at("/readyz");
        self.with_log_filter(p)
    }

    /// Where replica `id` keeps its data.
    pub fn replica_data_dir(&self, id: u64) -> PathBuf {
        self.spec.dir.join(format!("replica-{id}"))
    }

    /// The replicas' URLs: the seed list the catalogs and frontends get.
    fn replica_seeds(&self) -> Vec<String> {
        self.replicas.values().map(Process::url).collect()
    }

    /// The first catalog's process (panics if the store has none).
    pub fn catalog(&mut self) -> &mut Process {
        self.catalog_at(0)
    }

    /// Catalog `i`'s process (panics if it was never started).
    pub fn catalog_at(&mut self, i: usize) -> &mut Process {
        self.catalogs
            .get_mut(i)
            .unwrap_or_else(|| panic!("no catalog {i}"))
    }

    /// How many catalogs were started.
    pub fn catalog_count(&self) -> usize {
        self.catalogs.len()
    }

    /// The first catalog's URL, if the store has one.
    pub fn catalog_url(&self) -> Option<String> {
        self.catalogs.first().map(Process::url)
    }

    /// Replica `id`'s process (panics if it was never started).
    pub fn replica(&mut self, id: u64) -> &mut Process {
        self.replicas
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no replica {id}"))
    }

    /// Replica `id`'s client URL.
    pub fn replica_url(&self, id: u64) -> String {
        self.replicas[&id].url()
    }

    /// Replica `id`'s peer (Raft RPC) URL.
    pub fn replica_raft_url(&self, id: u64) -> String {
        let host = self.host(&format!("replica-{id}"));
        format!("http://{}:{}", host.ip, self.raft_ports[&id])
    }

    /// Ids of every replica started so far.
    pub fn replica_ids(&self) -> Vec<u64> {
        self.replicas.keys().copied().collect()
    }

    /// Whether replica `id` is running.
    pub fn is_running(&self, id: u64) -> bool {
        self.replicas.get(&id).is_some_and(Process::is_running)
    }

    /// Frontend `i`'s process.
    pub fn frontend(&mut self, i: usize) -> &mut Process {
        &mut self.frontends[i]
    }

    /// Frontend `i`'s URL.
    pub fn frontend_url(&self, i: usize) -> String {
        self.frontends[i].url()
    }

    pub fn frontend_urls(&self) -> Vec<String> {
        self.frontends.iter().map(Process::url).collect()
    }

    /// `ids` as members of the order group, at their replicas' URLs.
    pub fn members(&self, ids: &[u64]) -> Vec<Member> {
        ids.iter()
            .map(|id| Member {
                id: *id,
                url: self.replica_url(*id),
                raft_url: Some(self.replica_raft_url(*id)),
            })
            .collect()
    }

    /// A membership driver with this store's token.
    pub fn driver(&self) -> MembershipDriver {
        MembershipDriver::new(Some(self.token.clone()))
    }

    /// Drives the order group's voters to exactly `ids`.
    pub async fn converge(&self, ids: &[u64]) -> Result<(), LaunchError> {
        self.driver()
            .converge(&self.members(ids), FORM_DEADLINE)
            .await
            .map_err(|e| LaunchError::Other(format!("the order group did not form: {e}")))
    }

    /// A client of the order group over every replica started so far.
    pub fn group(&self, deadline: Duration) -> GroupClient {
        let urls = self.replicas.values().map(Process::url).collect();
        GroupClient::new(urls, Some(self.token.clone()), deadline)
    }

    /// A client of replica `id` with the token.
    pub fn replica_client(&self, id: u64) -> ReplicaClient {
        ReplicaClient::new(
            self.http.clone(),
            self.replica_url(id),
            Some(self.token.clone()),
        )
    }

    /// A client of the first catalog.
    pub fn catalog_client(&self) -> CatalogClient {
        CatalogClient::new(
            self.http.clone(),
            self.catalog_url().expect("this store has a catalog"),
        )
    }

    /// The leader among the running replicas, if any (see [`GroupView`]).
    pub async fn leader(&self) -> Option<u64> {
        let mut answers = Vec::new();
        for (&id, p) in &self.replicas {
            if p.is_running()
                && let Ok(s) = self.replica_client(id).status().await
            {
                answers.push(s);
            }
        }
        GroupView::of_answers(answers).leader().map(|l| l.id)
    }

    /// Stops everything: the frontends first (they drain), then the catalogs, then every
    /// replica at once with SIGINT (a whole-store stop: no replica hands leadership to peers
    /// that are stopping too).
    pub async fn stop(&mut self) {
        for f in &mut self.frontends {
            f.stop(Signal::SIGTERM, STOP_GRACE).await;
        }
        for c in &mut self.catalogs {
            c.stop(Signal::SIGTERM, STOP_GRACE).await;
        }
        for r in self.replicas.values() {
            r.signal(Signal::SIGINT);
        }
        for r in self.replicas.values_mut() {
            r.stop(Signal::SIGINT, STOP_GRACE).await;
        }
    }

    /// Every process by name, for supervision.
    pub fn processes(&mut self) -> impl Iterator<Item = &mut Process> {
        self.catalogs
            .iter_mut()
            .chain(self.replicas.values_mut())
            .chain(self.frontends.iter_mut())
    }

    /// The end of every process's log.
    pub fn log_tails(&self, lines: usize) -> String {
        self.catalogs
            .iter()
            .chain(self.replicas.values())
            .chain(self.frontends.iter())
            .map(|p| {
                format!(
                    "--- {} ({}):\n{}",
                    p.name(),
                    p.log().display(),
                    p.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An HTTP client for tests and tools (30 s timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "store in {} at the failure; the end of each log:\n{}",
                self.spec.dir.display(),
                self.log_tails(crate::process::TAIL_LINES)
            );
        }
    }
}

/// Reads the token in `dir/token`, writing `given` (or a new random one) on first use.
fn load_or_create_token(dir: &Path, given: Option<&str>) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let token = given
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    std::fs::write(&path, &token)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(token)
}
