//! The whole store: three order replicas forming a group, a catalog over it, and frontends,
//! run one of two ways:
//!
//! - as real processes (through the launcher's `Store`), for the tests that SIGKILL, signal or
//!   restart one on the same data ([`Store::start`]);
//! - in this test process ([`Store::start_in_process`]), every listener bound on port 0 and
//!   handed to the service's `run`/`serve`, for the tests that stop nothing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use api::GroupClient;
use api::catalog::CatalogClient;
use api::client::{ReplicaClient, http_client};
use api::inventory::Audit;
use api::raft::Member;
use api::settings;
use api::view::GroupView;
use launcher::{CatalogSpec, FrontendSpec, Process, StoreSpec};
use membership::MembershipDriver;
use reqwest::StatusCode;
use serde_json::Value;
pub use testkit::wait_for;

pub const TOKEN: &str = "store-test-token";

/// How to start a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub frontends: usize,
    pub cache_capacity: usize,
    pub restock_interval_secs: f64,
    pub restock_quantity: u32,
    pub order_deadline_ms: u64,
    /// `--shutdown-delay-ms` of every frontend.
    pub shutdown_delay_ms: u64,
    /// `(name, price, quantity)`; `None` uses the catalog's defaults.
    pub products: Option<Vec<(&'static str, f64, u32)>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            frontends: 1,
            cache_capacity: 1000,
            restock_interval_secs: 3600.0,
            restock_quantity: 100,
            order_deadline_ms: 10_000,
            shutdown_delay_ms: 0,
            products: None,
        }
    }
}

/// A whole store in a temporary directory. `store` is declared before `dir` so that, on a
/// failure, it prints its logs' tails before anything is removed; the directory itself is kept
/// then, for a look at the data.
pub struct Store {
    pub store: Run,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// How a store runs.
pub enum Run {
    /// Real processes.
    Processes(Box<launcher::Store>),
    /// Tasks of this test process.
    InProcess(InProcess),
}

impl Run {
    /// Ids of the order replicas.
    pub fn replica_ids(&self) -> Vec<u64> {
        match self {
            Run::Processes(store) => store.replica_ids(),
            Run::InProcess(store) => store.replicas.keys().copied().collect(),
        }
    }

    fn replica_url(&self, id: u64) -> String {
        match self {
            Run::Processes(store) => store.replica_url(id),
            Run::InProcess(store) => store.replicas[&id].url.clone(),
        }
    }

    fn catalog_url(&self) -> String {
        match self {
            Run::Processes(store) => store.catalog_url().expect("a catalog"),
            Run::InProcess(store) => store.catalog.url.clone(),
        }
    }

    fn frontend_urls(&self) -> Vec<String> {
        match self {
            Run::Processes(store) => store.frontend_urls(),
            Run::InProcess(store) => store.frontends.iter().map(|f| f.url.clone()).collect(),
        }
    }

    fn processes(&mut self) -> &mut launcher::Store {
        match self {
            Run::Processes(store) => store.as_mut(),
            Run::InProcess(_) => {
                panic!("this test runs the store in-process; start it with Store::start")
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
        }
    }
}

impl StoreOptions {
    /// The catalog, its products written to `dir`.
    fn catalog(&self, dir: &Path) -> CatalogSpec {
        let products = self.products.as_ref().map(|products| {
            let list: Vec<Value> = products
                .iter()
                .map(|(n, p, q)| serde_json::json!({"name": n, "price": p, "quantity": q}))
                .collect();
            let path = dir.join("products.json");
            std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
            path
        });
        CatalogSpec {
            replicas: 1,
            settings: settings::Catalog {
                restock_interval_secs: Some(self.restock_interval_secs),
                restock_quantity: Some(self.restock_quantity),
                products,
                ..settings::Catalog::default()
            },
        }
    }

