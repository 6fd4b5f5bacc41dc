//! The durable Raft log: one append-only file of checksummed records.
//!
//! Every change to the log is a record appended to `raft-log`: an entry, a vote, the committed
//! id, a truncation, a purge. Opening the file replays the records in order, so the last record
//! of each kind wins.
//!
//! One writer thread owns the file and does every write in the order it was asked for. An
//! append is handed to it and returns at once: openraft replicates the entries to the followers
//! while the leader's own `fdatasync` runs, and hears that they are durable through the
//! append's callback once it is done. Whatever queued up while the thread was flushing is
//! written and flushed together (group commit). Votes, truncations and purges wait for their
//! flush; the committed id is written without one (see [`LogStore::save_committed`]).
//!
//! Record frame: `len: u32 LE | crc32(payload): u32 LE | payload (JSON)`. The first record of
//! a file states its storage format ([`STORAGE_FORMAT`]); a newer one is refused.
//! A crash can leave a torn tail: a partly written last batch. It was never flushed, so never
//! acknowledged; on open the first record that is short, fails its checksum or does not decode
//! ends the log, the file is cut there, and the cut is reported (log line, `/raft/status`,
//! metric). Nothing committed is lost: committed records were flushed before anyone heard of them.
//!
//! The whole live log is also kept in memory: compaction bounds it to the snapshot threshold
//! plus the entries kept after a snapshot, and reads never touch the disk. When purged records
//! make up most of the file, it is rewritten (temp file, fsync, rename, fsync directory).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use serde::{Deserialize, Serialize};

use crate::record::{STORAGE_FORMAT, check_format};
use crate::types::{Entry, LogId, TypeConfig, Vote};

const LOG_FILE: &str = "raft-log";
const HEADER_LEN: usize = 8;
/// Records larger than this are treated as corruption rather than trusted.
const MAX_RECORD_LEN: usize = 256 << 20;

/// One change to the log, as stored.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    /// First record of a file: its storage format (absent in format 0 files).
    Format(u32),
    Entry(Entry),
    Vote(Vote),
    Committed(Option<LogId>),
    TruncateAfter(Option<LogId>),
    Purged(LogId),
}

/// The log as replayed into memory.
#[derive(Debug, Default)]
struct MemLog {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

impl MemLog {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Format(_) => {}
            Record::Entry(e) => {
                self.entries.insert(e.index(), e);
            }
            Record::Vote(v) => self.vote = Some(v),
            Record::Committed(c) => self.committed = c,
            Record::TruncateAfter(last) => {
                let from = last.map_or(0, |l| l.index + 1);
                self.entries.split_off(&from);
            }
            Record::Purged(upto) => {
                self.entries = self.entries.split_off(&(upto.index + 1));
                self.purged = Some(upto);
            }
        }
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|e| e.log_id())
            .or(self.purged)
    }
}

struct Shared {
    mem: Arc<Mutex<MemLog>>,
    io: std::sync::mpsc::Sender<Io>,
    torn_bytes: u64,
}

/// How a write is reported done.
enum Done {
    /// Nobody waits (the committed id).
    Nothing,
    /// An async caller waits for it.
    Reply(tokio::sync::oneshot::Sender<io::Result<()>>),
    /// openraft's append callback.
    Flushed(IOFlushed<TypeConfig>),
}

