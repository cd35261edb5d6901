//! Reads of the spool: the admin API's lists and details on connections of their own
//! (WAL readers never wait for the writer), and the rows a refill hands to a lane (on
//! the writer's connection, between commits).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::super::error::QueueError;
use super::super::model::{Attempt, Counts, Detail, Filter, Page, PageRequest, Pending, Summary};
use super::connect;
use super::schema::{code, state, DEAD, PENDING};
use crate::sync::lock;

/// Idle reader connections, opened as needed.
#[derive(Clone)]
pub(super) struct Readers {
    db: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

/// Readers kept open between reads at most.
const IDLE_READERS: usize = 4;

impl Readers {
    pub(super) fn new(db: PathBuf) -> Self {
        Readers {
            db,
            idle: Arc::default(),
        }
    }

    /// Runs `query` on an idle connection (or a new one). Blocking: call it off the async
    /// threads.
    pub(super) fn with<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, QueueError> {
        let conn = lock(&self.idle).pop();
        let conn = match conn {
            Some(c) => c,
            None => connect(&self.db)?,
        };
        let out = query(&conn)?;
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        Ok(out)
    }

    /// Closes the idle connections (the store is closing).
    pub(super) fn close(&self) {
        lock(&self.idle).clear();
    }
}

/// Per route, pending and dead events, with every route that holds anything (at open).
pub(super) fn counts(conn: &Connection) -> rusqlite::Result<HashMap<String, Counts>> {
    let mut query = conn.prepare(&format!(
        "SELECT route, SUM(state = {PENDING}), SUM(state = {DEAD}) FROM events GROUP BY route"
    ))?;
    let rows = query.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Counts {
                pending: r.get::<_, i64>(1)?.max(0) as u64,
                dead: r.get::<_, i64>(2)?.max(0) as u64,
            },
        ))
    })?;
    rows.collect()
}

