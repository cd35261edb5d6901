//! Where "now" comes from: wall time for replay windows and envelopes, monotonic time
//! for rate limits. Injected, so tests judge requests at a chosen time and move time
//! forward instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

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
        /// Wakes what sleeps on this clock when it moves.
        moved: Notify,
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
            moved: Notify::new(),
        }))
    }

    /// Moves a manual clock forward; the system clock moves by itself and ignores this.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual {
            elapsed_nanos,
            moved,
            ..
        } = &*self.0
        {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            elapsed_nanos.fetch_add(nanos, Ordering::Relaxed);
            moved.notify_waiters();
        }
    }

    /// Resolves once wall time reaches `at`: a timer on the system clock, and on a manual
    /// clock whenever [`Clock::advance`] moves it there (never by itself).
    pub async fn sleep_until(&self, at: SystemTime) {
        loop {
            let now = self.now();
            let Ok(left) = at.duration_since(now) else {
                return;
            };
            if left.is_zero() {
                return;
            }
            match &*self.0 {
                Source::System { .. } => tokio::time::sleep(left).await,
                Source::Manual { moved, .. } => {
                    let moved = moved.notified();
                    tokio::pin!(moved);
                    // Registered before looking again, so an advance in between wakes it.
                    moved.as_mut().enable();
                    if self.now() >= at {
                        return;
                    }
                    moved.await;
                }
            }
        }
    }

    /// Wall time in Unix milliseconds.
    pub fn unix_millis(&self) -> i64 {
        unix_millis(self.now())
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

/// Unix milliseconds, floored (negative before 1970).
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The wall time of Unix milliseconds `ms`.
pub(crate) fn from_unix_millis(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
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

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_the_clock_is_moved_past_it() {
        let clock = Clock::manual(UNIX_EPOCH);
        let at = UNIX_EPOCH + Duration::from_secs(60);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(at).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its time");
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(from_unix_millis(clock.unix_millis()), at);
    }

    #[test]
    fn unix_seconds_floor_before_and_after_the_epoch() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1999)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