    fn frontend(&self) -> FrontendSpec {
        FrontendSpec {
            settings: settings::Frontend {
                cache_capacity: Some(self.cache_capacity),
                order_deadline_ms: Some(self.order_deadline_ms),
                shutdown_delay_ms: Some(self.shutdown_delay_ms),
                ..settings::Frontend::default()
            },
        }
    }
}

impl Store {
    /// The store as real processes.
    pub async fn start(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let bin_dir = testkit::bin_dir(&["catalog", "order-replica", "frontend"]);
        let mut spec = StoreSpec::new(&root.join("store"), &bin_dir);
        spec.token = Some(TOKEN.into());
        spec.catalog = Some(options.catalog(&root));
        spec.frontends = options.frontends;
        spec.raft = launcher::fast_raft();
        spec.frontend = options.frontend();
        spec.rust_log = Some("info,openraft=warn".into());
        let store = launcher::Store::start(spec)
            .await
            .expect("the store starts");
        Self {
            dir,
            store: Run::Processes(Box::new(store)),
            http: http_client(Duration::from_secs(30)),
        }
    }

    /// The store in this process.
    pub async fn start_in_process(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = InProcess::start(dir.path(), &options).await;
        Self {
            dir,
            store: Run::InProcess(store),
            http: http_client(Duration::from_secs(30)),
        }
    }

    /// The catalog process.
    pub fn catalog(&mut self) -> &mut Process {
        self.store.processes().catalog()
    }

    /// Restarts the catalog on its port.
    pub async fn restart_catalog(&mut self) {
        self.store
            .processes()
            .start_catalog()
            .await
            .expect("the catalog restarts");
    }

    /// Replica `id`'s process.
    pub fn replica(&mut self, id: u64) -> &mut Process {
        self.store.processes().replica(id)
    }

    /// Restarts replica `id` on its port and data directory.
    pub async fn restart_replica(&mut self, id: u64) {
        self.store
            .processes()
            .start_replica(id)
            .await
            .expect("the replica restarts");
    }

    /// Frontend `i`'s process.
    pub fn frontend_process(&mut self, i: usize) -> &mut Process {
        self.store.processes().frontend(i)
    }

    /// Number of frontends.
    pub fn frontends(&self) -> usize {
        self.store.frontend_urls().len()
    }

    /// Waits until frontend `i` reports ready (feed connected, leader known).
    pub async fn wait_ready(&self, i: usize) {
        let url = format!("{}/readyz", self.frontend(i));
        wait_for(
            &format!("frontend {i} ready"),
            Duration::from_secs(30),
            || async {
                let r = self.http.get(&url).send().await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
    }

    pub fn frontend(&self, i: usize) -> String {
        self.store.frontend_urls()[i].clone()
    }

    pub fn catalog_client(&self) -> CatalogClient {
        CatalogClient::new(self.http.clone(), self.store.catalog_url())
    }

    pub fn replica_client(&self, id: u64) -> ReplicaClient {
        ReplicaClient::new(
            self.http.clone(),
            self.store.replica_url(id),
            Some(TOKEN.into()),
        )
    }

    pub fn group(&self) -> Arc<GroupClient> {
        let urls = (self.store.replica_ids().into_iter())
            .map(|id| self.store.replica_url(id))
            .collect();
        Arc::new(GroupClient::new(
            urls,
            Some(TOKEN.into()),
            Duration::from_secs(30),
        ))
    }

    /// The current order leader among running replicas.
    pub async fn leader(&self) -> u64 {
        wait_for("an order leader", Duration::from_secs(30), || async {
            match &self.store {
                Run::Processes(store) => store.leader().await,
                Run::InProcess(_) => {
                    let mut answers = Vec::new();
                    for id in self.store.replica_ids() {
                        answers.extend(self.replica_client(id).status().await.ok());
                    }
                    GroupView::of_answers(answers).leader().map(|l| l.id)
                }
            }
        })
        .await
    }

    /// The order leader's books.
    pub async fn audit(&self) -> Audit {
        let leader = self.leader().await;
        self.replica_client(leader)
            .audit()
            .await
            .expect("the books")
    }

    /// GET on frontend `i`; returns status and JSON body.
    pub async fn get(&self, i: usize, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.frontend(i)))
            .send()
            .await
            .expect("frontend answers");
        let status = resp.status();
        (status, resp.json().await.expect("JSON body"))
    }

    /// POST /orders on frontend `i` with an optional idempotency key.
    pub async fn buy(
        &self,
        i: usize,
        name: &str,
        quantity: i64,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        self.buyer().buy(i, name, quantity, key).await
    }

    /// A handle that places orders through the frontends, for load running beside the test.
    pub fn buyer(&self) -> Buyer {
        Buyer {
            http: self.http.clone(),
            frontends: self.store.frontend_urls(),
        }
    }

