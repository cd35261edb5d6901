//! When a queued event is attempted again (docs/queue.md): exponential, x2 from
//! `backoff.initial`, capped at `backoff.max`, with full jitter (a uniformly random delay
//! between 0 and the cap), so that the events of an app that just came back do not all
//! return at once; or the app's own `Retry-After` of a 429 or 503 when that is longer
//! (capped at `backoff.max` too).

use std::time::Duration;

/// The schedule of `[queue] backoff`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `failed`-th failed attempt (from 1), with `unit` a uniformly
    /// random number in [0, 1] and the app's `retry_after`, if it sent one.
    pub(crate) fn delay(&self, failed: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let doublings = failed.saturating_sub(1);
        // Past 2^31 times `initial`, `max` is the ceiling whatever it is.
        let ceiling = 1u32
            .checked_shl(doublings)
            .and_then(|factor| self.initial.checked_mul(factor))
            .unwrap_or(self.max)
            .min(self.max);
        let jittered = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(asked) if asked > jittered => asked.min(self.max),
            _ => jittered,
        }
    }
}

/// A uniformly random number in [0, 1] from the OS (the middle, if it has none).
pub(crate) fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits: every double in [0, 1) with that spacing is equally likely.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1800),
    };

    #[test]
    fn the_ceiling_doubles_from_initial_up_to_max() {
        let at_most = |failed| B.delay(failed, 1.0, None);
        assert_eq!(at_most(1), Duration::from_secs(1));
        assert_eq!(at_most(2), Duration::from_secs(2));
        assert_eq!(at_most(5), Duration::from_secs(16));
        assert_eq!(at_most(12), Duration::from_secs(1800));
        assert_eq!(at_most(u32::MAX), Duration::from_secs(1800), "no overflow");
        assert_eq!(
            B.delay(5, 0.0, None),
            Duration::ZERO,
            "full jitter starts at 0"
        );
        assert_eq!(B.delay(5, 0.25, None), Duration::from_secs(4));
    }

    #[test]
    fn a_longer_retry_after_wins_but_never_past_max() {
        let asked = Some(Duration::from_secs(120));
        assert_eq!(B.delay(1, 1.0, asked), Duration::from_secs(120));
        assert_eq!(
            B.delay(12, 1.0, asked),
            Duration::from_secs(1800),
            "the jitter was longer"
        );
        assert_eq!(
            B.delay(1, 1.0, Some(Duration::from_secs(86_400))),
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn random_units_stay_in_range() {
        for _ in 0..1000 {
            let u = unit_random();
            assert!((0.0..=1.0).contains(&u), "{u}");
        }
    }
}
