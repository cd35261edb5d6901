//! `queue.backend = "redis"`: the queue in Redis, shared by every replica pointed at it
//! (docs/queue.md "Replicas").
//!
//! Each route's events live under its own key prefix with a `{route}` hash tag, and
//! every step that must be atomic is one Lua script over that route's keys
//! ([`scripts`]): storing a write after its dedup check, claiming due events (marking
//! them in flight under a lease), storing an outcome (only while its lease holds),
//! redelivering. A replica that stops answering leaves its claims to lapse: once an
//! attempt has been in flight for `upstream.timeout` + 10 s, the next claim on any
//! replica takes it over.
//!
//! Why a sorted set of due times and leases rather than Streams with consumer groups:
//! delivery needs a schedule (retries fall due at their own times, and a 429's
//! `Retry-After` pushes one event back), which a stream does not keep, so a stream would
//! still need a sorted set beside it, and every retry would move an event between the
//! two. One sorted set of due times is the schedule for new events and retries alike;
//! claiming is "take what is due and lease it", and taking over is "the lease ended".
//! The other replicas learn of new events by looking every [`POLL`]; the replica that
//! accepted an event wakes its own worker at once.
//!
//! Why the `redis` crate, already the dedup store's client: its tokio connection manager
//! reconnects by itself after Redis comes back, it runs scripts by their SHA (loading
//! them once), it speaks `redis://`, `rediss://` and `redis+unix://`, its cluster
//! client follows a Redis Cluster's slots ([`crate::redis_link`]), and it is the most
//! used Rust client (fred is the other well-kept one).
//!
//! When Redis cannot be reached, accepting answers 503 (`QueueError::Redis`), workers
//! pause and look again, every failed command counts in
//! `hookwarden_queue_store_errors_total`, and readiness fails until a command succeeds
//! again; each change is logged once.

mod scripts;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus::IntCounter;
use redis::{Script, Value};
use tokio::time::Instant;

use super::error::QueueError;
use super::model::{
    AllCounts, Attempt, Claimed, Counts, Detail, Enqueue, Enqueued, Filter, Page, PageRequest,
    Pending, Redelivered, Settle, State, Summary, Then,
};
use super::store::{cursor, resume, Answer, BoxFuture, Bulk, Chunk, Cutoffs, Signals, Store};
use crate::reachability::Reachability;
use crate::redis_link::{Conn, Link};
use crate::sync::lock;

/// How often a worker looks for events other replicas stored, or whose lease ended.
pub(crate) const POLL: Duration = Duration::from_millis(250);
/// How long one command may take before it counts as failed.
const COMMAND_WAIT: Duration = Duration::from_secs(2);
/// How long the store's total of stored bytes is trusted before it is read again.
const BYTES_FRESH: Duration = Duration::from_secs(1);
/// Events a list reads per route and window, and windows at most per page.
const LIST_WINDOW: usize = 256;
const LIST_WINDOWS: usize = 16;

pub(crate) struct RedisStore {
    link: Link,
    prefix: String,
    scripts: Scripts,
    signals: Arc<Signals>,
    errors: IntCounter,
    max_bytes: u64,
    /// How long a claim holds its events before another replica may take them over.
    lease_ms: i64,
    /// This replica's name in lease tokens.
    replica: String,
    claims: AtomicU64,
    /// The stored bytes of every route, and when that was read.
    bytes: Mutex<Option<(Instant, u64)>>,
    /// Whether the last command reached Redis (for readiness and its logs).
    reach: Reachability,
    /// Whether each write waits for Redis's append-only file (`WAITAOF`), known after
    /// the first write.
    waitaof: Mutex<Option<bool>>,
}

struct Scripts {
    enqueue: Script,
    new_ids: Script,
    claim: Script,
    settle: Script,
    redeliver: Script,
    requeue: Script,
    retry_now: Script,
    sweep: Script,
}

