//! The interface every queue store implements, and the wake-ups a store gives the
//! workers.
//!
//! A store keeps events durably and hands each pending event to at most one attempt at a
//! time: [`Store::claim`] marks the events it returns in flight, and they stay so until
//! [`Store::settle`] stored their outcome. Everything above (the workers' schedule, the
//! levers, the API) is written once against this trait; `disk` (SQLite under
//! `queue.dir`) is one implementation, and a store shared by replicas is another.
//!
//! Bulk operations come in chunks of at most `limit` events, each its own short write, so
//! that accepting events never waits behind a large sweep or redelivery: the caller
//! repeats a chunk until it changes fewer than `limit`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::error::QueueError;
use super::model::{
    AllCounts, Claimed, Detail, Enqueue, Enqueued, Filter, Page, PageRequest, Pending, Redelivered,
    Settle, State,
};
use crate::sync::lock;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub(crate) type Answer<'a, T> = BoxFuture<'a, Result<T, QueueError>>;

/// A bulk change's events: those matching a filter in one state.
#[derive(Debug, Clone)]
pub(crate) struct Bulk {
    pub filter: Filter,
    /// `Dead` or `Delivered`.
    pub state: State,
}

/// What one chunk of a bulk change did, and where the next starts (`None`: done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub changed: u64,
    pub next: Option<String>,
}

/// A bulk change's cursor, the same for every store: `<seq>:<route>`, to go on after
/// event `seq` of `route` (0: from the route's start).
pub(crate) fn cursor(seq: i64, route: &str) -> String {
    format!("{seq}:{route}")
}

/// Where a bulk change over `routes` (sorted) resumes from cursor `from`: the index of
/// its route (past the end when that route is gone) and the seq to go on after; the
/// start without a cursor.
pub(crate) fn resume(routes: &[String], from: Option<&str>) -> (usize, i64) {
    match from.and_then(|c| c.split_once(':')) {
        Some((seq, route)) => (
            routes
                .iter()
                .position(|r| r == route)
                .unwrap_or(routes.len()),
            seq.parse().unwrap_or(i64::MAX),
        ),
        None => (0, 0),
    }
}

/// How long settled events are kept: per route, and for routes no longer configured.
#[derive(Debug, Clone)]
pub(crate) struct Cutoffs {
    /// Settled before this (Unix ms) is deleted.
    pub routes: HashMap<String, i64>,
    pub others: i64,
}

pub(crate) trait Store: Send + Sync {
    /// Stores a request's new events durably, in one write; the answer comes once they
    /// are durable (or refused, with nothing stored).
    fn enqueue(&self, write: Enqueue) -> Answer<'_, Enqueued>;

