//! The catalog's durable state in one redb database (`catalog.redb` in the data directory).
//!
//! The catalog is the single owner of stock, and the purchase protocol relies on `take` being
//! idempotent across crashes: the order leader repeats a take for every order left pending, and
//! the answer must be the first one. So each change is one redb write transaction committed with
//! [`Durability::Immediate`] (fsync) that holds everything the change touches together: the
//! product, the take record under its key, the feed version counter and the change event. After
//! a SIGKILL the disk holds either all of a take or none of it.
//!
//! Tables:
//! - `products`: name → JSON [`StoredProduct`] (stock plus the initial/taken/restocked totals);
//! - `takes`: idempotency key → JSON [`TakeRecord`];
//! - `events`: feed version → JSON [`ChangeEvent`], the most recent `retention` only;
//! - `meta`: `version` (last feed version handed out), `seeded` (1 once seeded).
//!
//! Versions are dense: every change bumps the counter by one and stores exactly one event, so the
//! retained events always cover `oldest..=version` and a subscriber can detect a gap.
//!
//! Everything here is blocking; the async side calls it through `spawn_blocking`.

use std::path::Path;

use api::catalog::{
    Audit, ChangeBatch, ChangeEvent, Product, ProductAudit, TakeOutcome, TakeRecord, TakeRequest,
    TakeResponse,
};
use api::orders::{MAX_NAME_LEN, MAX_QUANTITY, validate_idempotency_key};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::seed::SeedProduct;

/// Products by name (JSON [`StoredProduct`]).
const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products");
/// Take records by idempotency key (JSON [`TakeRecord`]).
const TAKES: TableDefinition<&str, &[u8]> = TableDefinition::new("takes");
/// Recent change events by version (JSON [`ChangeEvent`]).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Counters: [`VERSION`] and [`SEEDED`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Meta key of the last feed version handed out.
const VERSION: &str = "version";
/// Meta key set to 1 once the products are seeded.
const SEEDED: &str = "seeded";

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "catalog.redb";
/// How many recent change events are kept for the feed by default.
pub const DEFAULT_EVENT_RETENTION: u64 = 10_000;
/// Most events one feed answer carries.
pub const MAX_BATCH: usize = 1000;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request is not acceptable (bad key, name or quantity); nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// redb failed (I/O error, full disk, database held by another process, ...).
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// A stored record does not decode.
    #[error("corrupt record in the database: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the database must be closed and opened again before it can be used: an I/O
    /// error (a full disk, say) leaves redb refusing every later transaction until then.
    pub fn needs_reopen(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
            )
        )
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A product with the bookkeeping behind the stock invariant
/// `quantity = initial − taken + restocked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredProduct {
    /// Unique name.
    pub name: String,
    /// Price.
    pub price: f64,
    /// Units in stock now.
    pub quantity: u32,
    /// Feed version of the last change (0 = unchanged since seeding).
    pub version: u64,
    /// Units at seeding.
    pub initial: u32,
    /// Units removed by `Taken` takes.
    pub taken: u64,
    /// Units added by restocks.
    pub restocked: u64,
}

impl StoredProduct {
    /// The product as the wire shows it.
    pub fn product(&self) -> Product {
        Product {
            name: self.name.clone(),
            price: self.price,
            quantity: self.quantity,
            version: self.version,
        }
    }

    /// The product's audit line.
    pub fn audit(&self) -> ProductAudit {
        ProductAudit {
            name: self.name.clone(),
            initial: self.initial,
            quantity: self.quantity,
            taken: self.taken,
            restocked: self.restocked,
        }
    }
}

