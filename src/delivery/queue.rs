//! `queue` delivery, accepting (SPEC §8): each verified event is stored durably in the
//! spool, as it will be sent, and the provider is answered once the store has it. The
//! workers ([`super::worker`]) deliver it afterwards.
//!
//! Dedup at ingest happens in the same write as the event (the spool's): a copy of a
//! pending event, or of one settled within the route's dedup ttl, is a duplicate; copies
//! arriving together are stored once. The rate limit is asked by that write too, only
//! when something new is to be stored, so duplicates never spend it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use prometheus::IntCounter;

use http::header::HeaderValue;
use http::StatusCode;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Delivered;
use crate::app::{App, RouteState};
use crate::clock::unix_millis;
use crate::config::QueueConfig;
use crate::envelope;
use crate::error::{GatewayError, Reply};
use crate::metrics::Outcome;
use crate::providers::Event;
use crate::route::ForwardMode;
use crate::spool::{Enqueued, NewEvent, Pending, Spool, SpoolError};
use crate::sync::lock;

/// Events a lane keeps in memory at most, and their bodies' bytes: past either, new
/// events wait in the store alone until the worker reads them from there.
const LANE_EVENTS: usize = 4096;
const LANE_BYTES: usize = 16 << 20;

/// The spool, and in front of it, per route, the pending events known in memory.
///
/// Every stored event is handed to its route's lane as its commit returns (in arrival
/// order, from the spool's writer), and a failed attempt puts its event back with its
/// next time, so while the app keeps up a worker attempts events without reading the
/// store at all. The worker reads the store only when the lane and the attempts in
/// flight hold fewer events than the store has pending: at start, after a redelivery,
/// when the lane was full.
pub struct Queue {
    pub spool: Spool,
    lanes: Arc<Lanes>,
}

#[derive(Default)]
struct Lanes {
    lanes: Mutex<HashMap<String, Lane>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Tells the workers' supervisor that routes or stored events changed.
    changed: Notify,
}

#[derive(Default)]
struct Lane {
    /// By arrival order (`seq`).
    ready: BTreeMap<i64, Pending>,
    bytes: usize,
}

impl Lane {
    /// Keeps `event` unless the lane is full (the store has it either way).
    fn keep(&mut self, event: Pending) {
        if self.ready.len() < LANE_EVENTS
            && self.bytes + event.body.len() <= LANE_BYTES
            && !self.ready.contains_key(&event.seq)
        {
            self.bytes += event.body.len();
            self.ready.insert(event.seq, event);
        }
    }
}

impl Lanes {
    fn waker(&self, route: &str) -> Arc<Notify> {
        Arc::clone(lock(&self.wakers).entry(route.to_string()).or_default())
    }

    fn wake(&self, route: &str) {
        // A stored permit: a worker busy elsewhere looks again once it waits.
        self.waker(route).notify_one();
        self.changed.notify_one();
    }

    /// The spool's hook: events just stored, in arrival order.
    fn stored(&self, events: Vec<Pending>) {
        let mut routes = Vec::new();
        {
            let mut lanes = lock(&self.lanes);
            for event in events {
                if !routes.contains(&event.route) {
                    routes.push(event.route.clone());
                }
                lanes.entry(event.route.clone()).or_default().keep(event);
            }
        }
        for route in routes {
            self.wake(&route);
        }
    }
}

/// What a worker may attempt now, and when it should look again.
pub struct Due {
    pub events: Vec<Pending>,
    /// The soonest time a known event falls due, when none of them is due now.
    pub next: Option<i64>,
}

impl Queue {
    /// Opens the spool of `[queue]`; `errors` counts its failed reads and writes.
    pub fn open(config: &QueueConfig, errors: IntCounter) -> Result<Queue, SpoolError> {
        let lanes = Arc::new(Lanes::default());
        let hook = Arc::clone(&lanes);
        let spool = Spool::open(
            &config.dir,
            config.max_bytes,
            errors,
            Box::new(move |stored| hook.stored(stored)),
        )?;
        Ok(Queue { spool, lanes })
    }

    /// What wakes `route`'s worker.
    pub fn waker(&self, route: &str) -> Arc<Notify> {
        self.lanes.waker(route)
    }

    /// Something new for `route`'s worker (a redelivery).
    pub fn wake(&self, route: &str) {
        self.lanes.wake(route);
    }

    /// What tells the supervisor that routes or stored events changed.
    pub fn changed(&self) -> &Notify {
        &self.lanes.changed
    }

    /// Events in `route`'s lane.
    pub fn known(&self, route: &str) -> usize {
        lock(&self.lanes.lanes)
            .get(route)
            .map_or(0, |l| l.ready.len())
    }

