//! The ids already delivered: a sharded LRU of 16-byte keys, each with its deadline.
//!
//! Not moka: moka spends 283–331 bytes on each entry (docs/performance.md), so a
//! million ids took over 300 MB, and its table growth and housekeeping stalled requests.
//! Here an id costs one list node (key, deadline, two links: 48 bytes) and one hash slot
//! (16 bytes at a load between 44% and 88%).
//!
//! Each shard is an exact LRU. Keys are SHA-256 output, so they spread evenly and the
//! shards together drop close to the least recently used ids; a table of up to
//! [`SHARD_IDS`] ids has one shard and is exact. Shards stay small so that a growing
//! table rehashes at most [`SHARD_IDS`] slots at a time, never the whole table at once.
//!
//! Expiry needs no timer: an expired id reads as absent and goes when it is found, and
//! every insert first drops expired ids from its shard's cold end.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;
use prometheus::IntCounter;

use crate::sync::lock;

/// 128 bits of SHA-256 over the route and the event id.
pub(super) type Key = u128;

/// The most ids one shard holds when the table is split.
pub(super) const SHARD_IDS: u64 = 16 * 1024;

/// The most expired ids an insert clears from its shard's cold end, so that its cost
/// stays bounded when many ids expire together.
const SWEEP_ON_INSERT: usize = 8;

/// The most expired ids [`Delivered::len`] clears per shard in one call.
const SWEEP_ON_COUNT: usize = 4096;

pub(super) struct Delivered {
    shards: Box<[Mutex<LruCache<Key, Duration>>]>,
    /// Ids dropped for the size bound; expired ones are not counted.
    evictions: IntCounter,
}

impl Delivered {
    /// At most `max_entries` ids in all.
    pub(super) fn new(max_entries: u64, evictions: IntCounter) -> Self {
        let max = usize::try_from(max_entries.max(1)).unwrap_or(usize::MAX);
        let wanted = usize::try_from(max_entries.div_ceil(SHARD_IDS)).unwrap_or(usize::MAX);
        let count = wanted.clamp(1, 1 << 16).next_power_of_two();
        // The bound split exactly: the first `max % count` shards hold one id more.
        let shards = (0..count)
            .map(|i| {
                let cap = max / count + usize::from(i < max % count);
                let cap = NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN);
                // Grown as ids arrive: a bound set high costs nothing until it is used.
                Mutex::new(LruCache::sparse(cap))
            })
            .collect();
        Delivered { shards, evictions }
    }

    /// Whether `key` was delivered and has not expired at `now` (the clock's elapsed
    /// time). A hit counts as a use for the LRU order.
    pub(super) fn contains(&self, key: Key, now: Duration) -> bool {
        let mut shard = self.shard(key);
        match shard.get(&key) {
            Some(&deadline) if deadline > now => true,
            Some(_) => {
                shard.pop(&key);
                false
            }
            None => false,
        }
    }

    /// Remembers `key` until `deadline`; the least recently used id of its shard goes
    /// when the shard is full.
    pub(super) fn insert(&self, key: Key, deadline: Duration, now: Duration) {
        let mut shard = self.shard(key);
        sweep(&mut shard, now, SWEEP_ON_INSERT);
        if let Some((dropped, dropped_deadline)) = shard.push(key, deadline) {
            // `push` also hands back the old value when the key was already there.
            if dropped != key && dropped_deadline > now {
                self.evictions.inc();
            }
        }
    }

    /// Ids held, after clearing expired ones from each shard's cold end.
    pub(super) fn len(&self, now: Duration) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = lock(shard);
                sweep(&mut shard, now, SWEEP_ON_COUNT);
                shard.len()
            })
            .sum()
    }

    fn shard(&self, key: Key) -> MutexGuard<'_, LruCache<Key, Duration>> {
        // The shard count is a power of two and the key's bits are uniform.
        let index = (key as usize) & (self.shards.len() - 1);
        lock(&self.shards[index])
    }
}

