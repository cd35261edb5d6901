//! What each write does inside the writer's transaction, and what it will change in the
//! lanes and counters once that transaction is committed.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, OptionalExtension, Transaction};

use super::super::error::QueueError;
use super::super::model::{Enqueue, Enqueued, Pending, Redelivered, Settle, Then};
use super::super::store::{Bulk, Cutoffs};
use super::lanes::{Change, Lanes};
use super::read::filter_sql;
use super::schema::{code, DEAD, DELIVERED, PENDING};

/// The SQL of the writes every event makes, written once (the state codes are in the
/// text, where a partial index can match them).
pub(super) struct Statements {
    insert: String,
    known: String,
    settle: String,
}

impl Statements {
    pub(super) fn new() -> Self {
        Statements {
            insert: format!(
                "INSERT INTO events (route, id, shown_id, type, state, size, content_type,
                                     received_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, {PENDING}, ?5, ?6, ?7, ?7)"
            ),
            known: format!(
                "SELECT 1 FROM events
                 WHERE route = ?1 AND id = ?2 AND (state = {PENDING} OR settled_at >= ?3) LIMIT 1"
            ),
            settle: format!(
                "UPDATE events SET attempts = attempts + 1, state = ?2, next_attempt_at = ?3,
                        last_status = ?4, last_error = ?5, settled_at = ?6,
                        history = history || ?7
                 WHERE seq = ?1 AND state = {PENDING}
                 RETURNING size"
            ),
        }
    }
}

/// One transaction's writes so far, and what they change once committed.
pub(super) struct Tx<'t> {
    pub tx: Transaction<'t>,
    sql: &'t Statements,
    pub changes: Vec<Change>,
    /// Change to the stored bytes (pending and dead bodies).
    pub bytes: i64,
    /// (route, id) stored in this transaction, so copies within it are stored once.
    stored_ids: HashSet<(Arc<str>, Bytes)>,
}

/// What an enqueue decided, beyond what it stored.
pub(super) enum EnqueueVerdict {
    Done(Enqueued),
    /// `queue.max_bytes` would be passed: this enqueue alone is refused.
    Full,
}

/// An enqueue's rate-limit answer, kept for when a failed batch is tried again job by
/// job: the limiter must not be asked twice for one request.
pub(super) type Verdict = Option<Result<(), std::time::Duration>>;

impl<'t> Tx<'t> {
    pub(super) fn new(tx: Transaction<'t>, sql: &'t Statements) -> Self {
        Tx {
            tx,
            sql,
            changes: Vec::new(),
            bytes: 0,
            stored_ids: HashSet::new(),
        }
    }

    pub(super) fn enqueue(
        &mut self,
        write: &mut Enqueue,
        verdict: &mut Verdict,
        room: i64,
    ) -> Result<EnqueueVerdict, QueueError> {
        let route: Arc<str> = Arc::from(write.route.as_str());
        let mut new = Vec::with_capacity(write.events.len());
        let mut seen_here = HashSet::new();
        for event in &write.events {
            let duplicate = match write.dedup_ttl {
                None => false,
                Some(ttl) => {
                    let since = write.now_ms.saturating_sub(millis(ttl));
                    self.stored_ids
                        .contains(&(Arc::clone(&route), event.id.clone()))
                        || !seen_here.insert(&event.id[..])
                        || self.known(&route, &event.id, since)?
                }
            };
            new.push(!duplicate);
        }
        let bytes: i64 = write
            .events
            .iter()
            .zip(&new)
            .filter(|(_, &n)| n)
            .map(|(e, _)| e.body.len() as i64)
            .sum();
        if new.iter().any(|&n| n) {
            if self.bytes.saturating_add(bytes) > room {
                return Ok(EnqueueVerdict::Full);
            }
            let admit = std::mem::replace(&mut write.admit, Box::new(|| Ok(())));
            let answer = *verdict.get_or_insert_with(admit);
            if let Err(wait) = answer {
                return Ok(EnqueueVerdict::Done(Enqueued::Refused(wait)));
            }
        }
        let mut insert = self.tx.prepare_cached(&self.sql.insert)?;
        let mut insert_body = self
            .tx
            .prepare_cached("INSERT INTO bodies (seq, body) VALUES (?1, ?2)")?;
        for (event, _) in write.events.iter().zip(&new).filter(|(_, &n)| n) {
            insert.execute(params![
                &*route,
                &event.id[..],
                &*event.shown_id,
                &*event.kind,
                event.body.len() as i64,
                event.content_type.as_deref(),
                write.now_ms
            ])?;
            let seq = self.tx.last_insert_rowid();
            insert_body.execute(params![seq, &event.body[..]])?;
            if write.dedup_ttl.is_some() {
                self.stored_ids
                    .insert((Arc::clone(&route), event.id.clone()));
            }
            self.changes.push(Change::Stored(Pending {
                seq,
                route: Arc::clone(&route),
                id: event.id.clone(),
                shown_id: event.shown_id.clone(),
                kind: event.kind.clone(),
                body: event.body.clone(),
                content_type: event.content_type.clone(),
                attempts: 0,
                next_attempt_at: write.now_ms,
                claim: None,
            }));
        }
        self.bytes += bytes;
        Ok(EnqueueVerdict::Done(Enqueued::Stored(new)))
    }