impl RedisStore {
    /// A store on `url` under `prefix`, connected on first use (and again after Redis
    /// comes back), so the gateway starts while Redis is still coming up.
    pub(crate) fn open(
        url: &str,
        prefix: &str,
        max_bytes: u64,
        lease: Duration,
        errors: IntCounter,
        signals: Arc<Signals>,
    ) -> Result<RedisStore, QueueError> {
        let link = Link::open(url, COMMAND_WAIT).map_err(|e| QueueError::Redis(e.to_string()))?;
        let mut id = [0u8; 6];
        let _ = getrandom::fill(&mut id);
        Ok(RedisStore {
            link,
            prefix: prefix.to_string(),
            scripts: Scripts {
                enqueue: Script::new(scripts::ENQUEUE),
                new_ids: Script::new(scripts::NEW_IDS),
                claim: Script::new(scripts::CLAIM),
                settle: Script::new(scripts::SETTLE),
                redeliver: Script::new(scripts::REDELIVER),
                requeue: Script::new(scripts::REQUEUE),
                retry_now: Script::new(scripts::RETRY_NOW),
                sweep: Script::new(scripts::SWEEP),
            },
            signals,
            errors,
            max_bytes,
            lease_ms: millis(lease),
            replica: hex::encode(id),
            claims: AtomicU64::new(0),
            bytes: Mutex::default(),
            reach: Reachability::new(
                "the queue's Redis (queue.redis_url)",
                "queue routes answer 503 until it is back",
            ),
            waitaof: Mutex::default(),
        })
    }

    /// A route's key prefix: every key of the route starts with it, and its `{route}`
    /// hash tag keeps them on one Redis Cluster slot.
    fn base(&self, route: &str) -> String {
        format!("{}{{{route}}}:", self.prefix)
    }

    /// A key of the whole queue, not of one route (the arrival counter, the set of
    /// routes). They share the `{_}` hash tag (no route's name starts with `_`), so one
    /// pipeline reaches both on Redis Cluster.
    fn key(&self, name: &str) -> String {
        format!("{}{{_}}:{name}", self.prefix)
    }

