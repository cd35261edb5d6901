//! Queue delivery (docs/queue.md): every event a `queue` route accepts is stored durably,
//! answered at once, and delivered by the gateway with retries until the app takes it
//! or it becomes a dead letter.
//!
//! [`Queue`] is the one way in: the pipeline stores events through it, the admin API
//! lists them and pulls its levers (redeliver, retry now, pause) through it, and its
//! workers deliver. Its operations keep the store, the in-memory state and the workers
//! consistent by themselves: nothing else reaches the store, and no caller has to wake
//! a worker after a change.
//!
//! - [`model`]: what is stored and answered; [`error`]: [`QueueError`].
//! - [`store`]: the [`Store`] trait every backend implements, and the workers'
//!   wake-ups; [`disk`]: SQLite under `queue.dir`, for one process; [`redis`]: Redis,
//!   shared by replicas.
//! - [`worker`]: the supervisor, one worker per route, the retention sweep, and the
//!   [`Deliver`] interface through which the layer above sends an event to the app;
//!   [`backoff`]: when a failed event is attempted again.

mod backoff;
mod disk;
mod error;
mod model;
mod redis;
mod store;
mod worker;

#[cfg(test)]
mod tests;

pub(crate) use backoff::Backoff;
pub(crate) use error::QueueError;
pub(crate) use model::{
    kept_response, Counts, Detail, Enqueue, Enqueued, Filter, NewEvent, Page, PageRequest, Pending,
    Redelivered, State, Summary,
};
pub(crate) use store::{BoxFuture, Bulk};
pub(crate) use worker::{Deliver, Plan, Policy, Sent};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{QueueBackend, QueueConfig};
use crate::metrics::QueueMetrics;
use crate::sync::lock;
use disk::DiskStore;
use store::{Signals, Store};

/// The stored events, their workers and the operators' levers.
pub(crate) struct Queue {
    backend: Backend,
    signals: Arc<Signals>,
    clock: Clock,
    metrics: QueueMetrics,
    /// Routes an operator paused (kept in the store; this is its copy).
    paused: Mutex<HashSet<String>>,
    tasks: worker::Tasks,
    /// Routes whose queue series are exported, so a route that stops queueing loses them.
    exported: Mutex<HashSet<String>>,
    /// Bumped by each reload, so that workers read their route's plan again only then.
    generation: AtomicU64,
}

/// Where the events are kept.
enum Backend {
    Disk(DiskStore),
    Redis(Box<redis::RedisStore>),
}

impl Queue {
    /// Opens the store of `[queue]` (for `disk`: creating and locking `queue.dir`; for
    /// `redis`: connecting on first use). `lease`: how long an attempt may stay in flight
    /// before another replica takes it over.
    pub(crate) fn open(
        config: &QueueConfig,
        lease: std::time::Duration,
        clock: Clock,
        metrics: QueueMetrics,
    ) -> Result<Queue, QueueError> {
        let signals = Arc::new(Signals::default());
        let errors = metrics.store_errors.clone();
        let backend = match &config.backend {
            QueueBackend::Disk => Backend::Disk(DiskStore::open(
                &config.dir,
                config.max_bytes,
                errors,
                Arc::clone(&signals),
            )?),
            QueueBackend::Redis { url, prefix } => {
                Backend::Redis(Box::new(redis::RedisStore::open(
                    url,
                    prefix,
                    config.max_bytes,
                    lease,
                    errors,
                    Arc::clone(&signals),
                )?))
            }
        };
        Ok(Queue {
            backend,
            signals,
            clock,
            metrics,
            paused: Mutex::default(),
            tasks: worker::Tasks::default(),
            exported: Mutex::default(),
            generation: AtomicU64::new(0),
        })
    }

    /// Whether `[queue]` names a store that may hold events even with no queue route
    /// configured (they are still to be delivered): a disk store already in `queue.dir`,
    /// or any shared store (another replica may have stored them).
    pub(crate) fn exists(config: &QueueConfig) -> bool {
        match &config.backend {
            QueueBackend::Disk => DiskStore::exists(&config.dir),
            QueueBackend::Redis { .. } => true,
        }
    }

    fn store(&self) -> &dyn Store {
        match &self.backend {
            Backend::Disk(disk) => disk,
            Backend::Redis(redis) => redis.as_ref(),
        }
    }

    /// Why the queue cannot accept now (its Redis is unreachable), for readiness.
    pub(crate) fn problem(&self) -> Option<String> {
        self.store().problem()
    }

    // === Accepting ===

    /// Stores a request's events durably, in one write (docs/queue.md "Accepting").
    pub(crate) async fn accept(&self, write: Enqueue) -> Result<Enqueued, QueueError> {
        self.store().enqueue(write).await
    }

    // === Delivering ===

    /// Starts delivering what is stored, through `deliver`.
    pub(crate) fn start(self: &Arc<Self>, deliver: Arc<dyn Deliver>) {
        let tracker = &self.tasks.tracker;
        tracker.spawn(worker::supervise(Arc::clone(self), Arc::clone(&deliver)));
        tracker.spawn(worker::sweep_periodically(Arc::clone(self), deliver));
    }

    /// No new attempts from now on; those in flight go on.
    pub(crate) fn stop_attempts(&self) {
        self.tasks.stop.cancel();
    }