    /// Up to `free` events of `route` due at `now_ms`, now in flight; with `in_order`,
    /// only the oldest pending event, and only when none of the route is in flight.
    fn claim<'a>(
        &'a self,
        route: &'a str,
        now_ms: i64,
        free: usize,
        in_order: bool,
    ) -> Answer<'a, Claimed>;

    /// Hands over an attempt's outcome: once this returns the store has it, and writes
    /// it before anything else happens to the event (it stays in flight, unclaimable,
    /// until then). When the store cannot write it, the claim ends anyway and the event
    /// is attempted again.
    fn settle<'a>(&'a self, event: &'a Pending, outcome: Settle) -> Answer<'a, ()>;

    /// A dead or delivered event (the newest of `id`) back to pending with its attempts
    /// reset; a pending one that waits, due now.
    fn redeliver<'a>(
        &'a self,
        route: &'a str,
        id: &'a [u8],
        now_ms: i64,
    ) -> Answer<'a, Redelivered>;

    /// The next chunk of `bulk` (from the cursor a previous chunk gave, or the start)
    /// back to pending, attempts reset: at most `limit` events looked at.
    fn redeliver_chunk<'a>(
        &'a self,
        bulk: &'a Bulk,
        from: Option<&'a str>,
        now_ms: i64,
        limit: usize,
    ) -> Answer<'a, Chunk>;

    /// Up to `limit` pending events of `route` waiting for a later time, due now; how
    /// many.
    fn retry_now_chunk<'a>(&'a self, route: &'a str, now_ms: i64, limit: usize) -> Answer<'a, u64>;

    /// Up to `limit` settled events past their cutoff, deleted; how many.
    fn sweep_chunk<'a>(&'a self, cutoffs: &'a Cutoffs, limit: usize) -> Answer<'a, u64>;

    /// Remembers that `route` is paused (or not), durably.
    fn set_paused<'a>(&'a self, route: &'a str, paused: bool) -> Answer<'a, ()>;

    /// The routes paused now.
    fn paused(&self) -> Answer<'_, HashSet<String>>;

    /// Stored events matching `filter`, newest first.
    fn list(&self, filter: Filter, page: PageRequest) -> Answer<'_, Page>;

    /// The newest event of `id` on `route`: by its stored bytes, or as lists show it.
    fn detail<'a>(&'a self, route: &'a str, id: &'a [u8]) -> Answer<'a, Option<Detail>>;

    /// Pending and dead events per route.
    fn counts(&self) -> Answer<'_, AllCounts>;

    /// When the oldest pending event of `route` was received (Unix ms).
    fn oldest_pending<'a>(&'a self, route: &'a str) -> Answer<'a, Option<i64>>;

    /// Finishes the writes already asked, refuses later ones, and releases what the
    /// store holds (a folder's lock).
    fn close(&self) -> BoxFuture<'_, ()>;

    /// How often workers look again by themselves, when other processes change the
    /// store too (events they stored, leases that ended, levers they pulled).
    fn poll_every(&self) -> Option<std::time::Duration> {
        None
    }

    /// Why the store cannot serve now, for readiness (an unreachable server).
    fn problem(&self) -> Option<String> {
        None
    }
}

/// What wakes the workers: per route, "look again" (new events, an outcome stored, a
/// lever pulled), and for the supervisor, "routes or stored events changed" (only for
/// routes that have no worker to wake).
#[derive(Default)]
pub(crate) struct Signals {
    routes: Mutex<HashMap<Arc<str>, Arc<RouteSignal>>>,
    changed: Notify,
}

/// One route's wake-up, and whether a worker is there to hear it.
#[derive(Default)]
pub(crate) struct RouteSignal {
    pub notify: Notify,
    worked: AtomicBool,
}

/// A worker's hold on its route's signal: while it lives, the route's wakes are the
/// worker's alone; dropped, they reach the supervisor again.
pub(crate) struct Working(Arc<RouteSignal>);

impl Working {
    pub(crate) fn notify(&self) -> &Notify {
        &self.0.notify
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.worked.store(false, Ordering::SeqCst);
    }
}

impl Signals {
    fn signal(&self, route: &str) -> Arc<RouteSignal> {
        let mut routes = lock(&self.routes);
        if let Some(signal) = routes.get(route) {
            return Arc::clone(signal);
        }
        let signal = Arc::new(RouteSignal::default());
        routes.insert(Arc::from(route), Arc::clone(&signal));
        signal
    }

    /// `route`'s worker takes its wake-ups.
    pub(crate) fn work(&self, route: &str) -> Working {
        let signal = self.signal(route);
        signal.worked.store(true, Ordering::SeqCst);
        Working(signal)
    }

    /// `route`'s worker looks again; with none, the supervisor does (it may start one).
    pub(crate) fn wake(&self, route: &str) {
        let signal = self.signal(route);
        // A stored permit: a worker busy elsewhere looks again once it waits.
        signal.notify.notify_one();
        if !signal.worked.load(Ordering::SeqCst) {
            self.changed.notify_one();
        }
    }

    /// Every route's worker looks again, and the supervisor too.
    pub(crate) fn wake_all(&self) {
        for signal in lock(&self.routes).values() {
            signal.notify.notify_one();
        }
        self.changed.notify_one();
    }

    /// What tells the supervisor that routes or stored events changed.
    pub(crate) fn changed(&self) -> &Notify {
        &self.changed
    }
}
