//! The order group's state machine, kept in a redb database in the data directory: the
//! inventory (every toy's price, stock and books) and the orders.
//!
//! Each apply batch is one redb write transaction: the toys, the orders, the change stream, the
//! applied log id and the membership change together or not at all, so applying is atomic. A
//! purchase is one command: key lookup, stock check, decrement and the next order number (or a
//! refusal recorded under the key) in one step ([`apply_command`]). Applying a command whose
//! effect is already present changes nothing, which makes re-delivery harmless.
//!
//! **Versions and the change stream.** Every change to a toy's stock has a version: the log
//! index of the command that made it. The last [`CHANGE_WINDOW`] changes are kept in order, so
//! a subscriber (the catalog) reads every change after the version it has seen
//! ([`StateMachineStore::changes`]); one older than what is kept gets the whole inventory
//! first and starts again from there.
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

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

use api::backup::StateSummary;
use api::catalog::{ChangeBatch, ChangeEvent};
use api::inventory::{Audit, ProductAudit};

use crate::record::{ProductRecord, RejectReason, STORAGE_FORMAT, check_format};
use crate::types::{
    Command, CommandResult, LogId, OrderRecord, OrderStatus, Snapshot, SnapshotMeta,
    StoredMembership, TypeConfig,
};

/// Orders by idempotency key (JSON [`OrderRecord`]).
const ORDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("orders");
/// Idempotency key of each confirmed order, by order number.
const NUMBERS: TableDefinition<u64, &str> = TableDefinition::new("numbers");
/// Toys by name (JSON [`ProductRecord`]).
const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products");
/// The change stream: each toy's state (JSON `api::catalog::Product`) by (version, name), the
/// last [`CHANGE_WINDOW`] of them.
const CHANGES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("changes");
/// `format`, `last_applied`, `membership`, `next_number`, `defined` (the inventory was
/// defined), `changes_since` (every change after this version is in [`CHANGES`]) (JSON values).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `meta` (JSON): the last snapshot built or installed.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

/// Changes kept for the change stream: a subscriber further behind starts again from the whole
/// inventory (a few toys), so this only needs to cover a catalog's usual lag.
pub const CHANGE_WINDOW: u64 = 10_000;

/// Most changes one answer of the change stream carries.
pub const MAX_CHANGES_PER_BATCH: usize = 2 * api::inventory::MAX_PRODUCTS;

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
                    products = payload.products.len(),
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
    format: u32,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    next_number: u64,
    defined: bool,
    products: Vec<ProductRecord>,
    orders: Vec<OrderRecord>,
}

impl SnapshotPayload {
    /// What the state holds, after checking that it is one this release can restore.
    fn summary(&self, what: &str) -> io::Result<StateSummary> {
        check_format(self.format, what)?;
        let invalid =
            |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {why}"));
        let last = self
            .last_applied
            .ok_or_else(|| invalid("it holds no applied index (an empty group)".into()))?;
        let (mut orders, mut refused) = (0, 0);
        for rec in &self.orders {
            match rec.status {
                OrderStatus::Confirmed { number } if number >= self.next_number => {
                    return Err(invalid(format!(
                        "order {number} is not below the next order number {}",
                        self.next_number
                    )));
                }
                OrderStatus::Confirmed { .. } => orders += 1,
                OrderStatus::Rejected(_) => refused += 1,
            }
        }
        Ok(StateSummary {
            storage_format: self.format,
            index: last.index,
            term: last.committed_leader_id().term,
            orders,
            refused,
            products: self.products.len() as u64,
        })
    }
}

/// Reads an exported state (a backup's payload) and says what it holds; one in another
/// storage format, or not a state at all, is refused with what is wrong.
pub fn inspect(bytes: &[u8]) -> io::Result<StateSummary> {
    let payload: SnapshotPayload = serde_json::from_slice(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the state is not an order group state: {e}"),
        )
    })?;
    payload.summary("the state")
}