/// One take inside a write transaction: the known outcome of a repeated key, or a new one
/// recorded (and the stock lowered when taken).
fn take_in(
    takes: &mut Table<&'static str, &'static [u8]>,
    changes: &mut Changes<'_>,
    req: &TakeRequest,
) -> Result<Take, StoreError> {
    let known: Option<TakeRecord> = takes
        .get(req.key.as_str())?
        .map(|v| decode(v.value()))
        .transpose()?;
    if let Some(record) = known {
        let product = match record.outcome {
            TakeOutcome::UnknownProduct => None,
            _ => get_product(&changes.products, &record.name)?.map(|p| p.product()),
        };
        return Ok(Take {
            response: TakeResponse {
                outcome: record.outcome,
                product,
            },
            repeated: true,
            mismatched: record.name != req.name || record.quantity != req.quantity,
            new_version: None,
        });
    }
    let (outcome, product, new_version) = match get_product(&changes.products, &req.name)? {
        None => (TakeOutcome::UnknownProduct, None, None),
        Some(p) if p.quantity < req.quantity => {
            (TakeOutcome::Insufficient, Some(p.product()), None)
        }
        Some(mut p) => {
            p.quantity -= req.quantity;
            p.taken += u64::from(req.quantity);
            let event = changes.record(&mut p)?;
            (TakeOutcome::Taken, Some(p.product()), Some(event.version))
        }
    };
    let record = TakeRecord {
        key: req.key.clone(),
        name: req.name.clone(),
        quantity: req.quantity,
        outcome,
    };
    let bytes = serde_json::to_vec(&record)?;
    takes.insert(req.key.as_str(), bytes.as_slice())?;
    Ok(Take {
        response: TakeResponse { outcome, product },
        repeated: false,
        mismatched: false,
        new_version,
    })
}

/// What [`Store::take`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    /// The answer for the client (the first one for a repeated key).
    pub response: TakeResponse,
    /// True when the key was already known and nothing changed.
    pub repeated: bool,
    /// True when the key was known for another toy or quantity (a client bug worth a log line).
    pub mismatched: bool,
    /// The new feed version when the take changed stock.
    pub new_version: Option<u64>,
}

/// Checks a take request: key as [`validate_idempotency_key`] wants it, name non-empty and at
/// most [`MAX_NAME_LEN`] characters, quantity 1..=[`MAX_QUANTITY`]. Returns a message for a 400.
pub fn validate_take(req: &TakeRequest) -> Result<(), String> {
    validate_idempotency_key(&req.key).map_err(|e| e.replace("Idempotency-Key", "key"))?;
    if req.name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if req.name.chars().count() > MAX_NAME_LEN {
        return Err(format!("name is longer than {MAX_NAME_LEN} characters"));
    }
    if req.quantity < 1 || i64::from(req.quantity) > MAX_QUANTITY {
        return Err(format!(
            "quantity must be 1 to {MAX_QUANTITY}, got {}",
            req.quantity
        ));
    }
    Ok(())
}

/// The catalog database.
pub struct Store {
    db: Database,
    retention: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

fn begin_durable(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    Ok(tx)
}

fn get_product(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<StoredProduct>, StoreError> {
    table.get(name)?.map(|v| decode(v.value())).transpose()
}

fn put_product(
    table: &mut Table<&'static str, &'static [u8]>,
    product: &StoredProduct,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(product)?;
    table.insert(product.name.as_str(), bytes.as_slice())?;
    Ok(())
}

/// The tables a change writes, opened once per transaction.
struct Changes<'tx> {
    products: Table<'tx, &'static str, &'static [u8]>,
    events: Table<'tx, u64, &'static [u8]>,
    meta: Table<'tx, &'static str, u64>,
    retention: u64,
}

impl<'tx> Changes<'tx> {
    fn open(tx: &'tx WriteTransaction, retention: u64) -> Result<Self, StoreError> {
        Ok(Self {
            products: tx.open_table(PRODUCTS)?,
            events: tx.open_table(EVENTS)?,
            meta: tx.open_table(META)?,
            retention,
        })
    }

    /// Gives `product` the next feed version, stores it and its event, and drops events that
    /// fell out of the retention window.
    fn record(&mut self, product: &mut StoredProduct) -> Result<ChangeEvent, StoreError> {
        let version = self.meta.get(VERSION)?.map_or(0, |v| v.value()) + 1;
        self.meta.insert(VERSION, version)?;
        product.version = version;
        put_product(&mut self.products, product)?;
        let event = ChangeEvent {
            version,
            product: product.product(),
        };
        let bytes = serde_json::to_vec(&event)?;
        self.events.insert(version, bytes.as_slice())?;
        let keep_from = (version + 1).saturating_sub(self.retention);
        if keep_from > 0 {
            self.events.retain_in(..keep_from, |_, _| false)?;
        }
        Ok(event)
    }
}

impl Store {
    /// Opens (or creates) the database in `dir`, keeping [`DEFAULT_EVENT_RETENTION`] events.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_retention(dir, DEFAULT_EVENT_RETENTION)
    }