    /// Stock of `name` as frontend `i` reports it.
    pub async fn stock(&self, i: usize, name: &str) -> u64 {
        let (status, body) = self.get(i, &format!("/products/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["quantity"].as_u64().unwrap()
    }

    /// A counter from frontend `i`'s /metrics, summed over the label filter `needle`.
    pub async fn metric(&self, i: usize, name: &str, needle: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.frontend(i)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Places orders through the frontends; cheap to clone into load tasks.
#[derive(Clone)]
pub struct Buyer {
    http: reqwest::Client,
    frontends: Vec<String>,
}

impl Buyer {
    /// Number of frontends.
    pub fn frontends(&self) -> usize {
        self.frontends.len()
    }

    /// POST /orders on frontend `i`; returns status and JSON body.
    pub async fn buy(
        &self,
        i: usize,
        name: &str,
        quantity: i64,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/orders", self.frontends[i]))
            .json(&serde_json::json!({"name": name, "quantity": quantity}));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("frontend answers");
        let status = resp.status();
        (status, resp.json().await.expect("JSON body"))
    }
}

/// Three order replicas forming a group, a catalog over it and frontends, served by tasks of
/// this test process on listeners bound on port 0.
pub struct InProcess {
    replicas: BTreeMap<u64, Served>,
    catalog: Served,
    frontends: Vec<Served>,
}

/// A service served in this process.
type Served = servicekit::Spawned;

/// Waits until `served`'s `/readyz` answers 2xx.
async fn wait_ready(served: &Served) {
    let url = format!("{}/readyz", served.url);
    let http = reqwest::Client::new();
    wait_for(&format!("{url} ready"), Duration::from_secs(30), || async {
        let r = http.get(&url).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

impl InProcess {
    async fn start(dir: &Path, options: &StoreOptions) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,openraft=warn"))
            .with_test_writer()
            .try_init();
        let mut replicas = BTreeMap::new();
        let mut members = Vec::new();
        for id in 1..=3 {
            let (served, raft_url) = replica(id, dir).await;
            members.push(Member {
                id,
                url: served.url.clone(),
                raft_url: Some(raft_url),
            });
            replicas.insert(id, served);
        }
        MembershipDriver::new(Some(TOKEN.into()))
            .converge(&members, launcher::store::FORM_DEADLINE)
            .await
            .expect("the order group forms");
        let seeds: Vec<String> = members.into_iter().map(|m| m.url).collect();
        // In the launcher's order: the frontends once the catalog is ready, so their change feed
        // connects at once.
        let catalog = catalog_served(&settings::Catalog {
            order_replicas: seeds.clone(),
            token: Some(TOKEN.into()),
            ..options.catalog(dir).settings
        })
        .await;
        wait_ready(&catalog).await;
        let mut frontends = Vec::new();
        for _ in 0..options.frontends {
            let given = settings::Frontend {
                catalog_url: vec![catalog.url.clone()],
                order_replicas: seeds.clone(),
                ..options.frontend().settings
            };
            let frontend = frontend_served(&given).await;
            wait_ready(&frontend).await;
            frontends.push(frontend);
        }
        Self {
            replicas,
            catalog,
            frontends,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let all = self.frontends.iter().chain([&self.catalog]);
        for served in all.chain(self.replicas.values()) {
            served.task.abort();
        }
    }
}

/// Order replica `id` with its data under `dir`, serving; and its peer URL.
async fn replica(id: u64, dir: &Path) -> (Served, String) {
    let given = settings::OrderReplica {
        id: Some(id),
        data_dir: Some(dir.join(format!("replica-{id}"))),
        token: Some(TOKEN.into()),
        ..launcher::fast_raft()
    };
    let settings = order_replica::server::Settings::try_from(&given).expect("valid settings");
    order_replica::server::spawn_on_loopback(settings)
        .await
        .expect("bind loopback")
}

/// A catalog with `given` settings, serving.
async fn catalog_served(given: &settings::Catalog) -> Served {
    let settings = catalog::server::Settings::try_from(given).expect("valid settings");
    catalog::server::spawn_on_loopback(settings)
        .await
        .expect("bind loopback")
}

/// A frontend with `given` settings, serving.
async fn frontend_served(given: &settings::Frontend) -> Served {
    let settings = frontend::Settings::try_from(given).expect("valid settings");
    frontend::spawn_on_loopback(settings)
        .await
        .expect("bind loopback")
}
