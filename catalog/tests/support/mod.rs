//! A store for the catalog's tests: three order replicas forming a group and catalogs over it,
//! no frontend, run one of two ways:
//!
//! - as real processes (through the launcher), for the tests that kill, signal or restart a
//!   catalog;
//! - in this test process ([`Store::in_process`]), every listener bound on port 0 and handed to
//!   the service's `run`, for the tests that stop nothing.
//!
//! Every wait has a deadline; none is a fixed sleep.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use api::catalog::{CatalogClient, Product};
use api::client::{ReplicaClient, http_client};
use api::inventory::Audit;
use api::raft::Member;
use api::settings;
use api::view::GroupView;
use api::{GroupClient, PlaceOrder};
use launcher::{CatalogSpec, StoreSpec};
use membership::MembershipDriver;
use reqwest::StatusCode;
use serde_json::Value;

pub use testkit::wait_for;

/// The cluster token of an in-process store.
const TOKEN: &str = "catalog-test-token";

/// A store with `catalogs` catalogs defining the toys of `products` (a JSON array) and
/// restocking every 200 ms to 7 units.
pub enum Store {
    /// Real processes.
    Processes(Box<launcher::Store>),
    /// Tasks of this test process.
    InProcess(InProcess),
}

/// The catalogs of every store here.
fn catalog_spec(dir: &Path, catalogs: usize, products: &str) -> CatalogSpec {
    let file = dir.join("products.json");
    std::fs::write(&file, products).unwrap();
    CatalogSpec {
        replicas: catalogs,
        settings: settings::Catalog {
            restock_interval_secs: Some(0.2),
            restock_quantity: Some(7),
            products: Some(file),
            ..settings::Catalog::default()
        },
    }
}

impl Store {
    /// The store as processes in `dir`.
    pub async fn processes(dir: &Path, catalogs: usize, products: &str) -> Self {
        let mut spec = StoreSpec::new(
            &dir.join("store"),
            &testkit::bin_dir(&["order-replica", "catalog"]),
        );
        spec.catalog = Some(catalog_spec(dir, catalogs, products));
        spec.frontends = 0;
        spec.raft = launcher::fast_raft();
        spec.rust_log = Some("info,openraft=warn".into());
        let store = launcher::Store::start(spec)
            .await
            .expect("the store starts");
        Self::Processes(Box::new(store))
    }

    /// The store in this process, its data in `dir`.
    pub async fn in_process(dir: &Path, catalogs: usize, products: &str) -> Self {
        Self::InProcess(InProcess::start(dir, &catalog_spec(dir, catalogs, products)).await)
    }

    /// The processes (for what only a process can do: be killed, signalled, restarted).
    ///
    /// # Panics
    /// When the store runs in this process.
    pub fn processes_mut(&mut self) -> &mut launcher::Store {
        match self {
            Self::Processes(store) => store.as_mut(),
            Self::InProcess(_) => panic!("this test runs in-process; start it with processes"),
        }
    }

    /// Catalog `i`'s URL.
    pub fn catalog_url(&mut self, i: usize) -> String {
        match self {
            Self::Processes(store) => store.catalog_at(i).url(),
            Self::InProcess(store) => store.catalogs[i].url.clone(),
        }
    }

    /// A client of the order group.
    fn group(&self) -> GroupClient {
        match self {
            Self::Processes(store) => store.group(Duration::from_secs(20)),
            Self::InProcess(store) => GroupClient::new(
                store.replicas.values().map(|r| r.url.clone()).collect(),
                Some(TOKEN.into()),
                Duration::from_secs(20),
            ),
        }
    }

    /// The order leader.
    async fn leader(&self) -> ReplicaClient {
        wait_for("a leader", Duration::from_secs(30), || async {
            match self {
                Self::Processes(store) => Some(store.replica_client(store.leader().await?)),
                Self::InProcess(store) => {
                    let mut answers = Vec::new();
                    for replica in store.replicas.values() {
                        answers.extend(replica_client(replica).status().await.ok());
                    }
                    let leader = GroupView::of_answers(answers).leader()?.id;
                    Some(replica_client(&store.replicas[&leader]))
                }
            }
        })
        .await
    }
}