    /// Opens (or creates) the database in `dir`, keeping the last `retention` (≥ 1) events.
    pub fn open_with_retention(dir: &Path, retention: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = Database::create(dir.join(DB_FILE))?;
        let tx = begin_durable(&db)?;
        tx.open_table(PRODUCTS)?;
        tx.open_table(TAKES)?;
        tx.open_table(EVENTS)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Self {
            db,
            retention: retention.max(1),
        })
    }

    /// Stores `products` if the catalog was never seeded; returns whether it seeded now.
    /// A seeded catalog keeps its state whatever `products` says.
    pub fn seed(&self, products: &[SeedProduct]) -> Result<bool, StoreError> {
        let tx = begin_durable(&self.db)?;
        {
            let mut meta = tx.open_table(META)?;
            let mut table = tx.open_table(PRODUCTS)?;
            if meta.get(SEEDED)?.is_some() || !table.is_empty()? {
                drop((meta, table));
                tx.abort()?;
                return Ok(false);
            }
            for p in products {
                put_product(
                    &mut table,
                    &StoredProduct {
                        name: p.name.clone(),
                        price: p.price,
                        quantity: p.quantity,
                        version: 0,
                        initial: p.quantity,
                        taken: 0,
                        restocked: 0,
                    },
                )?;
            }
            meta.insert(SEEDED, 1)?;
            if meta.get(VERSION)?.is_none() {
                meta.insert(VERSION, 0)?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    /// Whether the catalog holds its seeded products (checks that the database is readable).
    pub fn is_seeded(&self) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(META)?.get(SEEDED)?.is_some())
    }

    /// The last feed version handed out (0 before any change).
    pub fn version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(META)?.get(VERSION)?.map_or(0, |v| v.value()))
    }

    /// Number of products.
    pub fn product_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(PRODUCTS)?.len()?)
    }

    /// The product called `name`.
    pub fn product(&self, name: &str) -> Result<Option<Product>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PRODUCTS)?;
        Ok(get_product(&table, name)?.map(|p| p.product()))
    }

    /// Every product with its bookkeeping, sorted by name.
    pub fn stored_products(&self) -> Result<Vec<StoredProduct>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PRODUCTS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (_, v) = item?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Every product, sorted by name.
    pub fn products(&self) -> Result<Vec<Product>, StoreError> {
        Ok(self
            .stored_products()?
            .iter()
            .map(StoredProduct::product)
            .collect())
    }

    /// Takes stock for one purchase, idempotently by key, in one durable transaction.
    ///
    /// A known key returns its recorded outcome and the product as it is now, and changes
    /// nothing, even if the name or quantity differ. Otherwise the outcome is recorded under the
    /// key: `UnknownProduct` and `Insufficient` leave stock alone; `Taken` lowers the stock,
    /// raises the product's `taken` total and emits a change event.
    pub fn take(&self, req: &TakeRequest) -> Result<Take, StoreError> {
        self.take_batch(std::slice::from_ref(req))?
            .pop()
            .expect("one answer per request")
    }

    /// Applies several takes in one durable transaction (group commit): one fsync for all of
    /// them. Each sees the ones before it (a key repeated within the batch gets the first
    /// outcome). An invalid request fails alone; a storage failure fails them all, and none
    /// is recorded.
    pub fn take_batch(
        &self,
        reqs: &[TakeRequest],
    ) -> Result<Vec<Result<Take, StoreError>>, StoreError> {
        let tx = begin_durable(&self.db)?;
        let mut answers = Vec::with_capacity(reqs.len());
        let mut changed = false;
        {
            let mut takes = tx.open_table(TAKES)?;
            let mut changes = Changes::open(&tx, self.retention)?;
            for req in reqs {
                if let Err(why) = validate_take(req) {
                    answers.push(Err(StoreError::Invalid(why)));
                    continue;
                }
                let take = take_in(&mut takes, &mut changes, req)?;
                changed |= !take.repeated;
                answers.push(Ok(take));
            }
        }
        if changed {
            tx.commit()?;
        } else {
            tx.abort()?;
        }
        Ok(answers)
    }

    /// Restocks every toy at 0 to `quantity`, in one durable transaction; returns the events
    /// (empty, and nothing written, when no toy was sold out).
    pub fn restock(&self, quantity: u32) -> Result<Vec<ChangeEvent>, StoreError> {
        if quantity == 0 {
            return Ok(Vec::new());
        }
        let tx = begin_durable(&self.db)?;
        let events = {
            let mut changes = Changes::open(&tx, self.retention)?;
            let mut sold_out = Vec::new();
            for item in changes.products.iter()? {
                let (_, v) = item?;
                let p: StoredProduct = decode(v.value())?;
                if p.quantity == 0 {
                    sold_out.push(p);
                }
            }
            let mut events = Vec::with_capacity(sold_out.len());
            for mut p in sold_out {
                p.quantity = quantity;
                p.restocked += u64::from(quantity);
                events.push(changes.record(&mut p)?);
            }
            events
        };
        if events.is_empty() {
            tx.abort()?;
        } else {
            tx.commit()?;
        }
        Ok(events)
    }

    /// The feed after version `after`: up to `limit` events in order, or a reset when `after` is
    /// from the future or older than the retained events (a gap the subscriber cannot fill).
    pub fn changes(&self, after: u64, limit: usize) -> Result<ChangeBatch, StoreError> {
        let tx = self.db.begin_read()?;
        let version = tx.open_table(META)?.get(VERSION)?.map_or(0, |v| v.value());
        let reset = |version| ChangeBatch {
            events: Vec::new(),
            version,
            reset: true,
        };
        if after > version {
            return Ok(reset(version));
        }
        let mut batch = ChangeBatch {
            events: Vec::new(),
            version,
            reset: false,
        };
        if after == version {
            return Ok(batch);
        }
        let events = tx.open_table(EVENTS)?;
        let oldest = events.first()?.map(|(k, _)| k.value());
        match oldest {
            Some(oldest) if after + 1 >= oldest => {}
            _ => return Ok(reset(version)),
        }
        for item in events.range(after + 1..)?.take(limit) {
            let (_, v) = item?;
            batch.events.push(decode(v.value())?);
        }
        Ok(batch)
    }

    /// Every product's bookkeeping and every take record.
    pub fn audit(&self) -> Result<Audit, StoreError> {
        let tx = self.db.begin_read()?;
        let products_table = tx.open_table(PRODUCTS)?;
        let mut products = Vec::new();
        for item in products_table.iter()? {
            let (_, v) = item?;
            products.push(decode::<StoredProduct>(v.value())?.audit());
        }
        let takes_table = tx.open_table(TAKES)?;
        let mut takes = Vec::with_capacity(takes_table.len()? as usize);
        for item in takes_table.iter()? {
            let (_, v) = item?;
            takes.push(decode(v.value())?);
        }
        Ok(Audit { products, takes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(dir: &Path, retention: u64, toys: &[(&str, u32)]) -> Store {
        let store = Store::open_with_retention(dir, retention).unwrap();
        let seed: Vec<SeedProduct> = toys
            .iter()
            .map(|(name, quantity)| SeedProduct {
                name: (*name).into(),
                price: 9.5,
                quantity: *quantity,
            })
            .collect();
        assert!(store.seed(&seed).unwrap());
        store
    }

    fn req(key: &str, name: &str, quantity: u32) -> TakeRequest {
        TakeRequest {
            key: key.into(),
            name: name.into(),
            quantity,
        }
    }

    /// `quantity = initial − taken + restocked` for every product.
    fn assert_invariant(store: &Store) {
        for p in store.audit().unwrap().products {
            assert_eq!(
                i128::from(p.quantity),
                i128::from(p.initial) - i128::from(p.taken) + i128::from(p.restocked),
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_batch_commits_together_and_each_take_sees_the_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 5), ("Fox", 1)]);
        let answers = store
            .take_batch(&[
                req("a", "Tux", 3),
                req("b", "Tux", 3), // only 2 left after a
                req("a", "Tux", 3), // a repeat within the batch: a's outcome
                req("", "Tux", 1),  // invalid: fails alone
                req("c", "Fox", 1),
                req("d", "Unicorn", 1),
            ])
            .unwrap();
        let outcome = |i: usize| answers[i].as_ref().unwrap().response.outcome;
        assert_eq!(outcome(0), TakeOutcome::Taken);
        assert_eq!(outcome(1), TakeOutcome::Insufficient);
        assert_eq!(outcome(2), TakeOutcome::Taken);
        assert!(answers[2].as_ref().unwrap().repeated);
        assert!(matches!(answers[3], Err(StoreError::Invalid(_))));
        assert_eq!(outcome(4), TakeOutcome::Taken);
        assert_eq!(outcome(5), TakeOutcome::UnknownProduct);
        drop(store);
        // Durable, all of it: reopened, every recorded key is there and the books balance.
        let store = Store::open(dir.path()).unwrap();
        let audit = store.audit().unwrap();
        let keys: Vec<&str> = audit.takes.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert_eq!(store.product("Tux").unwrap().unwrap().quantity, 2);
        assert_invariant(&store);
    }

    #[test]
    fn take_lowers_stock_once_and_a_repeat_returns_the_first_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 10), ("Fox", 10)]);
        let first = store.take(&req("k1", "Tux", 3)).unwrap();
        assert_eq!(first.response.outcome, TakeOutcome::Taken);
        assert_eq!(first.new_version, Some(1));
        assert!(!first.repeated);
        let tux = first.response.product.clone().unwrap();
        assert_eq!((tux.quantity, tux.version), (7, 1));

        // Same key, different name and quantity: the first outcome, nothing changes.
        let again = store.take(&req("k1", "Fox", 9)).unwrap();
        assert!(again.repeated && again.mismatched);
        assert_eq!(again.new_version, None);
        assert_eq!(again.response, first.response);
        assert_eq!(store.product("Tux").unwrap().unwrap().quantity, 7);
        assert_eq!(store.product("Fox").unwrap().unwrap().quantity, 10);
        assert_eq!(store.version().unwrap(), 1);

        let audit = store.audit().unwrap();
        assert_eq!(audit.takes.len(), 1);
        assert_eq!(audit.takes[0].quantity, 3);
        assert_eq!(audit.takes[0].name, "Tux");
        assert_invariant(&store);
    }

    #[test]
    fn a_repeat_shows_the_product_as_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 10)]);
        store.take(&req("a", "Tux", 1)).unwrap();
        store.take(&req("b", "Tux", 2)).unwrap();
        let again = store.take(&req("a", "Tux", 1)).unwrap();
        assert!(again.repeated && !again.mismatched);
        assert_eq!(again.response.outcome, TakeOutcome::Taken);
        assert_eq!(again.response.product.unwrap().quantity, 7);
    }

    #[test]
    fn insufficient_and_unknown_takes_are_recorded_but_change_no_stock() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 2)]);
        let before = store.stored_products().unwrap();

        let short = store.take(&req("short", "Tux", 3)).unwrap();
        assert_eq!(short.response.outcome, TakeOutcome::Insufficient);
        assert_eq!(short.response.product.unwrap().quantity, 2);
        assert_eq!(short.new_version, None);

        let unknown = store.take(&req("nope", "Unicorn", 1)).unwrap();
        assert_eq!(unknown.response.outcome, TakeOutcome::UnknownProduct);
        assert_eq!(unknown.response.product, None);

        assert_eq!(store.stored_products().unwrap(), before);
        assert_eq!(store.version().unwrap(), 0);
        assert!(store.changes(0, MAX_BATCH).unwrap().events.is_empty());

        // The outcome sticks to the key, even when asking for less would now succeed.
        let retry = store.take(&req("short", "Tux", 1)).unwrap();
        assert!(retry.repeated);
        assert_eq!(retry.response.outcome, TakeOutcome::Insufficient);
        assert_eq!(store.product("Tux").unwrap().unwrap().quantity, 2);
        let outcomes: Vec<_> = store
            .audit()
            .unwrap()
            .takes
            .into_iter()
            .map(|t| (t.key, t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("nope".to_string(), TakeOutcome::UnknownProduct),
                ("short".to_string(), TakeOutcome::Insufficient)
            ]
        );
    }

    #[test]
    fn taking_exactly_the_stock_reaches_zero_never_below() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 5)]);
        assert_eq!(
            store.take(&req("a", "Tux", 5)).unwrap().response.outcome,
            TakeOutcome::Taken
        );
        assert_eq!(
            store.take(&req("b", "Tux", 1)).unwrap().response.outcome,
            TakeOutcome::Insufficient
        );
        assert_eq!(store.product("Tux").unwrap().unwrap().quantity, 0);
        assert_invariant(&store);
    }

    #[test]
    fn invalid_takes_are_refused_before_touching_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 5)]);
        let bad = [
            req("", "Tux", 1),
            req("has space", "Tux", 1),
            req(&"k".repeat(MAX_NAME_LEN + 1), "Tux", 1),
            req("k", "", 1),
            req("k", "  ", 1),
            req("k", &"n".repeat(MAX_NAME_LEN + 1), 1),
            req("k", "Tux", 0),
            req("k", "Tux", MAX_QUANTITY as u32 + 1),
        ];
        for r in bad {
            assert!(
                matches!(store.take(&r), Err(StoreError::Invalid(_))),
                "{r:?} accepted"
            );
        }
        assert!(store.audit().unwrap().takes.is_empty());
        assert_eq!(store.product("Tux").unwrap().unwrap().quantity, 5);
        assert!(store.take(&req("k", "Tux", MAX_QUANTITY as u32)).is_ok());
    }

    #[test]
    fn restock_touches_only_sold_out_toys() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 100, &[("Tux", 2), ("Fox", 3), ("Kite", 4)]);
        store.take(&req("a", "Tux", 2)).unwrap();
        store.take(&req("b", "Fox", 1)).unwrap();
        store.take(&req("c", "Kite", 4)).unwrap();
        assert_eq!(store.version().unwrap(), 3);

        let events = store.restock(50).unwrap();
        let restocked: Vec<(&str, u32, u64)> = events
            .iter()
            .map(|e| (e.product.name.as_str(), e.product.quantity, e.version))
            .collect();
        assert_eq!(restocked, vec![("Kite", 50, 4), ("Tux", 50, 5)]);

        let fox = store.product("Fox").unwrap().unwrap();
        assert_eq!((fox.quantity, fox.version), (2, 2));
        let audit = store.audit().unwrap();
        let restocked_totals: Vec<(String, u64)> = audit
            .products
            .iter()
            .map(|p| (p.name.clone(), p.restocked))
            .collect();
        assert_eq!(
            restocked_totals,
            vec![("Fox".into(), 0), ("Kite".into(), 50), ("Tux".into(), 50)]
        );
        assert_invariant(&store);

        // Nothing sold out: no change, no new version.
        assert!(store.restock(50).unwrap().is_empty());
        assert_eq!(store.version().unwrap(), 5);
    }

    #[test]
    fn feed_returns_events_in_order_and_resets_on_gaps_and_future_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded(dir.path(), 3, &[("Tux", 100)]);
        for i in 0..5 {
            store.take(&req(&format!("k{i}"), "Tux", 1)).unwrap();
        }
        // Versions 1..=5 handed out; 3..=5 retained.
        let versions = |b: &ChangeBatch| b.events.iter().map(|e| e.version).collect::<Vec<_>>();

        let b = store.changes(2, MAX_BATCH).unwrap();
        assert!(!b.reset);
        assert_eq!(versions(&b), vec![3, 4, 5]);
        assert_eq!(b.version, 5);
        assert_eq!(b.events[2].product.quantity, 95);

        let b = store.changes(3, 1).unwrap();
        assert_eq!(versions(&b), vec![4], "limit is honoured");

        let b = store.changes(5, MAX_BATCH).unwrap();
        assert!(!b.reset && b.events.is_empty());

        for after in [0, 1] {
            let b = store.changes(after, MAX_BATCH).unwrap();
            assert!(b.reset, "after {after} is behind the retained events");
            assert!(b.events.is_empty());
            assert_eq!(b.version, 5);
        }

        let b = store.changes(6, MAX_BATCH).unwrap();
        assert!(b.reset && b.events.is_empty());
        assert_eq!(b.version, 5);
    }

    #[test]
    fn state_survives_reopening_and_seeding_happens_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = seeded(dir.path(), 100, &[("Tux", 10)]);
            store.take(&req("k", "Tux", 4)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let other = [SeedProduct {
            name: "Fox".into(),
            price: 1.0,
            quantity: 1,
        }];
        assert!(
            !store.seed(&other).unwrap(),
            "a seeded catalog is not seeded again"
        );
        assert!(store.is_seeded().unwrap());
        assert_eq!(store.product_count().unwrap(), 1);
        assert_eq!(store.product("Tux").unwrap().unwrap().quantity, 6);
        assert_eq!(store.version().unwrap(), 1);
        let again = store.take(&req("k", "Tux", 4)).unwrap();
        assert!(again.repeated);
        assert_eq!(
            store.take(&req("k2", "Tux", 1)).unwrap().new_version,
            Some(2)
        );
        assert_eq!(store.changes(0, MAX_BATCH).unwrap().events.len(), 2);
    }
}
