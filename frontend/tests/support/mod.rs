//! The whole store as real processes: a catalog, three order replicas wired to it, and
//! frontends. Any of them can be SIGKILLed and restarted on the same data.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::GroupClient;
use api::catalog::{Audit, CatalogClient};
use api::client::{ReplicaClient, http_client};
use api::raft::{Member, RaftRole};
use membership::MembershipDriver;
use reqwest::StatusCode;
use serde_json::Value;
pub use testkit::wait_for;
use testkit::{Service, binary, free_port};

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

pub struct Store {
    pub dir: tempfile::TempDir,
    pub catalog: Service,
    pub replicas: BTreeMap<u64, Service>,
    pub frontends: Vec<Service>,
    pub http: reqwest::Client,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

impl Store {
    pub async fn start(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();

        let port = free_port();
        let mut args = strings(&[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            root.join("catalog").to_str().unwrap(),
            "--restock-interval-secs",
            &options.restock_interval_secs.to_string(),
            "--restock-quantity",
            &options.restock_quantity.to_string(),
        ]);
        if let Some(products) = &options.products {
            let list: Vec<Value> = products
                .iter()
                .map(|(n, p, q)| serde_json::json!({"name": n, "price": p, "quantity": q}))
                .collect();
            let path = root.join("products.json");
            std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
            args.extend(strings(&["--products", path.to_str().unwrap()]));
        }
        let mut catalog = Service::new(
            "catalog",
            binary("catalog"),
            args,
            port,
            root.join("catalog.log"),
        );
        catalog.start().await;

        let mut replicas = BTreeMap::new();
        for id in 1..=3u64 {
            let port = free_port();
            let args = strings(&[
                "--id",
                &id.to_string(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
                root.join(format!("replica-{id}")).to_str().unwrap(),
                "--heartbeat-ms",
                "50",
                "--election-timeout-min-ms",
                "400",
                "--election-timeout-max-ms",
                "800",
                "--catalog-url",
                &catalog.url(),
                "--catalog-patience-ms",
                "2000",
            ]);
            let mut r = Service::new(
                &format!("replica {id}"),
                binary("order-replica"),
                args,
                port,
                root.join(format!("replica-{id}.log")),
            )
            .env("ORDER_TOKEN", TOKEN)
            .env("RUST_LOG", "info,openraft=warn");
            r.start().await;
            replicas.insert(id, r);
        }
        let members: Vec<Member> = replicas
            .iter()
            .map(|(id, r)| Member {
                id: *id,
                url: r.url(),
            })
            .collect();
        MembershipDriver::new(Some(TOKEN.into()))
            .converge(&members, Duration::from_secs(60))
            .await
            .expect("order group forms");

        let seeds = replicas
            .values()
            .map(Service::url)
            .collect::<Vec<_>>()
            .join(",");
        let mut frontends = Vec::new();
        for i in 0..options.frontends {
            let port = free_port();
            let args = strings(&[
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--catalog-url",
                &catalog.url(),
                "--order-replicas",
                &seeds,
                "--cache-capacity",
                &options.cache_capacity.to_string(),
                "--order-deadline-ms",
                &options.order_deadline_ms.to_string(),
                "--shutdown-delay-ms",
                &options.shutdown_delay_ms.to_string(),
            ]);
            let mut f = Service::new(
                &format!("frontend {i}"),
                binary("frontend"),
                args,
                port,
                root.join(format!("frontend-{i}.log")),
            )
            .env("FRONTEND_ORDER_TOKEN", TOKEN);
            f.start().await;
            frontends.push(f);
        }
        let store = Self {
            dir,
            catalog,
            replicas,
            frontends,
            http: http_client(Duration::from_secs(30)),
        };
        for i in 0..store.frontends.len() {
            store.wait_ready(i).await;
        }
        store
    }

    /// Waits until frontend `i` reports ready (feed connected, leader known).
    pub async fn wait_ready(&self, i: usize) {
        let url = format!("{}/readyz", self.frontends[i].url());
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
        self.frontends[i].url()
    }

    pub fn catalog_client(&self) -> CatalogClient {
        CatalogClient::new(self.http.clone(), self.catalog.url())
    }

    pub fn replica_client(&self, id: u64) -> ReplicaClient {
        ReplicaClient::new(
            self.http.clone(),
            self.replicas[&id].url(),
            Some(TOKEN.into()),
        )
    }

    pub fn group(&self) -> Arc<GroupClient> {
        let urls = self.replicas.values().map(Service::url).collect();
        Arc::new(GroupClient::new(
            urls,
            Some(TOKEN.into()),
            Duration::from_secs(30),
        ))
    }

    /// The current order leader among running replicas.
    pub async fn leader(&self) -> u64 {
        wait_for("an order leader", Duration::from_secs(30), || async {
            for (id, r) in &self.replicas {
                if r.is_running()
                    && let Ok(s) = self.replica_client(*id).status().await
                    && s.role == RaftRole::Leader
                {
                    return Some(*id);
                }
            }
            None
        })
        .await
    }

    pub async fn audit(&self) -> Audit {
        self.catalog_client().audit().await.expect("catalog audit")
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
            frontends: self.frontends.iter().map(Service::url).collect(),
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
