//! Local mode: the whole store as child processes on loopback, driven like the operator would.
//!
//! Everything lives under one data directory:
//! - `token`: the cluster token, generated once;
//! - `cluster.json`: what runs where (URLs and pids), rewritten whenever a child (re)starts;
//! - `catalog/`, `replica-N/`: the services' data; `logs/*.log`: their logs.
//!
//! Addresses are chosen once and kept in `cluster.json`: the order group's membership records
//! each replica's address, so a restart must come back on the same addresses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use api::raft::Member;
use membership::MembershipDriver;
use nix::sys::prctl;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// An order replica as `cluster.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    /// Raft node id.
    pub id: u64,
    /// Base URL.
    pub url: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// A single service as `cluster.json` records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Base URL.
    pub url: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// `DIR/cluster.json`: how scripts and tests find (and kill) the members of a running store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The storefront / public API URL.
    pub frontend: String,
    /// The frontend's process id while running.
    pub frontend_pid: Option<u32>,
    /// The catalog.
    pub catalog: ServiceInfo,
    /// The order replicas.
    pub order: Vec<ReplicaInfo>,
    /// Path of the file holding the cluster token.
    pub token_file: PathBuf,
}

impl ClusterFile {
    /// Reads `DIR/cluster.json`.
    pub fn read(data_dir: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(data_dir.join("cluster.json"))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// Options of `toystore up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Data directory.
    pub data_dir: PathBuf,
    /// The frontend's port (0: any free port).
    pub port: u16,
    /// Number of order replicas.
    pub replicas: u64,
    /// Catalog restock interval, seconds.
    pub restock_interval_secs: f64,
    /// Frontend cache capacity (0: no cache).
    pub cache_capacity: usize,
    /// Directory holding the service binaries.
    pub bin_dir: PathBuf,
}

/// Which child a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The catalog.
    Catalog,
    /// Order replica with this id.
    Replica(u64),
    /// The frontend.
    Frontend,
}

