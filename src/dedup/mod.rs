//! Each event reaches the app once (docs/request-handling.md checks 12–13).
//!
//! A key (route + event id) moves from absent to in flight, claimed atomically by the
//! first copy, to delivered, recorded only after the app answered 2xx and kept for the
//! route's dedup ttl. A failed or abandoned forward releases the claim, so the
//! provider's retry goes through. Copies that arrive while the first is in flight wait
//! for its outcome instead of being forwarded.
//!
//! The two states live apart. Claims in flight sit in a small map under a lock (there
//! are never more than the requests being served); delivered ids sit in [`delivered`],
//! a compact LRU (never an admission policy such as TinyLFU, which can refuse brand new
//! keys when full and so silently forget the ids just delivered) with each route's ttl
//! on the injected clock. An event costs it one lookup and one insert, and it never
//! holds a claim's waiters.
//!
//! With `backend = "redis"`, [`shared`] holds the same states for several replicas; the
//! pipeline claims there only after winning here, so this table stays in front.

mod delivered;
mod shared;

pub(crate) use shared::{SharedClaim, SharedIds, StoreError};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use prometheus::IntCounter;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::sync::lock;
use delivered::{Delivered, Key};

/// What the cache holds per id: 128 bits of SHA-256 over the route and the id, instead
/// of the strings (16 bytes, no allocation, whatever the id's length). Route names
/// cannot hold NUL, so routes never share a key; telling two ids apart takes a 128-bit
/// collision of SHA-256 among verified ids.
fn key(route: &str, id: &[u8]) -> Key {
    let digest = Sha256::new()
        .chain_update(route)
        .chain_update([0])
        .chain_update(id)
        .finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// How the first copy of an event ended, as the copies waiting on it learn it. `F` is
/// what a failure tells them (the caller's answer): this module knows nothing of HTTP.
#[derive(Clone, Debug)]
pub(crate) enum Settled<F> {
    Delivered,
    /// The app did not take it: the waiting copies answer what the first one did.
    Failed(F),
    /// The first copy went away without an outcome: a waiting copy may try.
    Abandoned,
}

/// One claim in flight: its outcome, set once, and the copies waiting for it.
struct Flight<F> {
    settled: OnceLock<Settled<F>>,
    done: Notify,
}

impl<F> Default for Flight<F> {
    fn default() -> Self {
        Flight {
            settled: OnceLock::new(),
            done: Notify::new(),
        }
    }
}

/// What a copy of an event may do.
pub(crate) enum Claim<'a, F: Clone> {
    /// Forward it, then settle the ticket.
    First(Ticket<'a, F>),
    /// Already delivered within the ttl.
    Delivered,
    /// Another copy is being forwarded: wait for its outcome.
    InFlight(Waiter<F>),
}

/// Claims in flight. Keys are SHA-256 output, so the seeded fast hasher the delivered
/// table uses serves here too, in place of SipHash.
type Flights<F> = HashMap<Key, Arc<Flight<F>>, lru::DefaultHasher>;

/// The ids of every route, delivered and in flight. `F` is what a failed first copy
/// tells the copies that waited on it.
pub(crate) struct Dedup<F> {
    delivered: Delivered,
    in_flight: Mutex<Flights<F>>,
    /// Ttls run on its monotonic time, so tests move it instead of waiting.
    clock: Clock,
}

impl<F: Clone> Dedup<F> {
    /// `evictions` counts ids dropped for `max_entries` (not ttl expiries).
    pub(crate) fn new(max_entries: u64, evictions: IntCounter, clock: Clock) -> Self {
        Dedup {
            delivered: Delivered::new(max_entries, evictions),
            in_flight: Mutex::default(),
            clock,
        }
    }

    /// Claims `id` on `route`; the first caller gets the ticket, concurrent callers see
    /// it in flight.
    pub(crate) fn claim(&self, route: &str, id: &[u8], ttl: Duration) -> Claim<'_, F> {
        let key = key(route, id);
        let flight = {
            // The lock covers the map alone, never the delivered table.
            let mut flights = self.flights();
            if let Some(first) = flights.get(&key) {
                return Claim::InFlight(Waiter(Arc::clone(first)));
            }
            let flight = Arc::new(Flight::default());
            flights.insert(key, Arc::clone(&flight));
            flight
        };
        let mut ticket = Ticket {
            dedup: self,
            key,
            ttl,
            flight,
            open: true,
        };
        // Looked up only once the claim is registered: a copy settling as delivered
        // records the id before it leaves the map, so no delivery can slip between the
        // two lookups. Copies that joined this claim meanwhile learn it was delivered.
        if self.delivered.contains(key, self.clock.elapsed()) {
            ticket.settle(Settled::Delivered);
            return Claim::Delivered;
        }
        Claim::First(ticket)
    }

    /// Ids held now: delivered (less the expired ones cleared so far) and in flight.
    pub(crate) fn len(&self) -> u64 {
        let delivered = self.delivered.len(self.clock.elapsed());
        let in_flight = self.flights().len();
        (delivered + in_flight) as u64
    }

    /// Copies waiting on a first copy in flight: each waiter holds its flight beside the
    /// map and the ticket.
    pub(crate) fn waiting(&self) -> usize {
        self.flights()
            .values()
            .map(|f| Arc::strong_count(f).saturating_sub(2))
            .sum()
    }

    fn flights(&self) -> MutexGuard<'_, Flights<F>> {
        lock(&self.in_flight)
    }
}

