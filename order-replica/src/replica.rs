//! One order replica: storage, Raft, and the state every HTTP handler shares.

use openraft::async_runtime::WatchReceiver;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, ServerState, SnapshotPolicy};

use api::raft::{MemberInfo, RaftRole, RaftStatus};

use crate::identity::DataIdentity;
use crate::log_store::LogStore;
use crate::metrics::Metrics;
use crate::network::Network;
use crate::state_machine::StateMachineStore;
use crate::types::{NodeId, Raft};

/// Raft timing and compaction settings.
#[derive(Debug, Clone)]
pub struct RaftTiming {
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_max: Duration,
    /// Build a snapshot (and compact the log) after this many applied entries.
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot, so slightly lagging followers avoid a snapshot.
    pub logs_to_keep: u64,
}

/// Errors while opening a replica.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be read or written.
    #[error("data directory {path}: {source}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory belongs to another replica.
    #[error("data directory {path} belongs to replica {stored}, not {requested}")]
    WrongId {
        /// The directory.
        path: PathBuf,
        /// The id recorded in it.
        stored: NodeId,
        /// The id asked for.
        requested: NodeId,
    },
    /// The Raft settings are invalid.
    #[error("invalid raft settings: {0}")]
    Config(String),
    /// openraft refused to start.
    #[error("raft failed to start: {0}")]
    Raft(String),
}

/// Everything the HTTP handlers share.
pub struct Replica {
    /// This replica's Raft id.
    pub id: NodeId,
    pub raft: Raft,
    /// The state machine, for reads.
    pub state: StateMachineStore,
    /// The log, for its recovery report.
    pub log: LogStore,
    /// The data directory's identity and whether this replica is admitted to the group.
    pub identity: DataIdentity,
    /// The URL of its client API this replica advertises.
    pub url: String,
    /// The URL of its peer listener (Raft RPC), when it has one.
    pub raft_url: Option<String>,
    /// The cluster token required on Raft RPC and admin calls.
    pub token: String,
    /// This replica's Prometheus counters and gauges (`GET /metrics`).
    pub metrics: Metrics,
    /// HTTP client for calls to other replicas (read index).
    pub http: reqwest::Client,
    /// Turns `true` when the replica starts to stop: long-polls answer at once.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl Replica {
    /// Opens the data directory and starts Raft. The replica never initializes a group itself.
    pub async fn open(
        id: NodeId,
        url: String,
        raft_url: Option<String>,
        data_dir: &Path,
        token: String,
        timing: &RaftTiming,
    ) -> Result<Arc<Self>, OpenError> {
        let storage = |source| OpenError::Storage {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(storage)?;
        let log = LogStore::open(data_dir).map_err(storage)?;
        let identity = DataIdentity::open(data_dir, id)?;
        let state = StateMachineStore::open(data_dir).map_err(storage)?;
        let config = Config {
            cluster_name: "toystore-orders".into(),
            heartbeat_interval: timing.heartbeat.as_millis() as u64,
            election_timeout_min: timing.election_min.as_millis() as u64,
            election_timeout_max: timing.election_max.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_threshold),
            max_in_snapshot_log_to_keep: timing.logs_to_keep,
            install_snapshot_timeout: 60_000,
            // A replica that was paused or cut off asks before it campaigns, so it cannot raise
            // the term and depose a healthy leader when it comes back.
            enable_pre_vote: Some(true),
            // A restarted leader campaigns in a new term like anyone else. Restoring its old
            // leadership would be unsafe here: entries reach followers while the leader's own
            // flush is still running, so a leader killed mid-flush comes back without entries
            // its followers hold, and leading the same term again it would write different
            // entries under the same log ids, which followers take as matching.
            enable_leader_restore: Some(false),
            ..Default::default()
        }
        .validate()
        .map_err(|e| OpenError::Config(e.to_string()))?;
        let raft = Raft::new(
            id,
            Arc::new(config),
            Network::new(token.clone()),
            log.clone(),
            state.clone(),
        )
        .await
        .map_err(|e| OpenError::Raft(e.to_string()))?;
        // Not admitted: never campaign (the RPC layer also refuses votes and entries).
        raft.runtime_config().elect(identity.is_admitted());
        Ok(Arc::new(Self {
            id,
            url,
            raft_url,
            raft,
            state,
            log,
            identity,
            token,
            metrics: Metrics::new(),
            http: api::client::http_client(Duration::from_secs(5)),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// This replica's view of the group, as `GET /raft/status` reports it.
    pub fn status(&self) -> RaftStatus {
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched = m.replication.as_ref();
        let members: Vec<MemberInfo> = membership
            .nodes()
            .map(|(id, node)| MemberInfo {
                id: *id,
                url: node.addr.clone(),
                raft_url: node.raft_addr.clone(),
                voter: voters.contains(id),
                matched_index: matched
                    .and_then(|r| r.get(id))
                    .map(|l| l.as_ref().map_or(0, |l| l.index)),
            })
            .collect();
        let role = match m.state {
            ServerState::Leader => RaftRole::Leader,
            ServerState::Candidate => RaftRole::Candidate,
            ServerState::Follower if voters.contains(&self.id) => RaftRole::Follower,
            ServerState::Follower | ServerState::Learner => RaftRole::Learner,
            ServerState::Shutdown => RaftRole::Shutdown,
        };
        RaftStatus {
            id: self.id,
            url: self.url.clone(),
            raft_url: self.raft_url.clone(),
            role,
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            commit_index: m.local_committed.map(|l| l.index),
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            initialized: !members.is_empty(),
            joint: membership.get_joint_config().len() > 1,
            members,
            recovered_torn_bytes: self.log.torn_bytes(),
            admitted: self.identity.is_admitted(),
            inventory_defined: self.state.inventory_defined(),
            data_id: Some(self.identity.data_id().to_string()),
        }
    }

    /// Admits this replica to the group (durably) and lets it campaign. Idempotent.
    pub fn admit(&self, by: &str) -> std::io::Result<()> {
        self.identity.admit(by)?;
        self.raft.runtime_config().elect(true);
        Ok(())
    }

    /// Whether Raft is still running (a storage failure stops it).
    pub fn is_running(&self) -> bool {
        self.raft.metrics().borrow_watched().running_state.is_ok()
    }
}
