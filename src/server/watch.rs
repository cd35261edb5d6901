//! The time limits of one connection, whatever protocol it speaks (docs/request-handling.md).
//!
//! - From accept, the first request must have begun (its head complete) within
//!   `header_read_timeout`: a connection that says nothing, or half a preface, or an
//!   HTTP/2 header block it never ends, is closed then.
//! - Between requests the connection is idle: closed `idle_timeout` after its last
//!   request ended, or once bytes that arrived meanwhile have not become a request within
//!   `header_read_timeout` (a head that starts and stalls, in either protocol).
//!
//! A request "begins" when hyper hands it to the service, so the watch never parses a
//! protocol: requests note when they begin and end ([`Activity::begin`]), reads note the
//! first bytes of an idle spell (its [`Tap`]), and the watch looks at those notes only
//! when a deadline falls due; a request costs it two atomic counts and one clock read,
//! and wakes nothing. While idle it looks again at least every `header_read_timeout`, so
//! a stalled head is closed within twice that time of its first byte.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::read_tap::Tap;

/// What the watch sees of a connection. Times are nanoseconds since accept, plus one,
/// so that 0 can mean "not yet".
pub(super) struct Activity {
    accepted: Instant,
    /// Requests being served now.
    requests: AtomicUsize,
    /// When the last request ended.
    last_end: AtomicU64,
    /// When bytes first arrived in the current idle spell.
    stirred: AtomicU64,
}

impl Activity {
    pub(super) fn new(accepted: Instant) -> Self {
        Activity {
            accepted,
            requests: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
            stirred: AtomicU64::new(0),
        }
    }

    /// A request has begun; it is in progress until the guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(self))
    }

    fn mark(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn at(&self, mark: u64) -> Option<Instant> {
        (mark > 0).then(|| self.accepted + Duration::from_nanos(mark - 1))
    }

    fn read_some(&self) {
        // Only the first bytes of an idle spell matter.
        if self.requests.load(Ordering::SeqCst) == 0 && self.stirred.load(Ordering::Relaxed) == 0 {
            let _ =
                self.stirred
                    .compare_exchange(0, self.mark(), Ordering::SeqCst, Ordering::Relaxed);
        }
    }

    /// When the watch should look again, from `now`; `None` when the connection has
    /// outlived its limits.
    fn next_look(&self, limits: &Limits, now: Instant) -> Option<Instant> {
        if self.requests.load(Ordering::SeqCst) > 0 {
            // A request in progress is never cut; look again once it may have ended.
            return Some(now + limits.head.min(limits.idle));
        }
        let Some(ended) = self.at(self.last_end.load(Ordering::SeqCst)) else {
            // No request yet: one deadline holds whatever arrives.
            return (now < limits.first_head_by).then_some(limits.first_head_by);
        };
        let mut due = ended + limits.idle;
        if let Some(stirred) = self.at(self.stirred.load(Ordering::SeqCst)) {
            due = due.min(stirred + limits.head);
        }
        // Bytes may come at any moment: looked at again within `head`.
        (now < due).then(|| due.min(now + limits.head))
    }
}

/// One request in progress.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.requests.fetch_sub(1, Ordering::SeqCst) == 1 {
            // A new idle spell: only bytes from now on are a head on its way.
            activity.stirred.store(0, Ordering::SeqCst);
            activity.last_end.store(activity.mark(), Ordering::SeqCst);
        }
    }
}

pub(super) struct Limits {
    /// When the first request must have begun.
    pub first_head_by: Instant,
    /// From the first byte of a head to the request beginning.
    pub head: Duration,
    /// With no request in progress and nothing arriving.
    pub idle: Duration,
}

/// Resolves when the connection has outlived its limits.
pub(super) async fn until_expired(activity: &Activity, limits: Limits) {
    let look = tokio::time::sleep_until(limits.first_head_by);
    tokio::pin!(look);
    loop {
        look.as_mut().await;
        match activity.next_look(&limits, Instant::now()) {
            Some(next) => look.as_mut().reset(next),
            None => return,
        }
    }
}

/// Reads tell the connection's [`Activity`] when bytes arrive.
impl Tap for Arc<Activity> {
    fn saw(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.read_some();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn limits(accepted: Instant) -> Limits {
        Limits {
            first_head_by: accepted + HEAD,
            head: HEAD,
            idle: IDLE,
        }
    }

    /// Runs the watch of a fresh connection on tokio's paused clock while `script`
    /// acts on it; returns how long the connection lived.
    async fn lifetime<F, Fut>(script: F) -> Duration
    where
        F: FnOnce(Arc<Activity>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let accepted = Instant::now();
        let activity = Arc::new(Activity::new(accepted));
        let watch = until_expired(&activity, limits(accepted));
        tokio::pin!(watch);
        let acting = script(Arc::clone(&activity));
        tokio::pin!(acting);
        let mut acted = false;
        loop {
            tokio::select! {
                biased;
                () = &mut watch => return accepted.elapsed(),
                () = &mut acting, if !acted => acted = true,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_sends_a_request_lives_for_the_head_timeout() {
        assert_eq!(lifetime(|_| async {}).await, HEAD);
        // Bytes that never become a request change nothing.
        assert_eq!(lifetime(|a| async move { a.read_some() }).await, HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_never_cut_and_idleness_starts_when_it_ends() {
        let lived = lifetime(|a| async move {
            let busy = a.begin();
            // Far past every limit while the request runs.
            tokio::time::sleep(IDLE * 3).await;
            drop(busy);
        })
        .await;
        assert_eq!(lived, IDLE * 3 + IDLE, "an idle spell after the request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_request_keeps_the_connection_past_its_first_head_deadline() {
        let lived = lifetime(|a| async move {
            drop(a.begin());
        })
        .await;
        assert_eq!(lived, IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_on_an_idle_connection_must_become_a_request_soon() {
        let lived = lifetime(|a| async move {
            drop(a.begin());
            tokio::time::sleep(Duration::from_secs(25)).await;
            a.read_some();
        })
        .await;
        // The head is judged at the next look: within twice its timeout of the bytes.
        assert!(
            (Duration::from_secs(35)..=Duration::from_secs(45)).contains(&lived),
            "{lived:?}"
        );
    }
}