/// The first copy's claim. Settle it with [`Ticket::delivered`] or [`Ticket::failed`];
/// dropping it unsettled releases the id.
pub(crate) struct Ticket<'a, F: Clone> {
    dedup: &'a Dedup<F>,
    key: Key,
    ttl: Duration,
    flight: Arc<Flight<F>>,
    open: bool,
}

impl<F: Clone> Ticket<'_, F> {
    /// The app took the event: remember the id for the ttl.
    pub(crate) fn delivered(self) {
        let ttl = self.ttl;
        self.delivered_for(ttl);
    }

    /// Delivered through another replica, which remembers it for `ttl` more: this one
    /// forgets it when that one does.
    pub(crate) fn delivered_for(mut self, ttl: Duration) {
        let now = self.dedup.clock.elapsed();
        self.dedup
            .delivered
            .insert(self.key, now.saturating_add(ttl), now);
        self.settle(Settled::Delivered);
    }

    /// The app did not take it: forget the id so the retry is forwarded; the copies
    /// waiting learn `failure`.
    pub(crate) fn failed(mut self, failure: F) {
        self.settle(Settled::Failed(failure));
    }

    fn settle(&mut self, settled: Settled<F>) {
        self.open = false;
        {
            let mut flights = self.dedup.flights();
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        let _ = self.flight.settled.set(settled);
        self.flight.done.notify_waiters();
    }
}

impl<F: Clone> Drop for Ticket<'_, F> {
    fn drop(&mut self) {
        if self.open {
            self.settle(Settled::Abandoned);
        }
    }
}

/// A copy waiting for the first copy of its event.
pub(crate) struct Waiter<F>(Arc<Flight<F>>);

