//! Where "now" comes from: wall time for replay windows and envelopes, monotonic time
//! for rate limits. Injected, so tests judge requests at a chosen time and move time
//! forward instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone)]
pub struct Clock(Arc<Source>);

enum Source {
    System {
        started: Instant,
    },
    /// Starts at a chosen wall time and moves only when told to.
    Manual {
        start: SystemTime,
        elapsed_nanos: AtomicU64,
    },
}

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Source::System {
            started: Instant::now(),
        }))
    }

    /// A clock standing at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: SystemTime) -> Self {
        Clock(Arc::new(Source::Manual {
            start,
            elapsed_nanos: AtomicU64::new(0),
        }))
    }

    /// Moves a manual clock forward; the system clock moves by itself and ignores this.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual { elapsed_nanos, .. } = &*self.0 {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            elapsed_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// Wall time.
    pub fn now(&self) -> SystemTime {
        match &*self.0 {
            Source::System { .. } => SystemTime::now(),
            Source::Manual { start, .. } => *start + self.elapsed(),
        }
    }

    /// Monotonic time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        match &*self.0 {
            Source::System { started } => started.elapsed(),
            Source::Manual { elapsed_nanos, .. } => {
                Duration::from_nanos(elapsed_nanos.load(Ordering::Relaxed))
            }
        }
    }
}

/// Unix seconds, floored (negative before 1970).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.elapsed(), Duration::ZERO);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(unix_seconds(clock.now()), 1_764_000_001);
        assert_eq!(clock.elapsed(), Duration::from_millis(1500));
    }

    #[test]
    fn unix_seconds_floor_before_and_after_the_epoch() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1999)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
