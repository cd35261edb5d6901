//! The spool's one writer: group commit on a thread of its own.
//!
//! It blocks for the first job, takes every other job already waiting (up to
//! [`MAX_BATCH`]), applies the writes in one transaction and commits it (one fsync of
//! SQLite's log), applies what the commit changed to the lanes, and only then answers
//! each job; then it runs the batch's refills, reads between two commits. A lone write
//! is committed at once: there is no batching window. When a batch fails (a full disk,
//! an I/O error), it is rolled back and each write is tried again in a transaction of its
//! own, so only the writes that cannot be stored are refused.
//!
//! The way in is bounded ([`INBOX_JOBS`], [`INBOX_BYTES`]): a request finding it full is
//! refused at once (`Busy`, answered 503 `overloaded`) rather than piling its body up
//! behind a stalled disk, and a request that gave up before its write was taken is
//! skipped, not written. Bulk changes arrive as chunks, each its own short job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::super::error::QueueError;
use super::super::model::{Enqueue, Enqueued, Pending, Redelivered, Settle};
use super::super::store::{Bulk, Cutoffs, Signals};
use super::apply::{EnqueueVerdict, Statements, Tx, Verdict};
use super::lanes::Change;
use super::read;
use super::Shared;
use crate::sync::lock;

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer at most, and the bodies they carry.
pub(super) const INBOX_JOBS: usize = 4096;
pub(super) const INBOX_BYTES: u64 = 64 << 20;

type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// A job's answer: computed inside the transaction, sent only once it is committed.
pub(super) struct Ask<T> {
    done: Reply<T>,
    answer: Option<Result<T, QueueError>>,
}

impl<T> Ask<T> {
    pub(super) fn new(done: Reply<T>) -> Self {
        Ask { done, answer: None }
    }

    fn send(self) {
        let answer = self.answer.unwrap_or(Err(QueueError::Closed));
        let _ = self.done.send(answer);
    }

    fn refuse(self, e: QueueError) {
        let _ = self.done.send(Err(e));
    }
}

pub(super) enum Job {
    Enqueue {
        write: Enqueue,
        verdict: Verdict,
        bytes: u64,
        ask: Ask<Enqueued>,
    },
    /// Not answered: the event stays in flight until the outcome is committed, and a
    /// failed write releases it (see [`Store::settle`]).
    ///
    /// [`Store::settle`]: super::super::store::Store::settle
    Settle { event: Pending, outcome: Settle },
    Redeliver {
        route: String,
        id: Vec<u8>,
        now_ms: i64,
        ask: Ask<Redelivered>,
    },
    RedeliverChunk {
        bulk: Bulk,
        route: String,
        after: i64,
        now_ms: i64,
        limit: usize,
        ask: Ask<(u64, Option<i64>)>,
    },
    RetryNowChunk {
        route: String,
        now_ms: i64,
        limit: usize,
        ask: Ask<u64>,
    },
    SweepChunk {
        cutoffs: Cutoffs,
        limit: usize,
        ask: Ask<u64>,
    },
    SetPaused {
        route: String,
        paused: bool,
        ask: Ask<()>,
    },
    /// A read into a lane, between commits.
    Refill {
        route: Arc<str>,
        in_order: bool,
        wanted: usize,
        ask: Ask<()>,
    },
    /// Lets the database grow to `pages` pages at most: every write past it fails as on
    /// a full disk. For tests of a failing store.
    LimitPages { pages: u64, ask: Ask<()> },
    /// Answered once every write sent before it is committed (and applied).
    #[cfg_attr(not(test), allow(dead_code))]
    Barrier { ask: Ask<()> },
    /// Ends the writer once every job before it is done.
    Close { done: oneshot::Sender<()> },
}

impl Job {
    /// Sends the answer computed for it (after its commit).
    fn answer(self) {
        match self {
            Job::Enqueue { ask, .. } => ask.send(),
            Job::Redeliver { ask, .. } => ask.send(),
            Job::RedeliverChunk { ask, .. } => ask.send(),
            Job::RetryNowChunk { ask, .. } | Job::SweepChunk { ask, .. } => ask.send(),
            Job::SetPaused { ask, .. }
            | Job::Refill { ask, .. }
            | Job::LimitPages { ask, .. }
            | Job::Barrier { ask } => ask.send(),
            Job::Settle { .. } => {}
            Job::Close { done } => {
                let _ = done.send(());
            }
        }
    }