/// A client of catalog `i`.
pub fn catalog(store: &mut Store, i: usize) -> CatalogClient {
    CatalogClient::new(reqwest::Client::new(), store.catalog_url(i))
}

/// Buys `quantity` of `name` with `key` through the group; returns the purchase's version.
pub async fn buy(store: &Store, key: &str, name: &str, quantity: i64) -> u64 {
    let order = PlaceOrder {
        name: name.into(),
        quantity,
    };
    store
        .group()
        .place_order(key, &order)
        .await
        .expect("the purchase")
        .version
}

/// The leader's books.
pub async fn audit(store: &Store) -> Audit {
    store.leader().await.audit().await.expect("the audit")
}

/// Waits until catalog `client` shows `name` with `quantity`.
pub async fn shows(client: &CatalogClient, name: &str, quantity: u32) -> Product {
    wait_for(
        &format!("{} to show {quantity} {name}", client.base()),
        Duration::from_secs(20),
        || async {
            let p = client.product(name, 0).await.ok()?;
            (p.quantity == quantity).then_some(p)
        },
    )
    .await
}

/// Sends a request; returns the status and the decoded JSON body.
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("the catalog answers");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?} (status {status})"));
    (status, body)
}

/// Asserts a JSON error answer with `expected` status and a message.
pub fn assert_error(what: &str, status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"]["code"], expected.as_u16(), "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error has a message: {body}"
    );
}

/// Three order replicas forming a group and catalogs over it, served by tasks of this test
/// process on listeners bound on port 0.
pub struct InProcess {
    replicas: BTreeMap<u64, Served>,
    catalogs: Vec<Served>,
}

/// A service served in this process.
type Served = servicekit::Spawned;

/// A client of the replica `served`, with the token.
fn replica_client(served: &Served) -> ReplicaClient {
    ReplicaClient::new(
        http_client(Duration::from_secs(30)),
        &served.url,
        Some(TOKEN.into()),
    )
}

impl InProcess {
    async fn start(dir: &Path, catalogs: &CatalogSpec) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,openraft=warn"))
            .with_test_writer()
            .try_init();
        let mut store = Self {
            replicas: BTreeMap::new(),
            catalogs: Vec::new(),
        };
        let mut members = Vec::new();
        for id in 1..=3 {
            let (served, raft_url) = replica(id, &dir.join(format!("replica-{id}"))).await;
            members.push(Member {
                id,
                url: served.url.clone(),
                raft_url: Some(raft_url),
            });
            store.replicas.insert(id, served);
        }
        MembershipDriver::new(Some(TOKEN.into()))
            .converge(&members, launcher::store::FORM_DEADLINE)
            .await
            .expect("the order group forms");
        let seeds: Vec<String> = members.into_iter().map(|m| m.url).collect();
        for _ in 0..catalogs.replicas {
            let given = settings::Catalog {
                order_replicas: seeds.clone(),
                token: Some(TOKEN.into()),
                ..catalogs.settings.clone()
            };
            store.catalogs.push(catalog_served(&given).await);
        }
        for served in &store.catalogs {
            let client = CatalogClient::new(reqwest::Client::new(), &served.url);
            wait_for("the catalog ready", Duration::from_secs(30), || async {
                client.ready().await.ok()
            })
            .await;
        }
        store
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        for served in self.catalogs.iter().chain(self.replicas.values()) {
            served.task.abort();
        }
    }
}

/// Order replica `id` with its data in `data_dir`, serving; and its peer URL.
async fn replica(id: u64, data_dir: &Path) -> (Served, String) {
    let given = settings::OrderReplica {
        id: Some(id),
        data_dir: Some(PathBuf::from(data_dir)),
        token: Some(TOKEN.into()),
        ..launcher::fast_raft()
    };
    let settings = order_replica::server::Settings::try_from(&given).expect("valid settings");
    let (served, raft_url) = order_replica::server::spawn_on_loopback(settings)
        .await
        .expect("bind loopback");
    (served, raft_url)
}

/// A catalog with `given` settings, serving.
async fn catalog_served(given: &settings::Catalog) -> Served {
    let settings = catalog::server::Settings::try_from(given).expect("valid settings");
    catalog::server::spawn_on_loopback(settings)
        .await
        .expect("bind loopback")
}
