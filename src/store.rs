//! The durable store: one redb file, and the single writer thread that commits to it.
//!
//! Why one writer: redb serialises write transactions, and an exam's load is thousands of
//! tiny writes (one per answer) that each must be on disk before the participant is told
//! "tersimpan". The writer drains every queued operation into one transaction and commits it
//! with `Durability::Immediate` (one fsync for the whole batch: group commit), then answers
//! each caller. Nothing is acknowledged before its commit returns.
//!
//! Every table maps a string key to bytes (JSON, or a raw package file), which keeps the
//! schema obvious in one place: [`Table`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// The tables of the store. Keys are strings; composite keys join parts with `\u{1f}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Single values: schema version, last time the server was alive, TUK name.
    Meta,
    /// blake3 of a package file → the file, still encrypted.
    Packages,
    /// package id → its public part (header, manifest, roster, questionnaire) as JSON.
    Catalog,
    /// UPT signer id → public key line.
    Trust,
    /// participant number → credential (argon2 hash, password sealed to the TUK key).
    Credentials,
    /// session key → session state.
    Sessions,
    /// attempt key → attempt state.
    Attempts,
    /// attempt key + item id → the participant's answer.
    Answers,
    /// chain + zero-padded sequence → hash-chained event.
    Events,
    /// blake3 of a cookie → web session.
    WebSessions,
    /// staff user name → account.
    Users,
    /// Sealed result bundles, the UPT's receipts and purge records (see the `seal` module).
    Results,
}

impl Table {
    const ALL: [Table; 12] = [
        Table::Meta,
        Table::Packages,
        Table::Catalog,
        Table::Trust,
        Table::Credentials,
        Table::Sessions,
        Table::Attempts,
        Table::Answers,
        Table::Events,
        Table::WebSessions,
        Table::Users,
        Table::Results,
    ];

    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Table::Meta => "meta",
            Table::Packages => "packages",
            Table::Catalog => "catalog",
            Table::Trust => "trust",
            Table::Credentials => "credentials",
            Table::Sessions => "sessions",
            Table::Attempts => "attempts",
            Table::Answers => "answers",
            Table::Events => "events",
            Table::WebSessions => "web_sessions",
            Table::Users => "users",
            Table::Results => "results",
        })
    }
}

/// One change of a commit: write a value under a key, or delete a key. (The name is the
/// batch's: every rule returns the `Vec<Put>` that makes its change durable.)
#[derive(Debug, Clone)]
pub enum Put {
    Write {
        table: Table,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: String,
    },
}

impl Put {
    /// Writes `v` as JSON.
    pub fn json<T: serde::Serialize>(table: Table, key: impl Into<String>, v: &T) -> Put {
        Put::Write {
            table,
            key: key.into(),
            // Serialising our own plain structs cannot fail.
            value: serde_json::to_vec(v).unwrap_or_default(),
        }
    }
    /// Writes `v` as it is.
    pub fn bytes(table: Table, key: impl Into<String>, v: Vec<u8>) -> Put {
        Put::Write {
            table,
            key: key.into(),
            value: v,
        }
    }
    pub(crate) fn delete(table: Table, key: impl Into<String>) -> Put {
        Put::Delete {
            table,
            key: key.into(),
        }
    }
    pub(crate) fn table(&self) -> Table {
        match self {
            Put::Write { table, .. } | Put::Delete { table, .. } => *table,
        }
    }
    /// Bytes this write or delete hands to redb (key and value), for the transaction cap.
    pub(crate) fn size(&self) -> usize {
        match self {
            Put::Write { key, value, .. } => key.len() + value.len(),
            Put::Delete { key, .. } => key.len(),
        }
    }
}

/// The key of a row that two ids name together (`a` + U+001F + `b`), e.g. an answer's
/// `{attempt}␟{item}` or an event's `{chain}␟{seq}`.
pub fn join_key(a: &str, b: &str) -> String {
    format!("{a}\u{1f}{b}")
}

