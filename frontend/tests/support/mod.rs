//! The whole store as real processes (through the launcher's `Store`): a catalog, three order
//! replicas wired to it, and frontends. Any of them can be SIGKILLed and restarted on the same
//! data.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use api::GroupClient;
use api::catalog::CatalogClient;
use api::client::{ReplicaClient, http_client};
use api::inventory::Audit;
use launcher::{CatalogSpec, FrontendSpec, Process, RaftSpec, StoreSpec};
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
    pub store: launcher::Store,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Drop for Store {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
        }
    }
}

impl Store {
    pub async fn start(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let products = options.products.as_ref().map(|products| {
            let list: Vec<Value> = products
                .iter()
                .map(|(n, p, q)| serde_json::json!({"name": n, "price": p, "quantity": q}))
                .collect();
            let path = root.join("products.json");
            std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
            path
        });
        let bin_dir = testkit::bin_dir(&["catalog", "order-replica", "frontend"]);
        let mut spec = StoreSpec::new(&root.join("store"), &bin_dir);
        spec.token = Some(TOKEN.into());
        spec.catalog = Some(CatalogSpec {
            replicas: 1,
            restock_interval_secs: options.restock_interval_secs,
            restock_quantity: options.restock_quantity,
            products,
        });
        spec.frontends = options.frontends;
        spec.raft = RaftSpec::fast();
        spec.frontend = FrontendSpec {
            cache_capacity: options.cache_capacity,
            order_deadline_ms: Some(options.order_deadline_ms),
            shutdown_delay_ms: Some(options.shutdown_delay_ms),
        };
        spec.rust_log = Some("info,openraft=warn".into());
        let store = launcher::Store::start(spec)
            .await
            .expect("the store starts");
        Self {
            dir,
            store,
            http: http_client(Duration::from_secs(30)),
        }
    }

    /// The catalog process.
    pub fn catalog(&mut self) -> &mut Process {
        self.store.catalog()
    }

    /// Restarts the catalog on its port.
    pub async fn restart_catalog(&mut self) {
        self.store
            .start_catalog()
            .await
            .expect("the catalog restarts");
    }

    /// Replica `id`'s process.
    pub fn replica(&mut self, id: u64) -> &mut Process {
        self.store.replica(id)
    }

    /// Restarts replica `id` on its port and data directory.
    pub async fn restart_replica(&mut self, id: u64) {
        self.store
            .start_replica(id)
            .await
            .expect("the replica restarts");
    }

    /// Frontend `i`'s process.
    pub fn frontend_process(&mut self, i: usize) -> &mut Process {
        self.store.frontend(i)
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
        self.store.frontend_url(i)
    }

    pub fn catalog_client(&self) -> CatalogClient {
        self.store.catalog_client()
    }

    pub fn replica_client(&self, id: u64) -> ReplicaClient {
        self.store.replica_client(id)
    }

    pub fn group(&self) -> Arc<GroupClient> {
        Arc::new(self.store.group(Duration::from_secs(30)))
    }

    /// The current order leader among running replicas.
    pub async fn leader(&self) -> u64 {
        wait_for("an order leader", Duration::from_secs(30), || {
            self.store.leader()
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
