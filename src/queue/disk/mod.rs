//! `queue.backend = "disk"`: the queue in SQLite under `queue.dir`, for one gateway
//! process at a time (docs/queue.md "The disk store").
//!
//! Why SQLite (through `rusqlite`, compiled in): it is the most tested store there is,
//! its WAL mode with `synchronous = FULL` makes a commit durable with one fsync, readers
//! never block the writer, and the API's filtered, paged listings and the retention sweep
//! are indexed statements, where a key-value store (redb, fjall) would need secondary
//! indexes kept by hand; measured alone on this workload (`bench/stores`) it costs about
//! what fjall does and half what redb does per event. An operator can open `queue.db`
//! with `sqlite3` to look inside.
//!
//! - [`writer`]: the one write connection, on a thread of its own, with group commit;
//!   [`apply`]: what each write does in its transaction.
//! - [`lanes`]: per route, the pending events known in memory, those in flight, and the
//!   counts, under one lock; the writer updates them only after a commit.
//! - [`read`]: the admin API's reads, on connections of their own; [`schema`]: the
//!   tables and their numbered migrations.

mod apply;
mod lanes;
mod read;
mod schema;
mod writer;

#[cfg(test)]
pub(in crate::queue) mod tests;

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntCounter;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::error::QueueError;
use super::model::{
    AllCounts, Claimed, Detail, Enqueue, Enqueued, Filter, Page, PageRequest, Pending, Redelivered,
    Settle,
};
use super::store::{cursor, resume, Answer, BoxFuture, Bulk, Chunk, Cutoffs, Signals, Store};
use crate::sync::lock;
use lanes::{Claim, Lanes};
use writer::{Ask, Inbox, Job};

/// The database file inside `queue.dir`.
const DB_FILE: &str = "queue.db";
/// Held (flock) while a gateway uses the folder.
const LOCK_FILE: &str = "lock";
/// Events a refill reads beyond the free slots, so that a route catching up is not read
/// once per event.
const READ_AHEAD: usize = 64;

/// What the writer thread and the store's callers share.
struct Shared {
    lanes: Arc<Lanes>,
    /// Bodies stored pending or dead: what `queue.max_bytes` bounds.
    stored_bytes: AtomicU64,
    max_bytes: u64,
    /// Writes and reads that failed (`hookwarden_queue_store_errors_total`).
    errors: IntCounter,
    answers: writer::Answers,
    hooks: Hooks,
}

/// Test hooks in the writer's path (the interleavings the tests force). Outside tests
/// they are empty and cost nothing.
#[derive(Default)]
pub(in crate::queue) struct Hooks {
    /// After a commit returned, before the lanes hear of it.
    #[cfg(test)]
    pub(in crate::queue) between_commit_and_lanes: Mutex<Option<Box<dyn Fn() + Send>>>,
    /// Before each write transaction starts.
    #[cfg(test)]
    pub(in crate::queue) before_write: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Hooks {
    fn between_commit_and_lanes(&self) {
        #[cfg(test)]
        if let Some(hook) = lock(&self.between_commit_and_lanes).as_ref() {
            hook();
        }
    }

    fn before_write(&self) {
        #[cfg(test)]
        if let Some(hook) = lock(&self.before_write).as_ref() {
            hook();
        }
    }
}

pub(crate) struct DiskStore {
    dir: PathBuf,
    inbox: Inbox,
    readers: read::Readers,
    shared: Arc<Shared>,
    /// Held until the store is closed: a second process cannot take the folder.
    lock: Mutex<Option<File>>,
    /// The task that sends the writer's answers on the runtime; ends after the writer.
    answering: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl DiskStore {
    /// Opens (creating it if needed) the store in `dir`, bounded to `max_bytes` of stored
    /// bodies; `signals` hears of every change that gives a worker something to do.
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
        errors: IntCounter,
        signals: Arc<Signals>,
    ) -> Result<DiskStore, QueueError> {
        let open_error = |message: String| QueueError::Open {
            dir: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(format!("cannot create: {e}")))?;
        let lock = take_lock(dir)?;
        let db = dir.join(DB_FILE);
        let mut conn =
            connect(&db).map_err(|e| open_error(format!("cannot open {DB_FILE}: {e}")))?;
        match schema::migrate(&mut conn)
            .map_err(|e| open_error(format!("cannot bring {DB_FILE} up to date: {e}")))?
        {
            schema::Migrated::Newer(found) => {
                return Err(QueueError::NewerSchema {
                    dir: dir.to_path_buf(),
                    found,
                    known: schema::latest(),
                })
            }
            schema::Migrated::From(version) if version < schema::latest() && version > 0 => {
                tracing::info!(
                    from = version,
                    to = schema::latest(),
                    "queue: store migrated"
                );
            }
            schema::Migrated::From(_) => {}
        }
        let read_error = |e: rusqlite::Error| open_error(format!("cannot read {DB_FILE}: {e}"));
        let lanes = Arc::new(Lanes::default());
        lanes.load(read::counts(&conn).map_err(read_error)?);
        let shared = Arc::new(Shared {
            lanes,
            stored_bytes: AtomicU64::new(read::stored_bytes(&conn).map_err(read_error)?),
            max_bytes,
            errors,
            answers: writer::Answers::default(),
            hooks: Hooks::default(),
        });
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| open_error(format!("needs the async runtime: {e}")))?;
        let answering = runtime.spawn(writer::send_answers(Arc::clone(&shared)));
        let inbox = writer::start(conn, Arc::clone(&shared), signals)
            .map_err(|e| open_error(format!("cannot start its writer: {e}")))?;
        Ok(DiskStore {
            dir: dir.to_path_buf(),
            readers: read::Readers::new(db),
            inbox,
            shared,
            lock: Mutex::new(Some(lock)),
            answering: Mutex::new(Some(answering)),
        })
    }

