//! A new group from a backup: one empty data directory seeded with a backed-up state.
//!
//! Like `etcdutl snapshot restore`, restoring writes a data directory offline, before its
//! replica starts: the state becomes the directory's snapshot, as of the backup's index, and
//! the membership is a new one, this replica alone as the only voter (the old group's members
//! and their addresses mean nothing to the new store). The replica is admitted, so on its first
//! start it elects itself and serves the restored state; the membership driver then adds the
//! other replicas as learners, and the leader sends them the state as a snapshot. Each replica
//! of the new store writes a new data identity, as any new directory does.
//!
//! Seeding refuses a directory that holds anything: restoring over a replica's data would make
//! a second group under an existing member's id.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use openraft::Membership;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::vote::RaftLeaderIdExt;

use api::backup::StateSummary;

use crate::identity::DataIdentity;
use crate::log_store::LogStore;
use crate::replica::OpenError;
use crate::state_machine::{SnapshotData, StateMachineStore, inspect};
use crate::types::{LogId, NodeId, ReplicaNode, SnapshotMeta, StoredMembership, TypeConfig, Vote};

/// Why a data directory could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The directory is not empty.
    #[error(
        "{0} is not empty: a restore seeds only a new data directory (it would otherwise make a \
         second group under an existing replica's id)"
    )]
    NotEmpty(PathBuf),
    /// The state is not one this release can restore.
    #[error("{0}")]
    State(io::Error),
    /// The directory could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Writing the directory failed.
    #[error("data directory {path}: {source}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Seeds the empty directory `dir` of replica `id`, reached at `node`, with `state` (a state
/// as [`StateMachineStore::export`] writes it), and returns what it holds. Every write is
/// durable before this returns.
pub async fn seed(
    dir: &Path,
    id: NodeId,
    node: ReplicaNode,
    state: Vec<u8>,
) -> Result<StateSummary, SeedError> {
    let storage = |source| SeedError::Storage {
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() && holds_anything(dir).map_err(storage)? {
        return Err(SeedError::NotEmpty(dir.to_path_buf()));
    }
    let summary = inspect(&state).map_err(SeedError::State)?;
    std::fs::create_dir_all(dir).map_err(storage)?;

    // The state's own index and term: order versions and the change stream go on from them.
    let last = LogId::new(
        openraft::alias::LeaderIdOf::<TypeConfig>::new_committed(summary.term, id),
        summary.index,
    );
    let membership = Membership::new(vec![BTreeSet::from([id])], BTreeMap::from([(id, node)]))
        .expect("a voter with its node is a valid membership");
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: StoredMembership::new(Some(last), membership),
    };
    let mut state_machine = StateMachineStore::open(dir).map_err(storage)?;
    state_machine
        .install_snapshot(&meta, SnapshotData::Bytes(state))
        .await
        .map_err(storage)?;
    // The log starts after the state; the vote (uncommitted, for itself in the state's term)
    // makes its first election a newer term than any entry it holds.
    let mut log = LogStore::open(dir).map_err(storage)?;
    log.save_vote(&Vote::new(summary.term, id))
        .await
        .map_err(storage)?;
    log.purge(last).await.map_err(storage)?;
    // Admitted last: a directory seeded half way is never a voter.
    let identity = DataIdentity::open(dir, id)?;
    identity.admit("restore").map_err(storage)?;
    tracing::info!(
        dir = %dir.display(),
        id,
        index = summary.index,
        orders = summary.orders,
        "data directory seeded from a backup"
    );
    Ok(summary)
}

