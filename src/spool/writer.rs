//! The spool's one writer: group commit on a thread of its own.
//!
//! It blocks for the first write, takes every other write already waiting (up to
//! [`MAX_BATCH`]), applies them in one transaction and commits it, which is one fsync of
//! SQLite's log, then answers each. A lone write is committed at once: there is no
//! batching window, only whatever queued up during the previous commit. When a batch
//! fails (a full disk, an I/O error), it is rolled back and each write is tried again in
//! a transaction of its own, so only the writes that cannot be stored are refused.
//!
//! Counters (stored bytes, pending and dead per route) change only once a commit holding
//! the change returned: a limit is never judged on writes that did not happen.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use bytes::Bytes;

use super::read::Pending;
use super::schema::State;
use super::{Counters, SpoolError};

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 512;

/// Decides, once, whether the new events of an enqueue may be stored; `Err(wait)` refuses
/// them all (a rate limit, say) and says how long to wait.
pub(crate) type Admit = Box<dyn FnOnce() -> Result<(), Duration> + Send>;

/// An event to store: what identifies it, and what will be sent.
pub struct NewEvent {
    pub id: Vec<u8>,
    pub shown_id: String,
    pub kind: String,
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// Told of the events each commit stored, in arrival order, right after the commit.
pub(crate) type StoredHook = Box<dyn Fn(Vec<Pending>) + Send>;

/// What became of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Per event, in order: `true` stored, `false` a duplicate (not stored again).
    Stored(Vec<bool>),
    /// `admit` refused: nothing stored.
    Refused(Duration),
}

/// An attempt's outcome, to record.
pub struct Outcome {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub then: Then,
}

/// What the event becomes after an attempt.
pub enum Then {
    Delivered,
    RetryAt(i64),
    Dead,
}

/// What a redelivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivered {
    /// Events put back in the queue.
    Count(u64),
    NotFound,
    /// The event is pending already.
    Pending,
}

pub(super) struct Enqueue {
    pub route: String,
    pub dedup_ttl_ms: Option<i64>,
    pub events: Vec<NewEvent>,
    pub now_ms: i64,
    pub admit: Option<Admit>,
    /// What `admit` said, kept for when a failed batch is tried again job by job.
    pub verdict: Option<Result<(), Duration>>,
    pub done: oneshot::Sender<Result<Enqueued, SpoolError>>,
}

pub(super) struct Settle {
    pub seq: i64,
    pub outcome: Outcome,
    pub done: oneshot::Sender<Result<(), SpoolError>>,
}

pub(super) enum Which {
    One { route: String, id: Vec<u8> },
    Dead(Option<String>),
}

pub(super) struct Redeliver {
    pub which: Which,
    pub now_ms: i64,
    pub done: oneshot::Sender<Result<Redelivered, SpoolError>>,
}

pub(super) struct Sweep {
    pub cutoffs: Vec<(String, i64)>,
    pub default_cutoff: i64,
    pub done: oneshot::Sender<Result<u64, SpoolError>>,
}

pub(super) enum Job {
    Enqueue(Enqueue),
    Settle(Settle),
    Redeliver(Redeliver),
    Sweep(Sweep),
    LimitPages {
        pages: u64,
        done: oneshot::Sender<Result<(), SpoolError>>,
    },
}

/// Where writes are sent.
pub(super) struct Handle(mpsc::Sender<Job>);

impl Handle {
    pub(super) fn send(&self, job: Job) -> Result<(), SpoolError> {
        self.0
            .send(job)
            .map_err(|_| SpoolError::Store("the writer stopped".into()))
    }
}

/// Starts the writer thread on `conn`. It ends when every [`Handle`] is dropped.
pub(super) fn start(
    conn: Connection,
    counters: Arc<Counters>,
    max_bytes: u64,
    stored: StoredHook,
) -> std::io::Result<Handle> {
    let (jobs, inbox) = mpsc::channel();
    let writer = Writer {
        conn,
        counters,
        max_bytes,
        stored,
    };
    std::thread::Builder::new()
        .name("hookwarden-spool".into())
        .spawn(move || writer.run(inbox))?;
    Ok(Handle(jobs))
}

struct Writer {
    conn: Connection,
    counters: Arc<Counters>,
    max_bytes: u64,
    stored: StoredHook,
}

/// What a transaction changes in the counters, applied once it is committed.
#[derive(Default)]
struct Delta {
    bytes: i64,
    /// Per route: (pending, dead).
    routes: HashMap<String, (i64, i64)>,
}

