//! Per-route limits on verified deliveries (docs/request-handling.md check 11), with governor's GCRA on
//! the injectable clock so tests move time instead of sleeping.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use crate::route::RateLimit;

#[derive(Clone)]
struct LimiterClock(Clock);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

pub(crate) struct Limiter {
    inner: RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Duration>>,
    clock: LimiterClock,
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit, clock: Clock) -> Self {
        // governor works in u64 nanoseconds and multiplies the period by the burst;
        // validation keeps both within these bounds, and so does this, defensively.
        let period = Duration::try_from_secs_f64(1.0 / limit.per_second)
            .unwrap_or(RateLimit::MAX_PERIOD)
            .min(RateLimit::MAX_PERIOD);
        let burst =
            NonZeroU32::new(limit.burst.min(RateLimit::MAX_BURST)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let clock = LimiterClock(clock);
        Limiter {
            inner: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Takes one token, or says in whole seconds (at least 1) when one will be there:
    /// the `Retry-After` value.
    pub(crate) fn check(&self) -> Result<(), u64> {
        self.inner.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_burst_then_refusal_with_retry_after_then_refill() {
        let clock = Clock::manual(UNIX_EPOCH);
        let limiter = Limiter::new(
            &RateLimit {
                per_second: 0.5,
                burst: 3,
            },
            clock.clone(),
        );
        for _ in 0..3 {
            assert_eq!(limiter.check(), Ok(()));
        }
        assert_eq!(limiter.check(), Err(2), "one token every 2 s");
        clock.advance(Duration::from_millis(1500));
        assert_eq!(limiter.check(), Err(1), "0.5 s rounds up to 1");
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check(), Ok(()));
        assert!(limiter.check().is_err());
    }

    #[test]
    fn extreme_rates_do_not_panic() {
        let clock = Clock::manual(UNIX_EPOCH);
        let tiny = Limiter::new(
            &RateLimit {
                per_second: 1e-300,
                burst: 1,
            },
            clock.clone(),
        );
        assert_eq!(tiny.check(), Ok(()));
        assert!(tiny.check().is_err());
        let huge = Limiter::new(
            &RateLimit {
                per_second: 1e300,
                burst: 1,
            },
            clock,
        );
        assert_eq!(huge.check(), Ok(()));
    }
}
