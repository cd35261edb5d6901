//! The most recent requests the gateway answered (docs/admin-api.md `/api/requests`): a bounded
//! ring of `admin.request_log` entries, every outcome, refusals included. Never a body,
//! secret or signature: what a request was, not what it carried.
//!
//! It costs a request one short lock and a move of what the request already holds (its
//! route's name is shared, its ids and type are moved in, not copied).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::metrics::Outcome;
use crate::providers::EventId;
use crate::sync::lock;

/// What a request was, as `/api/requests` lists it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub route: Arc<str>,
    pub outcome: Outcome,
    pub status: u16,
    pub events: Events,
    pub kind: Option<String>,
    pub duration_ms: f64,
    pub peer: IpAddr,
}

/// The event ids of a request.
#[derive(Debug, Clone)]
pub(crate) enum Events {
    /// It did not verify.
    None,
    One(EventId),
    Batch(Vec<EventId>),
}

pub(crate) struct RequestLog {
    capacity: usize,
    entries: Mutex<VecDeque<Entry>>,
}

impl RequestLog {
    /// Keeps the last `capacity` requests (0 keeps none).
    pub(crate) fn new(capacity: usize) -> Self {
        RequestLog {
            capacity,
            // Grown as requests come: a large `admin.request_log` costs nothing until used.
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn record(&self, entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The newest `limit` entries of `route` and `outcome` (each when given), newest first.
    pub(crate) fn recent(
        &self,
        route: Option<&str>,
        outcome: Option<Outcome>,
        limit: usize,
    ) -> Vec<Entry> {
        lock(&self.entries)
            .iter()
            .rev()
            .filter(|e| route.is_none_or(|r| *e.route == *r))
            .filter(|e| outcome.is_none_or(|o| e.outcome == o))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(route: &str, outcome: Outcome, n: i64) -> Entry {
        Entry {
            at_ms: n,
            route: Arc::from(route),
            outcome,
            status: 200,
            events: Events::None,
            kind: None,
            duration_ms: 1.0,
            peer: IpAddr::from([127, 0, 0, 1]),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_filters_newest_first() {
        let log = RequestLog::new(3);
        for n in 0..5 {
            let outcome = if n % 2 == 0 {
                Outcome::Delivered
            } else {
                Outcome::InvalidSignature
            };
            log.record(entry(if n < 4 { "a" } else { "b" }, outcome, n));
        }
        let at = |entries: Vec<Entry>| entries.iter().map(|e| e.at_ms).collect::<Vec<_>>();
        assert_eq!(at(log.recent(None, None, 10)), [4, 3, 2]);
        assert_eq!(at(log.recent(Some("a"), None, 10)), [3, 2]);
        assert_eq!(at(log.recent(None, Some(Outcome::Delivered), 10)), [4, 2]);
        assert_eq!(at(log.recent(None, None, 1)), [4]);
        let off = RequestLog::new(0);
        off.record(entry("a", Outcome::Delivered, 1));
        assert!(off.recent(None, None, 10).is_empty());
    }
}
