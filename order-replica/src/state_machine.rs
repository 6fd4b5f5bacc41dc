//! The order state machine, kept in a redb database in the data directory.
//!
//! Each apply batch is one redb write transaction: the orders, the applied log id and the
//! membership change together or not at all, so applying is atomic. Applying a command whose
//! effect is already present changes nothing, which makes re-delivery harmless.
//!
//! **The log is the durability, not the state machine.** Applies commit without an fsync
//! (`Durability::None`): every applied entry is already durable in the Raft log of a majority,
//! and the log keeps every entry after the last snapshot. After a crash, redb comes back at its
//! last durable commit, `applied_state` says how far that got, and openraft applies the
//! committed entries after it again from the log. Snapshots are durable (`Immediate`), and a
//! durable redb commit makes every earlier commit durable too: so the state a snapshot was
//! built from is on disk before openraft purges the log behind it. Installing a snapshot is
//! durable for the same reason. See docs/design.md ("Order service").
//!
//! **Snapshots cost the same however long the history.** The database already holds the whole
//! state, so building a snapshot copies nothing: it is one durable commit that records how far
//! the state goes (the snapshot's meta), after which openraft may purge the log behind it. The
//! current snapshot openraft asks for is a read transaction ([`SnapshotData::View`]): its meta
//! and, only when the snapshot is sent to a follower too far behind for the log, the serialized
//! state ([`SnapshotPayload`], JSON) come from that one view, as of that moment (at or after the
//! last built snapshot, every entry of it committed). Asking for the meta alone, as openraft
//! does at start-up, reads no order.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::record::{STORAGE_FORMAT, check_format};
use crate::types::{
    Command, CommandResult, LogId, OrderRecord, OrderStatus, Resolution, Snapshot, SnapshotMeta,
    StoredMembership, TypeConfig,
};

/// Orders by idempotency key (JSON [`OrderRecord`]).
const ORDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("orders");
/// Idempotency key of each confirmed order, by order number.
const NUMBERS: TableDefinition<u64, &str> = TableDefinition::new("numbers");
/// Keys of orders still pending.
const PENDING: TableDefinition<&str, ()> = TableDefinition::new("pending");
/// `format`, `last_applied`, `membership`, `next_number` (JSON values).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `meta` (JSON): the last snapshot built or installed. Before snapshots stopped being copied it
/// also held their bytes under `data`, which the next build removes.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

/// The state a snapshot carries.
///
/// Serializing every order is what a snapshot costs, in time and memory, and openraft often
/// wants only the meta (at start-up, where it reads the current snapshot's). So a snapshot of
/// this replica's own state holds the read transaction its meta was read from, and the state is
/// serialized from that same view only when it is sent or installed: meta and data always
/// describe one state.
pub enum SnapshotData {
    /// This replica's state as one read transaction sees it.
    View(redb::ReadTransaction),
    /// A serialized state ([`SnapshotPayload`] as JSON), as a leader sent it.
    Bytes(Vec<u8>),
}

impl SnapshotData {
    /// Appends the state, serialized as it travels to a follower, to `out`. Reads every order
    /// of a [`View`](SnapshotData::View): call it off the async runtime.
    pub fn serialize_into(self, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            SnapshotData::Bytes(bytes) => out.extend_from_slice(&bytes),
            SnapshotData::View(tx) => {
                let started = Instant::now();
                let before = out.len();
                let payload = StateMachineStore::snapshot_payload(&tx)?;
                serde_json::to_writer(&mut *out, &payload).map_err(json_err)?;
                tracing::info!(
                    last = ?payload.last_applied,
                    orders = payload.orders.len(),
                    bytes = out.len() - before,
                    ms = started.elapsed().as_millis() as u64,
                    "state serialized for a snapshot"
                );
            }
        }
        Ok(())
    }

    fn into_payload(self) -> io::Result<SnapshotPayload> {
        match self {
            SnapshotData::Bytes(bytes) => serde_json::from_slice(&bytes).map_err(json_err),
            SnapshotData::View(tx) => StateMachineStore::snapshot_payload(&tx),
        }
    }
}

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotData::View(_) => f.write_str("SnapshotData::View"),
            SnapshotData::Bytes(b) => write!(f, "SnapshotData::Bytes({} bytes)", b.len()),
        }
    }
}

