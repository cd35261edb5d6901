//! Per route, what the disk store knows of its pending events in memory: those ready
//! for an attempt (with their bodies), those in flight, and how many are pending and
//! dead in all. One lock holds all three, so an event can never be both ready and in
//! flight, and a claim never takes one twice.
//!
//! The lanes change in two ways only. A claim moves events from ready to in flight (on
//! the caller's task). Everything else is the writer's, applied right after the commit
//! that made it true, on the writer thread: new events stored, outcomes settled,
//! redeliveries, and refills read from the database between two commits. So a refill
//! always reads exactly the state the lane reflects, and an event in flight stays in
//! flight until its outcome is committed.
//!
//! A lane is bounded ([`LANE_EVENTS`], [`LANE_BYTES`]); past that, events wait in the
//! database alone and a refill reads the most urgent ones back when the lane runs short.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::super::model::{Claimed, Counts, Pending, Then};
use crate::sync::lock;

/// Events a lane keeps in memory at most, and their bodies' bytes.
pub(super) const LANE_EVENTS: usize = 4096;
pub(super) const LANE_BYTES: usize = 16 << 20;

#[derive(Default)]
pub(super) struct Lanes {
    routes: Mutex<HashMap<Arc<str>, Lane>>,
}

#[derive(Default)]
struct Lane {
    /// Pending events known in memory and not in flight, by arrival order.
    ready: BTreeMap<i64, Pending>,
    bytes: usize,
    in_flight: HashSet<i64>,
    /// Everything stored for the route, in memory or not.
    counts: Counts,
    /// The database may hold pending events that are due, or come before those in
    /// `ready`, which the lane does not know: a refill is worth it.
    stale: bool,
    /// When the lane does not know every pending event and is not stale: the soonest
    /// time one it does not know falls due.
    unseen_due: Option<i64>,
}

/// What a claim found.
pub(super) enum Claim {
    Taken(Claimed),
    /// The lane cannot tell what is due without reading the database first.
    NeedsRefill,
}

/// A change a commit made, to apply to the lanes once it is committed.
pub(super) enum Change {
    /// A new event, in arrival order.
    Stored(Pending),
    /// An attempt's outcome; `again` is the event with its next time when it failed.
    Settled {
        route: Arc<str>,
        seq: i64,
        then: Then,
        again: Option<Pending>,
    },
    /// An attempt whose outcome could not be stored: still pending in the database.
    Unsettled { route: Arc<str>, seq: i64 },
    /// Events back to pending: `from_dead` of them were dead, the rest delivered.
    Requeued {
        route: Arc<str>,
        count: u64,
        from_dead: u64,
    },
    /// Pending events made due at `now`: these `seqs`, or all that wait when `None`.
    Hurried {
        route: Arc<str>,
        seqs: Option<Vec<i64>>,
        now: i64,
    },
    /// Dead letters deleted.
    Swept { route: Arc<str>, dead: u64 },
}

impl Lane {
    fn complete(&self) -> bool {
        self.ready.len() + self.in_flight.len() >= self.counts.pending as usize
    }

    fn has_room(&self, event: &Pending) -> bool {
        self.ready.len() < LANE_EVENTS && self.bytes + event.body.len() <= LANE_BYTES
    }

    /// Keeps `event` ready (replacing an older copy of it).
    fn remember(&mut self, event: Pending) {
        self.bytes += event.body.len();
        if let Some(old) = self.ready.insert(event.seq, event) {
            self.bytes -= old.body.len();
        }
    }

    /// The database now holds pending events the lane does not know, and they may be
    /// due: the next claim that runs short reads them.
    fn mark_stale(&mut self) {
        self.stale = true;
        self.unseen_due = None;
    }

    fn take(&mut self, seq: i64) -> Option<Pending> {
        let event = self.ready.remove(&seq)?;
        self.bytes -= event.body.len();
        self.in_flight.insert(seq);
        Some(event)
    }