/// Whether `dir` holds anything but the `lost+found` that mkfs.ext4 puts at the root of a new
/// volume (a Kubernetes claim mounted as the data directory, on EBS or a GCE disk).
fn holds_anything(dir: &Path) -> io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        if entry?.file_name() != "lost+found" {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::STORAGE_FORMAT;
    use openraft::storage::RaftLogReader;

    fn order(key: &str, number: u64) -> serde_json::Value {
        serde_json::to_value(crate::types::OrderRecord {
            key: key.into(),
            name: "Tux".into(),
            quantity: 1,
            status: crate::types::OrderStatus::Confirmed { number },
            version: 5 + number,
        })
        .unwrap()
    }

    /// A state of two orders as of index 41 (term 3), as a replica exports it.
    async fn two_orders() -> Vec<u8> {
        let source = tempfile::tempdir().unwrap();
        let node = ReplicaNode {
            addr: "http://127.0.0.1:1".into(),
            raft_addr: None,
        };
        // A seeded directory is itself a state to export: seed one from a hand-made state.
        let state = serde_json::json!({
            "format": STORAGE_FORMAT,
            "last_applied": {"leader_id": {"term": 3, "node_id": 1}, "index": 41},
            "membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
            "next_number": 2,
            "defined": true,
            "products": [],
            "orders": [order("a", 0), order("b", 1)],
        });
        let bytes = serde_json::to_vec(&state).unwrap();
        seed(source.path(), 1, node, bytes).await.unwrap();
        let (exported, summary) = StateMachineStore::open(source.path())
            .unwrap()
            .export()
            .unwrap();
        assert_eq!(summary.index, 41);
        exported
    }

    #[tokio::test]
    async fn a_seeded_directory_holds_the_state_as_the_only_voter_and_is_admitted() {
        let state = two_orders().await;
        let dir = tempfile::tempdir().unwrap();
        let node = ReplicaNode {
            addr: "http://127.0.0.1:7000".into(),
            raft_addr: Some("http://127.0.0.1:7001".into()),
        };
        let summary = seed(dir.path(), 4, node.clone(), state).await.unwrap();
        assert_eq!((summary.index, summary.term, summary.orders), (41, 3, 2));

        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(41));
        let voters: Vec<NodeId> = membership.membership().voter_ids().collect();
        assert_eq!(
            voters,
            vec![4],
            "the new group's only voter is the seeded replica"
        );
        assert_eq!(membership.membership().get_node(&4), Some(&node));
        assert_eq!(sm.order_by_number(1).unwrap().unwrap().key, "b");
        assert!(sm.get_current_snapshot().await.unwrap().is_some());

        let mut log = LogStore::open(dir.path()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(41));
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 4)));
        assert!(DataIdentity::open(dir.path(), 4).unwrap().is_admitted());
    }

    #[tokio::test]
    async fn seeding_refuses_a_directory_that_is_not_empty_and_a_state_it_cannot_read() {
        let state = two_orders().await;
        let node = ReplicaNode::default();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node-id"), "1\n").unwrap();
        let err = seed(dir.path(), 1, node.clone(), state.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, SeedError::NotEmpty(_)), "{err}");

        let mut other: serde_json::Value = serde_json::from_slice(&state).unwrap();
        other["format"] = (STORAGE_FORMAT + 1).into();
        let empty = tempfile::tempdir().unwrap();
        let err = seed(
            empty.path(),
            1,
            node.clone(),
            serde_json::to_vec(&other).unwrap(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("storage format"), "{err}");
        assert_eq!(
            std::fs::read_dir(empty.path()).unwrap().count(),
            0,
            "nothing written"
        );

        let err = seed(empty.path(), 1, node, b"not json".to_vec())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not an order group state"),
            "{err}"
        );
    }

    /// A new ext4 volume mounted as the data directory holds `lost+found` and nothing else.
    #[tokio::test]
    async fn seeding_takes_a_new_volume_with_only_lost_and_found() {
        let state = two_orders().await;
        let volume = tempfile::tempdir().unwrap();
        std::fs::create_dir(volume.path().join("lost+found")).unwrap();
        let summary = seed(volume.path(), 1, ReplicaNode::default(), state.clone())
            .await
            .unwrap();
        assert_eq!(summary.orders, 2);
        assert!(DataIdentity::open(volume.path(), 1).unwrap().is_admitted());

        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(other.path().join("lost+found")).unwrap();
        std::fs::write(other.path().join("log"), "").unwrap();
        let err = seed(other.path(), 1, ReplicaNode::default(), state)
            .await
            .unwrap_err();
        assert!(matches!(err, SeedError::NotEmpty(_)), "{err}");
    }
}
