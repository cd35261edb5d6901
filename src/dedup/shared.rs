//! The ids several replicas share, in Redis (`dedup.backend = "redis"`).
//!
//! Each replica keeps its own [`Dedup`](super::Dedup) in front: copies that reach the
//! same replica wait for each other there, and its delivered ids answer duplicates
//! without a round trip. A copy that wins the local claim then claims the id here, where
//! the other replicas look. One key per route and id holds either a claim in flight
//! (`p` + a random token, expiring after the lease, so a replica that dies mid-forward
//! cannot hold the id for ever) or `d`, delivered, expiring after the route's ttl.
//!
//! - Claiming is one script: read the key, and set the claim only if it is absent (or
//!   already holds this claim, when a lost answer made the call go again).
//! - Delivered is a plain `SET`: whoever delivered, the id is delivered.
//! - Releasing deletes the key only while it still holds this claim's own token, so a
//!   late release never frees a claim that has since passed to another replica.
//!
//! A store that does not answer fails the request, and the provider retries: forwarding
//! the event unchecked could deliver it twice.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use redis::Script;
use tokio::time::Instant;

use super::delivered::Key;
use crate::reachability::Reachability;
use crate::redis_link::{Conn, Link};

/// How long one command may take, connecting included. The request's own deadline
/// bounds it too.
const STORE_WAIT: Duration = Duration::from_secs(1);

/// Reads the key; sets the claim only when the key is absent (or already holds this
/// claim: a retried call). Answers `{0, 0}` when this claim holds it, `{1, ms left}`
/// when it is delivered, `{2, 0}` when another claim holds it.
const CLAIM: &str = r"
local held = redis.call('GET', KEYS[1])
if not held or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {0, 0}
end
if held == 'd' then
  return {1, redis.call('PTTL', KEYS[1])}
end
return {2, 0}
";

/// Deletes the key while it holds this claim's token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The store did not answer, or answered something else than these scripts return.
/// The message is the client's: it never holds the URL or its password.
#[derive(Debug, thiserror::Error)]
#[error("the dedup store did not answer: {0}")]
pub struct StoreError(String);

impl StoreError {
    #[cfg(test)]
    pub fn unreachable_for_tests() -> Self {
        StoreError("connection refused".into())
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError(e.to_string())
    }
}

/// The connection to the store, shared by every request.
pub(crate) struct SharedIds {
    link: Link,
    claim: Script,
    release: Script,
    /// Failed commands, whatever they were for (`hookwarden_dedup_store_errors_total`).
    errors: IntCounter,
    /// Whether the last command reached the store (for `/readyz` and its logs).
    reach: Reachability,
}

/// What the store says of an id.
pub(crate) enum SharedClaim {
    /// This replica holds it now: forward, then settle the ticket.
    First(SharedTicket),
    /// Delivered, and remembered for `remaining` more.
    Delivered { remaining: Duration },
    /// Another replica is forwarding it right now.
    Elsewhere,
}

impl SharedIds {
    /// A client for `url`, connected on first use (and again after the store goes away),
    /// so a gateway starts while its store is still coming up. Must run inside the
    /// tokio runtime.
    pub(crate) fn connect(url: &str, errors: IntCounter) -> Result<Arc<Self>, StoreError> {
        let link = Link::open(url, STORE_WAIT)?;
        Ok(Arc::new(SharedIds {
            link,
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            errors,
            reach: Reachability::new(
                "the dedup store's Redis (dedup.redis_url)",
                "requests answer 503 until it is back",
            ),
        }))
    }