impl Delta {
    fn count(&mut self, route: &str, pending: i64, dead: i64) {
        let entry = self.routes.entry(route.to_string()).or_default();
        entry.0 += pending;
        entry.1 += dead;
    }
}

/// What a job computed, sent once its transaction is committed.
enum Done {
    Enqueued(Enqueued),
    /// `queue.max_bytes` would be passed: that enqueue alone is refused.
    Full,
    Unit,
    Redelivered(Redelivered),
    Swept(u64),
}

/// One transaction's view: its changes to the counters and the ids it stored.
struct Batch<'t> {
    tx: Transaction<'t>,
    delta: Delta,
    /// The events this transaction stored, for the hook once it is committed.
    new: Vec<Pending>,
    /// (route, id) stored in this transaction, so copies within it are stored once.
    stored: HashSet<(String, Vec<u8>)>,
}

impl Writer {
    fn run(mut self, inbox: mpsc::Receiver<Job>) {
        while let Ok(first) = inbox.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.commit(jobs);
        }
    }

    /// Applies `jobs` in one transaction; after a failure, each in its own.
    fn commit(&mut self, mut jobs: Vec<Job>) {
        match self.apply_all(&mut jobs) {
            Ok((done, delta, new)) => {
                self.counted(delta);
                (self.stored)(new);
                for (job, done) in jobs.into_iter().zip(done) {
                    finish(job, Ok(done));
                }
            }
            Err(e) if jobs.len() == 1 => {
                self.failed(&e);
                for job in jobs {
                    finish(job, Err(e.clone()));
                }
            }
            Err(_) => {
                for job in jobs {
                    let mut one = vec![job];
                    let outcome = self.apply_all(&mut one);
                    let Some(job) = one.pop() else { continue };
                    match outcome {
                        Ok((mut done, delta, new)) => {
                            self.counted(delta);
                            (self.stored)(new);
                            if let Some(done) = done.pop() {
                                finish(job, Ok(done));
                            }
                        }
                        Err(e) => {
                            self.failed(&e);
                            finish(job, Err(e));
                        }
                    }
                }
            }
        }
    }

    fn failed(&self, e: &SpoolError) {
        tracing::warn!(error = %e, "queue store write failed; nothing of it was stored");
    }

    fn counted(&self, delta: Delta) {
        self.counters.add_bytes(delta.bytes);
        for (route, (pending, dead)) in delta.routes {
            self.counters.add(&route, pending, dead);
        }
    }

    fn apply_all(
        &mut self,
        jobs: &mut [Job],
    ) -> Result<(Vec<Done>, Delta, Vec<Pending>), SpoolError> {
        let max_bytes = self.max_bytes;
        let stored_bytes = self
            .counters
            .stored_bytes
            .load(std::sync::atomic::Ordering::SeqCst);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut batch = Batch {
            tx,
            delta: Delta::default(),
            new: Vec::new(),
            stored: HashSet::new(),
        };
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs.iter_mut() {
            // Each job's effect on the counters stays apart until it succeeded.
            let outcome = match job {
                Job::Enqueue(e) => batch.enqueue(e, stored_bytes, max_bytes),
                Job::Settle(s) => batch.settle(s).map(|()| Done::Unit),
                Job::Redeliver(r) => batch.redeliver(r).map(Done::Redelivered),
                Job::Sweep(s) => batch.sweep(s).map(Done::Swept),
                Job::LimitPages { pages, .. } => batch
                    .tx
                    .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                    .map(|()| Done::Unit)
                    .map_err(SpoolError::from),
            };
            done.push(outcome?);
        }
        let Batch { tx, delta, new, .. } = batch;
        tx.commit()?;
        Ok((done, delta, new))
    }
}