    /// Whether `dir` already holds a store (so it must be opened even with no queue
    /// route: its events are still to be delivered).
    pub(crate) fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).exists()
    }

    /// Bytes of pending and dead bodies stored now.
    #[cfg(test)]
    fn stored_bytes(&self) -> u64 {
        self.shared
            .stored_bytes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(in crate::queue) fn hooks(&self) -> &Hooks {
        &self.shared.hooks
    }

    /// Sends `job` (made with `ask`) to the writer and waits for its answer.
    async fn ask<T>(&self, job: impl FnOnce(Ask<T>) -> Job) -> Result<T, QueueError> {
        let (done, answer) = oneshot::channel();
        self.inbox.send(job(Ask::new(done))).await?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    /// Runs a read on a reader connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        let readers = self.readers.clone();
        let read = tokio::task::spawn_blocking(move || readers.with(query))
            .await
            .map_err(|_| QueueError::Closed)?;
        read.inspect_err(|_| self.shared.errors.inc())
    }

    /// Lets the database grow to `pages` pages at most (SQLite's `max_page_count`): past
    /// it every write fails as on a full disk. For tests of a failing store.
    pub(crate) async fn limit_pages(&self, pages: u64) -> Result<(), QueueError> {
        self.ask(|ask| Job::LimitPages { pages, ask }).await
    }

    /// Resolves once every write sent before is committed.
    #[cfg(test)]
    pub(in crate::queue) async fn barrier(&self) -> Result<(), QueueError> {
        self.ask(|ask| Job::Barrier { ask }).await
    }

    /// The database file, for operators and tests.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }
}