/// A redb database that recovers from a failed write by itself.
///
/// After a failed write (disk full, I/O error) redb refuses every later operation until
/// the database is closed and opened again. [`Db::write`] does that before its next write,
/// so a disk that fills up and is then cleared needs no restart. Used by the TUK [`Store`]
/// and the UPT's store.
pub(crate) struct Db {
    path: PathBuf,
    /// `None` only while [`Db::reopen`] swaps it, or after a reopen that failed.
    db: RwLock<Option<Database>>,
    /// A write failed: reopen before the next one.
    failed: AtomicBool,
}

/// redb's page cache in bytes: `TUK_STORE_CACHE_MB` (default 4 MiB, at least 1).
///
/// redb's own default is 1 GiB, and it keeps every page it wrote or read until that is
/// full: the cache grew with the store (peak RSS at 2,000 participants × 40 answers: 207
/// MiB with it, 167 MiB with 16 MiB, 149 MiB with 4 MiB at the same CPU per answer and
/// disk writes: issue 17, `docs/performance.md`). The
/// exam state is in memory, so the store is read only at start and by the offline
/// commands; writes go to the OS page cache, which the kernel can give back. Durability is
/// unchanged: every commit is still `Durability::Immediate` (fsync).
pub(crate) fn cache_bytes() -> usize {
    crate::limits::env_limit("TUK_STORE_CACHE_MB", 4usize).clamp(1, 4096) * 1024 * 1024
}

fn create_db(path: &Path) -> std::result::Result<Database, redb::DatabaseError> {
    redb::Builder::new()
        .set_cache_size(cache_bytes())
        .create(path)
}

impl Db {
    /// Opens (or creates) the redb file; it is made 0600 whatever the umask (only the user
    /// running tuk reads exam data).
    pub(crate) fn open(path: &Path) -> std::result::Result<Db, redb::DatabaseError> {
        let db = create_db(path)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Db {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
            failed: AtomicBool::new(false),
        })
    }

    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction> {
        let g = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = g.as_ref() else {
            bail!(
                "{} could not be reopened after a write error (is the disk full?)",
                self.path.display()
            );
        };
        Ok(db.begin_read()?)
    }

    /// Runs `f` in one write transaction and commits it durably (fsync) before returning.
    pub(crate) fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<()>,
    ) -> Result<()> {
        self.recover()?;
        let r = (|| {
            let g = self.db.read().unwrap_or_else(|p| p.into_inner());
            let Some(db) = g.as_ref() else {
                bail!("{} is closed", self.path.display());
            };
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| anyhow!("{e}"))?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })();
        if r.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        r
    }

    /// Closes and opens the database again (redb checks and repairs it on open). Waits for
    /// readers to finish with the old handle.
    pub(crate) fn reopen(&self) -> Result<()> {
        let mut g = self.db.write().unwrap_or_else(|p| p.into_inner());
        // The old handle must be gone before the file can be opened again.
        drop(g.take());
        let db = create_db(&self.path)
            .with_context(|| format!("cannot reopen {}", self.path.display()))?;
        *g = Some(db);
        self.failed.store(false, Ordering::Release);
        tracing::warn!("reopened {} after a write error", self.path.display());
        Ok(())
    }

    /// Reopens the database if a write failed since it was opened.
    pub(crate) fn recover(&self) -> Result<()> {
        let closed = self.db.read().unwrap_or_else(|p| p.into_inner()).is_none();
        if closed || self.failed.load(Ordering::Acquire) {
            self.reopen()?;
        }
        Ok(())
    }
}

/// The redb store of a TUK data folder: typed tables, string keys, byte values.
pub struct Store {
    db: Db,
}

pub const DB_FILE: &str = "tuk.redb";

/// The layout of the store's tables and values that this binary reads and writes. Written
/// to `meta/schema_version` by [`Store::create`] and checked by every [`Store::open`]; bump
/// it (and add a migration in `open`) whenever a table or a stored value changes shape.
/// Version 1: the layout of the first release (stores from before the version was written
/// are version 1).
pub const SCHEMA_VERSION: u32 = 1;
const META_SCHEMA: &str = "schema_version";