    /// Refuses it with `e` (its write failed, or the writer is closed).
    fn refuse(self, e: QueueError) {
        match self {
            Job::Enqueue { ask, .. } => ask.refuse(e),
            Job::Redeliver { ask, .. } => ask.refuse(e),
            Job::RedeliverChunk { ask, .. } => ask.refuse(e),
            Job::RetryNowChunk { ask, .. } | Job::SweepChunk { ask, .. } => ask.refuse(e),
            Job::SetPaused { ask, .. }
            | Job::Refill { ask, .. }
            | Job::LimitPages { ask, .. }
            | Job::Barrier { ask } => ask.refuse(e),
            Job::Settle { .. } => {}
            Job::Close { done } => {
                let _ = done.send(());
            }
        }
    }

    /// Forgets an answer computed in a transaction that was rolled back.
    fn forget(&mut self) {
        match self {
            Job::Enqueue { ask, .. } => ask.answer = None,
            Job::Redeliver { ask, .. } => ask.answer = None,
            Job::RedeliverChunk { ask, .. } => ask.answer = None,
            Job::RetryNowChunk { ask, .. } | Job::SweepChunk { ask, .. } => ask.answer = None,
            Job::SetPaused { ask, .. }
            | Job::Refill { ask, .. }
            | Job::LimitPages { ask, .. }
            | Job::Barrier { ask } => ask.answer = None,
            Job::Settle { .. } | Job::Close { .. } => {}
        }
    }
}

