//! The queue's durable spool (SPEC §8): every event a `queue` route accepts, stored in
//! SQLite under `queue.dir` until the app takes it, and kept for `queue.retention` after.
//!
//! Why SQLite (through `rusqlite`, compiled in): it is the most tested store there is,
//! its WAL mode with `synchronous = FULL` makes a commit durable with one fsync, readers
//! never block the writer, and the API's filtered, paged listings and the retention sweep
//! are one indexed statement each, where a key-value store would need hand-kept
//! secondary indexes. An operator can open `queue.db` with `sqlite3` to look inside.
//! README "Queue delivery" has the measurements.
//!
//! One writer thread owns the only write connection ([`writer`]): it takes every write
//! waiting, runs them in one transaction, commits (one fsync), and only then answers them
//! all, so a `200 queued` always follows the sync, and a lone request never waits for a
//! batching window. Reads ([`read`]) use connections of their own.
//!
//! The spool knows nothing of HTTP: it stores bytes under a route name and an id, and
//! says which were new, which duplicates, and when the store could not take them.

mod read;
mod schema;
mod writer;

pub(crate) use read::{Detail, Filter, Page, Pending, Summary};
pub(crate) use schema::State;
pub(crate) use writer::{
    Enqueued, NewEvent, Outcome as AttemptOutcome, Redelivered, StoredHook, Then,
};

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntCounter;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::sync::lock;

/// The database file inside `queue.dir`.
const DB_FILE: &str = "queue.db";
/// Held (flock) while a gateway uses the folder.
const LOCK_FILE: &str = "lock";

/// Why the spool could not do something. Messages name files, never payloads.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    #[error("queue.dir {dir} is in use by another hookwarden process{holder}")]
    Locked { dir: PathBuf, holder: String },
    #[error("queue.dir {dir}: {message}")]
    Open { dir: PathBuf, message: String },
    /// `queue.max_bytes` reached: nothing stored.
    #[error("the queue is full (queue.max_bytes)")]
    Full,
    /// A read or write failed (disk full, I/O error): nothing stored.
    #[error("the queue store failed: {0}")]
    Store(String),
}

impl From<rusqlite::Error> for SpoolError {
    fn from(e: rusqlite::Error) -> Self {
        SpoolError::Store(e.to_string())
    }
}

/// What the spool counts as it goes, for limits and gauges.
#[derive(Default)]
struct Counters {
    /// Bodies stored pending or dead: what `queue.max_bytes` bounds.
    stored_bytes: AtomicU64,
    /// Per route: (pending, dead).
    per_route: Mutex<HashMap<String, (u64, u64)>>,
}

impl Counters {
    fn add(&self, route: &str, pending: i64, dead: i64) {
        let mut all = lock(&self.per_route);
        let entry = all.entry(route.to_string()).or_default();
        entry.0 = entry.0.saturating_add_signed(pending);
        entry.1 = entry.1.saturating_add_signed(dead);
    }

    fn add_bytes(&self, bytes: i64) {
        let _ = self
            .stored_bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_add_signed(bytes))
            });
    }
}

