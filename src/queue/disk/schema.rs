//! The spool's tables, as `sqlite3 queue.db .schema` shows them to an operator, and the
//! numbered steps that bring a store written by an older hookwarden up to date.
//!
//! One row per stored event, in arrival order (`seq`), with its attempts as lines of its
//! `history`, and beside it the body that will be sent. Times are Unix milliseconds. An
//! attempt's outcome is one `UPDATE` of the event's small row.
//!
//! `PRAGMA user_version` counts the steps applied. Stores of the first release carry
//! version 0 with step 1's tables already there; step 1 only creates what is missing, so
//! it applies to them unchanged.

use rusqlite::Connection;

use super::super::model::State;

/// `events.state` codes. Written into SQL text where a partial index must recognise
/// them (a bound parameter would not match the index's condition).
pub(super) const PENDING: i64 = 0;
pub(super) const DELIVERED: i64 = 1;
pub(super) const DEAD: i64 = 2;

pub(super) fn code(state: State) -> i64 {
    match state {
        State::Pending => PENDING,
        State::Delivered => DELIVERED,
        State::Dead => DEAD,
    }
}

pub(super) fn state(code: i64) -> Option<State> {
    match code {
        PENDING => Some(State::Pending),
        DELIVERED => Some(State::Delivered),
        DEAD => Some(State::Dead),
        _ => None,
    }
}

/// Step `n` (from 1) of the schema.
fn step(n: usize) -> Option<String> {
    Some(match n {
        1 => format!(
            "
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY,  -- arrival order
    route           TEXT    NOT NULL,
    id              BLOB    NOT NULL,     -- the event id, byte for byte
    shown_id        TEXT    NOT NULL,     -- the id as the envelope writes it
    type            TEXT    NOT NULL,
    state           INTEGER NOT NULL,     -- {PENDING} pending, {DELIVERED} delivered, {DEAD} dead
    size            INTEGER NOT NULL,     -- bytes of its body
    content_type    TEXT,
    received_at     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    settled_at      INTEGER,              -- when it was delivered or became dead
    history         TEXT NOT NULL DEFAULT ''  -- one JSON object a line, per attempt
);
-- What the app is sent, apart: an attempt's outcome rewrites the small row above, never
-- the pages of the body.
CREATE TABLE IF NOT EXISTS bodies (
    seq  INTEGER PRIMARY KEY,             -- events.seq
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_id ON events (route, id);
CREATE INDEX IF NOT EXISTS events_by_state ON events (route, state, seq);
CREATE INDEX IF NOT EXISTS events_due ON events (route, next_attempt_at, seq)
    WHERE state = {PENDING};
"
        ),
        2 => format!(
            "
-- Routes an operator paused: kept here so the pause holds across restarts.
CREATE TABLE route_levers (
    route  TEXT PRIMARY KEY,
    paused INTEGER NOT NULL
) WITHOUT ROWID;
-- The retention sweep finds what is past its time without reading the rest.
CREATE INDEX events_settled ON events (route, settled_at) WHERE state != {PENDING};
"
        ),
        _ => return None,
    })
}

/// The version a store is at once every step ran.
pub(super) fn latest() -> i64 {
    let mut n = 0;
    while step(n as usize + 1).is_some() {
        n += 1;
    }
    n
}

/// What [`migrate`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Migrated {
    /// Now at [`latest`], from this version.
    From(i64),
    /// Written by a newer build: left untouched.
    Newer(i64),
}

/// Brings the store to the latest version, each step in its own transaction with the
/// version it reaches, so a crash between steps resumes at the next.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migrated> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = latest();
    if found > latest {
        return Ok(Migrated::Newer(found));
    }
    for n in found + 1..=latest {
        let Some(sql) = step(n as usize) else { break };
        let tx = conn.transaction()?;
        tx.execute_batch(&sql)?;
        tx.pragma_update(None, "user_version", n)?;
        tx.commit()?;
    }
    Ok(Migrated::From(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_states_round_trip() {
        for s in State::ALL {
            assert_eq!(state(code(s)), Some(s));
        }
        assert_eq!(state(7), None);
    }

    #[test]
    fn a_fresh_store_reaches_the_latest_version_and_stays_there() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut conn).expect("migrate"), Migrated::From(0));
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, latest());
        assert_eq!(migrate(&mut conn).expect("again"), Migrated::From(latest()));
        conn.pragma_update(None, "user_version", latest() + 1)
            .expect("set");
        assert_eq!(
            migrate(&mut conn).expect("newer"),
            Migrated::Newer(latest() + 1)
        );
    }
}