/// The writer's answers on their way to the runtime: published once per commit, sent by
/// [`send_answers`] on the runtime. Waking a task from the writer's thread costs a
/// syscall each time (the runtime's wake-up descriptor); from a task on the runtime it
/// costs nothing, so one wake per commit replaces one per write.
#[derive(Default)]
pub(super) struct Answers {
    ready: std::sync::Mutex<Vec<Job>>,
    wake: tokio::sync::Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl Answers {
    fn publish(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        lock(&self.ready).extend(jobs);
        self.wake.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Sends the answers the writer publishes, until it closed and every one is sent.
pub(super) async fn send_answers(shared: Arc<Shared>) {
    let answers = &shared.answers;
    loop {
        let published = answers.wake.notified();
        tokio::pin!(published);
        published.as_mut().enable();
        let closed = answers.closed.load(Ordering::SeqCst);
        let jobs = std::mem::take(&mut *lock(&answers.ready));
        jobs.into_iter().for_each(Job::answer);
        if closed {
            return;
        }
        published.await;
    }
}

/// Where jobs are sent: bounded in jobs and in body bytes.
#[derive(Clone)]
pub(super) struct Inbox {
    jobs: mpsc::Sender<Job>,
    bytes: Arc<AtomicU64>,
}

impl Inbox {
    /// An enqueue, refused at once when the inbox is full.
    pub(super) fn offer(&self, job: Job, bytes: u64) -> Result<(), QueueError> {
        let before = self.bytes.fetch_add(bytes, Ordering::SeqCst);
        if before.saturating_add(bytes) > INBOX_BYTES && before > 0 {
            self.bytes.fetch_sub(bytes, Ordering::SeqCst);
            return Err(QueueError::Busy);
        }
        self.jobs.try_send(job).map_err(|e| {
            self.bytes.fetch_sub(bytes, Ordering::SeqCst);
            match e {
                mpsc::error::TrySendError::Full(_) => QueueError::Busy,
                mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
            }
        })
    }

    /// Any other job, waiting for room (the writer always makes progress).
    pub(super) async fn send(&self, job: Job) -> Result<(), QueueError> {
        self.jobs.send(job).await.map_err(|_| QueueError::Closed)
    }
}

/// Starts the writer thread on `conn`.
pub(super) fn start(
    conn: Connection,
    shared: Arc<Shared>,
    signals: Arc<Signals>,
) -> std::io::Result<Inbox> {
    let (jobs, inbox) = mpsc::channel(INBOX_JOBS);
    let bytes = Arc::new(AtomicU64::new(0));
    let writer = Writer {
        conn,
        sql: Statements::new(),
        shared,
        signals,
        inbox_bytes: Arc::clone(&bytes),
    };
    std::thread::Builder::new()
        .name("hookwarden-spool".into())
        .spawn(move || writer.run(inbox))?;
    Ok(Inbox { jobs, bytes })
}

struct Writer {
    conn: Connection,
    sql: Statements,
    shared: Arc<Shared>,
    signals: Arc<Signals>,
    inbox_bytes: Arc<AtomicU64>,
}

/// What a committed transaction changed, to apply once it is durable.
struct Committed {
    changes: Vec<Change>,
    bytes: i64,
}

impl Writer {
    fn run(mut self, mut inbox: mpsc::Receiver<Job>) {
        let mut closing = None;
        while closing.is_none() {
            let Some(first) = inbox.blocking_recv() else {
                break;
            };
            let mut writes = Vec::with_capacity(16);
            let mut refills = Vec::new();
            let mut chunks = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Close { done } => {
                        closing = Some(done);
                        break;
                    }
                    Job::Refill { .. } => refills.push(job),
                    Job::SweepChunk { .. }
                    | Job::RedeliverChunk { .. }
                    | Job::RetryNowChunk { .. } => chunks.push(job),
                    Job::Enqueue { bytes, .. } => {
                        self.inbox_bytes.fetch_sub(bytes, Ordering::SeqCst);
                        writes.push(job);
                    }
                    job => writes.push(job),
                }
                if writes.len() + refills.len() + chunks.len() < MAX_BATCH {
                    next = inbox.try_recv().ok();
                }
            }
            let mut answered = if writes.is_empty() {
                Vec::new()
            } else {
                self.commit(writes)
            };
            answered.extend(refills.into_iter().map(|refill| self.refill(refill)));
            self.shared.answers.publish(answered);
            // A bulk change's chunk goes in a transaction of its own, after the writes
            // taken with it are committed and answered: no accepted event waits for a
            // chunk it arrived with, only (at worst) for one already running.
            for chunk in chunks {
                let answered = self.commit(vec![chunk]);
                self.shared.answers.publish(answered);
            }
        }
        inbox.close();
        // What was sent after Close, or raced it, is refused.
        while let Ok(job) = inbox.try_recv() {
            job.refuse(QueueError::Closed);
        }
        drop(self.conn);
        self.shared.answers.close();
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    /// Applies `jobs` in one transaction (after a failure, each in its own); returns the
    /// jobs to answer, their answers computed.
    fn commit(&mut self, mut jobs: Vec<Job>) -> Vec<Job> {
        match self.apply_all(&mut jobs) {
            Ok(committed) => {
                self.committed(committed);
                jobs
            }
            Err(e) if jobs.len() == 1 => {
                self.failed(&e);
                if let Some(job) = jobs.pop() {
                    self.give_up(job, e);
                }
                Vec::new()
            }
            Err(_) => {
                let mut answered = Vec::with_capacity(jobs.len());
                for mut job in jobs {
                    job.forget();
                    let mut one = [job];
                    let outcome = self.apply_all(&mut one);
                    let [job] = one;
                    match outcome {
                        Ok(committed) => {
                            self.committed(committed);
                            answered.push(job);
                        }
                        Err(e) => {
                            self.failed(&e);
                            self.give_up(job, e);
                        }
                    }
                }
                answered
            }
        }
    }

    /// A job whose write failed: refused, and an attempt's claim ended all the same.
    fn give_up(&self, job: Job, e: QueueError) {
        if let Job::Settle { event, .. } = &job {
            let change = Change::Unsettled {
                route: Arc::clone(&event.route),
                seq: event.seq,
            };
            self.wake(self.shared.lanes.apply(vec![change]));
        }
        job.refuse(e);
    }

    fn failed(&self, e: &QueueError) {
        self.shared.errors.inc();
        tracing::warn!(error = %e, "queue store write failed; nothing of it was stored");
    }

    /// What a commit changed, now that it is durable: counters, lanes, wake-ups.
    fn committed(&self, committed: Committed) {
        let Committed { changes, bytes } = committed;
        let _ = self
            .shared
            .stored_bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_add_signed(bytes))
            });
        self.shared.hooks.between_commit_and_lanes();
        self.wake(self.shared.lanes.apply(changes));
    }

    fn wake(&self, routes: Vec<Arc<str>>) {
        for route in routes {
            self.signals.wake(&route);
        }
    }

    fn apply_all(&mut self, jobs: &mut [Job]) -> Result<Committed, QueueError> {
        self.shared.hooks.before_write();
        let stored = self.shared.stored_bytes.load(Ordering::SeqCst);
        let room = i64::try_from(self.shared.max_bytes.saturating_sub(stored)).unwrap_or(i64::MAX);
        let lanes = Arc::clone(&self.shared.lanes);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut tx = Tx::new(tx, &self.sql);
        for job in jobs.iter_mut() {
            match job {
                // Its request gave up (timed out, hung up) before its turn: not written,
                // so what the provider was told (503, retry) stays true.
                Job::Enqueue { ask, .. } if ask.done.is_closed() => {}
                Job::Enqueue {
                    write,
                    verdict,
                    ask,
                    ..
                } => {
                    ask.answer = Some(match tx.enqueue(write, verdict, room)? {
                        EnqueueVerdict::Done(x) => Ok(x),
                        EnqueueVerdict::Full => Err(QueueError::Full),
                    });
                }
                Job::Settle { event, outcome } => tx.settle(event, outcome)?,
                Job::Redeliver {
                    route,
                    id,
                    now_ms,
                    ask,
                } => ask.answer = Some(Ok(tx.redeliver(&lanes, route, id, *now_ms)?)),
                Job::RedeliverChunk {
                    bulk,
                    route,
                    after,
                    now_ms,
                    limit,
                    ask,
                } => {
                    let chunk = tx.redeliver_chunk(bulk, route, *after, *now_ms, *limit)?;
                    ask.answer = Some(Ok(chunk));
                }
                Job::RetryNowChunk {
                    route,
                    now_ms,
                    limit,
                    ask,
                } => ask.answer = Some(Ok(tx.retry_now_chunk(route, *now_ms, *limit)?)),
                Job::SweepChunk {
                    cutoffs,
                    limit,
                    ask,
                } => {
                    let routes = lanes.route_names();
                    ask.answer = Some(Ok(tx.sweep_chunk(routes, cutoffs, *limit)?));
                }
                Job::SetPaused { route, paused, ask } => {
                    ask.answer = Some(Ok(tx.set_paused(route, *paused)?));
                }
                Job::LimitPages { pages, ask } => {
                    let sql = format!("PRAGMA max_page_count = {pages}");
                    tx.tx.query_row(&sql, [], |_| Ok(()))?;
                    ask.answer = Some(Ok(()));
                }
                Job::Barrier { ask } => ask.answer = Some(Ok(())),
                Job::Refill { .. } | Job::Close { .. } => {}
            }
        }
        let Tx {
            tx, changes, bytes, ..
        } = tx;
        tx.commit()?;
        Ok(Committed { changes, bytes })
    }

    /// Reads `route`'s next pending events into its lane, between commits: what it reads
    /// is exactly what the lane reflects.
    fn refill(&self, job: Job) -> Job {
        let Job::Refill {
            route,
            in_order,
            wanted,
            mut ask,
        } = job
        else {
            return job;
        };
        let reading = wanted + self.shared.lanes.in_flight(&route);
        ask.answer = Some(
            match read::next_pending(&self.conn, &route, in_order, reading) {
                Ok(rows) => {
                    self.shared.lanes.refilled(&route, rows, reading, in_order);
                    Ok(())
                }
                Err(e) => {
                    self.shared.errors.inc();
                    tracing::warn!(route = %route, error = %e, "queue: cannot read pending events");
                    Err(e.into())
                }
            },
        );
        Job::Refill {
            route,
            in_order,
            wanted,
            ask,
        }
    }
}
