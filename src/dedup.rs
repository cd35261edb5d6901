//! Each event reaches the app once (SPEC §3 checks 12–13).
//!
//! A key (route + event id) moves from absent to in flight, claimed atomically by the
//! first copy, to delivered, recorded only after the app answered 2xx and kept for the
//! route's dedup ttl. A failed or abandoned forward releases the claim, so the
//! provider's retry goes through. Copies that arrive while the first is in flight wait
//! for its outcome instead of being forwarded.
//!
//! The cache is moka with LRU eviction: its default TinyLFU admission can refuse brand
//! new keys when full, which would silently forget the ids just delivered.

use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::policy::{EvictionPolicy, Expiry};
use moka::sync::Cache;
use prometheus::IntCounter;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::error::Reply;
use crate::metrics::Outcome;

/// What the cache holds per id: 128 bits of SHA-256 over the route and the id, instead
/// of the strings (16 bytes, no allocation, whatever the id's length). Route names
/// cannot hold NUL, so routes never share a key; telling two ids apart takes a 128-bit
/// collision of SHA-256 among verified ids.
type Key = u128;

fn key(route: &str, id: &str) -> Key {
    let digest = Sha256::new()
        .chain_update(route)
        .chain_update([0])
        .chain_update(id)
        .finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// Tables are allocated for at most this many ids up front (about 16 MB); beyond it they
/// grow as ids arrive.
const MAX_PRESIZE: usize = 1 << 20;

/// How the first copy of an event ended, as the copies waiting on it learn it.
#[derive(Clone, Debug)]
pub enum Settled {
    Delivered,
    /// The app did not take it: the waiting copies answer what the first one did.
    Failed {
        reply: Reply,
        outcome: Outcome,
    },
    /// The first copy went away (its client disconnected): a waiting copy may try.
    Abandoned,
}

#[derive(Clone)]
enum Slot {
    InFlight(watch::Receiver<Option<Settled>>),
    Delivered(Duration),
}

/// What a copy of an event may do.
pub enum Claim {
    /// Forward it, then settle the ticket.
    First(Ticket),
    /// Already delivered within the ttl.
    Delivered,
    /// Another copy is being forwarded: wait for its outcome.
    InFlight(watch::Receiver<Option<Settled>>),
}

pub struct Dedup {
    cache: Cache<Key, Slot>,
}

/// Delivered ids expire after their route's ttl; in-flight claims never expire (their
/// ticket always settles or releases them).
struct SlotExpiry;

impl Expiry<Key, Slot> for SlotExpiry {
    fn expire_after_create(&self, _: &Key, slot: &Slot, _: Instant) -> Option<Duration> {
        match slot {
            Slot::Delivered(ttl) => Some(*ttl),
            Slot::InFlight(_) => None,
        }
    }

    fn expire_after_update(
        &self,
        _: &Key,
        slot: &Slot,
        _: Instant,
        current: Option<Duration>,
    ) -> Option<Duration> {
        match slot {
            Slot::Delivered(ttl) => Some(*ttl),
            Slot::InFlight(_) => current,
        }
    }
}

impl Dedup {
    /// `evictions` counts ids dropped for `max_entries` (not ttl expiries).
    pub fn new(max_entries: u64, evictions: IntCounter) -> Self {
        // Sized for the bound up front: growing the table rehashes every entry at once,
        // which stalled requests for tens of milliseconds at each doubling (bench/run.sh).
        let initial = usize::try_from(max_entries)
            .unwrap_or(usize::MAX)
            .min(MAX_PRESIZE);
        let cache = Cache::builder()
            .initial_capacity(initial)
            .max_capacity(max_entries)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(SlotExpiry)
            .eviction_listener(move |_key, _slot, cause| {
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Dedup { cache }
    }

    /// Claims `id` on `route`; the first caller gets the ticket, concurrent callers see
    /// it in flight.
    pub fn claim(&self, route: &str, id: &str, ttl: Duration) -> Claim {
        let key = key(route, id);
        let (tx, rx) = watch::channel(None);
        let entry = self
            .cache
            .entry(key)
            .or_insert_with(|| Slot::InFlight(rx.clone()));
        if entry.is_fresh() {
            return Claim::First(Ticket {
                cache: self.cache.clone(),
                key,
                ttl,
                rx,
                tx: Some(tx),
            });
        }
        match entry.into_value() {
            Slot::Delivered(_) => Claim::Delivered,
            Slot::InFlight(rx) => Claim::InFlight(rx),
        }
    }

    /// Ids held now (delivered and in flight), after pending evictions ran.
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The first copy's claim. Settle it with [`Ticket::delivered`] or [`Ticket::failed`];
/// dropping it unsettled releases the id.
pub struct Ticket {
    cache: Cache<Key, Slot>,
    key: Key,
    ttl: Duration,
    rx: watch::Receiver<Option<Settled>>,
    tx: Option<watch::Sender<Option<Settled>>>,
}

impl Ticket {
    /// The app took the event: remember the id for the ttl.
    pub fn delivered(mut self) {
        self.cache.insert(self.key, Slot::Delivered(self.ttl));
        self.settle(Settled::Delivered);
    }

    /// The app did not take it: forget the id so the retry is forwarded.
    pub fn failed(mut self, reply: Reply, outcome: Outcome) {
        self.release();
        self.settle(Settled::Failed { reply, outcome });
    }

    fn release(&self) {
        // Remove only our own claim: if it was evicted meanwhile, the key may now hold
        // another copy's claim or a delivery.
        let ours = &self.rx;
        self.cache.entry(self.key).and_compute_with(|current| match current {
            Some(entry) if matches!(entry.value(), Slot::InFlight(rx) if rx.same_channel(ours)) => Op::Remove,
            _ => Op::Nop,
        });
    }

    fn settle(&mut self, outcome: Settled) {
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(outcome));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.release();
            self.settle(Settled::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup(max: u64) -> (Dedup, IntCounter) {
        let evictions = IntCounter::new("e", "e").unwrap();
        (Dedup::new(max, evictions.clone()), evictions)
    }

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn the_first_copy_claims_and_a_delivered_id_is_remembered() {
        let (d, _) = dedup(100);
        let Claim::First(ticket) = d.claim("r", "e1", TTL) else {
            panic!("first")
        };
        assert!(matches!(d.claim("r", "e1", TTL), Claim::InFlight(_)));
        ticket.delivered();
        assert!(matches!(d.claim("r", "e1", TTL), Claim::Delivered));
        assert!(
            matches!(d.claim("other", "e1", TTL), Claim::First(_)),
            "routes are separate"
        );
    }

    #[test]
    fn a_failure_releases_the_id_and_tells_the_waiters() {
        let (d, _) = dedup(100);
        let Claim::First(ticket) = d.claim("r", "e1", TTL) else {
            panic!("first")
        };
        let Claim::InFlight(rx) = d.claim("r", "e1", TTL) else {
            panic!("in flight")
        };
        ticket.failed(
            Reply::empty(http::StatusCode::BAD_GATEWAY),
            Outcome::UpstreamUnavailable,
        );
        assert!(matches!(
            &*rx.borrow(),
            Some(Settled::Failed {
                outcome: Outcome::UpstreamUnavailable,
                ..
            })
        ));
        assert!(
            matches!(d.claim("r", "e1", TTL), Claim::First(_)),
            "the retry may go"
        );
    }

    #[test]
    fn a_dropped_ticket_releases_the_id_as_abandoned() {
        let (d, _) = dedup(100);
        let Claim::First(ticket) = d.claim("r", "e1", TTL) else {
            panic!("first")
        };
        let Claim::InFlight(rx) = d.claim("r", "e1", TTL) else {
            panic!("in flight")
        };
        drop(ticket);
        assert!(matches!(&*rx.borrow(), Some(Settled::Abandoned)));
        assert!(matches!(d.claim("r", "e1", TTL), Claim::First(_)));
    }

    #[test]
    fn when_full_the_least_recently_used_ids_go_and_the_newest_stay() {
        let (d, evictions) = dedup(10);
        for i in 0..50 {
            let Claim::First(t) = d.claim("r", &format!("e{i}"), TTL) else {
                panic!("first {i}")
            };
            t.delivered();
            d.len();
        }
        assert_eq!(d.len(), 10);
        for i in 40..50 {
            assert!(
                matches!(d.claim("r", &format!("e{i}"), TTL), Claim::Delivered),
                "e{i} was forgotten"
            );
        }
        assert_eq!(evictions.get(), 40);
    }
}