    /// Runs `command`, bounded in time, counting and logging failures, and noting whether
    /// Redis could be reached.
    async fn run<T, F>(&self, command: impl FnOnce(Conn) -> F) -> Result<T, QueueError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let outcome = self.run_raw(command).await?;
        self.judge(outcome)
    }

    /// Runs a script. Redis forgets its scripts when it restarts or is flushed; the
    /// client then loads the script and runs it again, and should Redis forget it once
    /// more in between, this runs it a last time rather than count a failure.
    async fn script<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        for last in [false, true] {
            let outcome = self
                .run_raw(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await?;
            match outcome {
                Err(e) if !last && is_noscript(&e) => continue,
                outcome => return self.judge(outcome),
            }
        }
        Err(QueueError::Redis("a script could not be run".into()))
    }

    /// Runs `command`, bounded in time; a command that got no answer in time is counted
    /// and logged here, an answer is left to [`Self::judge`].
    async fn run_raw<T, F>(
        &self,
        command: impl FnOnce(Conn) -> F,
    ) -> Result<redis::RedisResult<T>, QueueError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            match self.link.conn().await {
                Ok(conn) => command(conn).await,
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(COMMAND_WAIT, attempt).await {
            Ok(outcome) => Ok(outcome),
            Err(_) => {
                self.reach.missed("no answer in time");
                self.failed("no answer in time");
                Err(QueueError::Redis("no answer in time".into()))
            }
        }
    }

    /// An answer: notes whether Redis could be reached, and counts and logs a failure.
    fn judge<T>(&self, outcome: redis::RedisResult<T>) -> Result<T, QueueError> {
        self.reach.note(&outcome);
        outcome.map_err(|e| {
            let e = e.to_string();
            self.failed(&e);
            QueueError::Redis(e)
        })
    }

    fn failed(&self, error: &str) {
        self.errors.inc();
        if self.reach.problem().is_none() {
            tracing::warn!(error = %error, "queue: a Redis command failed");
        }
    }

    /// Every route that has (or had) events in the store, from any replica.
    async fn routes(&self) -> Result<Vec<String>, QueueError> {
        let key = self.key("routes");
        let mut routes: Vec<String> = self
            .run(|mut c| async move { redis::cmd("SMEMBERS").arg(&key).query_async(&mut c).await })
            .await?;
        routes.sort();
        Ok(routes)
    }

    async fn register(&self, route: &str) -> Result<(), QueueError> {
        let key = self.key("routes");
        self.run(|mut c| async move {
            redis::cmd("SADD")
                .arg(&key)
                .arg(route)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// The bodies stored (pending and dead) in all routes, read at most every
    /// [`BYTES_FRESH`]: `queue.max_bytes` is judged on it.
    async fn stored_bytes(&self) -> Result<u64, QueueError> {
        if let Some((at, bytes)) = *lock(&self.bytes) {
            if at.elapsed() < BYTES_FRESH {
                return Ok(bytes);
            }
        }
        let keys: Vec<String> = self
            .routes()
            .await?
            .iter()
            .map(|r| format!("{}bytes", self.base(r)))
            .collect();
        let mut total = 0u64;
        for key in keys {
            let bytes: Option<i64> = self
                .run(|mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
                .await?;
            total += bytes.unwrap_or(0).max(0) as u64;
        }
        *lock(&self.bytes) = Some((Instant::now(), total));
        Ok(total)
    }

    /// After a write: when Redis keeps an append-only file and offers `WAITAOF` (7.2 and
    /// newer, Valkey), waits until the write is in it, so that a `kill -9` of Redis itself
    /// loses nothing answered `queued`. Whether to wait is learnt from the first
    /// `WAITAOF`'s answer: a Redis without an append-only file refuses it in so many
    /// words, an older one does not know it. On a cluster it goes to every primary, and
    /// each must have its own part of this connection's writes in its file.
    async fn durable(&self) -> Result<(), QueueError> {
        if *lock(&self.waitaof) == Some(false) {
            return Ok(());
        }
        let answer = self
            .run_raw(|mut c| async move {
                redis::cmd("WAITAOF")
                    .arg(1)
                    .arg(0)
                    .arg(millis(COMMAND_WAIT))
                    .query_async::<Value>(&mut c)
                    .await
            })
            .await?;
        let answer = match answer {
            Err(e) if e.code().is_some() => Value::ServerError(match e.try_into() {
                Ok(e) => e,
                Err(e) => return self.judge(Err(e)),
            }),
            answer => self.judge(answer)?,
        };
        match aof_synced(&answer) {
            Aof::Synced => {
                *lock(&self.waitaof) = Some(true);
                Ok(())
            }
            Aof::NotOffered => {
                *lock(&self.waitaof) = Some(false);
                Ok(())
            }
            Aof::Behind => {
                self.failed("WAITAOF: not in the append-only file in time");
                Err(QueueError::Redis(
                    "the write did not reach Redis's append-only file in time".into(),
                ))
            }
        }
    }

    /// Summaries of `seqs` of `route` (those still stored), in the order given.
    async fn summaries(&self, route: &str, seqs: &[i64]) -> Result<Vec<Summary>, QueueError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let base = self.base(route);
        let mut pipe = redis::pipe();
        for seq in seqs {
            pipe.cmd("HMGET")
                .arg(format!("{base}e:{seq}"))
                .arg(&["sid", "t", "s", "a", "r", "n", "ls", "le"]);
        }
        let rows: Vec<Vec<Option<Vec<u8>>>> = self
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        Ok(seqs
            .iter()
            .zip(rows)
            .filter_map(|(&seq, f)| summary(route, seq, &f))
            .collect())
    }

    /// The next events of `route` in `index` before `before`, newest first, that match
    /// `filter`, at most `wanted`, reading at most [`LIST_WINDOWS`] windows; and whether
    /// the index holds more past them.
    async fn list_route(
        &self,
        route: &str,
        index: &str,
        filter: &Filter,
        before: i64,
        wanted: usize,
    ) -> Result<Vec<Summary>, QueueError> {
        let key = format!("{}{index}", self.base(route));
        let mut out = Vec::new();
        let mut below = before;
        for _ in 0..LIST_WINDOWS {
            let top = format!("({below}");
            let key = key.clone();
            let seqs: Vec<i64> = self
                .run(|mut c| async move {
                    redis::cmd("ZREVRANGEBYSCORE")
                        .arg(&key)
                        .arg(&top)
                        .arg("-inf")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(LIST_WINDOW)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let Some(&last) = seqs.last() else { break };
            for s in self.summaries(route, &seqs).await? {
                if matches(&s, filter) {
                    out.push(s);
                }
            }
            if out.len() >= wanted || seqs.len() < LIST_WINDOW {
                break;
            }
            below = last;
        }
        out.truncate(wanted);
        Ok(out)
    }

    /// One round trip: takes `n` arrival numbers (returning the last), notes the route,
    /// and runs `check` (which ids are new) when given, whose answer is empty otherwise.
    /// A Redis that lost its scripts (restarted) gets them again, and the trip is redone.
    /// On a cluster the route's keys and the queue's own live on different shards, so
    /// the two parts go as two requests, sent together.
    async fn sequence(
        &self,
        seq_key: &str,
        routes_key: &str,
        route: &str,
        n: i64,
        check: Option<&redis::ScriptInvocation<'_>>,
    ) -> Result<(i64, Vec<i64>), QueueError> {
        if self.judge(self.link.is_cluster().await)? {
            let counter = self.run(|mut c| async move {
                let mut pipe = redis::pipe();
                pipe.cmd("INCRBY").arg(seq_key).arg(n);
                pipe.cmd("SADD").arg(routes_key).arg(route).ignore();
                let (last,): (i64,) = pipe.query_async(&mut c).await?;
                Ok(last)
            });
            let new = async {
                match check {
                    Some(check) => self.script(check).await,
                    None => Ok(Vec::new()),
                }
            };
            return tokio::try_join!(counter, new);
        }
        for first_try in [true, false] {
            let outcome: redis::RedisResult<(i64, Vec<i64>)> = self
                .run_raw(|mut c| async move {
                    let mut pipe = redis::pipe();
                    pipe.cmd("INCRBY").arg(seq_key).arg(n);
                    pipe.cmd("SADD").arg(routes_key).arg(route).ignore();
                    match check {
                        Some(check) => {
                            pipe.invoke_script(check);
                            pipe.query_async(&mut c).await
                        }
                        None => {
                            let (last,): (i64,) = pipe.query_async(&mut c).await?;
                            Ok((last, Vec::new()))
                        }
                    }
                })
                .await?;
            match (outcome, check) {
                (Err(e), Some(check)) if first_try && is_noscript(&e) => {
                    self.run(|mut c| async move { check.load_async(&mut c).await })
                        .await?;
                }
                (outcome, _) => return self.judge(outcome),
            }
        }
        Err(QueueError::Redis(
            "the new-id script could not be loaded".into(),
        ))
    }

    async fn wake_after(&self, route: &str) {
        self.signals.wake(route);
    }
}

impl Store for RedisStore {
    fn enqueue(&self, write: Enqueue) -> Answer<'_, Enqueued> {
        Box::pin(async move {
            let base = self.base(&write.route);
            let ttl = write.dedup_ttl.map_or(-1, millis);
            let bytes: u64 = write.events.iter().map(|e| e.body.len() as u64).sum();
            if self.stored_bytes().await?.saturating_add(bytes) > self.max_bytes {
                return Err(QueueError::Full);
            }
            // Arrival order across routes (the lists' newest first), the route among those
            // with events, and, for a rate-limited route, which ids are new, in one round
            // trip. The first two are not the route's keys (Redis Cluster keeps them on
            // another shard), so they stay outside the store script.
            let n = write.events.len() as i64;
            let (seq_key, routes_key) = (self.key("seq"), self.key("routes"));
            let route = write.route.as_str();
            let check = write.limited.then(|| {
                let mut check = self.scripts.new_ids.key(&base);
                check.arg(write.now_ms).arg(ttl);
                for event in &write.events {
                    check.arg(&event.id[..]);
                }
                check
            });
            let (last, new) = self
                .sequence(&seq_key, &routes_key, route, n, check.as_ref())
                .await?;
            if new.contains(&1) {
                // The limit is asked only when something new is to be stored.
                if let Err(wait) = (write.admit)() {
                    return Ok(Enqueued::Refused(wait));
                }
            }
            let mut store = self.scripts.enqueue.key(&base);
            store.arg(write.now_ms).arg(ttl).arg(last - n + 1).arg(n);
            for e in &write.events {
                store
                    .arg(&e.id[..])
                    .arg(&*e.shown_id)
                    .arg(&*e.kind)
                    .arg(e.content_type.as_deref().unwrap_or(""))
                    .arg(&e.body[..]);
            }
            let store = &store;
            let seqs: Vec<i64> = self.script(store).await?;
            self.durable().await?;
            if let Some((_, total)) = lock(&self.bytes).as_mut() {
                *total += bytes;
            }
            self.wake_after(&write.route).await;
            Ok(Enqueued::Stored(seqs.iter().map(|&s| s > 0).collect()))
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
            let token: Arc<str> = Arc::from(format!(
                "{}:{}",
                self.replica,
                self.claims.fetch_add(1, Ordering::Relaxed)
            ));
            let mut claim = self.scripts.claim.key(self.base(route));
            claim
                .arg(now_ms)
                .arg(free)
                .arg(self.lease_ms)
                .arg(&*token)
                .arg(if in_order { "1" } else { "0" });
            let claim = &claim;
            let answer: Vec<Value> = self.script(claim).await?;
            let route: Arc<str> = Arc::from(route);
            let mut fields = answer.into_iter();
            let next_due = fields.next().and_then(|v| int(&v)).filter(|&n| n >= 0);
            let mut events = Vec::new();
            let rest: Vec<Value> = fields.collect();
            for e in rest.chunks_exact(8) {
                let Some(seq) = int(&e[0]) else { continue };
                events.push(Pending {
                    seq,
                    route: Arc::clone(&route),
                    id: Bytes::from(bytes(&e[1])),
                    shown_id: Arc::from(text(&e[2])),
                    kind: Arc::from(text(&e[3])),
                    content_type: Some(text(&e[4])).filter(|ct| !ct.is_empty()).map(Arc::from),
                    attempts: int(&e[5]).and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
                    next_attempt_at: int(&e[6]).unwrap_or(now_ms),
                    body: Bytes::from(bytes(&e[7])),
                    claim: Some(Arc::clone(&token)),
                });
            }
            Ok(Claimed { events, next_due })
        })
    }

    fn settle<'a>(&'a self, event: &'a Pending, outcome: Settle) -> Answer<'a, ()> {
        Box::pin(async move {
            let a = &outcome.attempt;
            let line = a.line();
            let (follows, next) = match outcome.then {
                Then::Delivered => ("d", a.at_ms),
                Then::RetryAt(at) => ("r", at),
                Then::Dead => ("x", a.at_ms),
            };
            let token = event.claim.as_deref().unwrap_or("");
            let mut settle = self.scripts.settle.key(self.base(&event.route));
            settle
                .arg(event.seq)
                .arg(token)
                .arg(line)
                .arg(follows)
                .arg(a.at_ms)
                .arg(a.status.map(|s| s.to_string()).unwrap_or_default())
                .arg(a.error.as_deref().unwrap_or(""))
                .arg(next);
            let settle = &settle;
            let stored: i64 = self.script(settle).await?;
            if stored == 0 {
                tracing::warn!(route = %event.route, event_id = %event.shown_id.escape_debug(), "queue: an attempt outlived its lease and another replica took the event over; its outcome is not stored");
            }
            if outcome.then == Then::Delivered {
                if let Some((_, total)) = lock(&self.bytes).as_mut() {
                    *total = total.saturating_sub(event.body.len() as u64);
                }
            }
            self.wake_after(&event.route).await;
            Ok(())
        })
    }

    fn redeliver<'a>(
        &'a self,
        route: &'a str,
        id: &'a [u8],
        now_ms: i64,
    ) -> Answer<'a, Redelivered> {
        Box::pin(async move {
            let mut redeliver = self.scripts.redeliver.key(self.base(route));
            redeliver.arg(id).arg(now_ms);
            let redeliver = &redeliver;
            let found: i64 = self.script(redeliver).await?;
            let answer = match found {
                1 => Redelivered::Requeued,
                2 => Redelivered::Hurried,
                3 => Redelivered::InFlight,
                _ => Redelivered::NotFound,
            };
            if matches!(answer, Redelivered::Requeued | Redelivered::Hurried) {
                self.wake_after(route).await;
            }
            Ok(answer)
        })
    }

    fn redeliver_chunk<'a>(
        &'a self,
        bulk: &'a Bulk,
        from: Option<&'a str>,
        now_ms: i64,
        limit: usize,
    ) -> Answer<'a, Chunk> {
        Box::pin(async move {
            let routes = match &bulk.filter.route {
                Some(route) => vec![route.clone()],
                None => self.routes().await?,
            };
            let (mut at, mut after) = resume(&routes, from);
            let state = match bulk.state {
                State::Delivered => "1",
                State::Dead => "2",
                State::Pending => {
                    return Ok(Chunk {
                        changed: 0,
                        next: None,
                    })
                }
            };
            while let Some(route) = routes.get(at) {
                let key = format!("{}st:{state}", self.base(route));
                let low = format!("({after}");
                let window: Vec<i64> = self
                    .run(|mut c| async move {
                        redis::cmd("ZRANGEBYSCORE")
                            .arg(&key)
                            .arg(&low)
                            .arg("+inf")
                            .arg("LIMIT")
                            .arg(0)
                            .arg(limit)
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                let Some(&last) = window.last() else {
                    at += 1;
                    after = 0;
                    continue;
                };
                let chosen: Vec<i64> = if filters_fields(&bulk.filter) {
                    self.summaries(route, &window)
                        .await?
                        .into_iter()
                        .filter(|s| matches(s, &bulk.filter))
                        .map(|s| s.seq)
                        .collect()
                } else {
                    window.clone()
                };
                let mut changed = 0;
                if !chosen.is_empty() {
                    let mut requeue = self.scripts.requeue.key(self.base(route));
                    requeue.arg(now_ms).arg(state);
                    for seq in &chosen {
                        requeue.arg(*seq);
                    }
                    let requeue = &requeue;
                    let n: i64 = self.script(requeue).await?;
                    changed = n.max(0) as u64;
                    self.wake_after(route).await;
                }
                let next = if window.len() == limit {
                    Some(cursor(last, route))
                } else {
                    routes.get(at + 1).map(|r| cursor(0, r))
                };
                return Ok(Chunk { changed, next });
            }
            Ok(Chunk {
                changed: 0,
                next: None,
            })
        })
    }

    fn retry_now_chunk<'a>(&'a self, route: &'a str, now_ms: i64, limit: usize) -> Answer<'a, u64> {
        Box::pin(async move {
            let mut retry = self.scripts.retry_now.key(self.base(route));
            retry.arg(now_ms).arg(limit);
            let retry = &retry;
            let n: i64 = self.script(retry).await?;
            if n > 0 {
                self.wake_after(route).await;
            }
            Ok(n.max(0) as u64)
        })
    }

    fn sweep_chunk<'a>(&'a self, cutoffs: &'a Cutoffs, limit: usize) -> Answer<'a, u64> {
        Box::pin(async move {
            let mut removed = 0u64;
            for route in self.routes().await? {
                let left = limit.saturating_sub(removed as usize);
                if left == 0 {
                    break;
                }
                let cutoff = cutoffs
                    .routes
                    .get(&route)
                    .copied()
                    .unwrap_or(cutoffs.others);
                let mut sweep = self.scripts.sweep.key(self.base(&route));
                sweep.arg(cutoff).arg(left);
                let sweep = &sweep;
                let n: i64 = self.script(sweep).await?;
                removed += n.max(0) as u64;
            }
            if removed > 0 {
                *lock(&self.bytes) = None;
            }
            Ok(removed)
        })
    }

    fn set_paused<'a>(&'a self, route: &'a str, paused: bool) -> Answer<'a, ()> {
        Box::pin(async move {
            self.register(route).await?;
            let key = format!("{}paused", self.base(route));
            self.run(|mut c| async move {
                if paused {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .query_async::<()>(&mut c)
                        .await
                } else {
                    redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await
                }
            })
            .await
        })
    }

    fn paused(&self) -> Answer<'_, HashSet<String>> {
        Box::pin(async move {
            let mut paused = HashSet::new();
            for route in self.routes().await? {
                let key = format!("{}paused", self.base(&route));
                let there: bool =
                    self.run(|mut c| async move {
                        redis::cmd("EXISTS").arg(&key).query_async(&mut c).await
                    })
                    .await?;
                if there {
                    paused.insert(route);
                }
            }
            Ok(paused)
        })
    }

    fn list(&self, filter: Filter, page: PageRequest) -> Answer<'_, Page> {
        Box::pin(async move {
            let routes = match &filter.route {
                Some(route) => vec![route.clone()],
                None => self.routes().await?,
            };
            let index = match filter.state {
                None => "all",
                Some(State::Pending) => "st:0",
                Some(State::Delivered) => "st:1",
                Some(State::Dead) => "st:2",
            };
            let limit = page.limit.max(1);
            let before = page.before.unwrap_or(i64::MAX);
            // Newest first across routes: each route's newest, merged by arrival.
            let mut merged: BTreeMap<std::cmp::Reverse<i64>, Summary> = BTreeMap::new();
            for route in routes {
                for s in self
                    .list_route(&route, index, &filter, before, limit + 1)
                    .await?
                {
                    merged.insert(std::cmp::Reverse(s.seq), s);
                }
            }
            let mut events: Vec<Summary> = merged.into_values().collect();
            let next = if events.len() > limit {
                events.truncate(limit);
                events.last().map(|e| e.seq)
            } else {
                None
            };
            Ok(Page { events, next })
        })
    }

    fn detail<'a>(&'a self, route: &'a str, id: &'a [u8]) -> Answer<'a, Option<Detail>> {
        Box::pin(async move {
            let base = self.base(route);
            let ids = format!("{base}ids");
            let seq: Option<i64> = self
                .run(|mut c| async move {
                    redis::cmd("HGET")
                        .arg(&ids)
                        .arg(id)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let Some(seq) = seq else { return Ok(None) };
            let key = format!("{base}e:{seq}");
            let f: Vec<Option<Vec<u8>>> = self
                .run(|mut c| async move {
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg(&[
                            "sid", "t", "s", "a", "r", "n", "ls", "le", "id", "b", "ct", "h",
                        ])
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let Some(summary) = summary(route, seq, &f) else {
                return Ok(None);
            };
            let field = |i: usize| f.get(i).cloned().flatten();
            let history = String::from_utf8_lossy(&field(11).unwrap_or_default())
                .lines()
                .filter_map(Attempt::from_line)
                .collect();
            Ok(Some(Detail {
                summary,
                id: field(8).unwrap_or_default(),
                body: field(9).unwrap_or_default(),
                content_type: field(10).map(|b| String::from_utf8_lossy(&b).into_owned()),
                history,
            }))
        })
    }

    fn counts(&self) -> Answer<'_, AllCounts> {
        Box::pin(async move {
            let mut counts = AllCounts::default();
            // One pipeline per route: on Redis Cluster, routes live on different shards.
            for route in self.routes().await? {
                let base = self.base(&route);
                let (pending, dead): (u64, u64) = self
                    .run(|mut c| async move {
                        redis::pipe()
                            .cmd("ZCARD")
                            .arg(format!("{base}st:0"))
                            .cmd("ZCARD")
                            .arg(format!("{base}st:2"))
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                counts.insert(route, Counts { pending, dead });
            }
            Ok(counts)
        })
    }

    fn oldest_pending<'a>(&'a self, route: &'a str) -> Answer<'a, Option<i64>> {
        Box::pin(async move {
            let base = self.base(route);
            let key = format!("{base}st:0");
            let head: Vec<i64> = self
                .run(|mut c| async move {
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(0)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let Some(seq) = head.first() else {
                return Ok(None);
            };
            let event = format!("{base}e:{seq}");
            self.run(|mut c| async move {
                redis::cmd("HGET")
                    .arg(&event)
                    .arg("r")
                    .query_async(&mut c)
                    .await
            })
            .await
        })
    }

    fn poll_every(&self) -> Option<Duration> {
        Some(POLL)
    }

    fn problem(&self) -> Option<String> {
        self.reach.problem()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// An event's summary from its `HMGET sid t s a r n ls le` fields; `None` when gone.
fn summary(route: &str, seq: i64, f: &[Option<Vec<u8>>]) -> Option<Summary> {
    let text = |i: usize| {
        f.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let number = |i: usize| text(i).and_then(|t| t.parse::<i64>().ok());
    let state = match text(2)?.as_str() {
        "1" => State::Delivered,
        "2" => State::Dead,
        _ => State::Pending,
    };
    Some(Summary {
        seq,
        id: text(0).unwrap_or_default(),
        route: route.to_string(),
        kind: text(1).unwrap_or_default(),
        state,
        attempts: number(3).and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        received_at: number(4).unwrap_or(0),
        next_attempt_at: (state == State::Pending).then(|| number(5).unwrap_or(0)),
        last_status: number(6).and_then(|s| u16::try_from(s).ok()),
        last_error: text(7),
    })
}

/// Whether a filter asks about more than the route and state (which the keys answer).
fn filters_fields(filter: &Filter) -> bool {
    filter.kind.is_some() || filter.since.is_some() || filter.until.is_some()
}

fn matches(s: &Summary, filter: &Filter) -> bool {
    filter.kind.as_ref().is_none_or(|k| *k == s.kind)
        && filter.since.is_none_or(|t| s.received_at >= t)
        && filter.until.is_none_or(|t| s.received_at < t)
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Int(n) => n.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> String {
    String::from_utf8_lossy(&bytes(v)).into_owned()
}

/// Redis answered NOSCRIPT: it no longer holds a script (restarted, or flushed).
/// What a `WAITAOF 1 0 <wait>` answered.
#[derive(Debug, PartialEq)]
enum Aof {
    /// Every server that answered has this connection's writes in its append-only file.
    Synced,
    /// One has not, within the wait.
    Behind,
    /// No append-only file, or a Redis older than 7.2: nothing to wait for.
    NotOffered,
}

/// Reads a `WAITAOF` answer: one server's `[local, replicas]`, its refusal, or a
/// cluster's map of each primary's answer.
fn aof_synced(answer: &Value) -> Aof {
    match answer {
        Value::Array(counts) => match counts.first().and_then(int) {
            Some(local) if local >= 1 => Aof::Synced,
            _ => Aof::Behind,
        },
        Value::ServerError(e) => {
            let said = e.details().unwrap_or("").to_ascii_lowercase();
            if said.contains("appendonly is disabled") || said.contains("unknown command") {
                Aof::NotOffered
            } else {
                Aof::Behind
            }
        }
        Value::Map(servers) => {
            let each: Vec<Aof> = servers.iter().map(|(_, v)| aof_synced(v)).collect();
            if each.contains(&Aof::Behind) {
                Aof::Behind
            } else if each.iter().all(|a| *a == Aof::NotOffered) {
                Aof::NotOffered
            } else {
                Aof::Synced
            }
        }
        _ => Aof::Behind,
    }
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(resp: &str) -> Value {
        redis::parse_redis_value(resp.as_bytes()).expect("RESP")
    }

    #[test]
    fn waitaof_answers_say_whether_to_wait() {
        assert_eq!(aof_synced(&answer("*2\r\n:1\r\n:0\r\n")), Aof::Synced);
        assert_eq!(aof_synced(&answer("*2\r\n:0\r\n:0\r\n")), Aof::Behind);
        let off =
            "-ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.\r\n";
        assert_eq!(aof_synced(&answer(off)), Aof::NotOffered);
        let old = "-ERR unknown command 'WAITAOF', with args beginning with: '1' \r\n";
        assert_eq!(aof_synced(&answer(old)), Aof::NotOffered);
        assert_eq!(aof_synced(&answer("-NOPERM no\r\n")), Aof::Behind);
    }

    #[test]
    fn a_cluster_waits_for_every_primary() {
        let map = |a: &str, b: &str| {
            Value::Map(vec![
                (answer("+n1\r\n"), answer(a)),
                (answer("+n2\r\n"), answer(b)),
            ])
        };
        let synced = "*2\r\n:1\r\n:0\r\n";
        let behind = "*2\r\n:0\r\n:0\r\n";
        let off =
            "-ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.\r\n";
        assert_eq!(aof_synced(&map(synced, synced)), Aof::Synced);
        assert_eq!(aof_synced(&map(synced, behind)), Aof::Behind);
        assert_eq!(aof_synced(&map(off, off)), Aof::NotOffered);
        // A primary without an append-only file has nothing to wait for; the others do.
        assert_eq!(aof_synced(&map(off, synced)), Aof::Synced);
    }
}
