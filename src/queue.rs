//! The queue of stored events: the spool, and in front of it, per route, the pending
//! events known in memory (a lane), so that while the app keeps up the workers attempt
//! events without reading the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use http::header::HeaderValue;
use prometheus::IntCounter;
use tokio::sync::Notify;

use crate::config::QueueConfig;
use crate::spool::{Pending, Spool, SpoolError};
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
pub(crate) struct Queue {
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
pub(crate) struct Due {
    pub events: Vec<Pending>,
    /// The soonest time a known event falls due, when none of them is due now.
    pub next: Option<i64>,
}

impl Queue {
    /// Opens the spool of `[queue]`; `errors` counts its failed reads and writes.
    pub(crate) fn open(config: &QueueConfig, errors: IntCounter) -> Result<Queue, SpoolError> {
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
    pub(crate) fn waker(&self, route: &str) -> Arc<Notify> {
        self.lanes.waker(route)
    }

    /// Something new for `route`'s worker (a redelivery).
    pub(crate) fn wake(&self, route: &str) {
        self.lanes.wake(route);
    }

    /// What tells the supervisor that routes or stored events changed.
    pub(crate) fn changed(&self) -> &Notify {
        &self.lanes.changed
    }

    /// Events in `route`'s lane.
    pub(crate) fn known(&self, route: &str) -> usize {
        lock(&self.lanes.lanes)
            .get(route)
            .map_or(0, |l| l.ready.len())
    }

    /// Adds events to `route`'s lane (not those `busy`, in flight).
    pub(crate) fn keep(&self, route: &str, events: Vec<Pending>, busy: &HashSet<i64>) {
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
    pub(crate) fn take_due(&self, route: &str, now: i64, free: usize, in_order: bool) -> Due {
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

/// The content type a stored event is sent with.
pub(crate) fn content_type(stored: Option<&str>) -> Option<HeaderValue> {
    stored.and_then(|ct| HeaderValue::from_str(ct).ok())
}