/// Drops up to `limit` expired ids from the cold end.
fn sweep(shard: &mut LruCache<Key, Duration>, now: Duration, limit: usize) {
    for _ in 0..limit {
        match shard.peek_lru() {
            Some((_, &deadline)) if deadline <= now => {
                shard.pop_lru();
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn table(max: u64) -> (Delivered, IntCounter) {
        let evictions = IntCounter::new("e", "e").unwrap();
        (Delivered::new(max, evictions.clone()), evictions)
    }

    #[test]
    fn a_full_shard_drops_its_least_recently_used_id_and_counts_it() {
        let (t, evictions) = table(2);
        t.insert(1, 60 * S, S);
        t.insert(2, 60 * S, S);
        assert!(t.contains(1, S), "a hit makes 1 the most recently used");
        t.insert(3, 60 * S, S);
        assert!(t.contains(1, S));
        assert!(!t.contains(2, S), "2 was the least recently used");
        assert!(t.contains(3, S));
        assert_eq!(evictions.get(), 1);
        assert_eq!(t.len(S), 2);
    }

    #[test]
    fn an_id_expires_at_its_deadline_and_expiry_is_not_an_eviction() {
        let (t, evictions) = table(2);
        t.insert(1, 10 * S, Duration::ZERO);
        t.insert(2, 20 * S, Duration::ZERO);
        assert!(t.contains(1, 10 * S - Duration::from_nanos(1)));
        assert!(!t.contains(1, 10 * S), "gone at its deadline");
        assert_eq!(t.len(10 * S), 1);
        // 2 expires on its own; the insert clears it instead of evicting a live id.
        t.insert(3, 40 * S, 25 * S);
        t.insert(4, 40 * S, 25 * S);
        assert!(t.contains(3, 25 * S) && t.contains(4, 25 * S));
        assert_eq!(evictions.get(), 0);
    }

    #[test]
    fn counting_clears_expired_ids() {
        let (t, _) = table(100);
        for key in 0..50 {
            t.insert(key, 5 * S, Duration::ZERO);
        }
        t.insert(99, 60 * S, Duration::ZERO);
        assert_eq!(t.len(S), 51);
        assert_eq!(t.len(5 * S), 1);
    }

    #[test]
    fn inserting_a_held_id_again_is_not_an_eviction() {
        let (t, evictions) = table(1);
        t.insert(7, 10 * S, Duration::ZERO);
        t.insert(7, 20 * S, Duration::ZERO);
        assert_eq!(evictions.get(), 0);
        assert!(t.contains(7, 15 * S), "the later deadline holds");
    }

    #[test]
    fn a_large_bound_is_split_exactly_into_small_shards() {
        for max in [1, 5, SHARD_IDS, SHARD_IDS + 1, 1_000_000, 1_000_003] {
            let (t, _) = table(max);
            let caps: Vec<usize> = t.shards.iter().map(|s| lock(s).cap().get()).collect();
            assert_eq!(caps.iter().sum::<usize>() as u64, max, "max {max}");
            assert!(t.shards.len().is_power_of_two());
            assert!(caps.iter().all(|&c| c as u64 <= SHARD_IDS), "max {max}");
        }
        assert_eq!(
            table(SHARD_IDS).0.shards.len(),
            1,
            "small tables are one exact LRU"
        );
    }

    #[test]
    fn a_full_split_table_keeps_the_newest_ids() {
        // 4 shards of 16Ki; ids spread as SHA-256 output does.
        let (t, evictions) = table(4 * SHARD_IDS);
        let key = |i: u64| u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let total = 6 * SHARD_IDS;
        for i in 0..total {
            t.insert(key(i), 60 * S, S);
        }
        let newest = total - SHARD_IDS..total;
        assert!(newest.clone().all(|i| t.contains(key(i), S)));
        assert_eq!(t.len(S) as u64, 4 * SHARD_IDS);
        assert_eq!(evictions.get(), 2 * SHARD_IDS);
    }
}
