//! `server.max_buffered_bytes` (docs/request-handling.md): the request bodies held in memory at once, all
//! connections together.
//!
//! Each request reserves room for its body before reading a byte of it (its declared
//! length, or `max_body_bytes` when it streams), keeps what the body turned out to need
//! while it is handled, and gives it back when it ends. A request that finds no room is
//! answered 503 `overloaded` unread, so a thousand slow senders cannot take the memory
//! that a real provider's next event needs.

use tokio::sync::{Semaphore, SemaphorePermit};

/// Room is counted in KiB: a permit for every byte would overflow a `u32` reservation
/// with bodies past 4 GiB, and nothing smaller matters here.
const UNIT: u64 = 1024;

pub(crate) struct BodyBudget {
    units: Semaphore,
}

impl BodyBudget {
    pub(crate) fn new(bytes: u64) -> Self {
        let units = usize::try_from(units(bytes)).unwrap_or(usize::MAX);
        BodyBudget {
            units: Semaphore::new(units.min(Semaphore::MAX_PERMITS)),
        }
    }

    /// Room for a body of at most `bytes`, or `None` when the budget is spent.
    pub(crate) fn reserve(&self, bytes: u64) -> Option<Held<'_>> {
        let wanted = units(bytes);
        if wanted == 0 {
            return Some(Held(None));
        }
        let wanted = u32::try_from(wanted).ok()?;
        self.units
            .try_acquire_many(wanted)
            .ok()
            .map(|p| Held(Some(p)))
    }

    /// Room free now, in bytes (for tests and metrics).
    pub(crate) fn available(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }
}

/// Room held by one request until it ends.
pub(crate) struct Held<'a>(Option<SemaphorePermit<'a>>);

impl Held<'_> {
    /// Keeps room for `bytes` only: the body is read, and that is all it holds.
    pub(crate) fn shrink_to(&mut self, bytes: u64) {
        let keep = usize::try_from(units(bytes)).unwrap_or(usize::MAX);
        if let Some(permit) = &mut self.0 {
            let extra = permit.num_permits().saturating_sub(keep);
            // Split off and dropped: given back at once.
            drop(permit.split(extra));
        }
    }
}

fn units(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_reserved_up_front_shrunk_to_the_body_and_given_back() {
        let budget = BodyBudget::new(10 * UNIT);
        let mut first = budget.reserve(8 * UNIT).expect("room for 8 KiB");
        assert!(budget.reserve(4 * UNIT).is_none(), "only 2 KiB left");
        first.shrink_to(100);
        assert_eq!(budget.available(), 9 * UNIT);
        let second = budget.reserve(9 * UNIT).expect("room again");
        drop(first);
        drop(second);
        assert_eq!(budget.available(), 10 * UNIT);
        assert!(budget.reserve(0).is_some(), "an empty body needs no room");
        assert!(budget.reserve(11 * UNIT).is_none());
    }
}