    /// Whether `id` is pending on `route`, or was settled at or after `since`.
    fn known(&self, route: &str, id: &[u8], since: i64) -> Result<bool, QueueError> {
        let mut query = self.tx.prepare_cached(&self.sql.known)?;
        Ok(query.exists(params![route, id, since])?)
    }

    pub(super) fn settle(&mut self, event: &Pending, outcome: &Settle) -> Result<(), QueueError> {
        let a = &outcome.attempt;
        let (state, next_at, settled_at) = match outcome.then {
            Then::Delivered => (DELIVERED, a.at_ms, Some(a.at_ms)),
            Then::RetryAt(at) => (PENDING, at, None),
            Then::Dead => (DEAD, a.at_ms, Some(a.at_ms)),
        };
        let line = a.line();
        let size: Option<i64> = self
            .tx
            .prepare_cached(&self.sql.settle)?
            .query_row(
                params![event.seq, state, next_at, a.status, a.error, settled_at, line],
                |r| r.get(0),
            )
            .optional()?;
        let Some(size) = size else {
            // Not pending any more (it cannot change while in flight; defensive): only
            // the claim ends.
            self.changes.push(Change::Unsettled {
                route: Arc::clone(&event.route),
                seq: event.seq,
            });
            return Ok(());
        };
        if outcome.then == Then::Delivered {
            self.bytes -= size;
        }
        let again = match outcome.then {
            Then::RetryAt(at) => Some(Pending {
                attempts: event.attempts.saturating_add(1),
                next_attempt_at: at,
                ..event.clone()
            }),
            Then::Delivered | Then::Dead => None,
        };
        self.changes.push(Change::Settled {
            route: Arc::clone(&event.route),
            seq: event.seq,
            then: outcome.then,
            again,
        });
        Ok(())
    }

