//! A harness that runs real `order-replica` processes on loopback, kills them with SIGKILL and
//! restarts them on the same data directory. Every wait has a deadline; none is a fixed sleep.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use testkit::wait_for;
use testkit::{Service, free_port};

use api::GroupClient;
use api::PlaceOrder;
use api::client::{ClientError, ReplicaClient, http_client};
use api::raft::{Member, RaftRole, RaftStatus};
use membership::MembershipDriver;

pub const TOKEN: &str = "test-cluster-token";

/// Raft settings passed to every replica of a test cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub snapshot_threshold: u64,
    pub logs_to_keep: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            snapshot_threshold: 5000,
            logs_to_keep: 1000,
        }
    }
}

/// One replica process.
pub struct Node {
    pub id: u64,
    pub data_dir: PathBuf,
    pub service: Service,
}

impl Node {
    pub fn url(&self) -> String {
        self.service.url()
    }
}

/// A group of replica processes sharing a temporary directory.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// Where replica data directories are created (default: inside `dir`).
    pub data_root: PathBuf,
    pub nodes: BTreeMap<u64, Node>,
    pub options: Options,
    http: reqwest::Client,
}

impl Cluster {
    /// Starts replicas `ids` (not yet members of anything).
    pub async fn start(ids: &[u64], options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            data_root: dir.path().to_path_buf(),
            dir,
            nodes: BTreeMap::new(),
            options,
            http: http_client(Duration::from_secs(5)),
        };
        for &id in ids {
            cluster.add_node(id).await;
        }
        cluster
    }

    /// Starts three replicas and initializes them as one group.
    pub async fn three(options: Options) -> Self {
        let cluster = Self::start(&[1, 2, 3], options).await;
        cluster.converge(&[1, 2, 3]).await;
        cluster
    }

    /// Starts one more replica process.
    pub async fn add_node(&mut self, id: u64) {
        let port = free_port();
        let data_dir = self.data_root.join(format!("replica-{id}"));
        let args: Vec<String> = [
            "--id",
            &id.to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--heartbeat-ms",
            "50",
            "--election-timeout-min-ms",
            "400",
            "--election-timeout-max-ms",
            "800",
            "--snapshot-threshold",
            &self.options.snapshot_threshold.to_string(),
            "--logs-to-keep",
            &self.options.logs_to_keep.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = self.dir.path().join(format!("replica-{id}.log"));
        let service = Service::new(
            &format!("replica {id}"),
            testkit::binary("order-replica"),
            args,
            port,
            log,
        )
        .env("ORDER_TOKEN", TOKEN)
        .env("RUST_LOG", "info,openraft=warn");
        self.nodes.insert(
            id,
            Node {
                id,
                data_dir,
                service,
            },
        );
        self.restart(id).await;
    }

    /// (Re)starts replica `id` on its port and data directory and waits until it serves.
    pub async fn restart(&mut self, id: u64) {
        self.nodes.get_mut(&id).unwrap().service.start().await;
    }

    /// SIGKILLs replica `id`.
    pub fn kill(&mut self, id: u64) {
        self.nodes.get_mut(&id).unwrap().service.kill();
    }

    /// SIGTERMs replica `id` and waits for it to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, id: u64) -> bool {
        self.nodes.get_mut(&id).unwrap().service.terminate()
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes[&id].service.is_running()
    }

    pub fn members(&self, ids: &[u64]) -> Vec<Member> {
        ids.iter()
            .map(|id| Member {
                id: *id,
                url: self.nodes[id].url(),
            })
            .collect()
    }

    pub fn driver(&self) -> MembershipDriver {
        MembershipDriver::new(Some(TOKEN.to_string()))
    }

    /// Drives the membership to exactly `ids` as voters.
    pub async fn converge(&self, ids: &[u64]) {
        self.driver()
            .converge(&self.members(ids), Duration::from_secs(60))
            .await
            .expect("membership converges");
    }

    pub fn client(&self, id: u64) -> ReplicaClient {
        ReplicaClient::new(
            self.http.clone(),
            self.nodes[&id].url(),
            Some(TOKEN.to_string()),
        )
    }

    /// A group client over every running replica.
    pub fn group(&self) -> Arc<GroupClient> {
        let urls = self.nodes.values().map(Node::url).collect();
        Arc::new(GroupClient::new(
            urls,
            Some(TOKEN.to_string()),
            Duration::from_secs(20),
        ))
    }

    pub async fn status(&self, id: u64) -> Result<RaftStatus, ClientError> {
        self.client(id).status().await
    }

    /// Waits until a running replica is leader (the one with the highest term); returns its id.
    pub async fn leader(&self) -> u64 {
        wait_for("a leader", Duration::from_secs(30), || async {
            let mut best: Option<(u64, u64)> = None;
            for (&id, node) in &self.nodes {
                if !node.service.is_running() {
                    continue;
                }
                if let Ok(s) = self.status(id).await
                    && s.role == RaftRole::Leader
                    && best.is_none_or(|(term, _)| s.term > term)
                {
                    best = Some((s.term, id));
                }
            }
            best.map(|(_, id)| id)
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
                    Ok(number) => acked.push(Acked {
                        key,
                        number,
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