impl Store for DiskStore {
    fn enqueue(&self, write: Enqueue) -> Answer<'_, Enqueued> {
        Box::pin(async move {
            let bytes = write.events.iter().map(|e| e.body.len() as u64).sum();
            let (done, answer) = oneshot::channel();
            let job = Job::Enqueue {
                write,
                verdict: None,
                bytes,
                ask: Ask::new(done),
            };
            self.inbox.offer(job, bytes)?;
            answer.await.map_err(|_| QueueError::Closed)?
        })
    }

    fn claim<'a>(
        &'a self,
        route: &'a str,
        now_ms: i64,
        free: usize,
        in_order: bool,
    ) -> Answer<'a, Claimed> {
        Box::pin(async move {
            let mut refilled = false;
            loop {
                match self
                    .shared
                    .lanes
                    .claim(route, now_ms, free, in_order, refilled)
                {
                    Claim::Taken(claimed) => return Ok(claimed),
                    Claim::NeedsRefill if refilled => return Ok(Claimed::default()),
                    Claim::NeedsRefill => {
                        let route = Arc::from(route);
                        let wanted = free + READ_AHEAD;
                        self.ask(|ask| Job::Refill {
                            route,
                            in_order,
                            wanted,
                            ask,
                        })
                        .await?;
                        refilled = true;
                    }
                }
            }
        })
    }

    fn settle<'a>(&'a self, event: &'a Pending, outcome: Settle) -> Answer<'a, ()> {
        let job = Job::Settle {
            event: event.clone(),
            outcome,
        };
        Box::pin(self.inbox.send(job))
    }

    fn redeliver<'a>(
        &'a self,
        route: &'a str,
        id: &'a [u8],
        now_ms: i64,
    ) -> Answer<'a, Redelivered> {
        Box::pin(self.ask(move |ask| Job::Redeliver {
            route: route.to_string(),
            id: id.to_vec(),
            now_ms,
            ask,
        }))
    }

    fn redeliver_chunk<'a>(
        &'a self,
        bulk: &'a Bulk,
        from: Option<&'a str>,
        now_ms: i64,
        limit: usize,
    ) -> Answer<'a, Chunk> {
        Box::pin(async move {
            // The cursor: the route being walked and the last event looked at there.
            let mut routes: Vec<String> = match &bulk.filter.route {
                Some(route) => vec![route.clone()],
                None => self
                    .shared
                    .lanes
                    .route_names()
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
            };
            routes.sort();
            let (mut at, mut after) = resume(&routes, from);
            while let Some(route) = routes.get(at) {
                let (changed, next) = self
                    .ask(|ask| Job::RedeliverChunk {
                        bulk: bulk.clone(),
                        route: route.clone(),
                        after,
                        now_ms,
                        limit,
                        ask,
                    })
                    .await?;
                match next {
                    Some(seq) => {
                        return Ok(Chunk {
                            changed,
                            next: Some(cursor(seq, route)),
                        })
                    }
                    None if changed > 0 => {
                        let next = routes.get(at + 1).map(|r| cursor(0, r));
                        return Ok(Chunk { changed, next });
                    }
                    None => {
                        at += 1;
                        after = 0;
                    }
                }
            }
            Ok(Chunk {
                changed: 0,
                next: None,
            })
        })
    }

    fn retry_now_chunk<'a>(&'a self, route: &'a str, now_ms: i64, limit: usize) -> Answer<'a, u64> {
        Box::pin(self.ask(move |ask| Job::RetryNowChunk {
            route: route.to_string(),
            now_ms,
            limit,
            ask,
        }))
    }

    fn sweep_chunk<'a>(&'a self, cutoffs: &'a Cutoffs, limit: usize) -> Answer<'a, u64> {
        Box::pin(self.ask(move |ask| Job::SweepChunk {
            cutoffs: cutoffs.clone(),
            limit,
            ask,
        }))
    }

    fn set_paused<'a>(&'a self, route: &'a str, paused: bool) -> Answer<'a, ()> {
        Box::pin(self.ask(move |ask| Job::SetPaused {
            route: route.to_string(),
            paused,
            ask,
        }))
    }

    fn paused(&self) -> Answer<'_, HashSet<String>> {
        Box::pin(self.read(|c| Ok(read::paused(c)?.into_iter().collect())))
    }

    fn list(&self, filter: Filter, page: PageRequest) -> Answer<'_, Page> {
        Box::pin(self.read(move |c| read::list(c, &filter, page)))
    }

    fn detail<'a>(&'a self, route: &'a str, id: &'a [u8]) -> Answer<'a, Option<Detail>> {
        let (route, id) = (route.to_string(), id.to_vec());
        Box::pin(self.read(move |c| read::detail(c, &route, &id)))
    }

    fn counts(&self) -> Answer<'_, AllCounts> {
        let counts = self.shared.lanes.counts();
        Box::pin(async move { Ok(counts) })
    }

    fn oldest_pending<'a>(&'a self, route: &'a str) -> Answer<'a, Option<i64>> {
        let route = route.to_string();
        Box::pin(self.read(move |c| read::oldest_pending(c, &route)))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (done, closed) = oneshot::channel();
            if self.inbox.send(Job::Close { done }).await.is_ok() {
                let _ = closed.await;
            }
            let answering = lock(&self.answering).take();
            if let Some(answering) = answering {
                let _ = answering.await;
            }
            self.readers.close();
            // Only now that no connection is left: the next process may take the folder.
            lock(&self.lock).take();
        })
    }
}

/// Takes the folder's lock, or says which process holds it.
fn take_lock(dir: &Path) -> Result<File, QueueError> {
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| QueueError::Open {
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
            Err(QueueError::Locked {
                dir: dir.to_path_buf(),
                holder,
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(QueueError::Open {
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
/// 4.2–4.6 ms with 500 or 250 (4.4 ms with no checkpoint at all). Copying the log from a
/// thread of its own made it worse (p99 82–109 ms): under a steady stream of commits a
/// passive checkpoint never catches up, so the log never restarts.
fn connect(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    // Readers and the writer wait for each other briefly instead of failing at once.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}