impl Store {
    /// Creates `DIR/tuk.redb` with every table and the current [`SCHEMA_VERSION`].
    /// Errors if the file already exists.
    pub(crate) fn create(dir: &Path) -> Result<Store> {
        let path = dir.join(DB_FILE);
        if path.exists() {
            bail!("{} exists already; open it instead", path.display());
        }
        let store = Store::open_file(&path)?;
        store.commit(vec![Put::bytes(
            Table::Meta,
            META_SCHEMA,
            SCHEMA_VERSION.to_string().into_bytes(),
        )])?;
        Ok(store)
    }

    /// Opens an existing `DIR/tuk.redb` and checks its schema version. Errors, with the fix:
    /// no store file; the file is in use by another process; not a redb file this build can
    /// read; a schema newer than this binary ([`SCHEMA_VERSION`]).
    pub fn open(dir: &Path) -> Result<Store> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            bail!(
                "{} has no store ({DB_FILE} is missing). If this server ran exams, restore the last backup with `tuk restore BACKUP --data {}`; for a new server run `tuk init --data {}`",
                dir.display(),
                dir.display(),
                dir.display()
            );
        }
        let store = Store::open_file(&path)?;
        match store.schema_version()? {
            None => {
                // Written before the version was stored: the first release's layout.
                store.commit(vec![Put::bytes(
                    Table::Meta,
                    META_SCHEMA,
                    SCHEMA_VERSION.to_string().into_bytes(),
                )])?;
            }
            Some(v) if v > SCHEMA_VERSION => bail!(
                "{} was written by a newer tuk (store schema {v}; this tuk reads schema {SCHEMA_VERSION} and older). Install the tuk version that wrote it, or restore a backup made with this version",
                path.display()
            ),
            Some(_) => {}
        }
        Ok(store)
    }

    /// The schema version stored in the file (`None`: written before versions were stored).
    pub fn schema_version(&self) -> Result<Option<u32>> {
        match self.get(Table::Meta, META_SCHEMA)? {
            None => Ok(None),
            Some(b) => {
                let v = String::from_utf8(b)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .ok_or_else(|| anyhow!("the store's schema version is not a number"))?;
                Ok(Some(v))
            }
        }
    }

    fn open_file(path: &Path) -> Result<Store> {
        let db = Db::open(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow!(
                "{} is already in use: another `tuk serve` (or import) is running on this data folder; stop it first",
                path.display()
            ),
            e => anyhow!(
                "cannot open the store {}: {e}. It may be damaged or from an incompatible tuk version: restore the last backup with `tuk restore`",
                path.display()
            ),
        })?;
        let store = Store { db };
        store.commit(Vec::new())?;
        Ok(store)
    }

    /// Reopens the database if a write failed since it was opened.
    pub(crate) fn recover(&self) -> Result<()> {
        self.db.recover()
    }

    /// Commits puts in one durable transaction.
    pub fn commit(&self, puts: Vec<Put>) -> Result<()> {
        self.db
            .write(|txn| {
                let mut tables = Table::ALL
                    .iter()
                    .map(|t| txn.open_table(t.def()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                for p in &puts {
                    let idx = Table::ALL.iter().position(|t| *t == p.table()).unwrap_or(0);
                    let t = &mut tables[idx];
                    match p {
                        Put::Write { key, value, .. } => {
                            t.insert(key.as_str(), value.as_slice())?;
                        }
                        Put::Delete { key, .. } => {
                            t.remove(key.as_str())?;
                        }
                    }
                }
                Ok(())
            })
            .context("the store could not commit (is the disk full?)")
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        self.db.begin_read()
    }

    pub fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.begin_read()?;
        let t = txn.open_table(table.def())?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    pub(crate) fn get_json<T: for<'de> serde::Deserialize<'de>>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>> {
        match self.get(table, key)? {
            Some(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("damaged record {key:?} in table {table:?}")
            })?)),
            None => Ok(None),
        }
    }

    /// Every (key, value) of a table, in key order.
    pub fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.begin_read()?;
        let t = txn.open_table(table.def())?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Keys starting with `prefix`, in order.
    pub fn scan_prefix(&self, table: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.begin_read()?;
        let t = txn.open_table(table.def())?;
        let mut out = Vec::new();
        for row in t.range(prefix..)? {
            let (k, v) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// How many keys start with `prefix` (no value is copied or decoded).
    pub(crate) fn count_prefix(&self, table: Table, prefix: &str) -> Result<usize> {
        let txn = self.begin_read()?;
        let t = txn.open_table(table.def())?;
        let mut n = 0;
        for row in t.range(prefix..)? {
            let (k, _) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// The last event of every chain in the events table, as `(chain, last value)`: keys are
    /// `chain \u{1f} zero-padded seq`, so this jumps from chain to chain (one lookup for the
    /// first key of a chain, one backwards for its last) and reads two rows per chain,
    /// however many events each holds. Start-up cost is thus proportional to the number of
    /// chains (sessions), not to the events ever logged (issue 12).
    pub(crate) fn chain_heads(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.begin_read()?;
        let t = txn.open_table(Table::Events.def())?;
        let mut out = Vec::new();
        let mut from = String::new();
        loop {
            let Some(row) = t.range(from.as_str()..)?.next() else {
                break;
            };
            let (k, _) = row?;
            let Some((chain, _)) = k.value().split_once('\u{1f}') else {
                // Not an event key (never written): step past it.
                from = format!("{}\u{0}", k.value());
                continue;
            };
            let chain = chain.to_string();
            // Every key of this chain sorts below `chain \u{20}` (`\u{1f}` < `\u{20}`).
            let (lo, hi) = (format!("{chain}\u{1f}"), format!("{chain}\u{20}"));
            if let Some(last) = t.range(lo.as_str()..hi.as_str())?.next_back() {
                let (_, v) = last?;
                out.push((chain.clone(), v.value().to_vec()));
            }
            from = hi;
        }
        Ok(out)
    }

    /// Writes a consistent copy of the whole store to `path` (a read transaction sees one
    /// snapshot, so the server can keep running).
    pub(crate) fn backup_to(&self, path: &Path) -> Result<()> {
        let copy = Database::create(path)?;
        let src = self.begin_read()?;
        let mut dst = copy.begin_write()?;
        dst.set_durability(Durability::Immediate)
            .map_err(|e| anyhow!("{e}"))?;
        for table in Table::ALL {
            let s = src.open_table(table.def())?;
            let mut d = dst.open_table(table.def())?;
            for row in s.iter()? {
                let (k, v) = row?;
                d.insert(k.value(), v.value())?;
            }
        }
        dst.commit()?;
        Ok(())
    }
}

/// A unit of work for the writer: it runs on the writer thread against the in-memory state,
/// returns the puts that make its effect durable, and its reply is delivered only after
/// the batch containing it has committed.
pub(crate) type Job<S> = Box<dyn FnOnce(&mut S) -> JobResult + Send>;

/// What travels to the writer: a job, or the request to finish and close the store.
enum Msg<S> {
    Job(Job<S>),
    Stop,
}
pub(crate) type JobResult = (Vec<Put>, Box<dyn FnOnce(Result<()>) + Send>);

/// Handle to the writer thread.
/// The error of a job that never reached the store because the writer thread has stopped
/// (the process is shutting down). Any other error from [`Writer::run`] is a failed
/// commit: the writer is still there and reloads its state before the next batch.
#[derive(Debug)]
pub(crate) struct WriterStopped;

impl std::fmt::Display for WriterStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store writer has stopped")
    }
}

impl std::error::Error for WriterStopped {}

pub struct Writer<S> {
    tx: mpsc::SyncSender<Msg<S>>,
}

/// Jobs queued for the writer at most; beyond, [`Writer::run`] waits for room.
const QUEUE: usize = 16 * 1024;

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
        }
    }
}

