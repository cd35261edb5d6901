//! Reads of the spool, on connections of their own (WAL readers never wait for the
//! writer): what the delivery workers pick next, and what the admin API lists.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::schema::State;
use super::{connect, Counters, SpoolError};
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
    ) -> Result<T, SpoolError> {
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
}

/// Fills the counters from what is stored (at open).
pub(super) fn count_into(conn: &Connection, counters: &Counters) -> rusqlite::Result<()> {
    let bytes: i64 = conn.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM events WHERE state != 1",
        [],
        |r| r.get(0),
    )?;
    counters.add_bytes(bytes);
    let mut query =
        conn.prepare("SELECT route, SUM(state = 0), SUM(state = 2) FROM events GROUP BY route")?;
    let rows = query.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (route, pending, dead) = row?;
        counters.add(&route, pending, dead);
    }
    Ok(())
}

/// A pending event with what its attempt sends.
#[derive(Clone)]
pub struct Pending {
    pub seq: i64,
    pub route: String,
    pub id: Vec<u8>,
    pub shown_id: String,
    pub kind: String,
    pub body: Bytes,
    pub content_type: Option<String>,
    /// Attempts made so far (since the last redelivery).
    pub attempts: u32,
    /// When it is due (Unix ms).
    pub next_attempt_at: i64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies hold personal data: never in Debug output.
        f.debug_struct("Pending")
            .field("seq", &self.seq)
            .field("route", &self.route)
            .field("id", &self.shown_id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The next pending events of `route`, at most `limit`: in arrival order when
/// `in_order`, else soonest due first.
pub(super) fn next_pending(
    conn: &Connection,
    route: &str,
    in_order: bool,
    limit: usize,
) -> rusqlite::Result<Vec<Pending>> {
    let order = if in_order {
        "e.seq"
    } else {
        "e.next_attempt_at, e.seq"
    };
    let sql = format!(
        "SELECT e.seq, e.route, e.id, e.shown_id, e.type, b.body, e.content_type, e.attempts,
                e.next_attempt_at
         FROM events e JOIN bodies b ON b.seq = e.seq
         WHERE e.route = ?1 AND e.state = 0 ORDER BY {order} LIMIT ?2"
    );
    let mut query = conn.prepare_cached(&sql)?;
    let rows = query.query_map(params![route, limit as i64], |r| {
        Ok(Pending {
            seq: r.get(0)?,
            route: r.get(1)?,
            id: r.get(2)?,
            shown_id: r.get(3)?,
            kind: r.get(4)?,
            body: Bytes::from(r.get::<_, Vec<u8>>(5)?),
            content_type: r.get(6)?,
            attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(u32::MAX),
            next_attempt_at: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Routes that hold pending events.
pub(super) fn routes_with_pending(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut query = conn.prepare_cached("SELECT DISTINCT route FROM events WHERE state = 0")?;
    let rows = query.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// When the oldest pending event of `route` was received.
pub(super) fn oldest_pending(conn: &Connection, route: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT received_at FROM events WHERE route = ?1 AND state = 0 ORDER BY seq LIMIT 1",
    )?
    .query_row(params![route], |r| r.get(0))
    .optional()
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub route: Option<String>,
    pub state: Option<State>,
    pub limit: usize,
    /// Only events older than this one (the previous page's last).
    pub before: Option<i64>,
}

/// An event as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub seq: i64,
    pub id: String,
    pub route: String,
    pub kind: String,
    pub state: State,
    pub attempts: u32,
    pub received_at: i64,
    /// `None` once settled.
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// One page of a listing, newest first, and where the next starts.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<Summary>,
    pub next: Option<i64>,
}

const SUMMARY: &str = "seq, shown_id, route, type, state, attempts, received_at,
                       next_attempt_at, last_status, last_error";

fn summary(r: &Row<'_>) -> rusqlite::Result<Summary> {
    let state = State::from_code(r.get(4)?).unwrap_or(State::Pending);
    Ok(Summary {
        seq: r.get(0)?,
        id: r.get(1)?,
        route: r.get(2)?,
        kind: r.get(3)?,
        state,
        attempts: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        received_at: r.get(6)?,
        next_attempt_at: (state == State::Pending).then(|| r.get(7)).transpose()?,
        last_status: r
            .get::<_, Option<i64>>(8)?
            .and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(9)?,
    })
}

/// Stored events matching `filter`, newest first.
pub(super) fn list(conn: &Connection, filter: &Filter) -> rusqlite::Result<Page> {
    let sql = format!(
        "SELECT {SUMMARY} FROM events
         WHERE (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR state = ?2)
           AND (?3 IS NULL OR seq < ?3)
         ORDER BY seq DESC LIMIT ?4"
    );
    let mut query = conn.prepare_cached(&sql)?;
    let limit = filter.limit.max(1);
    let rows = query.query_map(
        params![
            filter.route,
            filter.state.map(State::code),
            filter.before,
            (limit + 1) as i64
        ],
        summary,
    )?;
    let mut events: Vec<Summary> = rows.collect::<rusqlite::Result<_>>()?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// One event in full: what lists show, the body, and every attempt.
#[derive(Debug, Clone)]
pub struct Detail {
    pub summary: Summary,
    /// The id as stored, byte for byte.
    pub id: Vec<u8>,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub history: Vec<Attempt>,
}

/// One line of an event's `history`, as the writer wrote it.
#[derive(serde::Deserialize)]
struct AttemptLine {
    at: i64,
    status: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

/// One attempt as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
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
                    r.get::<_, Vec<u8>>(10)?,
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
    let history = history
        .lines()
        .filter_map(|line| serde_json::from_str::<AttemptLine>(line).ok())
        .map(|a| Attempt {
            at: a.at,
            status: a.status,
            error: a.error,
            duration_ms: a.duration_ms,
        })
        .collect();
    Ok(Some(Detail {
        summary,
        id,
        body,
        content_type,
        history,
    }))
}