pub struct Spool {
    dir: PathBuf,
    db: PathBuf,
    writer: writer::Handle,
    readers: read::Readers,
    counters: Arc<Counters>,
    /// Writes and reads that failed (`hookwarden_queue_store_errors_total`).
    errors: IntCounter,
    /// Held for the spool's life: a second process cannot take it.
    _lock: File,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, bounded to `max_bytes` of stored
    /// bodies. Refuses a folder another process holds. `stored` hears of every event
    /// stored, in arrival order, once its commit returned (the workers' fast path).
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        errors: IntCounter,
        stored: StoredHook,
    ) -> Result<Spool, SpoolError> {
        let open_error = |message: String| SpoolError::Open {
            dir: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(format!("cannot create: {e}")))?;
        let lock = take_lock(dir)?;
        let db = dir.join(DB_FILE);
        let conn = connect(&db).map_err(|e| open_error(format!("cannot open {DB_FILE}: {e}")))?;
        conn.execute_batch(schema::SCHEMA)
            .map_err(|e| open_error(format!("cannot create its tables: {e}")))?;
        let counters = Arc::new(Counters::default());
        read::count_into(&conn, &counters)
            .map_err(|e| open_error(format!("cannot read {DB_FILE}: {e}")))?;
        let writer = writer::start(conn, Arc::clone(&counters), max_bytes, stored)
            .map_err(|e| open_error(format!("cannot start its writer: {e}")))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            readers: read::Readers::new(db.clone()),
            db,
            writer,
            counters,
            errors,
            _lock: lock,
        })
    }

    /// Whether `dir` already holds a spool (so it must be opened even with no queue
    /// route: its events are still to be delivered).
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).exists()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `events` of `route`, durably, in one commit. With `dedup_ttl`, an id that is
    /// pending, or was settled less than the ttl ago, is a duplicate and not stored
    /// (copies in one batch, or arriving together, are stored once). `admit` runs once,
    /// only if something new is to be stored, and may refuse it all with a wait.
    pub async fn enqueue(
        &self,
        route: &str,
        dedup_ttl: Option<Duration>,
        events: Vec<NewEvent>,
        now_ms: i64,
        admit: writer::Admit,
    ) -> Result<Enqueued, SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer.send(writer::Job::Enqueue(writer::Enqueue {
            route: route.to_string(),
            dedup_ttl_ms: dedup_ttl.map(millis),
            events,
            now_ms,
            admit: Some(admit),
            verdict: None,
            done,
        }))?;
        self.answer(answer).await
    }

    /// Records an attempt's outcome; resolves once it is committed, so the event is not
    /// picked again before its new state is stored.
    pub async fn settle(&self, seq: i64, outcome: AttemptOutcome) -> Result<(), SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(writer::Job::Settle(writer::Settle { seq, outcome, done }))?;
        self.answer(answer).await
    }

    /// Puts a dead or delivered event back in the queue (the newest of that id).
    pub async fn redeliver(
        &self,
        route: &str,
        id: &[u8],
        now_ms: i64,
    ) -> Result<Redelivered, SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer.send(writer::Job::Redeliver(writer::Redeliver {
            which: writer::Which::One {
                route: route.to_string(),
                id: id.to_vec(),
            },
            now_ms,
            done,
        }))?;
        self.answer(answer).await
    }

    /// Puts every dead letter (of `route`, or of all) back in the queue; how many.
    pub async fn redeliver_dead(
        &self,
        route: Option<&str>,
        now_ms: i64,
    ) -> Result<Redelivered, SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer.send(writer::Job::Redeliver(writer::Redeliver {
            which: writer::Which::Dead(route.map(str::to_string)),
            now_ms,
            done,
        }))?;
        self.answer(answer).await
    }

    /// Deletes delivered events and dead letters settled before their route's cutoff
    /// (`cutoffs`, else `default_cutoff`); how many.
    pub async fn sweep(
        &self,
        cutoffs: Vec<(String, i64)>,
        default_cutoff: i64,
    ) -> Result<u64, SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer.send(writer::Job::Sweep(writer::Sweep {
            cutoffs,
            default_cutoff,
            done,
        }))?;
        self.answer(answer).await
    }

    /// Lets the database grow to `pages` pages at most (SQLite's `max_page_count`): past
    /// it every write fails as a full disk does. For tests of a failing store.
    #[doc(hidden)]
    pub async fn limit_pages(&self, pages: u64) -> Result<(), SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer.send(writer::Job::LimitPages { pages, done })?;
        self.answer(answer).await
    }

    /// The next pending events of `route` with what their attempts send, at most
    /// `limit`: in arrival order when `in_order`, else soonest due first.
    pub async fn next_pending(
        &self,
        route: &str,
        in_order: bool,
        limit: usize,
    ) -> Result<Vec<Pending>, SpoolError> {
        let route = route.to_string();
        self.read(move |c| read::next_pending(c, &route, in_order, limit))
            .await
    }

    /// Routes that hold pending events.
    pub async fn routes_with_pending(&self) -> Result<Vec<String>, SpoolError> {
        self.read(read::routes_with_pending).await
    }

    /// When the oldest pending event of `route` was received (Unix ms).
    pub async fn oldest_pending(&self, route: &str) -> Result<Option<i64>, SpoolError> {
        let route = route.to_string();
        self.read(move |c| read::oldest_pending(c, &route)).await
    }

    /// Stored events matching `filter`, newest first.
    pub async fn list(&self, filter: Filter) -> Result<Page, SpoolError> {
        self.read(move |c| read::list(c, &filter)).await
    }

    /// The newest stored event of `id` on `route`, with its body and attempts.
    pub async fn detail(&self, route: &str, id: &[u8]) -> Result<Option<Detail>, SpoolError> {
        let (route, id) = (route.to_string(), id.to_vec());
        self.read(move |c| read::detail(c, &route, &id)).await
    }

    /// Runs a read on a reader connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let readers = self.readers.clone();
        let read = tokio::task::spawn_blocking(move || readers.with(query))
            .await
            .map_err(|e| SpoolError::Store(format!("reader task failed: {e}")))?;
        read.inspect_err(|_| self.errors.inc())
    }

    /// Pending events of `route`, as stored now.
    pub fn pending(&self, route: &str) -> u64 {
        lock(&self.counters.per_route)
            .get(route)
            .map_or(0, |(pending, _)| *pending)
    }

    /// Pending and dead events per route, as stored now.
    pub fn counts(&self) -> HashMap<String, (u64, u64)> {
        lock(&self.counters.per_route).clone()
    }

    /// Bytes of pending and dead bodies stored now.
    pub fn stored_bytes(&self) -> u64 {
        self.counters.stored_bytes.load(Ordering::SeqCst)
    }

    /// The database file, for operators and tests.
    pub fn path(&self) -> &Path {
        &self.db
    }

    async fn answer<T>(
        &self,
        answer: oneshot::Receiver<Result<T, SpoolError>>,
    ) -> Result<T, SpoolError> {
        let answered = answer
            .await
            .map_err(|_| SpoolError::Store("the writer stopped".into()))?;
        answered.inspect_err(|e| {
            if !matches!(e, SpoolError::Full) {
                self.errors.inc();
            }
        })
    }
}

