//! The etcd baseline: the same write workload as ToyStore's orders, run against a three-member
//! etcd cluster on the same machine, so the evaluation can print ToyStore's figures as a ratio
//! to a well-known replicated store.
//!
//! What makes the comparison fair:
//! - **Same machine, loopback only.** The three etcd members are child processes on 127.0.0.1,
//!   like ToyStore's three order replicas in local mode; they share the same cores and disk.
//! - **Same replication and durability.** etcd replicates every write with Raft to a majority
//!   of three members, and each member fsyncs its write-ahead log before acknowledging — etcd
//!   does so by default, and the 3.4 series has no switch to turn it off — just as ToyStore's
//!   replicas fsync their Raft log.
//! - **Same client stack and concurrency.** Requests go through [`api::client::http_client`],
//!   the HTTP client ToyStore's own tools use, as JSON over HTTP/1.1 (etcd's gRPC gateway,
//!   `POST /v3/kv/put`), from `clients` concurrent tasks each doing one request at a time — the
//!   same closed-loop shape and the same concurrency levels as ToyStore's load client.
//! - **Writes land anywhere, like orders.** Clients are spread over the three members; a
//!   follower forwards a write to the leader, as ToyStore's frontend forwards to its leader.
//!
//! What etcd does *not* do is ToyStore's business logic (stock checks, idempotency keys, order
//! numbers): a PUT of a ~60-byte order-like JSON value is the cheapest write a replicated,
//! fsyncing store can do, which is what makes it a useful yardstick.
//!
//! Nothing here relies on a system-wide etcd: Debian's `etcd-server` package may register an
//! `etcd` service (there is no systemd to start it on these machines), but our members use their
//! own free ports, data directories under the caller's directory, and a cleared `ETCD_*`
//! environment, so a system service, running or not, is never touched.
//!
//! Nothing here installs etcd either: [`find_binary`] looks for it, and when it is missing its
//! error names what to install (`tests/tools/install-etcd.sh`), so the evaluation skips the
//! baseline with that note.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use loadgen::stats::{LatencyHistogram, WorkloadResult};

/// The gateway prefix of etcd's HTTP/JSON API (etcd 3.4 serves `/v3` and `/v3beta`; 3.5+ only
/// `/v3`).
pub const GATEWAY: &str = "/v3";