impl Batch<'_> {
    fn enqueue(
        &mut self,
        e: &mut Enqueue,
        stored_bytes: u64,
        max_bytes: u64,
    ) -> Result<Done, SpoolError> {
        let mut new = Vec::with_capacity(e.events.len());
        let mut seen_here = HashSet::new();
        for event in &e.events {
            let duplicate = match e.dedup_ttl_ms {
                None => false,
                Some(ttl) => {
                    let key = (e.route.clone(), event.id.clone());
                    self.stored.contains(&key)
                        || !seen_here.insert(event.id.clone())
                        || self.known(&e.route, &event.id, e.now_ms.saturating_sub(ttl))?
                }
            };
            new.push(!duplicate);
        }
        let bytes: u64 = e
            .events
            .iter()
            .zip(&new)
            .filter(|(_, &n)| n)
            .map(|(ev, _)| ev.body.len() as u64)
            .sum();
        if new.iter().any(|&n| n) {
            let after = i64::try_from(stored_bytes)
                .unwrap_or(i64::MAX)
                .saturating_add(self.delta.bytes)
                .saturating_add(i64::try_from(bytes).unwrap_or(i64::MAX));
            if after > i64::try_from(max_bytes).unwrap_or(i64::MAX) {
                // Changes nothing: the batch goes on without it.
                return Ok(Done::Full);
            }
            let verdict = match (e.verdict, e.admit.take()) {
                (Some(v), _) => v,
                (None, Some(admit)) => admit(),
                (None, None) => Ok(()),
            };
            e.verdict = Some(verdict);
            if let Err(wait) = verdict {
                return Ok(Done::Enqueued(Enqueued::Refused(wait)));
            }
        }
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO events (route, id, shown_id, type, state, size, content_type,
                                 received_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?7)",
        )?;
        let mut insert_body = self
            .tx
            .prepare_cached("INSERT INTO bodies (seq, body) VALUES (?1, ?2)")?;
        let mut stored = 0;
        for (event, _) in e.events.iter().zip(&new).filter(|(_, &n)| n) {
            insert.execute(params![
                e.route,
                event.id,
                event.shown_id,
                event.kind,
                event.body.len() as i64,
                event.content_type,
                e.now_ms
            ])?;
            let seq = self.tx.last_insert_rowid();
            insert_body.execute(params![seq, &event.body[..]])?;
            stored += 1;
            self.new.push(Pending {
                seq,
                route: e.route.clone(),
                id: event.id.clone(),
                shown_id: event.shown_id.clone(),
                kind: event.kind.clone(),
                body: event.body.clone(),
                content_type: event.content_type.clone(),
                attempts: 0,
                next_attempt_at: e.now_ms,
            });
            if e.dedup_ttl_ms.is_some() {
                self.stored.insert((e.route.clone(), event.id.clone()));
            }
        }
        drop(insert);
        drop(insert_body);
        self.delta.bytes += i64::try_from(bytes).unwrap_or(i64::MAX);
        self.delta.count(&e.route, stored, 0);
        Ok(Done::Enqueued(Enqueued::Stored(new)))
    }

    /// Whether `id` is pending on `route`, or was settled after `since`.
    fn known(&self, route: &str, id: &[u8], since: i64) -> Result<bool, SpoolError> {
        let mut query = self.tx.prepare_cached(
            "SELECT 1 FROM events
             WHERE route = ?1 AND id = ?2 AND (state = 0 OR settled_at >= ?3) LIMIT 1",
        )?;
        Ok(query.exists(params![route, id, since])?)
    }

    fn settle(&mut self, s: &Settle) -> Result<(), SpoolError> {
        let o = &s.outcome;
        let (state, next_at, settled_at) = match o.then {
            Then::Delivered => (State::Delivered, o.at_ms, Some(o.at_ms)),
            Then::RetryAt(at) => (State::Pending, at, None),
            Then::Dead => (State::Dead, o.at_ms, Some(o.at_ms)),
        };
        let line = serde_json::json!({
            "at": o.at_ms,
            "status": o.status,
            "error": o.error,
            "duration_ms": o.duration_ms,
        });
        let found: Option<(String, i64)> = self
            .tx
            .prepare_cached(
                "UPDATE events SET attempts = attempts + 1, state = ?2, next_attempt_at = ?3,
                        last_status = ?4, last_error = ?5, settled_at = ?6,
                        history = history || ?7
                 WHERE seq = ?1 AND state = 0
                 RETURNING route, size",
            )?
            .query_row(
                params![
                    s.seq,
                    state.code(),
                    next_at,
                    o.status,
                    o.error,
                    settled_at,
                    format!("{line}\n")
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        // Redelivered or swept meanwhile: nothing to settle.
        let Some((route, len)) = found else {
            return Ok(());
        };
        match state {
            State::Delivered => {
                self.delta.bytes -= len;
                self.delta.count(&route, -1, 0);
            }
            State::Dead => self.delta.count(&route, -1, 1),
            State::Pending => {}
        }
        Ok(())
    }

    fn redeliver(&mut self, r: &Redeliver) -> Result<Redelivered, SpoolError> {
        match &r.which {
            Which::One { route, id } => {
                let found: Option<(i64, i64, i64)> = self
                    .tx
                    .prepare_cached(
                        "SELECT seq, state, size FROM events
                         WHERE route = ?1 AND id = ?2 ORDER BY seq DESC LIMIT 1",
                    )?
                    .query_row(params![route, id], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .optional()?;
                let Some((seq, state, len)) = found else {
                    return Ok(Redelivered::NotFound);
                };
                match State::from_code(state) {
                    Some(State::Pending) | None => Ok(Redelivered::Pending),
                    Some(was) => {
                        self.back_to_pending("seq = ?1", params![seq], r.now_ms)?;
                        match was {
                            State::Dead => self.delta.count(route, 1, -1),
                            _ => {
                                self.delta.bytes += len;
                                self.delta.count(route, 1, 0);
                            }
                        }
                        Ok(Redelivered::Count(1))
                    }
                }
            }
            Which::Dead(route) => {
                let per_route: Vec<(String, i64)> = {
                    let mut query = self.tx.prepare_cached(
                        "SELECT route, COUNT(*) FROM events
                         WHERE state = 2 AND (?1 IS NULL OR route = ?1) GROUP BY route",
                    )?;
                    let rows =
                        query.query_map(params![route], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                let n = self.back_to_pending(
                    "state = 2 AND (?1 IS NULL OR route = ?1)",
                    params![route],
                    r.now_ms,
                )?;
                for (route, count) in per_route {
                    self.delta.count(&route, count, -count);
                }
                Ok(Redelivered::Count(n))
            }
        }
    }

    /// Events matching `filter` (its parameters from ?1) pending again, attempts reset.
    fn back_to_pending(
        &mut self,
        filter: &str,
        args: impl rusqlite::Params,
        now_ms: i64,
    ) -> Result<u64, SpoolError> {
        // `now` is a literal: the filter's own parameters start at ?1.
        let sql = format!(
            "UPDATE events SET state = 0, attempts = 0, next_attempt_at = {now_ms},
                    settled_at = NULL
             WHERE {filter}"
        );
        Ok(self.tx.execute(&sql, args)? as u64)
    }

    fn sweep(&mut self, s: &Sweep) -> Result<u64, SpoolError> {
        let names: Vec<&str> = s.cutoffs.iter().map(|(n, _)| n.as_str()).collect();
        let mut removed = 0;
        let mut routes: Vec<(String, i64)> = s.cutoffs.clone();
        // Routes stored but no longer configured take the default cutoff.
        {
            let mut query = self
                .tx
                .prepare_cached("SELECT DISTINCT route FROM events WHERE state != 0")?;
            let stored = query.query_map([], |row| row.get::<_, String>(0))?;
            for route in stored {
                let route = route?;
                if !names.contains(&route.as_str()) {
                    routes.push((route, s.default_cutoff));
                }
            }
        }
        for (route, cutoff) in routes {
            let (dead, dead_bytes): (i64, i64) = self.tx.query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events
                 WHERE route = ?1 AND state = 2 AND settled_at < ?2",
                params![route, cutoff],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            self.tx.execute(
                "DELETE FROM bodies WHERE seq IN (SELECT seq FROM events
                 WHERE route = ?1 AND state != 0 AND settled_at < ?2)",
                params![route, cutoff],
            )?;
            removed += self.tx.execute(
                "DELETE FROM events WHERE route = ?1 AND state != 0 AND settled_at < ?2",
                params![route, cutoff],
            )? as u64;
            self.delta.bytes -= dead_bytes;
            self.delta.count(&route, 0, -dead);
        }
        Ok(removed)
    }
}

/// Sends a job its answer.
fn finish(job: Job, outcome: Result<Done, SpoolError>) {
    match job {
        Job::Enqueue(e) => {
            let answer = outcome.and_then(|d| match d {
                Done::Enqueued(x) => Ok(x),
                Done::Full => Err(SpoolError::Full),
                _ => Err(SpoolError::Store("unexpected answer".into())),
            });
            let _ = e.done.send(answer);
        }
        Job::Settle(s) => {
            let _ = s.done.send(outcome.map(drop));
        }
        Job::Redeliver(r) => {
            let answer = outcome.and_then(|d| match d {
                Done::Redelivered(x) => Ok(x),
                _ => Err(SpoolError::Store("unexpected answer".into())),
            });
            let _ = r.done.send(answer);
        }
        Job::Sweep(s) => {
            let answer = outcome.and_then(|d| match d {
                Done::Swept(n) => Ok(n),
                _ => Err(SpoolError::Store("unexpected answer".into())),
            });
            let _ = s.done.send(answer);
        }
        Job::LimitPages { done, .. } => {
            let _ = done.send(outcome.map(drop));
        }
    }
}