impl Done {
    fn complete(self, result: &io::Result<()>) {
        let copy = || match result {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        match self {
            Done::Nothing => {}
            Done::Reply(tx) => {
                let _ = tx.send(copy());
            }
            Done::Flushed(callback) => callback.io_completed(copy()),
        }
    }
}

/// Work for the writer thread, done in the order it was sent.
enum Io {
    /// Append `bytes` (`records` records to the file); with `sync`, flush before `done`.
    Write {
        bytes: Vec<u8>,
        records: u64,
        sync: bool,
        done: Done,
    },
    /// Rewrite the file with the live records if purged ones dominate it.
    Compact { done: Done },
}

struct LogFile {
    dir: PathBuf,
    file: File,
    /// Records in the file; compared with live entries to decide on a rewrite.
    records: u64,
}

/// The Raft log storage of one replica. Cheap to clone; clones share the same log.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting off a torn tail if there is one.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, good_len) = decode_records(&bytes);
        // The format first, before anything is cut: records of another format do not decode,
        // and must not be taken for a torn tail.
        let name = path.display().to_string();
        match records.first() {
            Some(Record::Format(found)) => check_format(*found, &name)?,
            // A whole first record that is not a format header: not a log this binary wrote.
            Some(_) => return Err(no_header(&name)),
            None if first_record_is_whole(&bytes) => return Err(no_header(&name)),
            None => {}
        }
        let torn_bytes = (bytes.len() - good_len) as u64;
        if torn_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                torn_bytes,
                kept_bytes = good_len,
                "raft log ends in a torn record; cutting it off (it was never acknowledged)"
            );
            file.set_len(good_len as u64)?;
            file.sync_all()?;
        }
        if records.is_empty() {
            let mut header = Vec::new();
            encode_record(&Record::Format(STORAGE_FORMAT), &mut header)?;
            file.write_all(&header)?;
            file.sync_all()?;
        }
        sync_dir(dir)?;
        let mut mem = MemLog::default();
        let count = records.len() as u64;
        for r in records {
            mem.apply(r);
        }
        tracing::info!(
            entries = mem.entries.len(),
            last = ?mem.last_log_id(),
            purged = ?mem.purged,
            "raft log opened"
        );
        let mem = Arc::new(Mutex::new(mem));
        let (io, queue) = std::sync::mpsc::channel();
        let log_file = LogFile {
            dir: dir.to_path_buf(),
            file,
            records: count,
        };
        let thread_mem = mem.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_in_order(log_file, thread_mem, queue))?;
        Ok(Self {
            shared: Arc::new(Shared {
                mem,
                io,
                torn_bytes,
            }),
        })
    }

    /// Bytes of a torn tail cut off when the log was opened (0 if the file was clean).
    pub fn torn_bytes(&self) -> u64 {
        self.shared.torn_bytes
    }

    /// Hands `records` to the writer thread; `done` hears when they are written (and flushed,
    /// with `sync`).
    fn send(&self, records: &[Record], sync: bool, done: Done) -> io::Result<()> {
        let mut bytes = Vec::new();
        for r in records {
            encode_record(r, &mut bytes)?;
        }
        let io = Io::Write {
            bytes,
            records: records.len() as u64,
            sync,
            done,
        };
        self.shared
            .io
            .send(io)
            .map_err(|_| io::Error::other("the raft log writer stopped"))
    }

    /// Writes `records`, flushes them, and waits until that is done.
    async fn write_durably(&self, records: &[Record]) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(records, true, Done::Reply(tx))?;
        rx.await
            .map_err(|_| io::Error::other("the raft log writer stopped"))?
    }

    /// Rewrites the file with only the live records when purged ones dominate it.
    async fn maybe_rewrite(&self) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared
            .io
            .send(Io::Compact {
                done: Done::Reply(tx),
            })
            .map_err(|_| io::Error::other("the raft log writer stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("the raft log writer stopped"))?
    }
}

/// The writer thread: takes what is queued, writes it in order, flushes once for every write
/// that asked for it, then reports each done. Ends when every [`LogStore`] is dropped.
///
/// A failed write or flush stops the writer for good: every later request fails with the
/// first [`Failure`], so nothing is written after a partial record and nothing queued behind
/// a failure is reported flushed. (After a failed `fdatasync` the kernel may have dropped the
/// pages it could not write; a later flush that succeeds would claim them.) Reopening the log,
/// which the replica does when it restarts, cuts the file back to its last good record.
fn write_in_order(
    mut file: LogFile,
    mem: Arc<Mutex<MemLog>>,
    queue: std::sync::mpsc::Receiver<Io>,
) {
    let mut failure: Option<Failure> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter());
        let mut waiting: Vec<Done> = Vec::new();
        let mut sync = false;
        for io in batch {
            match io {
                Io::Write {
                    bytes,
                    records,
                    sync: s,
                    done,
                } => {
                    if failure.is_none() {
                        match file.file.write_all(&bytes) {
                            Ok(()) => file.records += records,
                            Err(e) => failure = Some(Failure::new("write", e)),
                        }
                    }
                    sync |= s;
                    waiting.push(done);
                }
                Io::Compact { done } => {
                    // Everything before it is flushed first: the rewrite replaces the file.
                    flush(&mut file, std::mem::take(&mut sync), &mut failure);
                    let result = Failure::result(&failure);
                    for d in waiting.drain(..) {
                        d.complete(&result);
                    }
                    if failure.is_none()
                        && let Err(e) = compact(&mut file, &mem)
                    {
                        failure = Some(Failure::new("rewrite", e));
                    }
                    done.complete(&Failure::result(&failure));
                }
            }
        }
        flush(&mut file, sync, &mut failure);
        let result = Failure::result(&failure);
        for d in waiting {
            d.complete(&result);
        }
    }
}

