//! The time limits of one connection, whatever protocol it speaks (SPEC §3).
//!
//! - From accept, the first request must have begun (its head complete) within
//!   `header_read_timeout`: a connection that says nothing, or half a preface, or an
//!   HTTP/2 header block it never ends, is closed then.
//! - Between requests the connection is idle: closed after `idle_timeout`, or after
//!   `header_read_timeout` once bytes arrive that do not become a request (a head that
//!   starts and stalls, in either protocol).
//!
//! A request "begins" when hyper hands it to the service, so the watch never parses a
//! protocol: it counts requests in progress ([`Activity::begin`]) and notes bytes read
//! while none is ([`Watched`]).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the watch sees of a connection.
#[derive(Default)]
pub struct Activity {
    /// Requests being served now.
    requests: AtomicUsize,
    /// Requests begun so far, so the watch notices one that began and ended between
    /// two of its looks.
    begun: AtomicU64,
    /// Bytes arrived while no request was in progress.
    stirred: AtomicBool,
    changed: Notify,
}

impl Activity {
    /// A request has begun; it is in progress until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.begun.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        Busy(Arc::clone(self))
    }

    fn busy(&self) -> bool {
        self.requests.load(Ordering::SeqCst) > 0
    }

    fn read_some(&self) {
        // Only the first bytes of an idle spell matter; the swap keeps reads cheap after.
        if !self.busy() && !self.stirred.swap(true, Ordering::SeqCst) {
            self.changed.notify_waiters();
        }
    }
}

/// One request in progress.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.requests.fetch_sub(1, Ordering::SeqCst) == 1 {
            // A new idle spell: only bytes from now on are a head on its way.
            self.0.stirred.store(false, Ordering::SeqCst);
        }
        self.0.changed.notify_waiters();
    }
}

pub struct Limits {
    /// When the first request must have begun.
    pub first_head_by: Instant,
    /// From the first byte of a head to the request beginning.
    pub head: Duration,
    /// With no request in progress and nothing arriving.
    pub idle: Duration,
}

/// Resolves when the connection has outlived its limits.
pub async fn until_expired(activity: &Activity, limits: Limits) {
    // Until the first request, one deadline holds whatever arrives.
    let mut idle_until = limits.first_head_by;
    let mut head_by: Option<Instant> = None;
    let mut seen = 0;
    loop {
        let changed = activity.changed.notified();
        tokio::pin!(changed);
        // Registered before the state is read, so no change is missed in between.
        changed.as_mut().enable();
        if activity.busy() {
            changed.await;
            continue;
        }
        let begun = activity.begun.load(Ordering::SeqCst);
        if begun != seen {
            // A request ended since the last look: a new idle spell.
            seen = begun;
            idle_until = Instant::now() + limits.idle;
            head_by = None;
        }
        if head_by.is_none() && activity.stirred.load(Ordering::SeqCst) {
            head_by = Some(Instant::now() + limits.head);
        }
        let deadline = head_by.map_or(idle_until, |h| h.min(idle_until));
        tokio::select! {
            // A request that began at the deadline is served, not cut.
            biased;
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// A connection's stream, telling its [`Activity`] when bytes arrive.
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn limits() -> Limits {
        Limits {
            first_head_by: Instant::now() + HEAD,
            head: HEAD,
            idle: IDLE,
        }
    }

    /// How long the watch lets the connection live, on tokio's paused clock.
    async fn lifetime(script: impl FnOnce(Arc<Activity>) + Send) -> Duration {
        let activity = Arc::new(Activity::default());
        let start = Instant::now();
        let watch = until_expired(&activity, limits());
        tokio::pin!(watch);
        // One poll, so the watch has registered before the script acts.
        assert!(futures_poll(&mut watch).await.is_none());
        script(Arc::clone(&activity));
        watch.await;
        start.elapsed()
    }

    async fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        tokio::select! {
            biased;
            out = f => Some(out),
            () = std::future::ready(()) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_sends_a_request_lives_for_the_head_timeout() {
        assert_eq!(lifetime(|_| {}).await, HEAD);
        // Bytes that never become a request change nothing.
        assert_eq!(lifetime(|a| a.read_some()).await, HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_never_cut_and_idleness_starts_when_it_ends() {
        let activity = Arc::new(Activity::default());
        let start = Instant::now();
        let watch = until_expired(&activity, limits());
        tokio::pin!(watch);
        assert!(futures_poll(&mut watch).await.is_none());
        let busy = activity.begin();
        assert!(futures_poll(&mut watch).await.is_none());
        // Far past every limit while the request runs.
        tokio::time::sleep(IDLE * 3).await;
        assert!(futures_poll(&mut watch).await.is_none(), "cut mid-request");
        let ended = Instant::now();
        drop(busy);
        watch.await;
        assert_eq!(ended - start, IDLE * 3);
        assert_eq!(Instant::now() - ended, IDLE, "idle spell after the request");
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_on_an_idle_connection_must_become_a_request_within_the_head_timeout() {
        let activity = Arc::new(Activity::default());
        let watch = until_expired(&activity, limits());
        tokio::pin!(watch);
        // A request that begins and ends before the watch looks still counts.
        drop(activity.begin());
        assert!(futures_poll(&mut watch).await.is_none());
        tokio::time::sleep(Duration::from_secs(30)).await;
        let stirred = Instant::now();
        activity.read_some();
        watch.await;
        assert_eq!(Instant::now() - stirred, HEAD);
    }
}
