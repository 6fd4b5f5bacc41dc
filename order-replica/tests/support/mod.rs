//! A group of order replicas, without a catalog or frontends, run one of two ways:
//!
//! - as real `order-replica` processes (through the launcher's [`Store`]), for the tests that
//!   SIGKILL, signal or restart one on the same data directory;
//! - in this test process ([`Cluster::three_in_process`]), every listener bound on port 0 and
//!   handed to `server::run`, for the tests that stop nothing: nothing to build or spawn, and no
//!   port chosen before it is bound.
//!
//! Either way the membership driver forms the group. Every wait has a deadline; none is a fixed
//! sleep.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use api::settings;
use launcher::{Store, StoreSpec};
use order_replica::server::{self, Settings};
pub use testkit::wait_for;

use api::GroupClient;
use api::PlaceOrder;
use api::client::{ClientError, ReplicaClient, http_client};
use api::raft::{Member, RaftStatus};
use api::view::GroupView;
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

impl Options {
    /// The settings every replica gets: these, and the launcher's fast test timing.
    fn raft(&self) -> settings::OrderReplica {
        let fast = launcher::fast_raft();
        settings::OrderReplica {
            snapshot_threshold: Some(self.snapshot_threshold),
            logs_to_keep: Some(self.logs_to_keep),
            election_timeout_min_ms: self
                .election_ms
                .map(|e| e.0)
                .or(fast.election_timeout_min_ms),
            election_timeout_max_ms: self
                .election_ms
                .map(|e| e.1)
                .or(fast.election_timeout_max_ms),
            ..fast
        }
    }
}

/// A group of replicas sharing a temporary directory.
pub struct Cluster {
    replicas: Replicas,
    _dir: Option<tempfile::TempDir>,
}

/// How a cluster's replicas run.
enum Replicas {
    /// Real processes.
    Processes(Box<Store>),
    /// Tasks of this test process.
    InProcess(InProcess),
}

impl Cluster {
    /// Starts replica processes `ids` (not yet members of anything) in a temporary directory.
    pub async fn start(ids: &[u64], options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self::start_in(dir.path(), ids, options).await;
        cluster._dir = Some(dir);
        cluster
    }

    /// Starts replica processes `ids` with their data and logs under `root`.
    pub async fn start_in(root: &Path, ids: &[u64], options: Options) -> Self {
        let mut spec = StoreSpec::new(root, &testkit::bin_dir(&["order-replica"]));
        spec.token = Some(TOKEN.into());
        spec.catalog = None;
        spec.replicas = ids.to_vec();
        spec.form_group = false;
        spec.frontends = 0;
        spec.raft = options.raft();
        spec.rust_log = Some("info,openraft=warn".into());
        let store = Store::start(spec).await.expect("replicas start");
        Self {
            replicas: Replicas::Processes(Box::new(store)),
            _dir: None,
        }
    }

    /// Starts three replica processes and initializes them as one group.
    pub async fn three(options: Options) -> Self {
        let cluster = Self::start(&[1, 2, 3], options).await;
        cluster.converge(&[1, 2, 3]).await;
        cluster
    }

    /// Starts replicas `ids` in this process (not yet members of anything).
    pub async fn start_in_process(ids: &[u64], options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut replicas = InProcess::new(dir.path(), &options);
        for &id in ids {
            replicas.start(id).await;
        }
        Self {
            replicas: Replicas::InProcess(replicas),
            _dir: Some(dir),
        }
    }

    /// Starts three replicas in this process and initializes them as one group.
    pub async fn three_in_process(options: Options) -> Self {
        let cluster = Self::start_in_process(&[1, 2, 3], options).await;
        cluster.converge(&[1, 2, 3]).await;
        cluster
    }

    /// The replica processes (for signals the methods here do not send).
    ///
    /// # Panics
    /// When the replicas run in this process.
    pub fn processes(&mut self) -> &mut Store {
        match &mut self.replicas {
            Replicas::Processes(store) => store.as_mut(),
            Replicas::InProcess(_) => {
                panic!("this test runs its replicas in-process; start them with Cluster::start")
            }
        }
    }

    /// Starts one more replica.
    pub async fn add_node(&mut self, id: u64) {
        match &mut self.replicas {
            Replicas::Processes(store) => store.start_replica(id).await.expect("replica starts"),
            Replicas::InProcess(replicas) => replicas.start(id).await,
        }
    }

    /// (Re)starts replica process `id` on its port and data directory and waits until it serves.
    pub async fn restart(&mut self, id: u64) {
        self.processes()
            .start_replica(id)
            .await
            .expect("replica starts");
    }

    /// SIGKILLs replica `id`.
    pub fn kill(&mut self, id: u64) {
        self.processes().replica(id).kill();
    }