/// Flushes the file when `sync` asks for it and nothing has failed yet.
fn flush(file: &mut LogFile, sync: bool, failure: &mut Option<Failure>) {
    if sync
        && failure.is_none()
        && let Err(e) = file.file.sync_data()
    {
        *failure = Some(Failure::new("flush", e));
    }
}

/// The first write, flush or rewrite of the log file that failed.
struct Failure {
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn new(during: &str, error: io::Error) -> Self {
        let message = format!(
            "raft log {during} failed: {error}; the log refuses every write until the replica \
             restarts and cuts it back to its last good record"
        );
        tracing::error!(%error, during, "raft log write failed; refusing every later write");
        Self {
            kind: error.kind(),
            message,
        }
    }

    /// What a request completed after `failure` (if any) hears.
    fn result(failure: &Option<Self>) -> io::Result<()> {
        match failure {
            None => Ok(()),
            Some(f) => Err(io::Error::new(f.kind, f.message.clone())),
        }
    }
}

/// Rewrites the file with only the live records, if purged ones make up most of it.
fn compact(f: &mut LogFile, mem: &Mutex<MemLog>) -> io::Result<()> {
    let mut buf = Vec::new();
    let live = {
        let mem = mem.lock().unwrap();
        let live = mem.entries.len() as u64 + 4;
        if f.records < 2 * live + 1024 {
            return Ok(());
        }
        encode_record(&Record::Format(STORAGE_FORMAT), &mut buf)?;
        if let Some(v) = &mem.vote {
            encode_record(&Record::Vote(*v), &mut buf)?;
        }
        encode_record(&Record::Committed(mem.committed), &mut buf)?;
        if let Some(p) = mem.purged {
            encode_record(&Record::Purged(p), &mut buf)?;
        }
        for e in mem.entries.values() {
            encode_record(&Record::Entry(e.clone()), &mut buf)?;
        }
        live
    };
    let tmp = f.dir.join(format!("{LOG_FILE}.tmp"));
    let mut out = File::create(&tmp)?;
    out.write_all(&buf)?;
    out.sync_all()?;
    std::fs::rename(&tmp, f.dir.join(LOG_FILE))?;
    sync_dir(&f.dir)?;
    f.file = OpenOptions::new()
        .append(true)
        .read(true)
        .open(f.dir.join(LOG_FILE))?;
    tracing::debug!(from = f.records, to = live, "raft log file rewritten");
    f.records = live;
    Ok(())
}

fn encode_record(record: &Record, buf: &mut Vec<u8>) -> io::Result<()> {
    let payload = serde_json::to_vec(record).map_err(io::Error::other)?;
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    Ok(())
}

/// Decodes records from the start of `bytes`; returns them and the length of the valid prefix.
fn decode_records(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER_LEN {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let start = at + HEADER_LEN;
        if len > MAX_RECORD_LEN || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice(payload) else {
            break;
        };
        records.push(record);
        at = start + len;
    }
    (records, at)
}

/// The refusal of a log whose first record is whole but not the storage format header.
fn no_header(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{name} does not start with a storage format header, so this order-replica did not \
             write it: start this store on a new data directory"
        ),
    )
}