/// Bytes of the bodies that `queue.max_bytes` bounds: pending and dead.
pub(super) fn stored_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let bytes: i64 = conn.query_row(
        &format!(
            "SELECT COALESCE(SUM(size), 0) FROM events WHERE state != {}",
            super::schema::DELIVERED
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(bytes.max(0) as u64)
}

/// The routes paused now.
pub(super) fn paused(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut query = conn.prepare("SELECT route FROM route_levers WHERE paused")?;
    let rows = query.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// The next pending events of `route` with what their attempts send, at most `limit`:
/// in arrival order when `in_order`, else soonest due first.
pub(super) fn next_pending(
    conn: &Connection,
    route: &Arc<str>,
    in_order: bool,
    limit: usize,
) -> rusqlite::Result<Vec<Pending>> {
    let order = if in_order {
        "e.seq"
    } else {
        "e.next_attempt_at, e.seq"
    };
    let sql = format!(
        "SELECT e.seq, e.id, e.shown_id, e.type, b.body, e.content_type, e.attempts,
                e.next_attempt_at
         FROM events e JOIN bodies b ON b.seq = e.seq
         WHERE e.route = ?1 AND e.state = {PENDING} ORDER BY {order} LIMIT ?2"
    );
    let mut query = conn.prepare_cached(&sql)?;
    let rows = query.query_map(params![&**route, limit as i64], |r| {
        Ok(Pending {
            seq: r.get(0)?,
            route: Arc::clone(route),
            id: Bytes::from(r.get::<_, Vec<u8>>(1)?),
            shown_id: Arc::from(r.get::<_, String>(2)?),
            kind: Arc::from(r.get::<_, String>(3)?),
            body: Bytes::from(r.get::<_, Vec<u8>>(4)?),
            content_type: r.get::<_, Option<String>>(5)?.map(Arc::from),
            attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
            next_attempt_at: r.get(7)?,
            claim: None,
        })
    })?;
    rows.collect()
}

/// When the oldest pending event of `route` was received.
pub(super) fn oldest_pending(conn: &Connection, route: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(&format!(
        "SELECT received_at FROM events WHERE route = ?1 AND state = {PENDING}
         ORDER BY seq LIMIT 1"
    ))?
    .query_row(params![route], |r| r.get(0))
    .optional()
}

/// `filter` (and `state`, a code) as SQL conditions over `events`, with their
/// parameters numbered from ?1.
pub(super) fn filter_sql(filter: &Filter, state: Option<i64>) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut add = |condition: &str, value: Value| {
        args.push(value);
        conditions.push(condition.replace('?', &format!("?{}", args.len())));
    };
    if let Some(route) = &filter.route {
        add("route = ?", route.clone().into());
    }
    if let Some(code) = state {
        add("state = ?", code.into());
    }
    if let Some(kind) = &filter.kind {
        add("type = ?", kind.clone().into());
    }
    if let Some(since) = filter.since {
        add("received_at >= ?", since.into());
    }
    if let Some(until) = filter.until {
        add("received_at < ?", until.into());
    }
    if conditions.is_empty() {
        conditions.push("1".into());
    }
    (conditions.join(" AND "), args)
}

const SUMMARY: &str = "seq, shown_id, route, type, state, attempts, received_at,
                       next_attempt_at, last_status, last_error";

fn summary(r: &Row<'_>) -> rusqlite::Result<Summary> {
    let state = state(r.get(4)?).unwrap_or(super::super::model::State::Pending);
    let pending = state == super::super::model::State::Pending;
    Ok(Summary {
        seq: r.get(0)?,
        id: r.get(1)?,
        route: r.get(2)?,
        kind: r.get(3)?,
        state,
        attempts: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        received_at: r.get(6)?,
        next_attempt_at: pending.then(|| r.get(7)).transpose()?,
        last_status: r
            .get::<_, Option<i64>>(8)?
            .and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(9)?,
    })
}

/// Stored events matching `filter`, newest first.
pub(super) fn list(
    conn: &Connection,
    filter: &Filter,
    page: PageRequest,
) -> rusqlite::Result<Page> {
    let (conditions, mut args) = filter_sql(filter, filter.state.map(code));
    args.push(page.before.unwrap_or(i64::MAX).into());
    let limit = page.limit.max(1);
    args.push(((limit + 1) as i64).into());
    let n = args.len();
    let sql = format!(
        "SELECT {SUMMARY} FROM events WHERE {conditions} AND seq < ?{}
         ORDER BY seq DESC LIMIT ?{n}",
        n - 1
    );
    let mut query = conn.prepare_cached(&sql)?;
    let rows = query.query_map(rusqlite::params_from_iter(args.iter()), summary)?;
    let mut events: Vec<Summary> = rows.collect::<rusqlite::Result<_>>()?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// The newest stored event of `id` on `route`: the id byte for byte, or else as lists
/// show it (an id that is not UTF-8 is shown with `%XX` escapes, and that is what a
/// client has to ask for).
pub(super) fn detail(
    conn: &Connection,
    route: &str,
    id: &[u8],
) -> rusqlite::Result<Option<Detail>> {
    let by = |column: &str, key: &dyn rusqlite::ToSql| {
        let sql = format!(
            "SELECT {SUMMARY}, (SELECT body FROM bodies b WHERE b.seq = events.seq),
                    content_type, id, history FROM events
             WHERE route = ?1 AND {column} = ?2 ORDER BY seq DESC LIMIT 1"
        );
        conn.prepare_cached(&sql)?
            .query_row(params![route, key], |r| {
                Ok((
                    summary(r)?,
                    r.get::<_, Option<Vec<u8>>>(10)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Vec<u8>>(12)?,
                    r.get::<_, String>(13)?,
                ))
            })
            .optional()
    };
    let mut found = by("id", &id)?;
    if found.is_none() {
        // Only escaped ids are shown otherwise than stored: no scan for the others.
        if let Some(shown) = std::str::from_utf8(id).ok().filter(|t| t.contains('%')) {
            found = by("shown_id", &shown)?;
        }
    }
    let Some((summary, body, content_type, id, history)) = found else {
        return Ok(None);
    };
    let history = history.lines().filter_map(Attempt::from_line).collect();
    Ok(Some(Detail {
        summary,
        id,
        body,
        content_type,
        history,
    }))
}