    fn next_due(&self, in_order: bool) -> Option<i64> {
        let known = if in_order {
            self.ready.values().next().map(|e| e.next_attempt_at)
        } else {
            self.ready.values().map(|e| e.next_attempt_at).min()
        };
        match (known, self.unseen_due.filter(|_| !self.complete())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Lanes {
    /// Sets the counts read from the database at open.
    pub(super) fn load(&self, counts: HashMap<String, Counts>) {
        let mut routes = lock(&self.routes);
        for (route, counts) in counts {
            let lane = routes.entry(Arc::from(route)).or_default();
            lane.counts = counts;
            lane.stale = counts.pending > 0;
        }
    }

    /// Up to `free` due events of `route` moved in flight (see [`Store::claim`]);
    /// `refilled`: a refill just ran, so take what is known rather than ask for another.
    ///
    /// [`Store::claim`]: super::super::store::Store::claim
    pub(super) fn claim(
        &self,
        route: &str,
        now: i64,
        free: usize,
        in_order: bool,
        refilled: bool,
    ) -> Claim {
        let mut routes = lock(&self.routes);
        let Some(lane) = routes.get_mut(route) else {
            return Claim::Taken(Claimed::default());
        };
        let mut taken = Vec::new();
        if in_order {
            // The next event waits for the last one's outcome to be stored: if it failed,
            // it is back at the head of the line.
            if !lane.in_flight.is_empty() {
                return Claim::Taken(Claimed::default());
            }
            if !lane.complete() && (lane.stale || lane.ready.is_empty()) && !refilled {
                return Claim::NeedsRefill;
            }
            let head = lane
                .ready
                .iter()
                .next()
                .map(|(&s, e)| (s, e.next_attempt_at));
            if let Some((seq, _)) = head.filter(|&(_, at)| at <= now && free > 0) {
                taken.extend(lane.take(seq));
            }
        } else {
            let due: Vec<i64> = lane
                .ready
                .iter()
                .filter(|(_, e)| e.next_attempt_at <= now)
                .map(|(&seq, _)| seq)
                .take(free)
                .collect();
            let unseen_due = lane.stale || lane.unseen_due.is_some_and(|at| at <= now);
            if due.len() < free && !lane.complete() && unseen_due && !refilled {
                return Claim::NeedsRefill;
            }
            for seq in due {
                taken.extend(lane.take(seq));
            }
        }
        let next_due = if taken.is_empty() {
            lane.next_due(in_order)
        } else {
            None
        };
        Claim::Taken(Claimed {
            events: taken,
            next_due,
        })
    }

    /// Events of `route` in flight: a refill reads past them.
    pub(super) fn in_flight(&self, route: &str) -> usize {
        lock(&self.routes)
            .get(route)
            .map_or(0, |lane| lane.in_flight.len())
    }

    /// Merges `rows` read from the database (by arrival order when `in_order`, else
    /// soonest due first; at most `wanted`) into `route`'s lane. Runs on the writer
    /// thread between commits.
    pub(super) fn refilled(&self, route: &str, rows: Vec<Pending>, wanted: usize, in_order: bool) {
        let mut routes = lock(&self.routes);
        let lane = routes.entry(Arc::from(route)).or_default();
        let all_read = rows.len() < wanted;
        let last_due = rows.last().map(|e| e.next_attempt_at);
        for row in rows {
            if lane.in_flight.contains(&row.seq) {
                continue;
            }
            lane.remember(row);
        }
        lane.stale = false;
        lane.unseen_due = if all_read || in_order { None } else { last_due };
        // Over the bounds: the least urgent go back to the database alone.
        while lane.ready.len() > LANE_EVENTS || lane.bytes > LANE_BYTES {
            let victim = if in_order {
                lane.ready.keys().next_back().copied()
            } else {
                lane.ready
                    .values()
                    .max_by_key(|e| (e.next_attempt_at, e.seq))
                    .map(|e| e.seq)
            };
            let Some(seq) = victim else { break };
            if let Some(event) = lane.ready.remove(&seq) {
                lane.bytes -= event.body.len();
                // In arrival order the evicted come after every kept one: the head
                // stays known. Otherwise they are due no sooner than the kept ones.
                if !in_order {
                    let at = event.next_attempt_at;
                    lane.unseen_due = Some(lane.unseen_due.map_or(at, |u| u.min(at)));
                }
            }
        }
    }

    /// Applies a commit's changes; returns the routes whose workers should look again.
    pub(super) fn apply(&self, changes: Vec<Change>) -> Vec<Arc<str>> {
        let mut woken: Vec<Arc<str>> = Vec::new();
        let mut wake = |route: &Arc<str>| {
            if !woken.iter().any(|r| r == route) {
                woken.push(Arc::clone(route));
            }
        };
        let mut routes = lock(&self.routes);
        for change in changes {
            match change {
                Change::Stored(event) => {
                    let route = Arc::clone(&event.route);
                    let lane = routes.entry(Arc::clone(&route)).or_default();
                    let knew_all = lane.complete();
                    lane.counts.pending += 1;
                    if knew_all && lane.has_room(&event) {
                        lane.remember(event);
                    } else {
                        lane.mark_stale();
                    }
                    wake(&route);
                }
                Change::Settled {
                    route,
                    seq,
                    then,
                    again,
                } => {
                    let lane = routes.entry(Arc::clone(&route)).or_default();
                    lane.in_flight.remove(&seq);
                    match then {
                        Then::Delivered => lane.counts.pending -= 1,
                        Then::Dead => {
                            lane.counts.pending -= 1;
                            lane.counts.dead += 1;
                        }
                        Then::RetryAt(_) => {
                            // Known again only if the lane knew every other pending event.
                            let knew_all = lane.ready.len() + lane.in_flight.len() + 1
                                >= lane.counts.pending as usize;
                            match again {
                                Some(event) if knew_all && lane.has_room(&event) => {
                                    lane.remember(event)
                                }
                                _ => lane.mark_stale(),
                            }
                        }
                    }
                    // The worker learns of its free slots from the app's answers; an
                    // outcome stored gives it work only when a retry has a new time, or
                    // the route's last attempt ended (arrival order waits for that).
                    if matches!(then, Then::RetryAt(_)) || lane.in_flight.is_empty() {
                        wake(&route);
                    }
                }
                Change::Unsettled { route, seq } => {
                    let lane = routes.entry(Arc::clone(&route)).or_default();
                    lane.in_flight.remove(&seq);
                    lane.mark_stale();
                    wake(&route);
                }
                Change::Requeued {
                    route,
                    count,
                    from_dead,
                } => {
                    let lane = routes.entry(Arc::clone(&route)).or_default();
                    lane.counts.pending += count;
                    lane.counts.dead -= from_dead.min(lane.counts.dead);
                    lane.mark_stale();
                    wake(&route);
                }
                Change::Hurried { route, seqs, now } => {
                    let lane = routes.entry(Arc::clone(&route)).or_default();
                    let mut known = 0;
                    for event in lane.ready.values_mut() {
                        let chosen = seqs.as_ref().is_none_or(|s| s.contains(&event.seq));
                        if chosen && event.next_attempt_at > now {
                            event.next_attempt_at = now;
                            known += 1;
                        }
                    }
                    let asked = seqs.as_ref().map_or(usize::MAX, Vec::len);
                    if known < asked && !lane.complete() {
                        lane.mark_stale();
                    }
                    wake(&route);
                }
                Change::Swept { route, dead } => {
                    let lane = routes.entry(route).or_default();
                    lane.counts.dead -= dead.min(lane.counts.dead);
                }
            }
        }
        woken
    }

    /// Pending and dead events per route.
    pub(super) fn counts(&self) -> HashMap<String, Counts> {
        lock(&self.routes)
            .iter()
            .map(|(route, lane)| (route.to_string(), lane.counts))
            .collect()
    }

    /// Every route the store holds events of (or held, since it opened).
    pub(super) fn route_names(&self) -> Vec<Arc<str>> {
        lock(&self.routes).keys().cloned().collect()
    }

    /// Whether an attempt of `seq` is in progress.
    pub(super) fn is_in_flight(&self, route: &str, seq: i64) -> bool {
        lock(&self.routes)
            .get(route)
            .is_some_and(|lane| lane.in_flight.contains(&seq))
    }
}
