//! The replica's command line and environment: every setting it starts with.
//!
//! Each flag can also come from an `ORDER_*` environment variable, which is how the operator
//! configures a replica in Kubernetes (a ConfigMap and the container's `env`). This struct is
//! that contract's one definition: the operator's tests parse every variable it writes through
//! [`Args`], so a misspelt or dropped variable fails a test instead of a pod.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::replica::RaftTiming;
use crate::server::Settings;

/// One replica of the ToyStore order service (Raft-replicated, durable).
///
/// The replica never initializes a group by itself: the membership driver (`toystore up` or the
/// operator) initializes a new group once and adds members through the admin API.
#[derive(Debug, Clone, Parser)]
#[command(name = "order-replica", version = api::VERSION, about)]
pub struct Args {
    /// Raft node id of this replica; stable for its whole life.
    #[arg(long, env = "ORDER_ID")]
    pub id: u64,
    /// Address to listen on for clients, peers and admin calls.
    #[arg(long, env = "ORDER_LISTEN", default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// URL peers and clients reach this replica at (default: http://<listen>).
    #[arg(long, env = "ORDER_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Address of a separate listener for Raft RPC from the other replicas (default: Raft RPC
    /// shares `--listen`). With it, client connections cannot starve the group's own traffic.
    #[arg(long, env = "ORDER_RAFT_LISTEN")]
    pub raft_listen: Option<SocketAddr>,
    /// URL the other replicas reach the Raft listener at (default: `http://` + `--raft-listen`).
    #[arg(long, env = "ORDER_RAFT_ADVERTISE_URL", requires = "raft_listen")]
    pub raft_advertise_url: Option<String>,
    /// Directory for the Raft log, state machine and snapshots.
    #[arg(long, env = "ORDER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Cluster token required on Raft RPC and admin calls.
    #[arg(
        long,
        env = "ORDER_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the cluster token (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "ORDER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Leader heartbeat interval, milliseconds.
    #[arg(long, env = "ORDER_HEARTBEAT_MS", default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Minimum election timeout, milliseconds.
    #[arg(long, env = "ORDER_ELECTION_TIMEOUT_MIN_MS", default_value_t = 150)]
    pub election_timeout_min_ms: u64,
    /// Maximum election timeout, milliseconds.
    #[arg(long, env = "ORDER_ELECTION_TIMEOUT_MAX_MS", default_value_t = 300)]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot and compact the log after this many new entries.
    #[arg(long, env = "ORDER_SNAPSHOT_THRESHOLD", default_value_t = 5000)]
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot.
    #[arg(long, env = "ORDER_LOGS_TO_KEEP", default_value_t = 1000)]
    pub logs_to_keep: u64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "ORDER_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Args {
    /// The replica's settings, with the cluster token read from `--token` or `--token-file`.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let token = servicekit::read_token(self.token.clone(), self.token_file.as_deref())
            .map_err(anyhow::Error::msg)?
            .context("a cluster token is required: --token or --token-file")?;
        Ok(Settings {
            id: self.id,
            listen: self.listen,
            advertise_url: self
                .advertise_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.listen)),
            raft_listen: self.raft_listen,
            raft_advertise_url: self.raft_listen.map(|addr| {
                self.raft_advertise_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{addr}"))
            }),
            data_dir: self.data_dir.clone(),
            token,
            timing: RaftTiming {
                heartbeat: Duration::from_millis(self.heartbeat_ms),
                election_min: Duration::from_millis(self.election_timeout_min_ms),
                election_max: Duration::from_millis(self.election_timeout_max_ms),
                snapshot_threshold: self.snapshot_threshold,
                logs_to_keep: self.logs_to_keep,
            },
        })
    }
}