/// What the writer needs from the state it mutates.
pub(crate) trait Durable: Send + Sync + 'static {
    /// Puts added to every batch (e.g. the "alive" heartbeat that downtime credit uses).
    fn batch_puts(&mut self) -> Vec<Put>;
    /// A batch failed to commit: drop the in-memory changes it made by loading the state
    /// from the store again. Until this succeeds the writer acknowledges nothing.
    fn reload(&mut self, store: &Store) -> Result<()>;
    /// After each commit, with the batch size and how long it took (for metrics).
    fn committed(&mut self, _jobs: usize, _elapsed: Duration) {}
}

/// Largest number of jobs in one transaction.
const MAX_BATCH: usize = 2048;

/// A transaction takes no further job once its puts hold this many bytes (keys and
/// values). Without it a lab's finishes at once (each writes its whole attempt: several
/// KiB) sat in memory together, with redb's copy of them: +12–15 MiB of peak RSS at 2,000
/// participants (issue 17, `docs/performance.md`). The jobs left over go first into the
/// next transaction, in order; saves (about 0.3 KiB each) still batch by the thousand.
const MAX_BATCH_BYTES: usize = 2 << 20;

/// Starts the writer thread for `state`, committing to `store`.
/// The thread joins once it has committed everything sent before [`Writer::stop`], and
/// drops its handle on the store, so the database closes cleanly.
pub(crate) fn start_writer<S: Durable>(
    store: Arc<Store>,
    state: Arc<RwLock<S>>,
) -> Result<(Writer<S>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel::<Msg<S>>(QUEUE);
    let handle = std::thread::Builder::new()
        .name("tuk-writer".into())
        .spawn(move || writer_loop(store, state, rx))
        .context("cannot start the writer thread")?;
    Ok((Writer { tx }, handle))
}