/// Takes the folder's lock, or says which process holds it.
fn take_lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::Open {
            dir: dir.to_path_buf(),
            message: format!("cannot open {LOCK_FILE}: {e}"),
        })?;
    match file.try_lock() {
        Ok(()) => {
            // The holder's pid, for the next one's error message.
            let _ = file.set_len(0);
            let _ = write!(file, "{}", std::process::id());
            let _ = file.flush();
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .filter(|pid| !pid.trim().is_empty())
                .map(|pid| format!(" (pid {})", pid.trim()))
                .unwrap_or_default();
            Err(SpoolError::Locked {
                dir: dir.to_path_buf(),
                holder,
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(SpoolError::Open {
            dir: dir.to_path_buf(),
            message: format!("cannot lock {LOCK_FILE}: {e}"),
        }),
    }
}

/// A connection in WAL mode that makes every commit durable (one fsync of the log).
///
/// The log is copied into the database (a checkpoint, in the committing connection)
/// every 1,000 pages: each `queued` answer behind a checkpoint waits for it, and at
/// `bench/run.sh`'s half load (7,000 events/s, one core) the p99 of the answer was
/// 10.7–11.0 ms with 10,000 pages, 5.8–6.1 ms with 2,000, 4.5–4.8 ms with 1,000, and
/// 4.2–4.6 ms with 500 or 250 (4.4 ms with no checkpoint at all); the closed-loop rate
/// moved within the run-to-run spread (15.1k/s against 15.7k/s at 10,000). Copying the
/// log from a thread of its own made it worse (p99 82–109 ms): under a steady stream of
/// commits a passive checkpoint never catches up, so the log never restarts.
fn connect(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    // Readers and the writer wait for each other briefly instead of failing at once.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