/// Every value of a table of JSON records, in key order.
fn read_all<T: serde::de::DeserializeOwned>(
    tx: &redb::ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
) -> io::Result<Vec<T>> {
    let table = tx.open_table(table).map_err(io_err)?;
    let mut out = Vec::with_capacity(table.len().map_err(io_err)? as usize);
    for item in table.iter().map_err(io_err)? {
        let (_, v) = item.map_err(io_err)?;
        out.push(serde_json::from_slice(v.value()).map_err(json_err)?);
    }
    Ok(out)
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
    /// The version of the newest change applied, raised after each commit (wakes the change
    /// stream's long-polls).
    last_change: Arc<tokio::sync::watch::Sender<u64>>,
    /// Whether the inventory has been defined (kept in memory for status answers).
    defined: Arc<AtomicBool>,
}

impl StateMachineStore {
    /// Opens (or creates) the state database `state.redb` in `dir`; one written in another
    /// storage format is refused.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("state.redb");
        let db = Database::create(&path).map_err(io_err)?;
        let tx = db.begin_write().map_err(io_err)?;
        let (format, is_new) = {
            let meta = tx.open_table(META).map_err(io_err)?;
            let format: Option<u32> = Self::read_meta(&meta, "format")?;
            let is_new = meta.is_empty().map_err(io_err)?;
            (format, is_new)
        };
        match format {
            Some(f) => check_format(f, &path.display().to_string())?,
            None if is_new => Self::write_meta(&tx, "format", &STORAGE_FORMAT)?,
            None => check_format(0, &path.display().to_string())?,
        }
        for t in [ORDERS, PRODUCTS, SNAPSHOT] {
            tx.open_table(t).map_err(io_err)?;
        }
        tx.open_table(NUMBERS).map_err(io_err)?;
        tx.open_table(CHANGES).map_err(io_err)?;
        tx.commit().map_err(io_err)?;
        let tx = db.begin_read().map_err(io_err)?;
        let meta = tx.open_table(META).map_err(io_err)?;
        let defined: bool = Self::read_meta(&meta, "defined")?;
        let last_change = Self::last_change(&tx)?;
        drop(meta);
        drop(tx);
        Ok(Self {
            db: Arc::new(db),
            last_change: Arc::new(tokio::sync::watch::Sender::new(last_change)),
            defined: Arc::new(AtomicBool::new(defined)),
        })
    }

    /// The version of the newest change held (or, with none held, the version every held
    /// change comes after).
    fn last_change(tx: &redb::ReadTransaction) -> io::Result<u64> {
        let changes = tx.open_table(CHANGES).map_err(io_err)?;
        if let Some((k, _)) = changes.last().map_err(io_err)? {
            return Ok(k.value().0);
        }
        let meta = tx.open_table(META).map_err(io_err)?;
        Self::read_meta(&meta, "changes_since")
    }

    /// Whether the inventory has been defined.
    pub fn inventory_defined(&self) -> bool {
        self.defined.load(Ordering::Acquire)
    }

    /// A receiver of the newest change's version, raised after each commit.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.last_change.subscribe()
    }

    /// The changes after version `after` (at most [`MAX_CHANGES_PER_BATCH`]), from one read
    /// transaction; when `after` is older than the changes held, the whole inventory instead
    /// (`reset`, with a snapshot).
    pub fn changes(&self, after: u64) -> io::Result<ChangeBatch> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let meta = tx.open_table(META).map_err(io_err)?;
        let applied: Option<LogId> = Self::read_meta(&meta, "last_applied")?;
        let applied = applied.map_or(0, |l| l.index);
        let since: u64 = Self::read_meta(&meta, "changes_since")?;
        let defined: bool = Self::read_meta(&meta, "defined")?;
        if after < since {
            let snapshot = read_all::<ProductRecord>(&tx, PRODUCTS)?
                .iter()
                .map(ProductRecord::product)
                .collect();
            return Ok(ChangeBatch {
                events: Vec::new(),
                version: applied,
                reset: true,
                snapshot: Some(snapshot),
                defined,
            });
        }
        let changes = tx.open_table(CHANGES).map_err(io_err)?;
        let mut events = Vec::new();
        let mut version = applied.max(after);
        for item in changes.range((after + 1, "")..).map_err(io_err)? {
            let (k, v) = item.map_err(io_err)?;
            let at = k.value().0;
            if events.len() >= MAX_CHANGES_PER_BATCH {
                // Cut between versions, never inside one (a definition changes many toys at
                // one version): the answer goes up to the last version it holds whole.
                version = events.last().map_or(after, |e: &ChangeEvent| e.version);
                if at == version {
                    events.retain(|e: &ChangeEvent| e.version < at);
                    version = events.last().map_or(after, |e| e.version);
                }
                break;
            }
            events.push(ChangeEvent {
                version: at,
                product: serde_json::from_slice(v.value()).map_err(json_err)?,
            });
        }
        Ok(ChangeBatch {
            events,
            version,
            reset: false,
            snapshot: None,
            defined,
        })
    }

    /// The books: every toy's totals, and the orders counted from the orders themselves.
    pub fn audit(&self) -> io::Result<Audit> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let meta = tx.open_table(META).map_err(io_err)?;
        let applied: Option<LogId> = Self::read_meta(&meta, "last_applied")?;
        let mut ordered: BTreeMap<String, u64> = BTreeMap::new();
        let (mut confirmed, mut refused) = (0, 0);
        for rec in read_all::<OrderRecord>(&tx, ORDERS)? {
            match rec.status {
                OrderStatus::Confirmed { .. } => {
                    confirmed += 1;
                    *ordered.entry(rec.name).or_default() += u64::from(rec.quantity);
                }
                OrderStatus::Rejected(_) => refused += 1,
            }
        }
        let products = read_all::<ProductRecord>(&tx, PRODUCTS)?
            .into_iter()
            .map(|p| ProductAudit {
                ordered: ordered.get(&p.name).copied().unwrap_or(0),
                name: p.name,
                initial: p.initial,
                restocked: p.restocked,
                sold: p.sold,
                stock: u64::from(p.stock),
            })
            .collect();
        Ok(Audit {
            applied_index: applied.map_or(0, |l| l.index),
            products,
            confirmed,
            refused,
        })
    }

    /// Raises the change watch and the defined flag after a commit.
    fn publish(&self, last_change: Option<u64>, defined: bool) {
        if let Some(v) = last_change {
            self.last_change.send_if_modified(|last| {
                let newer = v > *last;
                if newer {
                    *last = v;
                }
                newer
            });
        }
        if defined {
            self.defined.store(true, Ordering::Release);
        }
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
        let orders = read_all(tx, ORDERS)?;
        let products = read_all(tx, PRODUCTS)?;
        Ok(SnapshotPayload {
            format: STORAGE_FORMAT,
            last_applied: Self::read_meta(&meta, "last_applied")?,
            membership: Self::read_meta(&meta, "membership")?,
            next_number: Self::read_meta(&meta, "next_number")?,
            defined: Self::read_meta(&meta, "defined")?,
            products,
            orders,
        })
    }

    /// The whole state as one read transaction sees it, serialized as a snapshot carries it
    /// (the payload of a backup), with what it holds. Reads every order: call it off the async
    /// runtime. Every entry the state includes is committed (only committed entries are
    /// applied), so it is the group's state as of one committed index.
    pub fn export(&self) -> io::Result<(Vec<u8>, StateSummary)> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let payload = Self::snapshot_payload(&tx)?;
        drop(tx);
        let summary = payload.summary("the exported state")?;
        let bytes = serde_json::to_vec(&payload).map_err(json_err)?;
        Ok((bytes, summary))
    }

    /// Records `meta` as the last snapshot.
    fn store_snapshot_meta(tx: &WriteTransaction, meta: &SnapshotMeta) -> io::Result<()> {
        let bytes = serde_json::to_vec(meta).map_err(json_err)?;
        let mut table = tx.open_table(SNAPSHOT).map_err(io_err)?;
        table.insert("meta", bytes.as_slice()).map_err(io_err)?;
        Ok(())
    }
}

