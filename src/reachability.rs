//! Whether a Redis the gateway uses (the shared dedup ids, the queue) answers, as its
//! commands last saw: `/readyz` answers 503 naming it while it does not
//! (docs/operations.md "Probes"), and each change is logged once, not once per request.

use std::sync::atomic::{AtomicBool, Ordering};

/// One Redis's reachability, noted by every command sent to it.
pub(crate) struct Reachability {
    /// What the logs and `/readyz` call it, with its key: "the queue's Redis (queue.redis_url)".
    what: &'static str,
    /// What stops working while it cannot be reached, for the log line.
    consequence: &'static str,
    unreachable: AtomicBool,
}

impl Reachability {
    /// Reachable until a command shows otherwise.
    pub(crate) const fn new(what: &'static str, consequence: &'static str) -> Self {
        Reachability {
            what,
            consequence,
            unreachable: AtomicBool::new(false),
        }
    }

    /// Notes that a command got an answer from Redis (an error answer included).
    pub(crate) fn answered(&self) {
        if self.unreachable.swap(false, Ordering::SeqCst) {
            tracing::info!("{} answers again", self.what);
        }
    }

    /// Notes that a command did not reach Redis, for `reason`.
    pub(crate) fn missed(&self, reason: &str) {
        if !self.unreachable.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %reason, "{} cannot be reached; {}", self.what, self.consequence);
        }
    }

    /// Notes what a command's outcome says: an answer, even an error, means reached.
    pub(crate) fn note<T>(&self, outcome: &Result<T, redis::RedisError>) {
        match outcome {
            Err(e) if !reached(e) => self.missed(&e.to_string()),
            _ => self.answered(),
        }
    }

    /// Why this replica should get no traffic, while Redis cannot be reached.
    pub(crate) fn problem(&self) -> Option<String> {
        self.unreachable
            .load(Ordering::SeqCst)
            .then(|| format!("{} cannot be reached", self.what))
    }
}

/// Connects to `url` and sends a `PING`, within `wait`: what `hookwarden check` tries.
/// The error is the client's, which never repeats the URL or its password.
pub(crate) async fn ping(url: &str, wait: std::time::Duration) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await
    };
    match tokio::time::timeout(wait, attempt).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} s", wait.as_secs())),
    }
}

/// Whether the error came from Redis itself (a script's error, a wrong type), not from
/// failing to reach it.
pub(crate) fn reached(e: &redis::RedisError) -> bool {
    !(e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.is_unrecoverable_error())
}

#[cfg(test)]
mod tests {
    use super::Reachability;

    #[test]
    fn a_miss_makes_a_problem_until_the_next_answer() {
        let r = Reachability::new("the dedup store's Redis (dedup.redis_url)", "requests fail");
        assert_eq!(r.problem(), None);
        r.missed("connection refused");
        r.missed("connection refused");
        assert_eq!(
            r.problem().as_deref(),
            Some("the dedup store's Redis (dedup.redis_url) cannot be reached")
        );
        let refused: Result<(), redis::RedisError> = Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "an error Redis answered",
        )));
        r.note(&refused);
        assert_eq!(r.problem(), None, "an error answer is an answer");
    }
}