/// Reopens the store if needed and reloads the state from it; true when both worked.
fn recover<S: Durable>(store: &Store, state: &RwLock<S>) -> bool {
    let r = store.recover().and_then(|()| {
        state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .reload(store)
    });
    if let Err(e) = &r {
        tracing::error!("cannot reload the state from the store yet: {e:#}");
    }
    r.is_ok()
}

fn writer_loop<S: Durable>(store: Arc<Store>, state: Arc<RwLock<S>>, rx: mpsc::Receiver<Msg<S>>) {
    let mut stopping = false;
    // After a failed commit the in-memory state may hold changes that are not on disk: it
    // is reloaded from the store, and until that has worked nothing is acknowledged (a
    // retried save would otherwise look like a duplicate of one that was never stored).
    let mut stale = false;
    // Jobs received but left out of the last transaction by MAX_BATCH_BYTES.
    let mut carried: std::collections::VecDeque<Job<S>> = std::collections::VecDeque::new();
    while !stopping || !carried.is_empty() {
        let mut jobs = std::mem::take(&mut carried);
        if jobs.is_empty() {
            match rx.recv_timeout(Duration::from_secs(2)) {
                Ok(Msg::Job(j)) => jobs.push_back(j),
                Ok(Msg::Stop) => stopping = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        while jobs.len() < MAX_BATCH && !stopping {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => jobs.push_back(j),
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        if stale {
            stale = !recover(&store, &state);
        }
        let started = std::time::Instant::now();
        let (puts, replies) = {
            let mut s = state.write().unwrap_or_else(|p| p.into_inner());
            let mut puts = Vec::new();
            let mut bytes = 0usize;
            let mut replies = Vec::with_capacity(jobs.len());
            while let Some(job) = jobs.pop_front() {
                if bytes >= MAX_BATCH_BYTES {
                    jobs.push_front(job);
                    break;
                }
                let (p, reply) = job(&mut s);
                bytes += p.iter().map(Put::size).sum::<usize>();
                puts.extend(p);
                replies.push(reply);
            }
            carried = jobs;
            puts.extend(s.batch_puts());
            (puts, replies)
        };
        let n = replies.len();
        if puts.is_empty() && replies.is_empty() {
            continue;
        }
        let result = if stale {
            Err(anyhow!("the store is not readable after a write error"))
        } else {
            store.commit(puts)
        };
        match &result {
            Err(e) => {
                tracing::error!("commit failed, nothing in this batch was acknowledged: {e:#}");
                stale = !recover(&store, &state);
            }
            Ok(()) => state
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .committed(n, started.elapsed()),
        }
        for reply in replies {
            reply(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(anyhow!("the server could not save to disk: {e:#}")),
            });
        }
    }
}

impl<S: 'static> Writer<S> {
    /// Asks the writer to commit what is queued and stop.
    pub(crate) fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }

    /// Queues a job; the reply callback runs on the writer thread after commit. Blocks while
    /// the queue is full: for plain threads; async code uses [`Writer::run`].
    pub(crate) fn submit(&self, job: Job<S>) -> Result<()> {
        self.tx
            .send(Msg::Job(job))
            .map_err(|_| anyhow::Error::new(WriterStopped))
    }

    /// Runs `f` on the writer thread and waits (async) until its puts are durable.
    ///
    /// A full queue is back-pressure: this task waits for room, without blocking the
    /// runtime thread it runs on (a blocking `send` would stall every connection there).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> (Vec<Put>, T) + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut msg = Msg::Job(Box::new(move |s: &mut S| {
            let (puts, value) = f(s);
            let reply: Box<dyn FnOnce(Result<()>) + Send> = Box::new(move |r| {
                let _ = tx.send(r.map(|_| value));
            });
            (puts, reply)
        }));
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Full(m)) => {
                    msg = m;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    return Err(anyhow::Error::new(WriterStopped));
                }
            }
        }
        rx.await.map_err(|_| anyhow::Error::new(WriterStopped))?
    }

    /// Blocking version of [`Writer::run`], for command-line paths and the ticker thread.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> (Vec<Put>, T) + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(Box::new(move |s| {
            let (puts, value) = f(s);
            let reply: Box<dyn FnOnce(Result<()>) + Send> = Box::new(move |r| {
                let _ = tx.send(r.map(|_| value));
            });
            (puts, reply)
        }))?;
        rx.recv().map_err(|_| anyhow::Error::new(WriterStopped))?
    }
}