/// What applying commands changed, for the watchers once the batch commits.
#[derive(Debug, Default)]
struct Applied {
    /// The version of the newest stock change.
    last_change: Option<u64>,
    /// Whether the inventory was defined.
    defined: bool,
}

/// Applies one command, at log index `index`, inside a write transaction. Idempotent.
fn apply_command(
    tx: &WriteTransaction,
    index: u64,
    cmd: Command,
    applied: &mut Applied,
) -> io::Result<CommandResult> {
    let mut products = tx.open_table(PRODUCTS).map_err(io_err)?;
    let mut changes = tx.open_table(CHANGES).map_err(io_err)?;
    let mut changed = |products: &mut redb::Table<&str, &[u8]>, p: &ProductRecord| {
        put_product(products, &mut changes, index, p)?;
        applied.last_change = Some(index);
        Ok::<_, io::Error>(())
    };
    match cmd {
        Command::Purchase {
            key,
            name,
            quantity,
        } => {
            let mut orders = tx.open_table(ORDERS).map_err(io_err)?;
            // A known key returns its outcome and changes nothing.
            if let Some(v) = orders.get(key.as_str()).map_err(io_err)? {
                let rec = serde_json::from_slice(v.value()).map_err(json_err)?;
                return Ok(CommandResult::Order(rec));
            }
            let status = match get_product(&products, &name)? {
                None => OrderStatus::Rejected(RejectReason::UnknownProduct),
                Some(p) if p.stock < quantity => OrderStatus::Rejected(RejectReason::OutOfStock),
                Some(mut p) => {
                    p.stock -= quantity;
                    p.sold += u64::from(quantity);
                    p.version = index;
                    changed(&mut products, &p)?;
                    let meta = tx.open_table(META).map_err(io_err)?;
                    let number: u64 = StateMachineStore::read_meta(&meta, "next_number")?;
                    drop(meta);
                    StateMachineStore::write_meta(tx, "next_number", &(number + 1))?;
                    tx.open_table(NUMBERS)
                        .map_err(io_err)?
                        .insert(number, key.as_str())
                        .map_err(io_err)?;
                    OrderStatus::Confirmed { number }
                }
            };
            let record = OrderRecord {
                key,
                name,
                quantity,
                status,
                version: index,
            };
            let bytes = serde_json::to_vec(&record).map_err(json_err)?;
            orders
                .insert(record.key.as_str(), bytes.as_slice())
                .map_err(io_err)?;
            Ok(CommandResult::Order(record))
        }
        Command::Restock {
            name,
            to,
            only_if_at,
        } => match get_product(&products, &name)? {
            Some(mut p) if p.stock == only_if_at && to > p.stock => {
                p.restocked += u64::from(to - p.stock);
                p.stock = to;
                p.version = index;
                changed(&mut products, &p)?;
                Ok(CommandResult::Restock {
                    restocked: true,
                    product: Some(p),
                })
            }
            other => Ok(CommandResult::Restock {
                restocked: false,
                product: other,
            }),
        },
        Command::Define { products: defs } => {
            let mut defined = Vec::new();
            for def in defs {
                if get_product(&products, &def.name)?.is_some() {
                    continue;
                }
                let p = ProductRecord {
                    name: def.name.clone(),
                    price: def.price,
                    stock: def.quantity,
                    initial: u64::from(def.quantity),
                    restocked: 0,
                    sold: 0,
                    version: index,
                };
                changed(&mut products, &p)?;
                defined.push(def.name);
            }
            drop(products);
            StateMachineStore::write_meta(tx, "defined", &true)?;
            applied.defined = true;
            Ok(CommandResult::Defined {
                names: defined,
                version: index,
            })
        }
    }
}