    /// The newest event of `id` on `route` back to pending, or due now if pending.
    pub(super) fn redeliver(
        &mut self,
        lanes: &Lanes,
        route: &str,
        id: &[u8],
        now_ms: i64,
    ) -> Result<Redelivered, QueueError> {
        let found: Option<(i64, i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT seq, state, size FROM events
                 WHERE route = ?1 AND id = ?2 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![route, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((seq, state, size)) = found else {
            return Ok(Redelivered::NotFound);
        };
        let route: Arc<str> = Arc::from(route);
        if state == PENDING {
            if lanes.is_in_flight(&route, seq) {
                return Ok(Redelivered::InFlight);
            }
            self.tx.execute(
                &format!(
                    "UPDATE events SET next_attempt_at = ?2
                     WHERE seq = ?1 AND state = {PENDING} AND next_attempt_at > ?2"
                ),
                params![seq, now_ms],
            )?;
            self.changes.push(Change::Hurried {
                route,
                seqs: Some(vec![seq]),
                now: now_ms,
            });
            return Ok(Redelivered::Hurried);
        }
        self.requeue("seq = ?1", params![seq], now_ms)?;
        if state == DELIVERED {
            self.bytes += size;
        }
        self.changes.push(Change::Requeued {
            route,
            count: 1,
            from_dead: u64::from(state == DEAD),
        });
        Ok(Redelivered::Requeued)
    }

    /// The next `limit` events of `route` in `bulk`'s state after `after` (by arrival),
    /// those matching its filter back to pending; how many, and the last one looked at
    /// (`None`: the route has no more). Reads at most `limit` rows whatever matches, so
    /// a chunk stays short even when few events match.
    pub(super) fn redeliver_chunk(
        &mut self,
        bulk: &Bulk,
        route: &str,
        after: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<i64>), QueueError> {
        let window: Vec<i64> = {
            let mut query = self.tx.prepare_cached(
                "SELECT seq FROM events WHERE route = ?1 AND state = ?2 AND seq > ?3
                 ORDER BY seq LIMIT ?4",
            )?;
            let rows = query
                .query_map(params![route, code(bulk.state), after, limit as i64], |r| {
                    r.get(0)
                })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let (Some(&first), Some(&last)) = (window.first(), window.last()) else {
            return Ok((0, None));
        };
        let mut matching = bulk.filter.clone();
        matching.route = Some(route.to_string());
        let (filter, mut args) = filter_sql(&matching, Some(code(bulk.state)));
        let n = args.len();
        args.push(first.into());
        args.push(last.into());
        let sql = format!(
            "UPDATE events SET state = {PENDING}, attempts = 0, next_attempt_at = {now_ms},
                    settled_at = NULL
             WHERE {filter} AND seq BETWEEN ?{} AND ?{}
             RETURNING size",
            n + 1,
            n + 2
        );
        let sizes: Vec<i64> = {
            let mut query = self.tx.prepare_cached(&sql)?;
            let rows = query.query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let count = sizes.len() as u64;
        let from_dead = bulk.state == super::super::model::State::Dead;
        if !from_dead {
            self.bytes += sizes.iter().sum::<i64>();
        }
        if count > 0 {
            self.changes.push(Change::Requeued {
                route: Arc::from(route),
                count,
                from_dead: if from_dead { count } else { 0 },
            });
        }
        let more = window.len() == limit;
        Ok((count, more.then_some(last)))
    }

    /// Up to `limit` pending events of `route` that wait, due now; how many.
    pub(super) fn retry_now_chunk(
        &mut self,
        route: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<u64, QueueError> {
        let n = self.tx.execute(
            &format!(
                "UPDATE events SET next_attempt_at = ?2
                 WHERE seq IN (SELECT seq FROM events
                               WHERE route = ?1 AND state = {PENDING} AND next_attempt_at > ?2
                               LIMIT {limit})"
            ),
            params![route, now_ms],
        )?;
        if n > 0 {
            self.changes.push(Change::Hurried {
                route: Arc::from(route),
                seqs: None,
                now: now_ms,
            });
        }
        Ok(n as u64)
    }

    /// Up to `limit` settled events of `routes` past their route's cutoff, deleted; how
    /// many.
    pub(super) fn sweep_chunk(
        &mut self,
        routes: Vec<Arc<str>>,
        cutoffs: &Cutoffs,
        limit: usize,
    ) -> Result<u64, QueueError> {
        let mut removed = 0u64;
        for route in routes {
            let left = limit.saturating_sub(removed as usize);
            if left == 0 {
                break;
            }
            let cutoff = cutoffs
                .routes
                .get(&*route)
                .copied()
                .unwrap_or(cutoffs.others);
            let gone: Vec<(i64, i64, i64)> = {
                let mut query = self.tx.prepare_cached(&format!(
                    "DELETE FROM events WHERE seq IN (
                         SELECT seq FROM events
                         WHERE route = ?1 AND state != {PENDING} AND settled_at < ?2 LIMIT ?3)
                     RETURNING seq, state, size"
                ))?;
                let rows = query.query_map(params![&*route, cutoff, left as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut delete_body = self
                .tx
                .prepare_cached("DELETE FROM bodies WHERE seq = ?1")?;
            let mut dead = 0;
            for (seq, state, size) in &gone {
                delete_body.execute(params![seq])?;
                if *state == DEAD {
                    dead += 1;
                    self.bytes -= size;
                }
            }
            drop(delete_body);
            removed += gone.len() as u64;
            if dead > 0 {
                self.changes.push(Change::Swept { route, dead });
            }
        }
        Ok(removed)
    }

    pub(super) fn set_paused(&mut self, route: &str, paused: bool) -> Result<(), QueueError> {
        self.tx.execute(
            "INSERT INTO route_levers (route, paused) VALUES (?1, ?2)
             ON CONFLICT (route) DO UPDATE SET paused = excluded.paused",
            params![route, paused],
        )?;
        Ok(())
    }

    /// Events matching `filter` pending again, attempts reset.
    fn requeue(
        &mut self,
        filter: &str,
        args: impl rusqlite::Params,
        now_ms: i64,
    ) -> Result<u64, QueueError> {
        let sql = format!(
            "UPDATE events SET state = {PENDING}, attempts = 0, next_attempt_at = {now_ms},
                    settled_at = NULL
             WHERE {filter}"
        );
        Ok(self.tx.execute(&sql, args)? as u64)
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
