//! What the queue stores and answers, independent of the store that keeps it: an event
//! to store, a pending event with what its attempt sends, an attempt's record, and the
//! shapes of the admin API's lists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// An event's place in its life (docs/queue.md "States").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum State {
    /// Waiting for an attempt, or being attempted.
    Pending,
    /// The app took it; kept for `queue.retention`.
    Delivered,
    /// Out of attempts; kept for `queue.retention`, attempted again only when redelivered.
    Dead,
}

impl State {
    pub(crate) const ALL: [State; 3] = [State::Pending, State::Delivered, State::Dead];

    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Dead => "dead",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// An event to store: what identifies it, and what will be sent. Its parts are shared,
/// not copied, on their way to the store, the lane and each attempt.
pub(crate) struct NewEvent {
    /// The id byte for byte (dedup compares these).
    pub id: Bytes,
    /// The id as answers and lists show it.
    pub shown_id: Arc<str>,
    pub kind: Arc<str>,
    pub body: Bytes,
    pub content_type: Option<Arc<str>>,
}

/// Decides, once, whether the new events of a write may be stored; `Err(wait)` refuses
/// them all (the route's rate limit) and says how long to wait. Asked only when the
/// write holds something new, so duplicates never spend the limit.
pub(crate) type Admit = Box<dyn FnOnce() -> Result<(), Duration> + Send>;

/// One request's events, to store in one durable write.
pub(crate) struct Enqueue {
    pub route: String,
    /// Whether `admit` can refuse (the route has a rate limit); when it cannot, a store
    /// that checks duplicates apart from storing need not ask first.
    pub limited: bool,
    /// With a ttl, an id pending or settled less than the ttl ago is a duplicate.
    pub dedup_ttl: Option<Duration>,
    pub events: Vec<NewEvent>,
    /// When they were received (Unix ms).
    pub now_ms: i64,
    pub admit: Admit,
}

/// What became of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Per event, in order: `true` stored, `false` a duplicate (not stored again).
    Stored(Vec<bool>),
    /// `admit` refused: nothing stored.
    Refused(Duration),
}

/// A pending event with what its attempt sends.
#[derive(Clone)]
pub(crate) struct Pending {
    /// Arrival order within the store; what claims and settles name.
    pub seq: i64,
    pub route: Arc<str>,
    pub id: Bytes,
    pub shown_id: Arc<str>,
    pub kind: Arc<str>,
    pub body: Bytes,
    pub content_type: Option<Arc<str>>,
    /// Attempts made so far (since the last redelivery).
    pub attempts: u32,
    /// When it is due (Unix ms).
    pub next_attempt_at: i64,
    /// The claim that holds it in flight, where the store shares events between
    /// replicas (its outcome is stored only while that claim holds).
    pub claim: Option<Arc<str>>,
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

/// What a claim handed over: the events now in flight, and, when none was due, when the
/// soonest falls due.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    pub events: Vec<Pending>,
    pub next_due: Option<i64>,
}

/// What the event becomes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    Delivered,
    RetryAt(i64),
    Dead,
}

/// One attempt, as the event's history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The start of the app's answer body, as text (docs/queue.md "History").
    pub response: Option<String>,
}

/// One line of an event's history, as the stores keep it.
#[derive(serde::Serialize, serde::Deserialize)]
struct HistoryLine<'a> {
    at: i64,
    status: Option<u16>,
    #[serde(borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
    duration_ms: i64,
    /// Since the second schema of the disk store; older lines have none.
    #[serde(default, borrow)]
    response: Option<std::borrow::Cow<'a, str>>,
}

impl Attempt {
    /// The attempt as one line of its event's history (JSON, with its newline).
    pub(crate) fn line(&self) -> String {
        let mut line = serde_json::to_string(&HistoryLine {
            at: self.at_ms,
            status: self.status,
            error: self.error.as_deref().map(Into::into),
            duration_ms: self.duration_ms,
            response: self.response.as_deref().map(Into::into),
        })
        .unwrap_or_default();
        line.push('\n');
        line
    }

    /// An attempt from a line of history; `None` for a line that is not one.
    pub(crate) fn from_line(line: &str) -> Option<Attempt> {
        let a: HistoryLine<'_> = serde_json::from_str(line).ok()?;
        Some(Attempt {
            at_ms: a.at,
            status: a.status,
            error: a.error.map(Into::into),
            duration_ms: a.duration_ms,
            response: a.response.map(Into::into),
        })
    }
}

/// How much of the app's answer an attempt keeps.
pub(crate) const RESPONSE_KEPT: usize = 1024;

/// The start of an answer body as kept in the history: at most [`RESPONSE_KEPT`] bytes,
/// invalid UTF-8 replaced; `None` when the app sent no body.
pub(crate) fn kept_response(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let head = &body[..body.len().min(RESPONSE_KEPT)];
    Some(String::from_utf8_lossy(head).into_owned())
}

/// An attempt and what it makes of the event, to store.
#[derive(Debug, Clone)]
pub(crate) struct Settle {
    pub attempt: Attempt,
    pub then: Then,
}

/// What a single redelivery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redelivered {
    /// Dead or delivered, now pending again with its attempts reset.
    Requeued,
    /// Pending and waiting: now due (its attempts kept).
    Hurried,
    /// An attempt of it is in progress.
    InFlight,
    NotFound,
}

/// Which stored events a list, or a bulk redelivery, means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub route: Option<String>,
    pub state: Option<State>,
    /// An exact event type.
    pub kind: Option<String>,
    /// `received_at` at or after (Unix ms).
    pub since: Option<i64>,
    /// `received_at` before (Unix ms).
    pub until: Option<i64>,
}

/// A page of a listing: how many, and after which event (the previous page's last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub limit: usize,
    pub before: Option<i64>,
}

/// An event as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
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
pub(crate) struct Page {
    pub events: Vec<Summary>,
    pub next: Option<i64>,
}

/// One event in full: what lists show, the body, and every attempt.
#[derive(Debug, Clone)]
pub(crate) struct Detail {
    pub summary: Summary,
    /// The id as stored, byte for byte.
    pub id: Vec<u8>,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub history: Vec<Attempt>,
}

/// Pending and dead events of one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub pending: u64,
    pub dead: u64,
}

/// Per route.
pub(crate) type AllCounts = HashMap<String, Counts>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_reads_back_from_its_history_line() {
        let attempt = Attempt {
            at_ms: 5,
            status: Some(503),
            error: None,
            duration_ms: 4,
            response: Some("line\nbreak \"quoted\"".into()),
        };
        let line = attempt.line();
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        assert_eq!(Attempt::from_line(line.trim_end()), Some(attempt));
        let old = r#"{"at":5,"status":503,"error":null,"duration_ms":4}"#;
        assert_eq!(Attempt::from_line(old).map(|a| a.response), Some(None));
        assert_eq!(Attempt::from_line("garbage"), None);
    }

    #[test]
    fn a_kept_response_is_the_first_kilobyte_as_text() {
        assert_eq!(kept_response(b""), None);
        assert_eq!(kept_response(b"nope").as_deref(), Some("nope"));
        let long = vec![b'a'; 5000];
        assert_eq!(kept_response(&long).map(|t| t.len()), Some(RESPONSE_KEPT));
        assert_eq!(
            kept_response(b"bad \xff byte").as_deref(),
            Some("bad \u{fffd} byte")
        );
    }
}