/// The toy called `name`, if defined.
fn get_product(
    products: &redb::Table<&str, &[u8]>,
    name: &str,
) -> io::Result<Option<ProductRecord>> {
    let value = products.get(name).map_err(io_err)?;
    value
        .map(|v| serde_json::from_slice(v.value()).map_err(json_err))
        .transpose()
}

/// Stores a toy whose stock changed at `index`, and the change for the change stream.
fn put_product(
    products: &mut redb::Table<&str, &[u8]>,
    changes: &mut redb::Table<(u64, &str), &[u8]>,
    index: u64,
    p: &ProductRecord,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(p).map_err(json_err)?;
    products
        .insert(p.name.as_str(), bytes.as_slice())
        .map_err(io_err)?;
    let event = serde_json::to_vec(&p.product()).map_err(json_err)?;
    changes
        .insert((index, p.name.as_str()), event.as_slice())
        .map_err(io_err)?;
    Ok(())
}

/// Drops the oldest changes beyond [`CHANGE_WINDOW`], remembering how far they went. Changes
/// of one version go whole, so every change after `changes_since` is still held.
fn trim_changes(tx: &WriteTransaction) -> io::Result<()> {
    let mut changes = tx.open_table(CHANGES).map_err(io_err)?;
    let mut since = None;
    loop {
        let first = changes.first().map_err(io_err)?.map(|(k, _)| k.value().0);
        let Some(first) = first else { break };
        let over = changes.len().map_err(io_err)? > CHANGE_WINDOW;
        if !over && since != Some(first) {
            break;
        }
        changes.pop_first().map_err(io_err)?;
        since = Some(first);
    }
    drop(changes);
    if let Some(since) = since {
        StateMachineStore::write_meta(tx, "changes_since", &since)?;
    }
    Ok(())
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
        let (replies, applied) = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut tx = this.db.begin_write().map_err(io_err)?;
            // No fsync: the entries are durable in the log (see the module documentation).
            tx.set_durability(Durability::None).map_err(io_err)?;
            let mut replies = Vec::with_capacity(batch.len());
            let mut applied = Applied::default();
            let mut last = None;
            for (entry, responder) in batch {
                last = Some(entry.log_id());
                let result = match entry.payload {
                    EntryPayload::Blank => CommandResult::None,
                    EntryPayload::Normal(cmd) => {
                        apply_command(&tx, entry.log_id.index, cmd, &mut applied)?
                    }
                    EntryPayload::Membership(m) => {
                        let stored = StoredMembership::new(last, m);
                        StateMachineStore::write_meta(&tx, "membership", &stored)?;
                        CommandResult::None
                    }
                };
                replies.push((responder, result));
            }
            if applied.last_change.is_some() {
                trim_changes(&tx)?;
            }
            StateMachineStore::write_meta(&tx, "last_applied", &last)?;
            tx.commit().map_err(io_err)?;
            Ok((replies, applied))
        })
        .await
        .map_err(io::Error::other)??;
        self.publish(applied.last_change, applied.defined);
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
        let (last_change, defined) = tokio::task::spawn_blocking(move || {
            let payload = snapshot.into_payload()?;
            check_format(payload.format, "the snapshot received")?;
            let mut tx = this.db.begin_write().map_err(io_err)?;
            tx.set_durability(Durability::Immediate).map_err(io_err)?;
            tx.delete_table(ORDERS).map_err(io_err)?;
            tx.delete_table(NUMBERS).map_err(io_err)?;
            tx.delete_table(PRODUCTS).map_err(io_err)?;
            tx.delete_table(CHANGES).map_err(io_err)?;
            {
                let mut orders = tx.open_table(ORDERS).map_err(io_err)?;
                let mut numbers = tx.open_table(NUMBERS).map_err(io_err)?;
                for rec in &payload.orders {
                    let bytes = serde_json::to_vec(rec).map_err(json_err)?;
                    orders
                        .insert(rec.key.as_str(), bytes.as_slice())
                        .map_err(io_err)?;
                    if let OrderStatus::Confirmed { number } = rec.status {
                        numbers.insert(number, rec.key.as_str()).map_err(io_err)?;
                    }
                }
                let mut products = tx.open_table(PRODUCTS).map_err(io_err)?;
                for p in &payload.products {
                    let bytes = serde_json::to_vec(p).map_err(json_err)?;
                    products
                        .insert(p.name.as_str(), bytes.as_slice())
                        .map_err(io_err)?;
                }
                tx.open_table(CHANGES).map_err(io_err)?;
            }
            // The changes before the snapshot are not held: a subscriber from before it starts
            // again from the whole inventory.
            let since = meta.last_log_id.map_or(0, |l| l.index);
            Self::write_meta(&tx, "last_applied", &meta.last_log_id)?;
            Self::write_meta(&tx, "membership", &meta.last_membership)?;
            Self::write_meta(&tx, "next_number", &payload.next_number)?;
            Self::write_meta(&tx, "defined", &payload.defined)?;
            Self::write_meta(&tx, "changes_since", &since)?;
            let orders = payload.orders.len();
            Self::store_snapshot_meta(&tx, &meta)?;
            tx.commit().map_err(io_err)?;
            tracing::info!(last = ?meta.last_log_id, orders, products = payload.products.len(), "snapshot installed");
            Ok::<_, io::Error>((since, payload.defined))
        })
        .await
        .map_err(io::Error::other)??;
        self.publish(Some(last_change), defined);
        Ok(())
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
    use crate::types::Entry;
    use api::inventory::ProductDef;

    fn set_format(dir: &Path, format: u32) {
        let db = Database::create(dir.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            let bytes = serde_json::to_vec(&format).unwrap();
            meta.insert("format", bytes.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_state_database_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(StateMachineStore::open(dir.path()).unwrap());
        for (format, says) in [(STORAGE_FORMAT + 1, "newer"), (1, "no migration")] {
            set_format(dir.path(), format);
            let err = StateMachineStore::open(dir.path()).err().expect("refused");
            let text = err.to_string();
            assert!(
                text.contains(&format!("state.redb is in storage format {format}")),
                "{text}"
            );
            assert!(text.contains(says), "{text}");
        }
    }

    fn log_id(index: u64) -> LogId {
        use openraft::vote::RaftLeaderIdExt;
        openraft::LogId::new(
            openraft::alias::LeaderIdOf::<TypeConfig>::new_committed(1, 1),
            index,
        )
    }

    fn def(name: &str, quantity: u32) -> ProductDef {
        ProductDef {
            name: name.into(),
            price: 1.5,
            quantity,
        }
    }

    fn purchase(key: &str, name: &str, quantity: u32) -> Command {
        Command::Purchase {
            key: key.into(),
            name: name.into(),
            quantity,
        }
    }

    /// Applies `commands` at log indexes `first..` in one batch.
    async fn apply(sm: &mut StateMachineStore, first: u64, commands: Vec<Command>) {
        let items = commands
            .into_iter()
            .enumerate()
            .map(|(i, c)| Ok((Entry::new_normal(log_id(first + i as u64), c), None)));
        sm.apply(futures_util::stream::iter(items)).await.unwrap();
    }

    /// Purchases of one Tux for keys `from..to`, at log index `k + 2` for key `k` (index 0
    /// holds the membership, 1 the definition).
    async fn apply_orders(sm: &mut StateMachineStore, from: u64, to: u64) {
        let commands = (from..to)
            .map(|k| purchase(&format!("k{k}"), "Tux", 1))
            .collect();
        apply(sm, from + 2, commands).await;
    }

    /// A state machine with the group's membership (index 0) and a Tux with a million in stock
    /// (index 1) applied, and an empty one, each in its own directory (kept while the returned
    /// directories live).
    async fn leader_and_follower() -> ([tempfile::TempDir; 2], StateMachineStore, StateMachineStore)
    {
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
        let define = Command::Define {
            products: vec![def("Tux", 1_000_000)],
        };
        apply(&mut leader, 1, vec![define]).await;
        (dirs, leader, follower)
    }

    fn order(sm: &StateMachineStore, key: &str) -> OrderRecord {
        sm.order_by_key(key).unwrap().expect(key)
    }

    #[tokio::test]
    async fn a_purchase_takes_stock_and_the_next_number_or_records_its_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        assert!(!sm.inventory_defined());
        let define = Command::Define {
            products: vec![def("Tux", 2), def("Fox", 1)],
        };
        apply(&mut sm, 1, vec![define]).await;
        assert!(sm.inventory_defined());
        apply(
            &mut sm,
            2,
            vec![
                purchase("a", "Tux", 2),
                purchase("b", "Tux", 1),
                purchase("c", "Bear", 1),
                purchase("d", "Fox", 1),
                // A repeat of a key changes nothing, whatever it asks for now.
                purchase("a", "Tux", 2),
                purchase("b", "Fox", 1),
            ],
        )
        .await;
        assert_eq!(order(&sm, "a").status, OrderStatus::Confirmed { number: 0 });
        assert_eq!(order(&sm, "a").version, 2);
        let refused = OrderStatus::Rejected(RejectReason::OutOfStock);
        assert_eq!(order(&sm, "b").status, refused);
        let unknown = OrderStatus::Rejected(RejectReason::UnknownProduct);
        assert_eq!(order(&sm, "c").status, unknown);
        assert_eq!(order(&sm, "d").status, OrderStatus::Confirmed { number: 1 });
        assert_eq!(sm.confirmed_count().unwrap(), 2);

        // Restock is conditional: the second, identical one changes nothing.
        let restock = Command::Restock {
            name: "Tux".into(),
            to: 5,
            only_if_at: 0,
        };
        apply(&mut sm, 8, vec![restock.clone(), restock]).await;
        // A refused key keeps its refusal after the restock.
        apply(&mut sm, 10, vec![purchase("b", "Tux", 1)]).await;
        assert_eq!(order(&sm, "b").status, refused);

        let audit = sm.audit().unwrap();
        assert_eq!((audit.confirmed, audit.refused), (2, 2));
        let tux = audit.products.iter().find(|p| p.name == "Tux").unwrap();
        assert_eq!(
            (tux.initial, tux.restocked, tux.sold, tux.stock, tux.ordered),
            (2, 5, 2, 5, 2)
        );
        for p in &audit.products {
            assert_eq!(p.stock, p.initial + p.restocked - p.sold, "{p:?}");
            assert_eq!(p.sold, p.ordered, "{p:?}");
        }
    }

    #[tokio::test]
    async fn the_change_stream_gives_every_change_after_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        let define = Command::Define {
            products: vec![def("Tux", 3), def("Fox", 1)],
        };
        apply(&mut sm, 1, vec![define.clone()]).await;
        let all = sm.changes(0).unwrap();
        assert!(!all.reset && all.defined);
        let versions: Vec<(u64, &str)> = all
            .events
            .iter()
            .map(|e| (e.version, e.product.name.as_str()))
            .collect();
        assert_eq!(versions, [(1, "Fox"), (1, "Tux")]);
        assert_eq!(*sm.subscribe().borrow(), 1);

        // A second definition defines nothing and changes no stock.
        apply(
            &mut sm,
            2,
            vec![define, purchase("a", "Tux", 2), purchase("b", "Bear", 1)],
        )
        .await;
        let after = sm.changes(1).unwrap();
        assert_eq!(after.version, 4);
        assert_eq!(after.events.len(), 1);
        assert_eq!(after.events[0].version, 3);
        assert_eq!(after.events[0].product.quantity, 1);
        assert_eq!(*sm.subscribe().borrow(), 3);
        assert!(sm.changes(3).unwrap().events.is_empty());
    }

    #[tokio::test]
    async fn a_subscriber_older_than_the_changes_kept_gets_the_whole_inventory() {
        let (_dirs, mut leader, _) = leader_and_follower().await;
        let n = CHANGE_WINDOW + 10;
        apply_orders(&mut leader, 0, n).await;
        // The definition (version 1) and the first purchases are no longer kept.
        let old = leader.changes(0).unwrap();
        assert!(old.reset);
        let snapshot = old.snapshot.unwrap();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].quantity, 1_000_000 - n as u32);
        assert_eq!(old.version, n + 1);
        // One kept is still served change by change.
        let recent = leader.changes(n - 5).unwrap();
        assert!(!recent.reset);
        assert_eq!(recent.events.len(), 6);
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
        assert_eq!(built.meta.last_log_id, Some(log_id(2001)));
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
        assert_eq!(current.meta.last_log_id, Some(log_id(2011)));
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
        // The inventory came with it; the change stream starts again from it.
        assert!(follower.inventory_defined());
        assert_eq!(follower.audit().unwrap(), leader.audit().unwrap());
        let stream = follower.changes(0).unwrap();
        assert!(stream.reset);
        assert_eq!(stream.snapshot.unwrap()[0].quantity, 1_000_000 - 2010);
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
        assert_eq!(current.meta.last_log_id, Some(log_id(101)));
        apply_orders(&mut leader, 100, 150).await;
        let mut bytes = Vec::new();
        current.snapshot.serialize_into(&mut bytes).unwrap();
        let payload: SnapshotPayload = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(payload.last_applied, Some(log_id(101)));
        assert_eq!(payload.orders.len(), 100);
        assert_eq!(payload.products[0].stock, 1_000_000 - 100);
        follower
            .install_snapshot(&current.meta, SnapshotData::Bytes(bytes))
            .await
            .unwrap();
        assert_eq!(follower.confirmed_count().unwrap(), 100);
        assert_eq!(follower.applied_state().await.unwrap().0, Some(log_id(101)));
        assert!(follower.order_by_number(100).unwrap().is_none());
    }
}
