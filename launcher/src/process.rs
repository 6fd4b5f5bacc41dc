//! One service process: started with its log captured, checked to be the one answering on its
//! port, signalled, restarted with the same command line and data.
//!
//! - **Logs.** The child's stdout and stderr both go to its own log file (appended across
//!   restarts), so nothing it says is lost; [`Process::log_tail`] shows the end of it.
//! - **Readiness or exit, whichever comes first.** [`Process::start`] waits until the service
//!   answers `GET /healthz` *with its own pid* (so another process on the same port is never
//!   taken for it), then for its readiness path; if the child exits first, or the deadline
//!   passes, the error names the process and carries the tail of its log.
//! - **Signals** go through `nix`: SIGKILL, SIGTERM, SIGINT, SIGSTOP, SIGCONT.
//! - **No orphans.** A child gets SIGTERM when the thread that started it dies (Linux's
//!   parent-death signal), and [`Drop`] kills what is still running.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::prctl;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::ports;

/// What went wrong starting a process.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The program could not be started.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// The process's name.
        name: String,
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its port is taken by something else.
    #[error("cannot start {name}: port {port} is already in use")]
    PortTaken {
        /// The process's name.
        name: String,
        port: u16,
    },
    /// It exited before it was ready.
    #[error("{name} exited during start-up ({status}); the end of {log}:\n{tail}")]
    Exited {
        /// The process's name.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// Its log file.
        log: String,
        /// The last lines of its log.
        tail: String,
    },
    /// It did not become ready in time.
    #[error("{name} was not ready within {waited:?}; the end of {log}:\n{tail}")]
    NotReady {
        /// The process's name.
        name: String,
        /// How long it was given.
        waited: Duration,
        /// Its log file.
        log: String,
        /// The last lines of its log.
        tail: String,
    },
    /// Something else failed (a log file, the data directory, membership).
    #[error("{0}")]
    Other(String),
}

/// Lines of a log shown with an error.
pub const TAIL_LINES: usize = 30;

/// Where a process runs: the address it listens on, and the network namespace it runs in
/// (`None`: the launcher's own), for tests that cut the network between processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The address it listens on and is reached at.
    pub ip: std::net::IpAddr,
    /// The network namespace (`ip netns`) it runs in.
    pub netns: Option<String>,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            netns: None,
        }
    }
}

/// One service process and how to (re)start it.
#[derive(Debug)]
pub struct Process {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    host: Host,
    port: u16,
    ready_path: &'static str,
    child: Option<Child>,
}

impl Process {
    /// A process `name` running `program`, serving HTTP on loopback `port`, logging to `log`.
    /// It is ready when `/healthz` answers (see [`ready_at`](Self::ready_at)).
    pub fn new(name: &str, program: PathBuf, port: u16, log: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            program,
            args: Vec::new(),
            env: Vec::new(),
            log,
            host: Host::default(),
            port,
            ready_path: "/healthz",
            child: None,
        }
    }

    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs it on `host` (its address and network namespace); the arguments must make it
    /// listen there.
    pub fn on(mut self, host: Host) -> Self {
        self.host = host;
        self
    }

    /// Also waits for `path` (e.g. `/readyz`) to answer 2xx before the process counts as started.
    pub fn ready_at(mut self, path: &'static str) -> Self {
        self.ready_path = path;
        self
    }

    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://<host>:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host.ip, self.port)
    }

    /// `<host>:<port>`, what it listens on.
    pub fn listen_addr(&self) -> String {
        format!("{}:{}", self.host.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its command line, for people.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether it is running, as far as this handle knows (see [`exited`](Self::exited)).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Its pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How it exited, once it has exited by itself (it is then no longer running).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Starts the process without waiting for it.
    pub fn spawn(&mut self) -> Result<(), LaunchError> {
        assert!(self.child.is_none(), "{} is already running", self.name);
        // In a namespace of its own the port is its own too.
        if self.host.netns.is_none() && !ports::is_free(self.port) {
            return Err(LaunchError::PortTaken {
                name: self.name.clone(),
                port: self.port,
            });
        }
        let other = |e: std::io::Error| {
            LaunchError::Other(format!("{}: log {}: {e}", self.name, self.log.display()))
        };
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir).map_err(other)?;
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(other)?;
        let err = out.try_clone().map_err(other)?;
        let mut command = match &self.host.netns {
            // `ip netns exec` enters the namespace and execs the program: same pid.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| Ok(prctl::set_pdeathsig(Signal::SIGTERM)?));
        }
        let child = command.spawn().map_err(|source| LaunchError::Spawn {
            name: self.name.clone(),
            program: self.program.clone(),
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts the process and waits until it is ready, or fails naming it when it exits first
    /// or `deadline` passes.
    pub async fn start(&mut self, deadline: Duration) -> Result<(), LaunchError> {
        self.spawn()?;
        self.wait_ready(deadline).await
    }

    /// Waits until this very process answers `/healthz` and its readiness path.
    pub async fn wait_ready(&mut self, deadline: Duration) -> Result<(), LaunchError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("building an HTTP client");
        let start = Instant::now();
        let mut healthy = false;
        loop {
            if let Some(status) = self.exited() {
                return Err(LaunchError::Exited {
                    name: self.name.clone(),
                    status,
                    log: self.log.display().to_string(),
                    tail: self.log_tail(TAIL_LINES),
                });
            }
            if !healthy {
                healthy = self.answers_as_itself(&http).await;
            }
            if healthy
                && http
                    .get(format!("{}{}", self.url(), self.ready_path))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if start.elapsed() >= deadline {
                return Err(LaunchError::NotReady {
                    name: self.name.clone(),
                    waited: deadline,
                    log: self.log.display().to_string(),
                    tail: self.log_tail(TAIL_LINES),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether `/healthz` answers with this child's pid.
    async fn answers_as_itself(&self, http: &reqwest::Client) -> bool {
        let Ok(resp) = http.get(format!("{}/healthz", self.url())).send().await else {
            return false;
        };
        if !resp.status().is_success() {
            return false;
        }
        let Ok(body) = resp.json::<serde_json::Value>().await else {
            return false;
        };
        body["pid"].as_u64() == self.pid().map(u64::from)
    }

    /// Sends `signal` to the running process.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let _ = signal::kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (SIGTERM or SIGINT) and waits up to `grace` for the exit, then SIGKILLs.
    /// Returns how it exited (`None`: it had to be killed, or was not running).
    pub async fn stop(&mut self, signal: Signal, grace: Duration) -> Option<ExitStatus> {
        self.signal(signal);
        let start = Instant::now();
        while self.child.is_some() {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if start.elapsed() >= grace {
                tracing::warn!(name = %self.name, "did not stop within {grace:?}; killing it");
                self.kill();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
