//! Local mode: the order group as child processes on loopback, driven like the operator would.
//!
//! Everything lives under one data directory:
//! - `token`: the cluster token, generated once;
//! - `cluster.json`: what runs where (URLs and pids), rewritten on every start;
//! - `replica-N/`: each replica's data; `logs/replica-N.log`: its log.
//!
//! Ports are chosen once and kept in `cluster.json`: the group's membership records each
//! replica's address, so a restart must come back on the same addresses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use api::membership::MembershipDriver;
use api::raft::Member;

/// One running child as `cluster.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Raft node id.
    pub id: u64,
    /// Base URL.
    pub url: String,
    /// Process id.
    pub pid: Option<u32>,
}

/// `DIR/cluster.json`: how scripts and tests find the running store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The order replicas.
    pub order: Vec<ProcessInfo>,
    /// Path of the file holding the cluster token.
    pub token_file: PathBuf,
}

/// Options of `toystore up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Number of order replicas.
    pub replicas: u64,
    /// Directory holding the `order-replica` binary.
    pub bin_dir: PathBuf,
}

/// A running local store.
pub struct LocalStore {
    options: UpOptions,
    token: String,
    children: BTreeMap<u64, Child>,
    cluster: ClusterFile,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Reads the token in `dir`, creating one on first use.
fn load_or_create_token(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path = dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok((path, t.trim().to_string()));
    }
    let token = format!("{:032x}", rand::random::<u128>());
    std::fs::write(&path, &token)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((path, token))
}

impl LocalStore {
    /// Starts the replicas (reusing earlier addresses) and drives the membership until ready.
    pub async fn up(options: UpOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(options.data_dir.join("logs"))?;
        let (token_file, token) = load_or_create_token(&options.data_dir)?;
        let previous: ClusterFile = std::fs::read(options.data_dir.join("cluster.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut order = Vec::new();
        for id in 1..=options.replicas {
            let url = match previous.order.iter().find(|p| p.id == id) {
                Some(p) => p.url.clone(),
                None => format!("http://127.0.0.1:{}", free_port()?),
            };
            order.push(ProcessInfo { id, url, pid: None });
        }
        let mut store = Self {
            options,
            token,
            children: BTreeMap::new(),
            cluster: ClusterFile { order, token_file },
        };
        for id in 1..=store.options.replicas {
            store.spawn_replica(id)?;
        }
        store.write_cluster_file()?;
        let driver = MembershipDriver::new(Some(store.token.clone()));
        driver
            .converge(&store.members(), Duration::from_secs(60))
            .await?;
        Ok(store)
    }

    fn members(&self) -> Vec<Member> {
        self.cluster
            .order
            .iter()
            .map(|p| Member {
                id: p.id,
                url: p.url.clone(),
            })
            .collect()
    }

    fn spawn_replica(&mut self, id: u64) -> anyhow::Result<()> {
        let dir = &self.options.data_dir;
        let info = self
            .cluster
            .order
            .iter_mut()
            .find(|p| p.id == id)
            .expect("known replica");
        let listen = info.url.trim_start_matches("http://").to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("logs").join(format!("replica-{id}.log")))?;
        let bin = self.options.bin_dir.join("order-replica");
        let child = Command::new(&bin)
            .args(["--id", &id.to_string(), "--listen", &listen])
            .arg("--data-dir")
            .arg(dir.join(format!("replica-{id}")))
            .arg("--token-file")
            .arg(&self.cluster.token_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", bin.display()))?;
        info.pid = child.id();
        self.children.insert(id, child);
        Ok(())
    }

    fn write_cluster_file(&self) -> anyhow::Result<()> {
        let path = self.options.data_dir.join("cluster.json");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.cluster)?)?;
        std::fs::rename(tmp, path)?;
        Ok(())
    }

    /// The running store's description.
    pub fn cluster(&self) -> &ClusterFile {
        &self.cluster
    }

    /// Waits until `shutdown` completes, reporting children that die (and restarting them when
    /// `supervise` is set), then stops every child.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
        supervise: bool,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let mut exited = Vec::new();
            for (id, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    exited.push((*id, status));
                }
            }
            for (id, status) in exited {
                tracing::warn!(replica = id, %status, "order replica exited unexpectedly");
                self.children.remove(&id);
                if supervise {
                    self.spawn_replica(id)?;
                    self.write_cluster_file()?;
                    tracing::info!(replica = id, "order replica restarted");
                }
            }
        }
        self.stop().await;
        Ok(())
    }

    /// SIGTERMs every child, waits up to 10 s, then SIGKILLs what is left.
    pub async fn stop(&mut self) {
        for child in self.children.values() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for (id, child) in &mut self.children {
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => tracing::info!(replica = id, "stopped"),
                Err(_) => {
                    tracing::warn!(replica = id, "did not stop in time; killing");
                    let _ = child.kill().await;
                }
            }
        }
        self.children.clear();
    }
}