    /// SIGTERMs replica `id` and waits for it to exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self, id: u64) -> bool {
        let stopped = self
            .processes()
            .replica(id)
            .stop(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(15))
            .await;
        stopped.is_some_and(|s| s.success())
    }

    /// How replica `id` exited, once it has exited by itself.
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        self.processes().replica(id).exited()
    }

    pub fn is_running(&self, id: u64) -> bool {
        match &self.replicas {
            Replicas::Processes(store) => store.is_running(id),
            Replicas::InProcess(replicas) => replicas.served.contains_key(&id),
        }
    }

    /// Replica `id`'s client URL.
    pub fn url(&self, id: u64) -> String {
        match &self.replicas {
            Replicas::Processes(store) => store.replica_url(id),
            Replicas::InProcess(replicas) => replicas.served[&id].replica.url.clone(),
        }
    }

    /// Replica `id`'s peer (Raft RPC) URL.
    pub fn raft_url(&self, id: u64) -> String {
        match &self.replicas {
            Replicas::Processes(store) => store.replica_raft_url(id),
            Replicas::InProcess(replicas) => replicas.served[&id].raft_url.clone(),
        }
    }

    /// Ids of every replica started so far.
    pub fn ids(&self) -> Vec<u64> {
        match &self.replicas {
            Replicas::Processes(store) => store.replica_ids(),
            Replicas::InProcess(replicas) => replicas.served.keys().copied().collect(),
        }
    }

    /// Replica `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir().join(format!("replica-{id}"))
    }

    /// Where data and logs live.
    pub fn dir(&self) -> &Path {
        match &self.replicas {
            Replicas::Processes(store) => &store.spec().dir,
            Replicas::InProcess(replicas) => &replicas.dir,
        }
    }

    /// `ids` as members of the group, at their replicas' URLs.
    pub fn members(&self, ids: &[u64]) -> Vec<Member> {
        ids.iter()
            .map(|&id| Member {
                id,
                url: self.url(id),
                raft_url: Some(self.raft_url(id)),
            })
            .collect()
    }

    pub fn driver(&self) -> MembershipDriver {
        MembershipDriver::new(Some(TOKEN.into()))
    }

    /// Drives the membership to exactly `ids` as voters, and defines the toy the tests buy
    /// (a million Tux; a repeat defines nothing).
    pub async fn converge(&self, ids: &[u64]) {
        self.driver()
            .converge(&self.members(ids), launcher::store::FORM_DEADLINE)
            .await
            .expect("membership converges");
        let tux = api::inventory::DefineRequest {
            products: vec![api::inventory::ProductDef {
                name: "Tux".into(),
                price: 1.0,
                quantity: api::inventory::MAX_STOCK,
            }],
        };
        self.group()
            .define(&tux)
            .await
            .expect("the toys are defined");
    }

    pub fn client(&self, id: u64) -> ReplicaClient {
        ReplicaClient::new(
            http_client(Duration::from_secs(30)),
            self.url(id),
            Some(TOKEN.into()),
        )
    }

    /// A group client over every replica.
    pub fn group(&self) -> Arc<GroupClient> {
        let urls = self.ids().into_iter().map(|id| self.url(id)).collect();
        Arc::new(GroupClient::new(
            urls,
            Some(TOKEN.into()),
            Duration::from_secs(20),
        ))
    }

    pub async fn status(&self, id: u64) -> Result<RaftStatus, ClientError> {
        self.client(id).status().await
    }

    /// Waits until a running replica is leader (the one with the highest term); returns its id.
    pub async fn leader(&self) -> u64 {
        wait_for("a leader", Duration::from_secs(30), || async {
            let mut answers = Vec::new();
            for id in self.ids() {
                if self.is_running(id)
                    && let Ok(status) = self.status(id).await
                {
                    answers.push(status);
                }
            }
            GroupView::of_answers(answers).leader().map(|l| l.id)
        })
        .await
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

/// Replicas served by tasks of this test process.
struct InProcess {
    dir: PathBuf,
    /// What every replica's Raft settings come from.
    options: Options,
    served: BTreeMap<u64, Served>,
}

/// A replica served in this process, and its peer URL.
struct Served {
    replica: servicekit::Spawned,
    raft_url: String,
}

impl InProcess {
    fn new(dir: &Path, options: &Options) -> Self {
        log_to_test_output();
        Self {
            dir: dir.to_path_buf(),
            options: options.clone(),
            served: BTreeMap::new(),
        }
    }

    /// Serves replica `id` in this process on loopback listeners bound to port 0.
    async fn start(&mut self, id: u64) {
        let given = settings::OrderReplica {
            id: Some(id),
            data_dir: Some(self.dir.join(format!("replica-{id}"))),
            token: Some(TOKEN.into()),
            ..self.options.raft()
        };
        let settings = Settings::try_from(&given).expect("valid settings");
        let (replica, raft_url) = server::spawn_on_loopback(settings)
            .await
            .expect("bind loopback");
        self.served.insert(id, Served { replica, raft_url });
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        for served in self.served.values() {
            served.replica.task.abort();
        }
    }
}

/// Sends the replicas' logs to the test's output, shown when it fails.
fn log_to_test_output() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,openraft=warn"))
        .with_test_writer()
        .try_init();
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