impl<F: Clone> Waiter<F> {
    /// The first copy's outcome, once it has one.
    pub(crate) async fn settled(&self) -> Settled<F> {
        loop {
            // Registered before the check, so a settle in between still wakes it.
            let notified = self.0.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(settled) = self.0.settled.get() {
                return settled.clone();
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In tests a failure tells the waiters a status code.
    type Failure = u16;

    fn dedup(max: u64) -> (Dedup<Failure>, IntCounter) {
        let (d, evictions, _) = dedup_at(max);
        (d, evictions)
    }

    /// With the manual clock that its ttls run on.
    fn dedup_at(max: u64) -> (Dedup<Failure>, IntCounter, Clock) {
        let evictions = IntCounter::new("e", "e").unwrap();
        let clock = Clock::manual(std::time::UNIX_EPOCH);
        let d = Dedup::new(max, evictions.clone(), clock.clone());
        (d, evictions, clock)
    }

    const TTL: Duration = Duration::from_secs(60);

    /// The first copy's ticket and a second copy waiting on it.
    fn first_and_waiter(d: &Dedup<Failure>) -> (Ticket<'_, Failure>, Waiter<Failure>) {
        let Claim::First(ticket) = d.claim("r", b"e1", TTL) else {
            panic!("first")
        };
        let Claim::InFlight(waiter) = d.claim("r", b"e1", TTL) else {
            panic!("in flight")
        };
        (ticket, waiter)
    }

    #[test]
    fn the_first_copy_claims_and_a_delivered_id_is_remembered() {
        let (d, _) = dedup(100);
        let Claim::First(ticket) = d.claim("r", b"e1", TTL) else {
            panic!("first")
        };
        assert!(matches!(d.claim("r", b"e1", TTL), Claim::InFlight(_)));
        ticket.delivered();
        assert!(matches!(d.claim("r", b"e1", TTL), Claim::Delivered));
        assert!(
            matches!(d.claim("other", b"e1", TTL), Claim::First(_)),
            "routes are separate"
        );
    }

    #[test]
    fn a_delivered_id_is_forgotten_after_its_routes_ttl() {
        let (d, evictions, clock) = dedup_at(100);
        for (route, ttl) in [("short", TTL), ("long", 2 * TTL)] {
            let Claim::First(t) = d.claim(route, b"e1", ttl) else {
                panic!("first on {route}")
            };
            t.delivered();
        }
        clock.advance(TTL - Duration::from_millis(1));
        assert!(matches!(d.claim("short", b"e1", TTL), Claim::Delivered));
        clock.advance(Duration::from_millis(1));
        assert!(
            matches!(d.claim("short", b"e1", TTL), Claim::First(_)),
            "the provider's replay after the ttl is forwarded again"
        );
        assert!(matches!(d.claim("long", b"e1", 2 * TTL), Claim::Delivered));
        assert_eq!(d.len(), 1);
        assert_eq!(evictions.get(), 0, "expiry is not eviction");
    }

    #[tokio::test]
    async fn a_failure_releases_the_id_and_tells_the_waiters() {
        let (d, _) = dedup(100);
        let (ticket, waiter) = first_and_waiter(&d);
        ticket.failed(502);
        assert!(matches!(waiter.settled().await, Settled::Failed(502)));
        assert!(
            matches!(d.claim("r", b"e1", TTL), Claim::First(_)),
            "the retry may go"
        );
    }

    #[tokio::test]
    async fn a_dropped_ticket_releases_the_id_as_abandoned() {
        let (d, _) = dedup(100);
        let (ticket, waiter) = first_and_waiter(&d);
        drop(ticket);
        assert!(matches!(waiter.settled().await, Settled::Abandoned));
        assert!(matches!(d.claim("r", b"e1", TTL), Claim::First(_)));
    }

    #[test]
    fn when_full_the_least_recently_used_ids_go_and_the_newest_stay() {
        let (d, evictions) = dedup(10);
        for i in 0..50 {
            let Claim::First(t) = d.claim("r", format!("e{i}").as_bytes(), TTL) else {
                panic!("first {i}")
            };
            t.delivered();
        }
        assert_eq!(d.len(), 10);
        for i in 40..50 {
            assert!(
                matches!(
                    d.claim("r", format!("e{i}").as_bytes(), TTL),
                    Claim::Delivered
                ),
                "e{i} was forgotten"
            );
        }
        assert_eq!(evictions.get(), 40);
    }

    #[tokio::test]
    async fn a_waiter_parked_before_the_outcome_is_woken_by_it() {
        let (d, _) = dedup(100);
        let (ticket, waiter) = first_and_waiter(&d);
        let waiting = tokio::spawn(async move { waiter.settled().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        ticket.delivered();
        let settled = waiting.await.unwrap();
        assert!(matches!(settled, Settled::Delivered));
        assert_eq!(d.len(), 1, "the claim left the map, the id is in the cache");
    }
}