/// A running local store.
pub struct LocalStore {
    options: UpOptions,
    children: BTreeMap<Role, Child>,
    cluster: ClusterFile,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn loopback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Reads the token in `dir`, creating one on first use.
fn load_or_create_token(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("token");
    if !path.exists() {
        let token = format!("{:032x}", rand::random::<u128>());
        std::fs::write(&path, token)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(path)
}

impl LocalStore {
    /// Starts catalog, replicas and frontend (reusing earlier addresses), drives the order
    /// group's membership, and waits until the frontend is ready.
    pub async fn up(options: UpOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(options.data_dir.join("logs"))?;
        let token_file = load_or_create_token(&options.data_dir)?;
        let previous = ClusterFile::read(&options.data_dir).unwrap_or_default();
        let catalog_url = match previous.catalog.url.is_empty() {
            false => previous.catalog.url.clone(),
            true => loopback_url(free_port()?),
        };
        let mut order = Vec::new();
        for id in 1..=options.replicas {
            let url = match previous.order.iter().find(|p| p.id == id) {
                Some(p) => p.url.clone(),
                None => loopback_url(free_port()?),
            };
            order.push(ReplicaInfo { id, url, pid: None });
        }
        let port = match options.port {
            0 => free_port()?,
            p => p,
        };
        let mut store = Self {
            cluster: ClusterFile {
                frontend: loopback_url(port),
                frontend_pid: None,
                catalog: ServiceInfo {
                    url: catalog_url,
                    pid: None,
                },
                order,
                token_file,
            },
            options,
            children: BTreeMap::new(),
        };
        store.spawn(Role::Catalog)?;
        for id in 1..=store.options.replicas {
            store.spawn(Role::Replica(id))?;
        }
        let token = std::fs::read_to_string(&store.cluster.token_file)?;
        MembershipDriver::new(Some(token.trim().to_string()))
            .converge(&store.members(), Duration::from_secs(60))
            .await?;
        store.spawn(Role::Frontend)?;
        store.wait_ready(Duration::from_secs(30)).await?;
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

    fn listen_addr(url: &str) -> String {
        url.trim_start_matches("http://").to_string()
    }

    /// Starts one child and records its pid in `cluster.json`.
    fn spawn(&mut self, role: Role) -> anyhow::Result<()> {
        let dir = self.options.data_dir.clone();
        let bin = |name: &str| self.options.bin_dir.join(name);
        let (program, args, log): (PathBuf, Vec<String>, String) = match role {
            Role::Catalog => (
                bin("catalog"),
                vec![
                    "--listen".into(),
                    Self::listen_addr(&self.cluster.catalog.url),
                    "--data-dir".into(),
                    path_arg(&dir.join("catalog")),
                    "--restock-interval-secs".into(),
                    self.options.restock_interval_secs.to_string(),
                ],
                "catalog".into(),
            ),
            Role::Replica(id) => {
                let info = self
                    .cluster
                    .order
                    .iter()
                    .find(|p| p.id == id)
                    .expect("known replica");
                (
                    bin("order-replica"),
                    vec![
                        "--id".into(),
                        id.to_string(),
                        "--listen".into(),
                        Self::listen_addr(&info.url),
                        "--data-dir".into(),
                        path_arg(&dir.join(format!("replica-{id}"))),
                        "--token-file".into(),
                        path_arg(&self.cluster.token_file),
                        "--catalog-url".into(),
                        self.cluster.catalog.url.clone(),
                    ],
                    format!("replica-{id}"),
                )
            }
            Role::Frontend => (
                bin("frontend"),
                vec![
                    "--listen".into(),
                    Self::listen_addr(&self.cluster.frontend),
                    "--catalog-url".into(),
                    self.cluster.catalog.url.clone(),
                    "--order-replicas".into(),
                    self.members()
                        .iter()
                        .map(|m| m.url.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    "--order-token-file".into(),
                    path_arg(&self.cluster.token_file),
                    "--cache-capacity".into(),
                    self.options.cache_capacity.to_string(),
                ],
                "frontend".into(),
            ),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("logs").join(format!("{log}.log")))?;
        let mut command = Command::new(&program);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // Children get SIGTERM if `toystore` itself dies (even by SIGKILL), so a crashed
        // supervisor never leaves a store running behind it. (The signal follows the spawning
        // thread: a tokio worker, which lives as long as the runtime.)
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| Ok(prctl::set_pdeathsig(Signal::SIGTERM)?));
        }
        let child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", program.display()))?;
        let pid = child.id();
        match role {
            Role::Catalog => self.cluster.catalog.pid = pid,
            Role::Frontend => self.cluster.frontend_pid = pid,
            Role::Replica(id) => {
                if let Some(r) = self.cluster.order.iter_mut().find(|p| p.id == id) {
                    r.pid = pid;
                }
            }
        }
        self.children.insert(role, child);
        self.write_cluster_file()
    }

    async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let http = api::client::http_client(Duration::from_secs(2));
        let url = format!("{}/readyz", self.cluster.frontend);
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                anyhow::bail!(
                    "the frontend at {} did not become ready within {timeout:?}; see {}",
                    self.cluster.frontend,
                    self.options.data_dir.join("logs").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
            for (role, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    exited.push((*role, status));
                }
            }
            for (role, status) in exited {
                self.children.remove(&role);
                if supervise {
                    tracing::warn!(?role, %status, "child exited unexpectedly; restarting it");
                    self.spawn(role)?;
                } else {
                    tracing::warn!(?role, %status, "child exited unexpectedly (use --supervise to restart children)");
                }
            }
        }
        self.stop().await;
        Ok(())
    }

    /// SIGTERMs every child (frontend first, catalog last), waits up to 10 s, then SIGKILLs.
    pub async fn stop(&mut self) {
        let order: Vec<Role> = self.children.keys().rev().copied().collect();
        for role in order {
            let Some(mut child) = self.children.remove(&role) else {
                continue;
            };
            if let Some(pid) = child.id() {
                let _ = signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => tracing::info!(?role, "stopped"),
                Err(_) => {
                    tracing::warn!(?role, "did not stop in time; killing");
                    let _ = child.kill().await;
                }
            }
        }
    }
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