/// The serialized state machine carried by a snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotPayload {
    /// Storage format of the payload (absent in format 0).
    #[serde(default)]
    format: u32,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    next_number: u64,
    orders: Vec<OrderRecord>,
}

fn io_err<E: Into<redb::Error>>(e: E) -> io::Error {
    io::Error::other(e.into())
}

fn json_err(e: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The state machine of one replica. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
}

impl StateMachineStore {
    /// Opens (or creates) the state database `state.redb` in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("state.redb")).map_err(io_err)?;
        let tx = db.begin_write().map_err(io_err)?;
        for t in [ORDERS, META, SNAPSHOT] {
            tx.open_table(t).map_err(io_err)?;
        }
        tx.open_table(NUMBERS).map_err(io_err)?;
        tx.open_table(PENDING).map_err(io_err)?;
        // A database without a format is new, or format 0: both are read, and marked current.
        let format: u32 = {
            let meta = tx.open_table(META).map_err(io_err)?;
            Self::read_meta(&meta, "format")?
        };
        check_format(format, "state.redb")?;
        if format < STORAGE_FORMAT {
            Self::write_meta(&tx, "format", &STORAGE_FORMAT)?;
        }
        tx.commit().map_err(io_err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The confirmed order with this number, if any.
    pub fn order_by_number(&self, number: u64) -> io::Result<Option<OrderRecord>> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let numbers = tx.open_table(NUMBERS).map_err(io_err)?;
        let Some(key) = numbers.get(number).map_err(io_err)? else {
            return Ok(None);
        };
        let orders = tx.open_table(ORDERS).map_err(io_err)?;
        let value = orders.get(key.value()).map_err(io_err)?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(json_err))
            .transpose()
    }

    /// The order with this idempotency key, whatever its status.
    pub fn order_by_key(&self, key: &str) -> io::Result<Option<OrderRecord>> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let orders = tx.open_table(ORDERS).map_err(io_err)?;
        let value = orders.get(key).map_err(io_err)?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(json_err))
            .transpose()
    }

    /// Every order still waiting for the catalog's answer.
    pub fn pending_orders(&self) -> io::Result<Vec<OrderRecord>> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let pending = tx.open_table(PENDING).map_err(io_err)?;
        let orders = tx.open_table(ORDERS).map_err(io_err)?;
        let mut out = Vec::new();
        for item in pending.iter().map_err(io_err)? {
            let (key, _) = item.map_err(io_err)?;
            if let Some(v) = orders.get(key.value()).map_err(io_err)? {
                out.push(serde_json::from_slice(v.value()).map_err(json_err)?);
            }
        }
        Ok(out)
    }

    /// Number of orders still pending.
    pub fn pending_count(&self) -> io::Result<u64> {
        let tx = self.db.begin_read().map_err(io_err)?;
        tx.open_table(PENDING)
            .map_err(io_err)?
            .len()
            .map_err(io_err)
    }

    /// Number of confirmed orders.
    pub fn confirmed_count(&self) -> io::Result<u64> {
        let tx = self.db.begin_read().map_err(io_err)?;
        tx.open_table(NUMBERS)
            .map_err(io_err)?
            .len()
            .map_err(io_err)
    }

    fn read_meta<T: serde::de::DeserializeOwned + Default>(
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        name: &str,
    ) -> io::Result<T> {
        match table.get(name).map_err(io_err)? {
            Some(v) => serde_json::from_slice(v.value()).map_err(json_err),
            None => Ok(T::default()),
        }
    }

    /// How far the state goes (the last applied log id and the membership as of it), as the
    /// meta of a snapshot of it.
    fn applied_point(
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
    ) -> io::Result<SnapshotMeta> {
        Ok(SnapshotMeta {
            last_log_id: Self::read_meta(meta, "last_applied")?,
            last_membership: Self::read_meta(meta, "membership")?,
        })
    }

    fn write_meta<T: Serialize>(tx: &WriteTransaction, name: &str, value: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(json_err)?;
        tx.open_table(META)
            .map_err(io_err)?
            .insert(name, bytes.as_slice())
            .map_err(io_err)?;
        Ok(())
    }

    /// The current state as a snapshot: its meta, and the read transaction it was read from
    /// (serialized only if the snapshot is sent, see [`SnapshotData`]). `None` until a snapshot
    /// has been built or installed (openraft then builds one if it needs it).
    fn current_snapshot(&self) -> io::Result<Option<Snapshot>> {
        let tx = self.db.begin_read().map_err(io_err)?;
        if tx
            .open_table(SNAPSHOT)
            .map_err(io_err)?
            .get("meta")
            .map_err(io_err)?
            .is_none()
        {
            return Ok(None);
        }
        let meta = Self::applied_point(&tx.open_table(META).map_err(io_err)?)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: SnapshotData::View(tx),
        }))
    }

    /// Serializes the whole state machine as one read transaction sees it.
    fn snapshot_payload(tx: &redb::ReadTransaction) -> io::Result<SnapshotPayload> {
        let meta = tx.open_table(META).map_err(io_err)?;
        let orders_table = tx.open_table(ORDERS).map_err(io_err)?;
        let mut orders = Vec::with_capacity(orders_table.len().map_err(io_err)? as usize);
        for item in orders_table.iter().map_err(io_err)? {
            let (_, v) = item.map_err(io_err)?;
            orders.push(serde_json::from_slice(v.value()).map_err(json_err)?);
        }
        Ok(SnapshotPayload {
            format: STORAGE_FORMAT,
            last_applied: Self::read_meta(&meta, "last_applied")?,
            membership: Self::read_meta(&meta, "membership")?,
            next_number: Self::read_meta(&meta, "next_number")?,
            orders,
        })
    }

    /// Records `meta` as the last snapshot (dropping the bytes older versions stored).
    fn store_snapshot_meta(tx: &WriteTransaction, meta: &SnapshotMeta) -> io::Result<()> {
        let bytes = serde_json::to_vec(meta).map_err(json_err)?;
        let mut table = tx.open_table(SNAPSHOT).map_err(io_err)?;
        table.insert("meta", bytes.as_slice()).map_err(io_err)?;
        table.remove("data").map_err(io_err)?;
        Ok(())
    }
}

