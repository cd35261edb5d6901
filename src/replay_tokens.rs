//! One-time tokens (Mailgun's): a scheme that signs a token and a timestamp but not the
//! event must not let one captured request vouch for a second event. A token is claimed
//! when its request verifies, released if the event was not accepted (so the provider's
//! retry is not refused), and forgotten once its timestamp has left the replay window.
//!
//! Kept in `App`, so a reload does not forget them; bounded, so a flood of valid tokens
//! answers 503 (the provider retries) instead of growing without end.

use std::collections::HashMap;
use std::sync::Mutex;

/// Tokens claimed at once, across routes: far above any provider's rate in one window.
const CAPACITY: usize = 1_000_000;

#[derive(Default)]
pub(crate) struct ReplayTokens {
    /// (route, token) → the unix second after which the token no longer matters.
    seen: Mutex<HashMap<(String, Vec<u8>), i64>>,
}

/// Why a token was not claimed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Already accepted on this route while in the window: a replay.
    Seen,
    /// Too many tokens in the window.
    Full,
}

impl ReplayTokens {
    /// Claims `token` on `route` until `until`, judged at `now`.
    pub(crate) fn claim(
        &self,
        route: &str,
        token: &[u8],
        until: i64,
        now: i64,
    ) -> Result<(), Refused> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (route.to_string(), token.to_vec());
        if seen.get(&key).is_some_and(|&expires| expires >= now) {
            return Err(Refused::Seen);
        }
        if seen.len() >= CAPACITY {
            seen.retain(|_, expires| *expires >= now);
            if seen.len() >= CAPACITY {
                return Err(Refused::Full);
            }
        }
        seen.insert(key, until);
        Ok(())
    }

    /// Gives back a token whose event was not accepted.
    pub(crate) fn release(&self, route: &str, token: &[u8]) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(&(route.to_string(), token.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_once_per_route_until_it_expires_or_is_released() {
        let tokens = ReplayTokens::default();
        assert_eq!(tokens.claim("a", b"t", 100, 10), Ok(()));
        assert_eq!(tokens.claim("a", b"t", 100, 50), Err(Refused::Seen));
        assert_eq!(tokens.claim("b", b"t", 100, 50), Ok(()));
        assert_eq!(tokens.claim("a", b"t", 200, 101), Ok(()), "expired");
        tokens.release("a", b"t");
        assert_eq!(tokens.claim("a", b"t", 300, 150), Ok(()), "released");
    }
}
