//! One-time tokens (Mailgun's): a scheme that signs a token and a timestamp but not the
//! event must not let one captured request vouch for a second event. A token is claimed
//! when its request verifies, and forgotten once its timestamp has left the replay
//! window. It is never given back, even when the event is not accepted: Mailgun signs
//! each retry afresh, and a token freed after a failed delivery would let whoever saw
//! the request attach another event to it.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_once_per_route_until_it_expires() {
        let tokens = ReplayTokens::default();
        assert_eq!(tokens.claim("a", b"t", 100, 10), Ok(()));
        assert_eq!(tokens.claim("a", b"t", 100, 50), Err(Refused::Seen));
        assert_eq!(tokens.claim("b", b"t", 100, 50), Ok(()));
        assert_eq!(tokens.claim("a", b"t", 200, 101), Ok(()), "expired");
        assert_eq!(tokens.claim("a", b"t", 300, 150), Err(Refused::Seen));
    }
}