/// Applies one command inside a write transaction. Idempotent by idempotency key.
fn apply_command(tx: &WriteTransaction, cmd: Command) -> io::Result<CommandResult> {
    let mut orders = tx.open_table(ORDERS).map_err(io_err)?;
    let mut pending = tx.open_table(PENDING).map_err(io_err)?;
    let existing: Option<OrderRecord> = {
        let key = match &cmd {
            Command::Pending { key, .. } | Command::Resolve { key, .. } => key.as_str(),
        };
        let v = orders.get(key).map_err(io_err)?;
        v.map(|v| serde_json::from_slice(v.value()).map_err(json_err))
            .transpose()?
    };
    let record = match (cmd, existing) {
        // A repeat of a known key returns its current state and changes nothing.
        (Command::Pending { .. }, Some(rec)) => return Ok(CommandResult::Order(rec)),
        (
            Command::Pending {
                key,
                name,
                quantity,
            },
            None,
        ) => {
            pending.insert(key.as_str(), ()).map_err(io_err)?;
            OrderRecord {
                key,
                name,
                quantity,
                status: OrderStatus::Pending,
            }
        }
        (Command::Resolve { key, .. }, None) => return Ok(CommandResult::UnknownKey(key)),
        (Command::Resolve { outcome, .. }, Some(mut rec)) => {
            if rec.status != OrderStatus::Pending {
                return Ok(CommandResult::Order(rec));
            }
            rec.status = match outcome {
                Resolution::Confirmed => {
                    let meta = tx.open_table(META).map_err(io_err)?;
                    let number: u64 = StateMachineStore::read_meta(&meta, "next_number")?;
                    drop(meta);
                    StateMachineStore::write_meta(tx, "next_number", &(number + 1))?;
                    tx.open_table(NUMBERS)
                        .map_err(io_err)?
                        .insert(number, rec.key.as_str())
                        .map_err(io_err)?;
                    OrderStatus::Confirmed { number }
                }
                Resolution::Rejected(reason) => OrderStatus::Rejected(reason),
            };
            pending.remove(rec.key.as_str()).map_err(io_err)?;
            rec
        }
    };
    let bytes = serde_json::to_vec(&record).map_err(json_err)?;
    orders
        .insert(record.key.as_str(), bytes.as_slice())
        .map_err(io_err)?;
    Ok(CommandResult::Order(record))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;

    /// Makes the state applied so far durable and records it as the snapshot: one small write
    /// transaction with an fsync, whatever the number of orders. It is a write transaction so
    /// that it sees applies in order (openraft builds while it goes on applying). openraft keeps
    /// only the meta of what this returns, so the data is left empty; a follower that needs the
    /// state gets it from [`RaftStateMachine::get_current_snapshot`].
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut tx = this.db.begin_write().map_err(io_err)?;
            tx.set_durability(Durability::Immediate).map_err(io_err)?;
            let meta = Self::applied_point(&tx.open_table(META).map_err(io_err)?)?;
            Self::store_snapshot_meta(&tx, &meta)?;
            tx.commit().map_err(io_err)?;
            tracing::debug!(last = ?meta.last_log_id, "snapshot point durable");
            Ok(Snapshot {
                meta,
                snapshot: SnapshotData::Bytes(Vec::new()),
            })
        })
        .await
        .map_err(io::Error::other)?
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let point = Self::applied_point(&tx.open_table(META).map_err(io_err)?)?;
        Ok((point.last_log_id, point.last_membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        let this = self.clone();
        let replies = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut tx = this.db.begin_write().map_err(io_err)?;
            // No fsync: the entries are durable in the log (see the module documentation).
            tx.set_durability(Durability::None).map_err(io_err)?;
            let mut replies = Vec::with_capacity(batch.len());
            let mut last = None;
            for (entry, responder) in batch {
                last = Some(entry.log_id());
                let result = match entry.payload {
                    EntryPayload::Blank => CommandResult::None,
                    EntryPayload::Normal(cmd) => apply_command(&tx, cmd)?,
                    EntryPayload::Membership(m) => {
                        let stored = StoredMembership::new(last, m);
                        StateMachineStore::write_meta(&tx, "membership", &stored)?;
                        CommandResult::None
                    }
                };
                replies.push((responder, result));
            }
            StateMachineStore::write_meta(&tx, "last_applied", &last)?;
            tx.commit().map_err(io_err)?;
            Ok(replies)
        })
        .await
        .map_err(io::Error::other)??;
        // Answer after the batch is applied; its entries are durable in the log of a majority.
        for (responder, result) in replies {
            if let Some(r) = responder {
                r.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let payload = snapshot.into_payload()?;
            check_format(payload.format, "the snapshot received")?;
            let mut tx = this.db.begin_write().map_err(io_err)?;
            tx.set_durability(Durability::Immediate).map_err(io_err)?;
            tx.delete_table(ORDERS).map_err(io_err)?;
            tx.delete_table(NUMBERS).map_err(io_err)?;
            tx.delete_table(PENDING).map_err(io_err)?;
            {
                let mut orders = tx.open_table(ORDERS).map_err(io_err)?;
                let mut numbers = tx.open_table(NUMBERS).map_err(io_err)?;
                let mut pending = tx.open_table(PENDING).map_err(io_err)?;
                for rec in &payload.orders {
                    let bytes = serde_json::to_vec(rec).map_err(json_err)?;
                    orders
                        .insert(rec.key.as_str(), bytes.as_slice())
                        .map_err(io_err)?;
                    match rec.status {
                        OrderStatus::Confirmed { number } => {
                            numbers.insert(number, rec.key.as_str()).map_err(io_err)?;
                        }
                        OrderStatus::Pending => {
                            pending.insert(rec.key.as_str(), ()).map_err(io_err)?;
                        }
                        OrderStatus::Rejected(_) => {}
                    }
                }
            }
            Self::write_meta(&tx, "last_applied", &meta.last_log_id)?;
            Self::write_meta(&tx, "membership", &meta.last_membership)?;
            Self::write_meta(&tx, "next_number", &payload.next_number)?;
            let orders = payload.orders.len();
            Self::store_snapshot_meta(&tx, &meta)?;
            tx.commit().map_err(io_err)?;
            tracing::info!(last = ?meta.last_log_id, orders, "snapshot installed");
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }

    /// The state as it is now, once a snapshot exists: at or after the last one built, so the
    /// log the leader kept behind that one covers what follows it.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.current_snapshot())
            .await
            .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_format(dir: &Path, format: Option<u32>) {
        let db = Database::create(dir.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            match format {
                Some(f) => {
                    let bytes = serde_json::to_vec(&f).unwrap();
                    meta.insert("format", bytes.as_slice()).unwrap();
                }
                None => {
                    meta.remove("format").unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }

    fn format_of(store: &StateMachineStore) -> u32 {
        let tx = store.db.begin_read().unwrap();
        StateMachineStore::read_meta(&tx.open_table(META).unwrap(), "format").unwrap()
    }

    #[test]
    fn a_state_database_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(StateMachineStore::open(dir.path()).unwrap());
        set_format(dir.path(), Some(STORAGE_FORMAT + 1));
        let err = StateMachineStore::open(dir.path()).err().expect("refused");
        assert!(
            err.to_string()
                .contains("state.redb is in storage format 2"),
            "{err}"
        );
    }

    fn log_id(index: u64) -> LogId {
        use openraft::vote::RaftLeaderIdExt;
        openraft::LogId::new(
            openraft::alias::LeaderIdOf::<TypeConfig>::new_committed(1, 1),
            index,
        )
    }

    /// Applies `Pending` and `Resolve{Confirmed}` for keys `from..to`, at log indexes from
    /// `2 * from + 1` on (index 0 holds the membership).
    async fn apply_orders(sm: &mut StateMachineStore, from: u64, to: u64) {
        use crate::types::Entry;
        let mut entries = Vec::new();
        for k in from..to {
            let key = format!("k{k}");
            entries.push(Entry::new_normal(
                log_id(2 * k + 1),
                Command::Pending {
                    key: key.clone(),
                    name: "Tux".into(),
                    quantity: 1,
                },
            ));
            entries.push(Entry::new_normal(
                log_id(2 * k + 2),
                Command::Resolve {
                    key,
                    outcome: Resolution::Confirmed,
                },
            ));
        }
        let items = entries.into_iter().map(|e| Ok((e, None)));
        sm.apply(futures_util::stream::iter(items)).await.unwrap();
    }

    /// A state machine with the group's membership applied (index 0), and an empty one, each
    /// in its own directory (kept while the returned directories live).
    async fn leader_and_follower() -> ([tempfile::TempDir; 2], StateMachineStore, StateMachineStore)
    {
        use crate::types::Entry;
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut leader = StateMachineStore::open(dirs[0].path()).unwrap();
        let follower = StateMachineStore::open(dirs[1].path()).unwrap();
        let members = openraft::Membership::new_with_defaults(
            vec![std::collections::BTreeSet::from([1, 2])],
            [],
        );
        let first = Entry::new_membership(log_id(0), members);
        leader
            .apply(futures_util::stream::iter([Ok((first, None))]))
            .await
            .unwrap();
        (dirs, leader, follower)
    }

    fn snapshot_table_keys(sm: &StateMachineStore) -> Vec<String> {
        let tx = sm.db.begin_read().unwrap();
        let table = tx.open_table(SNAPSHOT).unwrap();
        table
            .iter()
            .unwrap()
            .map(|item| item.unwrap().0.value().to_string())
            .collect()
    }

    #[tokio::test]
    async fn building_a_snapshot_copies_no_orders_and_a_follower_still_gets_them_all() {
        let (_dirs, mut leader, mut follower) = leader_and_follower().await;
        assert!(leader.get_current_snapshot().await.unwrap().is_none());

        apply_orders(&mut leader, 0, 2000).await;
        let built = leader.build_snapshot().await.unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(4000)));
        assert!(
            matches!(&built.snapshot, SnapshotData::Bytes(b) if b.is_empty()),
            "the build serialized the state"
        );
        assert_eq!(
            snapshot_table_keys(&leader),
            ["meta"],
            "only the meta is stored"
        );

        // Applies go on; a follower that needs the state gets it as it is now.
        apply_orders(&mut leader, 2000, 2010).await;
        let current = leader.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id, Some(log_id(4020)));
        follower
            .install_snapshot(&current.meta, current.snapshot)
            .await
            .unwrap();
        assert_eq!(
            follower.applied_state().await.unwrap(),
            leader.applied_state().await.unwrap()
        );
        assert_eq!(follower.confirmed_count().unwrap(), 2010);
        for number in [0, 1999, 2009] {
            assert_eq!(
                follower.order_by_number(number).unwrap(),
                leader.order_by_number(number).unwrap()
            );
        }
        assert_eq!(
            follower.get_current_snapshot().await.unwrap().unwrap().meta,
            current.meta
        );
    }

    #[tokio::test]
    async fn a_current_snapshot_is_the_state_its_meta_names_even_after_more_applies() {
        let (_dirs, mut leader, mut follower) = leader_and_follower().await;
        apply_orders(&mut leader, 0, 100).await;
        leader.build_snapshot().await.unwrap();

        // Taken at 100 orders, serialized after 50 more: it still holds exactly the 100 its
        // meta names, so a follower installing it applies the log after it without a gap or
        // a repeat.
        let current = leader.get_current_snapshot().await.unwrap().unwrap();
        assert!(matches!(current.snapshot, SnapshotData::View(_)));
        assert_eq!(current.meta.last_log_id, Some(log_id(200)));
        apply_orders(&mut leader, 100, 150).await;
        let mut bytes = Vec::new();
        current.snapshot.serialize_into(&mut bytes).unwrap();
        let payload: SnapshotPayload = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(payload.last_applied, Some(log_id(200)));
        assert_eq!(payload.orders.len(), 100);
        follower
            .install_snapshot(&current.meta, SnapshotData::Bytes(bytes))
            .await
            .unwrap();
        assert_eq!(follower.confirmed_count().unwrap(), 100);
        assert_eq!(follower.applied_state().await.unwrap().0, Some(log_id(200)));
        assert!(follower.order_by_number(100).unwrap().is_none());
    }

    #[test]
    fn new_and_format_0_databases_are_marked_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateMachineStore::open(dir.path()).unwrap();
        assert_eq!(format_of(&store), STORAGE_FORMAT);
        drop(store);
        set_format(dir.path(), None);
        let store = StateMachineStore::open(dir.path()).unwrap();
        assert_eq!(format_of(&store), STORAGE_FORMAT);
    }
}