#[cfg(test)]
impl Put {
    /// The bytes written, `None` for a delete (the tests read the events a rule logs).
    pub(crate) fn written(&self) -> Option<&[u8]> {
        match self {
            Put::Write { value, .. } => Some(value),
            Put::Delete { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_heads_reads_the_last_event_of_every_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        // Chain names that sort next to each other and around the separator.
        let chains = ["_tuk", "a", "a b", "a!", "pkg/S1", "pkg/S10", "pkg/S2"];
        let mut puts = Vec::new();
        for (i, c) in chains.iter().enumerate() {
            for seq in 0..(3 + i as u64 * 7) {
                puts.push(Put::bytes(
                    Table::Events,
                    crate::exam::events::event_key(c, seq),
                    format!("{c}#{seq}").into_bytes(),
                ));
            }
        }
        store.commit(puts).unwrap();
        let heads = store.chain_heads().unwrap();
        let want: Vec<(String, Vec<u8>)> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), format!("{c}#{}", 2 + i * 7).into_bytes()))
            .collect();
        let mut got = heads;
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want);
    }

    struct Counter(usize);

    impl Durable for Counter {
        fn batch_puts(&mut self) -> Vec<Put> {
            Vec::new()
        }
        fn reload(&mut self, _: &Store) -> Result<()> {
            Ok(())
        }
    }

    /// With the writer's queue full, `Writer::run` waits for room without blocking its
    /// runtime thread: on a one-thread runtime, the task that frees the writer still runs,
    /// and every job is done once.
    #[test]
    fn a_full_queue_waits_without_blocking_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::create(dir.path()).unwrap());
        let state = Arc::new(RwLock::new(Counter(0)));
        let (writer, thread) = start_writer(store, state.clone()).unwrap();
        // The writer's first job holds it until released, so the queue fills up.
        let (release, held) = mpsc::channel::<()>();
        writer
            .submit(Box::new(move |_| {
                let _ = held.recv();
                (Vec::new(), Box::new(|_| {}))
            }))
            .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let w = writer.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async move {
                let jobs: Vec<_> = (0..QUEUE + 100)
                    .map(|_| {
                        let w = w.clone();
                        tokio::spawn(async move {
                            w.run(|c: &mut Counter| {
                                c.0 += 1;
                                (Vec::new(), ())
                            })
                            .await
                        })
                    })
                    .collect();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = release.send(());
                });
                for j in jobs {
                    j.await.unwrap().unwrap();
                }
            });
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the runtime thread was blocked by a full writer queue");
        assert_eq!(state.read().unwrap().0, QUEUE + 100);
        writer.stop();
        thread.join().unwrap();
    }
}