    /// Waits, until `deadline`, for the attempts in flight to end and their outcomes to
    /// be stored; past it they are dropped and attempted again at the next start.
    pub(crate) async fn finish(&self, deadline: Instant) {
        self.tasks.stop.cancel();
        self.tasks.tracker.close();
        if tokio::time::timeout_at(deadline, self.tasks.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace ran out with delivery attempts in flight; they will be attempted again at the next start");
            self.tasks.abort.cancel();
            self.tasks.tracker.wait().await;
        }
    }

    /// Closes the store once every task ended (after [`Queue::finish`] there are none;
    /// any left are dropped now): writes asked are finished, and the folder's lock is
    /// free for the next process.
    pub(crate) async fn close(&self) {
        self.tasks.stop.cancel();
        self.tasks.abort.cancel();
        self.tasks.tracker.close();
        self.tasks.tracker.wait().await;
        self.store().close().await;
    }

    // === Levers ===

    /// A dead or delivered event back to pending (attempts reset), or a pending one that
    /// waits attempted now (attempts kept).
    pub(crate) async fn redeliver(
        &self,
        route: &str,
        id: &[u8],
    ) -> Result<Redelivered, QueueError> {
        let now = self.clock.unix_millis();
        self.store().redeliver(route, id, now).await
    }

    /// Every event of `bulk` back to pending, attempts reset, in chunks that never hold
    /// up accepting; how many.
    pub(crate) async fn redeliver_matching(&self, bulk: &Bulk) -> Result<u64, QueueError> {
        let now = self.clock.unix_millis();
        let mut total = 0;
        let mut cursor: Option<String> = None;
        loop {
            let chunk = self
                .store()
                .redeliver_chunk(bulk, cursor.as_deref(), now, worker::CHUNK)
                .await?;
            total += chunk.changed;
            match chunk.next {
                Some(next) => cursor = Some(next),
                None => return Ok(total),
            }
        }
    }

    /// Every pending event of `route` that waits for its backoff, due now (attempts
    /// kept); how many.
    pub(crate) async fn retry_now(&self, route: &str) -> Result<u64, QueueError> {
        let now = self.clock.unix_millis();
        let mut total = 0;
        loop {
            let n = self
                .store()
                .retry_now_chunk(route, now, worker::CHUNK)
                .await?;
            total += n;
            if n < worker::CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Pauses `route` (it keeps accepting and storing, and starts no attempt) or
    /// resumes it. Kept in the store, so it holds across restarts.
    pub(crate) async fn pause(&self, route: &str, paused: bool) -> Result<(), QueueError> {
        self.store().set_paused(route, paused).await?;
        {
            let mut all = lock(&self.paused);
            if paused {
                all.insert(route.to_string());
            } else {
                all.remove(route);
            }
        }
        self.signals.wake(route);
        Ok(())
    }

    /// Routes or their settings changed (a reload): every worker looks again.
    pub(crate) fn reconfigured(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.signals.wake_all();
    }

    /// Which configuration the workers' cached plans must match.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Reads which routes are paused from the store (at the start of delivery).
    async fn load_paused(&self) -> Result<(), QueueError> {
        let paused = self.store().paused().await?;
        *lock(&self.paused) = paused;
        Ok(())
    }

    pub(crate) fn is_paused(&self, route: &str) -> bool {
        lock(&self.paused).contains(route)
    }

    // === Reads ===

    pub(crate) async fn list(&self, filter: Filter, page: PageRequest) -> Result<Page, QueueError> {
        self.store().list(filter, page).await
    }

    pub(crate) async fn detail(
        &self,
        route: &str,
        id: &[u8],
    ) -> Result<Option<Detail>, QueueError> {
        self.store().detail(route, id).await
    }

    pub(crate) async fn counts(&self, route: &str) -> Result<Counts, QueueError> {
        let all = self.store().counts().await?;
        Ok(all.get(route).copied().unwrap_or_default())
    }

    /// Seconds since the oldest pending event of `route` was received (0 when none).
    pub(crate) async fn oldest_pending_seconds(&self, route: &str) -> Result<f64, QueueError> {
        let oldest = self.store().oldest_pending(route).await?;
        let now = self.clock.unix_millis();
        Ok(oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0))
    }

    /// Sets the queue gauges of `routes` (the configured queue routes) from the store,
    /// and drops the series of routes that no longer queue.
    pub(crate) async fn gauges(&self, routes: &[String]) {
        let Ok(counts) = self.store().counts().await else {
            return;
        };
        for route in routes {
            let c = counts.get(route).copied().unwrap_or_default();
            let oldest = match c.pending {
                0 => 0.0,
                _ => self.oldest_pending_seconds(route).await.unwrap_or(0.0),
            };
            self.metrics
                .route(route, (c.pending, c.dead), oldest, self.is_paused(route));
        }
        let mut exported = lock(&self.exported);
        for gone in exported.iter().filter(|r| !routes.contains(r)) {
            self.metrics.forget(gone);
        }
        *exported = routes.iter().cloned().collect();
    }

    // === For tests ===

    /// Makes the disk store refuse to grow past `pages` pages, as a full disk does.
    pub(crate) async fn limit_pages(&self, pages: u64) -> Result<(), QueueError> {
        match &self.backend {
            Backend::Disk(disk) => disk.limit_pages(pages).await,
            Backend::Redis(_) => Ok(()),
        }
    }

    /// The disk store's database file.
    pub(crate) fn database(&self) -> Option<PathBuf> {
        match &self.backend {
            Backend::Disk(disk) => Some(disk.path()),
            Backend::Redis(_) => None,
        }
    }
}
