//! A group of real `order-replica` processes (through the launcher's [`Store`], without a
//! catalog or frontends): SIGKILL and restart on the same data directory, the membership driver.
//! Every wait has a deadline; none is a fixed sleep.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use launcher::{RaftSpec, Store, StoreSpec};
pub use testkit::wait_for;

use api::GroupClient;
use api::PlaceOrder;
use api::client::{ClientError, ReplicaClient};
use api::raft::RaftStatus;
use membership::MembershipDriver;

pub const TOKEN: &str = "test-cluster-token";

/// Raft settings passed to every replica of a test cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub snapshot_threshold: u64,
    pub logs_to_keep: u64,
    /// Election timeout bounds in ms (`None`: the launcher's fast test timing).
    pub election_ms: Option<(u64, u64)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            snapshot_threshold: 5000,
            logs_to_keep: 1000,
            election_ms: None,
        }
    }
}

/// A group of replica processes sharing a temporary directory.
pub struct Cluster {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl Cluster {
    /// Starts replicas `ids` (not yet members of anything) in a temporary directory.
    pub async fn start(ids: &[u64], options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self::start_in(dir.path(), ids, options).await;
        cluster._dir = Some(dir);
        cluster
    }

    /// Starts replicas `ids` with their data and logs under `root`.
    pub async fn start_in(root: &Path, ids: &[u64], options: Options) -> Self {
        let mut spec = StoreSpec::new(root, &testkit::bin_dir(&["order-replica"]));
        spec.token = Some(TOKEN.into());
        spec.catalog = None;
        spec.replicas = ids.to_vec();
        spec.form_group = false;
        spec.frontends = 0;
        let fast = RaftSpec::fast();
        spec.raft = RaftSpec {
            snapshot_threshold: Some(options.snapshot_threshold),
            logs_to_keep: Some(options.logs_to_keep),
            election_min_ms: options.election_ms.map(|e| e.0).or(fast.election_min_ms),
            election_max_ms: options.election_ms.map(|e| e.1).or(fast.election_max_ms),
            ..fast
        };
        spec.rust_log = Some("info,openraft=warn".into());
        let store = Store::start(spec).await.expect("replicas start");
        Self { store, _dir: None }
    }

    /// Starts three replicas and initializes them as one group.
    pub async fn three(options: Options) -> Self {
        let cluster = Self::start(&[1, 2, 3], options).await;
        cluster.converge(&[1, 2, 3]).await;
        cluster
    }

    /// Starts one more replica process.
    pub async fn add_node(&mut self, id: u64) {
        self.restart(id).await;
    }

    /// (Re)starts replica `id` on its port and data directory and waits until it serves.
    pub async fn restart(&mut self, id: u64) {
        self.store.start_replica(id).await.expect("replica starts");
    }

    /// SIGKILLs replica `id`.
    pub fn kill(&mut self, id: u64) {
        self.store.replica(id).kill();
    }

    /// SIGTERMs replica `id` and waits for it to exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self, id: u64) -> bool {
        let stopped = self
            .store
            .replica(id)
            .stop(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(15))
            .await;
        stopped.is_some_and(|s| s.success())
    }

    /// How replica `id` exited, once it has exited by itself.
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        self.store.replica(id).exited()
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.store.is_running(id)
    }

    /// Replica `id`'s URL.
    pub fn url(&self, id: u64) -> String {
        self.store.replica_url(id)
    }

    /// Replica `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.store.replica_data_dir(id)
    }

    /// Where data and logs live.
    pub fn dir(&self) -> &Path {
        &self.store.spec().dir
    }

    pub fn members(&self, ids: &[u64]) -> Vec<api::raft::Member> {
        self.store.members(ids)
    }

    pub fn driver(&self) -> MembershipDriver {
        self.store.driver()
    }

    /// Drives the membership to exactly `ids` as voters, and defines the toy the tests buy
    /// (a million Tux; a repeat defines nothing).
    pub async fn converge(&self, ids: &[u64]) {
        self.store
            .converge(ids)
            .await
            .expect("membership converges");
        self.store
            .define(vec![api::inventory::ProductDef {
                name: "Tux".into(),
                price: 1.0,
                quantity: api::inventory::MAX_STOCK,
            }])
            .await
            .expect("the toys are defined");
    }

    pub fn client(&self, id: u64) -> ReplicaClient {
        self.store.replica_client(id)
    }

    /// A group client over every replica.
    pub fn group(&self) -> Arc<GroupClient> {
        Arc::new(self.store.group(Duration::from_secs(20)))
    }

    pub async fn status(&self, id: u64) -> Result<RaftStatus, ClientError> {
        self.client(id).status().await
    }

    /// Waits until a running replica is leader (the one with the highest term); returns its id.
    pub async fn leader(&self) -> u64 {
        wait_for("a leader", Duration::from_secs(30), || self.store.leader()).await
    }

    /// Waits until replica `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) -> RaftStatus {
        wait_for(
            &format!("replica {id} to apply {index}"),
            Duration::from_secs(60),
            || async {
                let s = self.status(id).await.ok()?;
                (s.applied_index >= Some(index)).then_some(s)
            },
        )
        .await
    }
}

/// An acknowledged order: the key it was placed with and the number it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub key: String,
    pub number: u64,
    pub quantity: u32,
}

pub fn order(quantity: u32) -> PlaceOrder {
    PlaceOrder {
        name: "Tux".into(),
        quantity: quantity as i64,
    }
}

/// Places `count` orders with `concurrency` workers; keys are `{prefix}-{i}`, quantity
/// `1 + i % 5`. Returns every acknowledged order.
pub async fn place_orders(
    group: Arc<GroupClient>,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Vec<Acked> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let group = group.clone();
        let next = next.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return acked;
                }
                let key = format!("{prefix}-{i}");
                let quantity = 1 + (i % 5) as u32;
                match group.place_order(&key, &order(quantity)).await {
                    Ok(placed) => acked.push(Acked {
                        key,
                        number: placed.order_number,
                        quantity,
                    }),
                    Err(e) => panic!("order {key} failed: {e}"),
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Asserts that `acked` orders have distinct numbers and that replica `id` serves each of them
/// with the quantity that was ordered.
pub async fn assert_orders_on(cluster: &Cluster, id: u64, acked: &[Acked]) {
    let mut numbers: Vec<u64> = acked.iter().map(|a| a.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        acked.len(),
        "two acknowledged orders share a number"
    );
    let client = cluster.client(id);
    for a in acked {
        let order = client
            .get_order(a.number)
            .await
            .unwrap_or_else(|e| panic!("replica {id} lost order {} ({}): {e}", a.number, a.key));
        assert_eq!(
            order.quantity, a.quantity,
            "order {} on replica {id}",
            a.number
        );
    }
}

/// Asserts the confirmed order numbers are exactly 0..n (dense, nothing extra) on replica `id`.
pub async fn assert_dense(cluster: &Cluster, id: u64, n: u64) {
    let client = cluster.client(id);
    if n > 0 {
        client.get_order(n - 1).await.expect("last order present");
    }
    match client.get_order(n).await {
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {}
        other => panic!("expected exactly {n} orders on replica {id}, order {n} gave {other:?}"),
    }
}