/// How long [`EtcdCluster::start`] waits for all three members to report healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`EtcdCluster::stop`] waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one request of the workload.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong with the etcd baseline.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No `etcd` binary (the message says what to install).
    #[error("etcd is not installed: {0}")]
    NotInstalled(String),
    /// The installed etcd is unusable for the baseline.
    #[error("unsupported etcd at {path}: {reason}")]
    Unsupported {
        /// The `etcd` found, so that the user knows which installation to replace.
        path: PathBuf,
        /// What is wrong with it (too old, no version printed).
        reason: String,
    },
    /// A filesystem or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done ("creating the data directory ..."), since an OS error alone
        /// names no file.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A member exited while the cluster was starting.
    #[error("etcd member {name} exited during startup ({status}); end of {log}:\n{tail}")]
    MemberExited {
        /// Which member (`etcd-1` ...), as its data directory and log are named.
        name: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: String,
        /// The end of the log.
        tail: String,
    },
    /// The cluster did not become healthy in time.
    #[error("the etcd cluster was not healthy within {timeout:?} (last: {last}); logs in {dir}")]
    Unhealthy {
        /// How long we waited.
        timeout: Duration,
        /// The last health answer or error.
        last: String,
        /// Where the logs are.
        dir: String,
    },
    /// An HTTP request to etcd failed.
    #[error("request to etcd at {url}: {source}")]
    Http {
        /// The request's URL, naming the member and the gateway endpoint.
        url: String,
        /// The transport's error (refused, timed out, ...).
        #[source]
        source: reqwest::Error,
    },
    /// etcd answered with an error status or an unexpected body.
    #[error("etcd at {url} answered {status}: {body}")]
    Response {
        /// The request's URL, naming the member and the gateway endpoint.
        url: String,
        /// The HTTP status code (a success when only the body was wrong).
        status: u16,
        /// The body, or what was wrong with it.
        body: String,
    },
    /// The workload was asked for something impossible.
    #[error("invalid workload: {0}")]
    InvalidWorkload(String),
    /// A workload task panicked or was cancelled.
    #[error("a workload client task failed: {0}")]
    Task(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EtcdError {
    let context = context.into();
    move |source| EtcdError::Io { context, source }
}

// ---------------------------------------------------------------------------------------------
// Finding etcd

/// What to do when there is no etcd: the baseline never installs anything itself.
pub const INSTALL_HINT: &str = "install Debian's etcd-server (`bash tests/tools/install-etcd.sh` \
     from the repository, or `apt-get install etcd-server` as root) to include the etcd baseline";

/// Finds the `etcd` server binary on `PATH`, or at `/usr/bin/etcd` (where Debian's
/// `etcd-server` puts it); when there is none, the error says what to install.
pub fn find_binary() -> Result<PathBuf, EtcdError> {
    find_binary_in(std::env::var_os("PATH"), Path::new("/usr/bin/etcd"))
}

/// [`find_binary`] with the search path and the fallback given.
fn find_binary_in(path: Option<OsString>, fallback: &Path) -> Result<PathBuf, EtcdError> {
    let on_path = path
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"));
    on_path
        .chain(std::iter::once(fallback.to_path_buf()))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            EtcdError::NotInstalled(format!(
                "no `etcd` on PATH or at {}; {INSTALL_HINT}",
                fallback.display()
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The version `etcd --version` reports, e.g. `3.4.23`.
pub fn version(bin: &Path) -> Result<String, EtcdError> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("running {} --version", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| EtcdError::Unsupported {
        path: bin.to_path_buf(),
        reason: format!("cannot read a version from `etcd --version`: {text:?}"),
    })
}

/// Reads `etcd Version: X.Y.Z` out of `etcd --version`'s output.
fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether the flags and the `/v3` gateway we use exist in this version (3.4 and later).
fn version_supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (3, 4),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// One member's addresses and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberSpec {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
}

impl MemberSpec {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// The command line of member `index` of `members` (etcd 3.4+ flags).
fn member_args(members: &[MemberSpec], index: usize, cluster_token: &str) -> Vec<String> {
    let me = &members[index];
    let initial_cluster = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        "--name".into(),
        me.name.clone(),
        "--data-dir".into(),
        me.data_dir.to_string_lossy().into_owned(),
        "--listen-client-urls".into(),
        me.client_url(),
        "--advertise-client-urls".into(),
        me.client_url(),
        "--listen-peer-urls".into(),
        me.peer_url(),
        "--initial-advertise-peer-urls".into(),
        me.peer_url(),
        "--initial-cluster".into(),
        initial_cluster,
        "--initial-cluster-state".into(),
        "new".into(),
        "--initial-cluster-token".into(),
        cluster_token.into(),
        "--logger".into(),
        "zap".into(),
        "--log-outputs".into(),
        "stderr".into(),
    ]
}

/// Picks `n` distinct free loopback ports.
fn free_ports(n: usize) -> Result<Vec<u16>, EtcdError> {
    (0..n)
        .map(|_| launcher::ports::free_port())
        .collect::<Result<_, _>>()
        .map_err(io_err("choosing free loopback ports"))
}

struct Member {
    spec: MemberSpec,
    log: PathBuf,
    child: Child,
}

/// Three etcd members running as child processes on loopback.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: PathBuf,
    version: String,
}

impl EtcdCluster {
    /// Starts a new three-member cluster under `dir` with the `etcd` found by [`find_binary`],
    /// and waits until every member is healthy.
    pub async fn start(dir: &Path) -> Result<Self, EtcdError> {
        Self::start_with(&find_binary()?, dir).await
    }

    /// Like [`EtcdCluster::start`], with a given `etcd` binary.
    ///
    /// `dir` gets `etcd-N/` (data) and `etcd-N.log` (log) for N in 1..=3; an earlier cluster's
    /// data there is removed first, since every start bootstraps a new cluster.
    pub async fn start_with(bin: &Path, dir: &Path) -> Result<Self, EtcdError> {
        let version = version(bin)?;
        if !version_supported(&version) {
            return Err(EtcdError::Unsupported {
                path: bin.to_path_buf(),
                reason: format!("version {version}; the baseline needs etcd 3.4 or later"),
            });
        }
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let ports = free_ports(6)?;
        let specs: Vec<MemberSpec> = (0..3)
            .map(|i| MemberSpec {
                name: format!("etcd-{}", i + 1),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: dir.join(format!("etcd-{}", i + 1)),
            })
            .collect();
        let token = format!("toystore-baseline-{:016x}", rand::random::<u64>());
        let mut cluster = Self {
            members: Vec::new(),
            dir: dir.to_path_buf(),
            version,
        };
        for (i, spec) in specs.iter().enumerate() {
            if spec.data_dir.exists() {
                std::fs::remove_dir_all(&spec.data_dir)
                    .map_err(io_err(format!("removing {}", spec.data_dir.display())))?;
            }
            let log = dir.join(format!("{}.log", spec.name));
            let log_file = std::fs::File::create(&log)
                .map_err(io_err(format!("creating {}", log.display())))?;
            let mut command = Command::new(bin);
            command
                .args(member_args(&specs, i, &token))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .kill_on_drop(true);
            // etcd reads ETCD_* variables as flags; keep the caller's environment out of it.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("ETCD_") {
                    command.env_remove(key);
                }
            }
            let child = command.spawn().map_err(io_err(format!(
                "starting {} {}",
                bin.display(),
                spec.name
            )))?;
            cluster.members.push(Member {
                spec: spec.clone(),
                log,
                child,
            });
        }
        // On error, dropping `cluster` kills the members.
        cluster.wait_healthy(START_TIMEOUT).await?;
        cluster.check_gateway().await?;
        tracing::info!(endpoints = ?cluster.endpoints(), version = %cluster.version, "etcd cluster up");
        Ok(cluster)
    }

    /// Polls `GET /health` on every member until all say healthy (which needs an elected
    /// leader), failing early when a member exits.
    async fn wait_healthy(&mut self, timeout: Duration) -> Result<(), EtcdError> {
        let http = api::client::http_client(Duration::from_secs(2));
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        loop {
            for m in &mut self.members {
                if let Ok(Some(status)) = m.child.try_wait() {
                    let text = std::fs::read_to_string(&m.log).unwrap_or_default();
                    return Err(EtcdError::MemberExited {
                        name: m.spec.name.clone(),
                        status: status.to_string(),
                        log: m.log.display().to_string(),
                        tail: last_lines(&text, 20),
                    });
                }
            }
            let mut healthy = 0;
            for m in &self.members {
                let url = format!("{}/health", m.spec.client_url());
                match health(&http, &url).await {
                    Ok(true) => healthy += 1,
                    Ok(false) => last = format!("{url}: not healthy"),
                    Err(e) => last = format!("{url}: {e}"),
                }
            }
            if healthy == self.members.len() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(EtcdError::Unhealthy {
                    timeout,
                    last,
                    dir: self.dir.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes sure the HTTP/JSON gateway answers under [`GATEWAY`].
    async fn check_gateway(&self) -> Result<(), EtcdError> {
        let http = api::client::http_client(REQUEST_TIMEOUT);
        for endpoint in self.endpoints() {
            get(&http, &endpoint, "toystore/baseline/probe").await?;
        }
        Ok(())
    }

    /// The members' client URLs, e.g. `http://127.0.0.1:40123`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.spec.client_url()).collect()
    }

    /// The members' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|m| m.child.id()).collect()
    }

    /// The version of the etcd running, e.g. `3.4.23`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGTERMs the members one at a time, waiting up to 10 s for each to exit before SIGKILLing
    /// it. One at a time, because a leader that is stopping hands its leadership over first and
    /// waits for a quorum that would be gone if every member stopped at once.
    pub async fn stop(mut self) {
        for mut m in std::mem::take(&mut self.members) {
            if let Some(pid) = m.child.id() {
                let _ = signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            match tokio::time::timeout(STOP_TIMEOUT, m.child.wait()).await {
                Ok(_) => tracing::debug!(member = %m.spec.name, "stopped"),
                Err(_) => {
                    tracing::warn!(member = %m.spec.name, "did not stop in time; killing");
                    let _ = m.child.kill().await;
                }
            }
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.child.start_kill();
        }
    }
}

/// Asks one member's `/health`.
async fn health(http: &reqwest::Client, url: &str) -> Result<bool, reqwest::Error> {
    let body: serde_json::Value = http.get(url).send().await?.json().await?;
    // etcd 3.4 answers {"health":"true"}; accept a JSON boolean as well.
    Ok(
        matches!(&body["health"], serde_json::Value::String(s) if s == "true")
            || body["health"] == serde_json::Value::Bool(true),
    )
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Requests

/// POSTs a JSON body to `{endpoint}/v3/{path}` and returns the JSON answer.
async fn call(
    http: &reqwest::Client,
    endpoint: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, EtcdError> {
    let url = format!("{endpoint}{GATEWAY}/{path}");
    let http_err = |source| EtcdError::Http {
        url: url.clone(),
        source,
    };
    let resp = http.post(&url).json(body).send().await.map_err(http_err)?;
    let status = resp.status();
    let text = resp.text().await.map_err(http_err)?;
    if !status.is_success() {
        return Err(EtcdError::Response {
            url,
            status: status.as_u16(),
            body: text,
        });
    }
    serde_json::from_str(&text).map_err(|e| EtcdError::Response {
        url,
        status: status.as_u16(),
        body: format!("not JSON ({e}): {text}"),
    })
}

/// Writes `value` under `key` (`POST /v3/kv/put`).
pub async fn put(
    http: &reqwest::Client,
    endpoint: &str,
    key: &str,
    value: &[u8],
) -> Result<(), EtcdError> {
    let body = serde_json::json!({
        "key": base64_encode(key.as_bytes()),
        "value": base64_encode(value),
    });
    call(http, endpoint, "kv/put", &body).await.map(|_| ())
}

/// Reads `key` (`POST /v3/kv/range`, linearizable): its value, or `None` when absent.
pub async fn get(
    http: &reqwest::Client,
    endpoint: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, EtcdError> {
    let url = format!("{endpoint}{GATEWAY}/kv/range");
    let body = serde_json::json!({ "key": base64_encode(key.as_bytes()) });
    let answer = call(http, endpoint, "kv/range", &body).await?;
    let Some(kv) = answer["kvs"].as_array().and_then(|kvs| kvs.first()) else {
        return Ok(None);
    };
    // An empty value is left out of the JSON.
    let value = kv["value"].as_str().unwrap_or("");
    base64_decode(value)
        .map(Some)
        .ok_or_else(|| EtcdError::Response {
            url,
            status: 200,
            body: format!("value is not base64: {value:?}"),
        })
}

/// The key the workload's client `client` writes for its `n`th order.
pub fn order_key(client: usize, n: u64) -> String {
    format!("order/{client}/{n}")
}

/// The value written for that order: ~60 bytes of JSON resembling an order.
pub fn order_value(client: usize, n: u64) -> String {
    format!(r#"{{"order":"{client}-{n}","toy":"Lego","quantity":1,"price_cents":1999}}"#)
}

/// Runs the baseline workload: `clients` concurrent tasks, each doing sequential PUTs of
/// order-like values ([`order_key`], [`order_value`]) for `duration`, client `i` talking to
/// `endpoints[i % endpoints.len()]`. Latency covers each whole request (sent to answer read);
/// throughput counts successful PUTs over the wall time until the last client finished.
pub async fn put_workload(
    endpoints: &[String],
    clients: usize,
    duration: Duration,
) -> Result<WorkloadResult, EtcdError> {
    if endpoints.is_empty() {
        return Err(EtcdError::InvalidWorkload("no etcd endpoints".into()));
    }
    if clients == 0 {
        return Err(EtcdError::InvalidWorkload("zero clients".into()));
    }
    let http = api::client::http_client(REQUEST_TIMEOUT);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let http = http.clone();
        let endpoint = endpoints[client % endpoints.len()].clone();
        tasks.spawn(async move {
            let mut latencies = LatencyHistogram::default();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let (key, value) = (order_key(client, n), order_value(client, n));
                n += 1;
                let sent = Instant::now();
                match put(&http, &endpoint, &key, value.as_bytes()).await {
                    Ok(()) => latencies.record(sent.elapsed()),
                    Err(e) => {
                        if errors == 0 {
                            tracing::warn!(client, error = %e, "etcd put failed");
                        }
                        errors += 1;
                        // Don't spin on a member that refuses connections.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = LatencyHistogram::default();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (l, e) = joined.map_err(|e| EtcdError::Task(e.to_string()))?;
        latencies.merge(&l);
        errors += e;
    }
    Ok(WorkloadResult::new(
        clients,
        &latencies,
        errors,
        start.elapsed(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Bytes fields: etcd's gateway encodes them as standard, padded base64 (RFC 4648, section 4).

/// `bytes` as etcd's gateway expects a bytes field.
pub fn base64_encode(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(bytes)
}

/// A bytes field from etcd's gateway; `None` if `text` is not standard padded base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64_STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_members_command_lines() {
        let specs: Vec<MemberSpec> = (1..=3u16)
            .map(|i| MemberSpec {
                name: format!("etcd-{i}"),
                client_port: 20000 + i,
                peer_port: 30000 + i,
                data_dir: PathBuf::from(format!("/tmp/b/etcd-{i}")),
            })
            .collect();
        let args = member_args(&specs, 1, "tok");
        let flag = |name: &str| {
            let at = args.iter().position(|a| a == name).expect(name);
            args[at + 1].as_str()
        };
        assert_eq!(flag("--name"), "etcd-2");
        assert_eq!(flag("--data-dir"), "/tmp/b/etcd-2");
        assert_eq!(flag("--listen-client-urls"), "http://127.0.0.1:20002");
        assert_eq!(flag("--advertise-client-urls"), "http://127.0.0.1:20002");
        assert_eq!(flag("--listen-peer-urls"), "http://127.0.0.1:30002");
        assert_eq!(
            flag("--initial-advertise-peer-urls"),
            "http://127.0.0.1:30002"
        );
        assert_eq!(
            flag("--initial-cluster"),
            "etcd-1=http://127.0.0.1:30001,etcd-2=http://127.0.0.1:30002,\
             etcd-3=http://127.0.0.1:30003"
        );
        assert_eq!(flag("--initial-cluster-state"), "new");
        assert_eq!(flag("--initial-cluster-token"), "tok");
        // Every flag takes a value; nothing would turn fsync off.
        assert!(args.len().is_multiple_of(2));
        assert!(!args.iter().any(|a| a.contains("fsync")));
        // Each member has its own addresses and directory.
        let all: Vec<Vec<String>> = (0..3).map(|i| member_args(&specs, i, "tok")).collect();
        assert_ne!(all[0], all[1]);
        assert_ne!(all[1], all[2]);
    }

    #[test]
    fn a_missing_etcd_is_reported_with_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let none = find_binary_in(
            Some(empty.path().as_os_str().to_owned()),
            &empty.path().join("etcd"),
        );
        let message = none.unwrap_err().to_string();
        assert!(message.starts_with("etcd is not installed"), "{message}");
        assert!(message.contains("tests/tools/install-etcd.sh"), "{message}");
        assert!(message.contains("apt-get install etcd-server"), "{message}");

        // An executable named etcd on the search path is found.
        let fake = empty.path().join("etcd");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = find_binary_in(
            Some(empty.path().as_os_str().to_owned()),
            Path::new("/nonexistent/etcd"),
        );
        assert_eq!(found.unwrap(), fake);
    }

    #[test]
    fn versions() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(out).as_deref(), Some("3.4.23"));
        assert_eq!(parse_version("something else"), None);
        assert!(version_supported("3.4.23"));
        assert!(version_supported("3.5.0"));
        assert!(version_supported("4.0.0"));
        assert!(!version_supported("3.3.25"));
        assert!(!version_supported("garbage"));
    }

    #[test]
    fn order_values_look_like_orders() {
        assert_eq!(order_key(7, 42), "order/7/42");
        let v = order_value(7, 42);
        let json: serde_json::Value = serde_json::from_str(&v).unwrap();
        assert_eq!(json["order"], "7-42");
        assert!((50..=80).contains(&v.len()), "{} bytes: {v}", v.len());
    }

    #[tokio::test]
    async fn workload_rejects_bad_arguments() {
        let none = put_workload(&[], 1, Duration::from_millis(1)).await;
        assert!(matches!(none, Err(EtcdError::InvalidWorkload(_))));
        let zero = put_workload(&["http://127.0.0.1:1".into()], 0, Duration::ZERO).await;
        assert!(matches!(zero, Err(EtcdError::InvalidWorkload(_))));
    }
}
