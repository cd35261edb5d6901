//! The spool's tables, as `sqlite3 queue.db .schema` shows them to an operator.
//!
//! One row per stored event, in arrival order (`seq`), with its attempts as lines of its
//! `history`, and beside it the body that will be sent. Times are Unix milliseconds. An
//! attempt's outcome is one `UPDATE` of the event's small row.

/// Applied at every open; `IF NOT EXISTS` makes it idempotent.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY,  -- arrival order
    route           TEXT    NOT NULL,
    id              BLOB    NOT NULL,     -- the event id, byte for byte
    shown_id        TEXT    NOT NULL,     -- the id as the envelope writes it
    type            TEXT    NOT NULL,
    state           INTEGER NOT NULL,     -- 0 pending, 1 delivered, 2 dead
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
CREATE INDEX IF NOT EXISTS events_due ON events (route, next_attempt_at, seq) WHERE state = 0;
";

/// `events.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Delivered,
    Dead,
}

impl State {
    pub const ALL: [State; 3] = [State::Pending, State::Delivered, State::Dead];

    pub fn code(self) -> i64 {
        match self {
            State::Pending => 0,
            State::Delivered => 1,
            State::Dead => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<State> {
        State::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Dead => "dead",
        }
    }

    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }
}