    /// Claims `id` on `route` for `lease` (the time its forward may take at most).
    pub(crate) async fn claim(
        self: &Arc<Self>,
        route: &str,
        id: &[u8],
        lease: Duration,
        deadline: Instant,
    ) -> Result<SharedClaim, StoreError> {
        let key = store_key(route, super::key(route, id));
        let token = token();
        let mut invocation = self.claim.key(&key);
        invocation.arg(&token).arg(millis(lease));
        let invocation = &invocation;
        let answer: Vec<i64> = self
            .bounded(Some(deadline), |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        match answer.as_slice() {
            [0, _] => Ok(SharedClaim::First(SharedTicket {
                shared: Arc::clone(self),
                key,
                token,
                open: true,
            })),
            // A PTTL below 0 (no expiry, or gone meanwhile) is read as nothing left.
            [1, ms] => Ok(SharedClaim::Delivered {
                remaining: Duration::from_millis(u64::try_from(*ms).unwrap_or(0)),
            }),
            [2, _] => Ok(SharedClaim::Elsewhere),
            _ => {
                self.errors.inc();
                Err(StoreError(format!("unexpected claim answer {answer:?}")))
            }
        }
    }

    /// Asks the store for a `PING`, so that readiness sees it come back while no
    /// request reaches this replica (`/readyz` calls it); the problem, while it cannot be
    /// reached.
    pub(crate) async fn probe(&self) -> Option<String> {
        let _ = self
            .bounded(None, |mut conn| async move {
                redis::cmd("PING").query_async::<()>(&mut conn).await
            })
            .await;
        self.reach.problem()
    }

    /// Runs one command within [`STORE_WAIT`] (and the request's `deadline`, when it
    /// must answer within it), counting failures. A
    /// command that met a lost connection goes once more, over the new connection its
    /// failure started: otherwise the first request after the store comes back would fail
    /// on the connection that broke while it was away. Every command here may be
    /// repeated without changing what it does.
    async fn bounded<T, F>(
        &self,
        deadline: Option<Instant>,
        command: impl Fn(Conn) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let wait = Instant::now() + STORE_WAIT;
        let until = deadline.map_or(wait, |d| d.min(wait));
        let attempts = async {
            match self.link.conn().await {
                Ok(conn) => match command(conn.clone()).await {
                    Err(e) if e.is_io_error() || e.is_unrecoverable_error() => command(conn).await,
                    answer => answer,
                },
                Err(e) => Err(e),
            }
        };
        let result = match tokio::time::timeout_at(until, attempts).await {
            Ok(outcome) => {
                self.reach.note(&outcome);
                outcome.map_err(StoreError::from)
            }
            Err(_) => {
                self.reach.missed("no answer in time");
                Err(StoreError("no answer in time".into()))
            }
        };
        if result.is_err() {
            self.errors.inc();
        }
        result
    }
}

/// This replica's claim in the store. Settle it with [`SharedTicket::delivered`] or
/// [`SharedTicket::release`]; dropped unsettled (the request went away), it is released
/// in the background.
pub(crate) struct SharedTicket {
    shared: Arc<SharedIds>,
    key: String,
    token: String,
    open: bool,
}

impl SharedTicket {
    /// The app took the event: the id is delivered for `ttl`, on every replica.
    pub(crate) async fn delivered(mut self, ttl: Duration) -> Result<(), StoreError> {
        self.open = false;
        let mut set = redis::cmd("SET");
        set.arg(&self.key).arg("d").arg("PX").arg(millis(ttl));
        // Not bound by the request's deadline: the app has the event, so recording it is
        // worth its full wait.
        self.shared
            .bounded(None, |mut conn| {
                let set = &set;
                async move { set.query_async::<()>(&mut conn).await }
            })
            .await
    }

    /// The app did not take it: free the id for the provider's retry.
    pub(crate) async fn release(mut self) -> Result<(), StoreError> {
        self.open = false;
        release(&self.shared, &self.key, &self.token).await
    }
}

impl Drop for SharedTicket {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // Without a runtime (shutting down) the lease expires it instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (shared, key, token) = (
                Arc::clone(&self.shared),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move {
                if let Err(e) = release(&shared, &key, &token).await {
                    tracing::warn!(error = %e, "an abandoned claim stays until its lease ends");
                }
            });
        }
    }
}

async fn release(shared: &SharedIds, key: &str, token: &str) -> Result<(), StoreError> {
    let mut invocation = shared.release.key(key);
    invocation.arg(token);
    let invocation = &invocation;
    shared
        .bounded(None, |mut conn| async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await
        .map(drop)
}

/// The key of an id: the route's name in clear for operators, the id as the same
/// 128-bit digest the local table keys by (ids may be long, or personal).
fn store_key(route: &str, key: Key) -> String {
    format!("hookwarden:dedup:{route}:{key:032x}")
}

/// A claim's own token, so only it can release itself.
fn token() -> String {
    format!("p{}", crate::signing::random_hex())
}

/// Milliseconds for `PX`, at least 1 (Redis refuses 0).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_route_and_hide_the_id() {
        let key = store_key("smartcv", super::super::key("smartcv", b"evt_1"));
        let (prefix, digest) = key.rsplit_once(':').expect("prefix");
        assert_eq!(prefix, "hookwarden:dedup:smartcv");
        assert_eq!(digest.len(), 32);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!key.contains("evt_1"));
        assert_ne!(
            key,
            store_key("other", super::super::key("other", b"evt_1")),
            "routes never share a key"
        );
    }

    #[test]
    fn tokens_differ_and_expiries_are_at_least_a_millisecond() {
        assert_ne!(token(), token());
        assert_eq!(millis(Duration::ZERO), 1, "PX 0 is an error in Redis");
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_reached_fails_without_naming_its_password() {
        let errors = IntCounter::new("e", "e").expect("counter");
        // Port 1 on loopback: nothing listens there.
        let shared = SharedIds::connect("redis://:hunter2@127.0.0.1:1/0", errors.clone())
            .expect("a lazy client");
        let deadline = Instant::now() + Duration::from_secs(5);
        let Err(e) = shared
            .claim("r", b"evt", Duration::from_secs(1), deadline)
            .await
        else {
            panic!("claimed on a store that is not there")
        };
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(errors.get(), 1);
    }
}
