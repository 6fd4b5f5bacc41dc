//! Who a data directory belongs to, and whether its replica may take part in the group.
//!
//! Raft's safety rests on every voter remembering what it promised (its vote) and what it
//! accepted (its log). A replica whose volume was lost and replaced by an empty one has
//! forgotten both; if it kept voting under its old id it could help elect a leader that lacks
//! committed orders. So a replica records three facts in its data directory:
//!
//! - `node-id`: the Raft id the directory belongs to (a volume mounted on the wrong replica
//!   cannot impersonate another member);
//! - `data-id`: a random identity written when the directory is created, so a new directory
//!   is recognisable as new (reported in `/raft/status`);
//! - `admitted`: written when the replica is admitted to the group, either by `initialize` as a
//!   founding member or by a leader adding it as a learner.
//!
//! Until it is admitted a replica refuses every Raft RPC and never campaigns: it is invisible
//! to the group, like a replica that is down. The membership driver sees a member that is not
//! admitted, removes its old identity from the membership and adds it again as a learner (which
//! admits it); the leader then replicates to it from scratch.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::replica::OpenError;
use crate::types::NodeId;

const NODE_ID_FILE: &str = "node-id";
const DATA_ID_FILE: &str = "data-id";
const ADMITTED_FILE: &str = "admitted";

/// The identity of one replica's data directory.
#[derive(Debug)]
pub struct DataIdentity {
    dir: PathBuf,
    data_id: String,
    new: bool,
    admitted: AtomicBool,
}

impl DataIdentity {
    /// Reads (or, on first start, writes) the identity of `dir` for replica `id`.
    pub fn open(dir: &Path, id: NodeId) -> Result<Self, OpenError> {
        let storage = |source| OpenError::Storage {
            path: dir.to_path_buf(),
            source,
        };
        check_node_id(dir, id)?;
        let (data_id, new) = match read_trimmed(&dir.join(DATA_ID_FILE)).map_err(storage)? {
            Some(data_id) => (data_id, false),
            None => {
                let data_id = format!("{:032x}", rand::random::<u128>());
                write_durably(dir, DATA_ID_FILE, &format!("{data_id}\n")).map_err(storage)?;
                (data_id, true)
            }
        };
        let admitted = dir.join(ADMITTED_FILE).exists();
        if new {
            tracing::info!(
                data_id,
                "new data directory: this replica holds none of the group's state and takes no \
                 part in it until it is initialized or added as a learner"
            );
        } else if !admitted {
            tracing::info!(
                data_id,
                "replica not admitted yet: waiting to be initialized or added as a learner"
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            data_id,
            new,
            admitted: AtomicBool::new(admitted),
        })
    }

    /// The random identity written when the directory was created.
    pub fn data_id(&self) -> &str {
        &self.data_id
    }

    /// Whether the directory was created by this start (it was empty or missing).
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// Whether the replica may take part in the group.
    pub fn is_admitted(&self) -> bool {
        self.admitted.load(Ordering::Acquire)
    }

    /// Records durably that the replica was admitted; returns whether it was not before.
    pub fn admit(&self, by: &str) -> io::Result<bool> {
        if self.is_admitted() {
            return Ok(false);
        }
        write_durably(&self.dir, ADMITTED_FILE, &format!("{by}\n"))?;
        self.admitted.store(true, Ordering::Release);
        tracing::info!(data_id = self.data_id, by, "replica admitted to the group");
        Ok(true)
    }
}

fn read_trimmed(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `name` in `dir` so that after a crash it is either absent or complete: a temporary
/// file, fsync, rename, fsync of the directory.
fn write_durably(dir: &Path, name: &str, contents: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, contents)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Records the replica id on first start and refuses another id later.
fn check_node_id(dir: &Path, id: NodeId) -> Result<(), OpenError> {
    let path = dir.join(NODE_ID_FILE);
    let storage = |source| OpenError::Storage {
        path: dir.to_path_buf(),
        source,
    };
    let Some(stored) = read_trimmed(&path).map_err(storage)? else {
        return write_durably(dir, NODE_ID_FILE, &format!("{id}\n")).map_err(storage);
    };
    let stored: NodeId = stored.parse().map_err(|_| {
        storage(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a replica id", path.display()),
        ))
    })?;
    if stored != id {
        return Err(OpenError::WrongId {
            path: dir.to_path_buf(),
            stored,
            requested: id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_new_and_not_admitted_until_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataIdentity::open(dir.path(), 1).unwrap();
        assert!(first.is_new());
        assert!(!first.is_admitted());
        assert!(first.admit("test").unwrap());
        assert!(
            !first.admit("test").unwrap(),
            "admitting twice changes nothing"
        );

        let again = DataIdentity::open(dir.path(), 1).unwrap();
        assert!(!again.is_new());
        assert!(again.is_admitted(), "admission survives a restart");
        assert_eq!(again.data_id(), first.data_id());
    }

    #[test]
    fn a_wiped_directory_gets_a_new_identity_and_no_admission() {
        let dir = tempfile::tempdir().unwrap();
        let before = DataIdentity::open(dir.path(), 1).unwrap();
        before.admit("test").unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let after = DataIdentity::open(dir.path(), 1).unwrap();
        assert!(after.is_new());
        assert!(!after.is_admitted());
        assert_ne!(after.data_id(), before.data_id());
    }

    #[test]
    fn a_directory_of_another_replica_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        DataIdentity::open(dir.path(), 1).unwrap();
        assert!(matches!(
            DataIdentity::open(dir.path(), 2),
            Err(OpenError::WrongId {
                stored: 1,
                requested: 2,
                ..
            })
        ));
    }
}