/// Whether `bytes` starts with a whole record (length and checksum good), whatever it holds.
fn first_record_is_whole(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER_LEN {
        return false;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    len <= MAX_RECORD_LEN
        && bytes.len() - HEADER_LEN >= len
        && crc32fast::hash(&bytes[HEADER_LEN..HEADER_LEN + len]) == crc
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let mem = self.shared.mem.lock().unwrap();
        Ok(mem
            .entries
            .range(range_to_bounds(&range))
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.mem.lock().unwrap().vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let mem = self.shared.mem.lock().unwrap();
        Ok(LogState {
            last_purged_log_id: mem.purged,
            last_log_id: mem.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.write_durably(&[Record::Vote(*vote)]).await?;
        self.shared.mem.lock().unwrap().vote = Some(*vote);
        Ok(())
    }

    /// The committed id is queued without a flush and without waiting: it survives a process
    /// crash from the page cache (or the next flush), and Raft never depends on it (it only
    /// shortens recovery), so it must not hold up the apply that follows it.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.shared.mem.lock().unwrap().committed = committed;
        self.send(&[Record::Committed(committed)], false, Done::Nothing)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.shared.mem.lock().unwrap().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            // Visible to readers at once: the leader replicates entries before they are flushed
            // locally, which openraft allows; it counts the local copy only after the callback.
            let mut mem = self.shared.mem.lock().unwrap();
            for e in &entries {
                mem.entries.insert(e.index(), e.clone());
            }
        }
        // Returns at once: the callback says when the entries are on disk, and meanwhile
        // openraft sends them to the followers.
        let records: Vec<Record> = entries.into_iter().map(Record::Entry).collect();
        self.send(&records, true, Done::Flushed(callback))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.write_durably(&[Record::TruncateAfter(last_log_id)])
            .await?;
        self.shared
            .mem
            .lock()
            .unwrap()
            .apply(Record::TruncateAfter(last_log_id));
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.write_durably(&[Record::Purged(log_id)]).await?;
        self.shared
            .mem
            .lock()
            .unwrap()
            .apply(Record::Purged(log_id));
        self.maybe_rewrite().await
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;

    use super::*;
    use crate::types::Command;

    fn log_id(term: u64, index: u64) -> LogId {
        use openraft::vote::RaftLeaderIdExt;
        openraft::LogId::new(
            openraft::alias::LeaderIdOf::<TypeConfig>::new_committed(term, 1),
            index,
        )
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry::new_normal(
            log_id(term, index),
            Command::Purchase {
                key: format!("k{index}"),
                name: "Tux".into(),
                quantity: 1,
            },
        )
    }

    /// Appends and waits until the entries are flushed (append itself returns at once).
    async fn append(store: &mut LogStore, entries: Vec<Entry>) {
        try_append(store, entries).await.unwrap();
    }

    /// Appends and waits for the flush's outcome.
    async fn try_append(store: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
        use openraft::async_runtime::Oneshot;
        let (tx, rx) = openraft::alias::OneshotOf::<TypeConfig>::channel();
        store.append(entries, IOFlushed::signal(tx)).await.unwrap();
        rx.await.unwrap()
    }

    async fn indexes(store: &mut LogStore) -> Vec<u64> {
        store
            .try_get_log_entries(..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.index())
            .collect()
    }

    #[tokio::test]
    async fn entries_vote_and_truncation_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        append(&mut store, (1..=5).map(|i| entry(1, i)).collect()).await;
        store.truncate_after(Some(log_id(1, 3))).await.unwrap();
        append(&mut store, vec![entry(2, 4)]).await;
        let vote = Vote::new(2, 1);
        store.save_vote(&vote).await.unwrap();
        drop(store);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4]);
        let last = store.get_log_state().await.unwrap().last_log_id.unwrap();
        assert_eq!(last, log_id(2, 4));
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        assert_eq!(store.torn_bytes(), 0);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_earlier_records_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        append(&mut store, (1..=3).map(|i| entry(1, i)).collect()).await;
        drop(store);
        // A crash in the middle of writing entry 4: half a record at the end.
        let mut half = Vec::new();
        encode_record(&Record::Entry(entry(1, 4)), &mut half).unwrap();
        half.truncate(half.len() / 2);
        let path = dir.path().join(LOG_FILE);
        let clean_len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&half)
            .unwrap();

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.torn_bytes(), half.len() as u64);
        assert_eq!(indexes(&mut store).await, vec![1, 2, 3]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), clean_len);
        // The log keeps working after the cut.
        append(&mut store, vec![entry(1, 4)]).await;
        drop(store);
        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn corrupted_checksum_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        append(&mut store, (1..=3).map(|i| entry(1, i)).collect()).await;
        drop(store);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, vec![1, 2]);
        assert!(store.torn_bytes() > 0);
    }

    #[tokio::test]
    async fn a_log_of_another_format_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut newer = Vec::new();
        encode_record(&Record::Format(STORAGE_FORMAT + 1), &mut newer).unwrap();
        std::fs::write(&path, &newer).unwrap();
        let err = LogStore::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("storage format 3"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            newer,
            "nothing cut or rewritten"
        );

        // No header: entries from the first record on.
        let mut old = Vec::new();
        for i in 1..=3 {
            encode_record(&Record::Entry(entry(1, i)), &mut old).unwrap();
        }
        std::fs::write(&path, &old).unwrap();
        let err = LogStore::open(dir.path()).err().expect("refused");
        assert!(
            err.to_string()
                .contains("raft-log does not start with a storage format header"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            old,
            "nothing cut or rewritten"
        );

        // Format 1: a header, then records this version cannot decode (not a torn tail).
        let mut format_1 = Vec::new();
        encode_record(&Record::Format(1), &mut format_1).unwrap();
        let payload = br#"{"Entry":{"log_id":1,"payload":{"Normal":{"Pending":{}}}}}"#;
        format_1.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        format_1.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        format_1.extend_from_slice(payload);
        std::fs::write(&path, &format_1).unwrap();
        let err = LogStore::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("storage format 1"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), format_1, "nothing cut");
    }

    /// The disk fills in the middle of appends, space comes back while more are queued: none of
    /// those is written after the partial record or reported flushed, and after a restart every
    /// acknowledged entry is in the log, with no hole.
    #[tokio::test]
    async fn after_a_failed_write_nothing_later_is_written_or_reported_flushed() {
        use openraft::async_runtime::Oneshot;
        let Some(disk) = testkit::Tmpfs::mount("1m") else {
            return;
        };
        let mut store = LogStore::open(disk.path()).unwrap();
        append(&mut store, (1..=10).map(|i| entry(1, i)).collect()).await;
        let mut acked: Vec<u64> = (1..=10).collect();

        let filler = disk.fill();
        // The log file's last page still has room for a few records; one of them ends up half
        // written when the disk refuses it.
        let mut next = 11;
        let refused = loop {
            assert!(next < 10_000, "a full disk eventually refuses an append");
            let result = try_append(&mut store, vec![entry(1, next)]).await;
            next += 1;
            match result {
                Ok(()) => acked.push(next - 1),
                Err(e) => break e,
            }
        };
        assert!(refused.to_string().contains("write failed"), "{refused}");

        // Space is back. Appends queued back to back behind the failure, a vote and a
        // truncation are all refused; none is reported flushed.
        std::fs::remove_file(filler).unwrap();
        let mut queued = Vec::new();
        for i in next..next + 20 {
            let (tx, rx) = openraft::alias::OneshotOf::<TypeConfig>::channel();
            store
                .append(vec![entry(1, i)], IOFlushed::signal(tx))
                .await
                .unwrap();
            queued.push(rx);
        }
        for rx in queued {
            let err = rx.await.unwrap().expect_err("refused after a failed write");
            assert!(err.to_string().contains("refuses every write"), "{err}");
        }
        assert!(store.save_vote(&Vote::new(2, 1)).await.is_err());
        assert!(store.truncate_after(Some(log_id(1, 5))).await.is_err());
        drop(store);

        // The restart cuts the partial record; every acknowledged entry is there, nothing else.
        let mut store = LogStore::open(disk.path()).unwrap();
        assert_eq!(indexes(&mut store).await, acked);
        assert_eq!(store.read_vote().await.unwrap(), None);
        // And the log takes appends again.
        append(&mut store, vec![entry(1, next)]).await;
    }

    #[tokio::test]
    async fn purge_drops_prefix_and_rewrite_keeps_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        for chunk in (1..=3000u64).collect::<Vec<_>>().chunks(100) {
            append(&mut store, chunk.iter().map(|i| entry(1, *i)).collect()).await;
        }
        let size_before = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        store.purge(log_id(1, 2990)).await.unwrap();
        let size_after = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        assert!(
            size_after < size_before / 10,
            "{size_after} vs {size_before}"
        );
        drop(store);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, (2991..=3000).collect::<Vec<_>>());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 2990)));
        assert_eq!(state.last_log_id, Some(log_id(1, 3000)));
    }
}