    /// Adds events to `route`'s lane (not those `busy`, in flight).
    pub fn keep(&self, route: &str, events: Vec<Pending>, busy: &HashSet<i64>) {
        let mut lanes = lock(&self.lanes.lanes);
        let lane = lanes.entry(route.to_string()).or_default();
        for event in events {
            if !busy.contains(&event.seq) {
                lane.keep(event);
            }
        }
    }

    /// Takes up to `free` events due at `now` off `route`'s lane: only the oldest when
    /// `in_order` (a later event never passes it).
    pub fn take_due(&self, route: &str, now: i64, free: usize, in_order: bool) -> Due {
        let mut lanes = lock(&self.lanes.lanes);
        let Some(lane) = lanes.get_mut(route) else {
            return Due {
                events: Vec::new(),
                next: None,
            };
        };
        let mut taken = Vec::new();
        let mut next: Option<i64> = None;
        for (&seq, event) in &lane.ready {
            if taken.len() >= free {
                break;
            }
            if event.next_attempt_at <= now {
                taken.push(seq);
            } else {
                next = Some(next.map_or(event.next_attempt_at, |n| n.min(event.next_attempt_at)));
            }
            if in_order {
                break;
            }
        }
        let events: Vec<Pending> = taken
            .iter()
            .filter_map(|seq| lane.ready.remove(seq))
            .collect();
        lane.bytes -= events.iter().map(|e| e.body.len()).sum::<usize>();
        Due {
            events,
            next: next.filter(|_| taken.is_empty()),
        }
    }
}

/// Stores `events` (all of a batch in one write) and answers `queued`.
pub async fn accept(
    app: &App,
    state: &Arc<RouteState>,
    events: Vec<Event>,
    batch: bool,
    received: SystemTime,
    deadline: Instant,
) -> Delivered {
    let refused = |err: GatewayError, events: Vec<Event>| {
        let outcome = err.outcome().into_iter().collect();
        Delivered::of(err.into_reply(), outcome, events)
    };
    let Some(queue) = &app.queue else {
        // Not reached: a queue route makes the gateway open its spool at start.
        return refused(
            GatewayError::QueueUnavailable("no queue store is open".into()),
            events,
        );
    };
    let route = &state.route;
    let received_at = envelope::timestamp(received);
    let stored: Vec<NewEvent> = events
        .iter()
        .map(|event| {
            let (body, content_type) = match route.forward {
                ForwardMode::Normalized => (
                    envelope::render(route, event, &received_at),
                    Some("application/json".to_string()),
                ),
                ForwardMode::Raw => (
                    Bytes::clone(event.raw_body()),
                    event
                        .raw_content_type()
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                ),
            };
            NewEvent {
                id: event.id.as_bytes().to_vec(),
                shown_id: event.id.as_str().to_string(),
                kind: event.kind.clone(),
                body,
                content_type,
            }
        })
        .collect();
    // Check 12, asked by the write itself once it knows something new is to be stored.
    let limited = Arc::clone(state);
    let admit = Box::new(move || match &limited.limiter {
        Some(limiter) => limiter.check().map_err(std::time::Duration::from_secs),
        None => Ok(()),
    });
    let ttl = (!route.dedup_ttl.is_zero()).then_some(route.dedup_ttl);
    let write = queue
        .spool
        .enqueue(&route.name, ttl, stored, unix_millis(received), admit);
    // A write that outlives the request may still be stored: the provider's retry is then
    // a duplicate. What is never possible is a 200 for an event not stored.
    let stored = match tokio::time::timeout_at(deadline, write).await {
        Err(_) => {
            let unanswered = "the queue store did not answer in time".into();
            return refused(GatewayError::QueueUnavailable(unanswered), events);
        }
        Ok(Err(e)) => {
            tracing::warn!(route = %route.name, error = %e, "not queued");
            return refused(GatewayError::QueueUnavailable(e.to_string()), events);
        }
        Ok(Ok(Enqueued::Refused(wait))) => {
            let retry_after = wait.as_secs().max(1);
            return refused(GatewayError::RateLimited { retry_after }, events);
        }
        Ok(Ok(Enqueued::Stored(new))) => new,
    };
    let outcomes: Vec<Outcome> = stored
        .iter()
        .map(|&new| {
            if new {
                Outcome::Queued
            } else {
                Outcome::Duplicate
            }
        })
        .collect();
    let body = match (batch, events.first()) {
        (false, Some(event)) => {
            let status = if stored.first() == Some(&true) {
                "queued"
            } else {
                "duplicate"
            };
            serde_json::json!({ "status": status, "id": event.id.as_str() })
        }
        _ => {
            let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
            serde_json::json!({ "status": "queued", "ids": ids })
        }
    };
    Delivered::of(Reply::json(StatusCode::OK, &body), outcomes, events)
}

/// The content type a stored event is sent with.
pub fn content_type(stored: Option<&str>) -> Option<HeaderValue> {
    stored.and_then(|ct| HeaderValue::from_str(ct).ok())
}
