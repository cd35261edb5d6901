//! Delivering stored events (docs/queue.md "Delivery"): a supervisor keeps one worker
//! per route that has events to deliver, and a sweeper deletes settled events past their
//! retention.
//!
//! A worker claims its route's due events from the store (which marks them in flight),
//! at most `concurrency` with the app at once, attempts each through [`Deliver`], and
//! stores each outcome; then it sleeps until the soonest of: an attempt answered, the
//! store saying there is something new (an event stored, an outcome stored, a lever
//! pulled), the next event falling due (on the gateway's clock, so tests move time
//! instead of waiting), or the stop. A paused route claims nothing.
//!
//! Each attempt reads the configuration in force when it starts, so a reload's upstream,
//! `forward_path` and headers apply to pending events. The supervisor keeps a worker for
//! every configured route that is a queue route or holds pending events; the events of a
//! route a reload removed wait, stored, until it returns.
//!
//! Every task here is tracked: the stop token ends new attempts, the attempts in flight
//! finish and their outcomes are stored, and past the shutdown grace the abort token
//! drops what is left (those events are attempted again at the next start).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::{unit_random, Backoff};
use super::model::{Attempt, Pending, Settle, Then};
use super::store::{BoxFuture, Cutoffs};
use super::Queue;
use crate::clock::from_unix_millis;
use crate::metrics::AttemptResult;

/// How often settled events past their retention are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Events a chunk of a bulk change (sweep, redelivery, retry now) looks at, at most:
/// one short write of its own between the queue's others. At 1,000 a chunk of the sweep
/// took 10.7 ms (median) to 47 ms here, and every `queued` answer behind it waited that
/// long; at 250, 6.6 ms (median) to 52 ms (docs/performance.md "Queue").
pub(super) const CHUNK: usize = 250;
/// After the store fails a read, a worker waits this long before looking again.
const STORE_PAUSE: Duration = Duration::from_secs(1);

/// How a route's events are delivered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Attempts with the app at once; 1 keeps arrival order.
    pub concurrency: usize,
    /// A queue route (else a `sync` route delivering what it stored before).
    pub queued: bool,
    /// Settled events are kept at least this long: they tell a late copy it is a
    /// duplicate.
    pub dedup_ttl: Duration,
}

/// The schedule of `[queue]` now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub retention: Duration,
    /// `dedup.ttl`, for routes no longer configured.
    pub dedup_ttl: Duration,
}

/// What the app said to one attempt.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    pub delivered: bool,
    pub status: Option<u16>,
    /// Why there was no answer (no connection, timeout), for the history.
    pub error: Option<String>,
    /// The app's `Retry-After` on a 429 or 503.
    pub retry_after: Option<Duration>,
    /// The start of its answer body (see `model::kept_response`).
    pub response: Option<String>,
}

/// What delivering takes from the layer above, which knows HTTP and the configuration.
pub(crate) trait Deliver: Send + Sync + 'static {
    /// How `route` is delivered now; `None` when no route of that name is configured.
    fn plan(&self, route: &str) -> Option<Plan>;
    /// Every configured route, with its plan.
    fn routes(&self) -> Vec<(String, Plan)>;
    fn policy(&self) -> Policy;
    /// One attempt of `event` (numbered from 1), as the configuration says now.
    fn send(&self, event: &Pending, attempt: u32) -> BoxFuture<'static, Sent>;
}

/// Stops and waits for the delivery tasks.
pub(super) struct Tasks {
    pub tracker: tokio_util::task::TaskTracker,
    /// No new attempts.
    pub stop: CancellationToken,
    /// Drop the attempts in flight too (the grace ran out).
    pub abort: CancellationToken,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            tracker: tokio_util::task::TaskTracker::new(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
        }
    }
}

/// Keeps a worker for every route with events to deliver, until the stop.
pub(super) async fn supervise(queue: Arc<Queue>, deliver: Arc<dyn Deliver>) {
    let stop = queue.tasks.stop.clone();
    // A pause outlives restarts: known before the first claim.
    while let Err(e) = queue.load_paused().await {
        tracing::warn!(error = %e, "queue: cannot read which routes are paused");
        tokio::select! {
            () = tokio::time::sleep(STORE_PAUSE) => {}
            () = stop.cancelled() => return,
        }
    }
    let mut workers: JoinSet<String> = JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    loop {
        let changed = queue.signals.changed().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if stop.is_cancelled() {
            break;
        }
        let counts = queue.store().counts().await.unwrap_or_default();
        for (name, plan) in deliver.routes() {
            let holds = counts.get(&name).is_some_and(|c| c.pending > 0);
            if (plan.queued || holds) && running.insert(name.clone()) {
                let worker = work(Arc::clone(&queue), Arc::clone(&deliver), name);
                workers.spawn(worker);
            }
        }
        // A shared store: other replicas store events and pull levers too.
        let poll = async {
            match queue.store().poll_every() {
                Some(every) => {
                    tokio::time::sleep(every * 8).await;
                    let _ = queue.load_paused().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut changed => {}
            Some(ended) = workers.join_next(), if !workers.is_empty() => {
                if let Ok(name) = ended {
                    running.remove(&name);
                }
            }
            () = poll => {}
            () = stop.cancelled() => {}
        }
    }
    // Each worker lets its attempts end (or drops them on abort) before it returns.
    while workers.join_next().await.is_some() {}
}

/// Deletes settled events past their retention, every [`SWEEP_EVERY`], in chunks.
pub(super) async fn sweep_periodically(queue: Arc<Queue>, deliver: Arc<dyn Deliver>) {
    let stop = queue.tasks.stop.clone();
    loop {
        sweep(&queue, deliver.as_ref()).await;
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Deletes delivered events and dead letters past `queue.retention` (kept longer when a
/// route's dedup ttl is longer: they are what tells a late copy it is a duplicate).
pub(super) async fn sweep(queue: &Queue, deliver: &dyn Deliver) -> u64 {
    let now = queue.clock.unix_millis();
    let policy = deliver.policy();
    let cutoff = |ttl: Duration| now.saturating_sub(millis(policy.retention.max(ttl)));
    let cutoffs = Cutoffs {
        routes: deliver
            .routes()
            .into_iter()
            .map(|(name, plan)| (name, cutoff(plan.dedup_ttl)))
            .collect(),
        others: cutoff(policy.dedup_ttl),
    };
    let started = StdInstant::now();
    let mut removed = 0;
    loop {
        let chunk = StdInstant::now();
        match queue.store().sweep_chunk(&cutoffs, CHUNK).await {
            Ok(n) => {
                let ms = chunk.elapsed().as_secs_f64() * 1000.0;
                tracing::debug!(target: "hookwarden::queue::sweep", n, ms, "queue: sweep chunk");
                removed += n;
                if n < CHUNK as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "queue: the retention sweep failed");
                break;
            }
        }
    }
    if removed > 0 {
        let ms = started.elapsed().as_millis();
        tracing::info!(
            target: "hookwarden::queue::sweep",
            removed,
            ms,
            "queue: settled events past their retention deleted"
        );
    }
    removed
}

/// Delivers `route`'s stored events until the stop (then lets its attempts in flight
/// end, unless aborted), or until the route is gone or a `sync` route has delivered
/// everything it stored. Returns the route's name for the supervisor.
async fn work(queue: Arc<Queue>, deliver: Arc<dyn Deliver>, route: String) -> String {
    let working = queue.signals.work(&route);
    let wake = working.notify();
    let (stop, abort) = (queue.tasks.stop.clone(), queue.tasks.abort.clone());
    // Each attempt, with the app and then its outcome handed to the store, is a slot of
    // `concurrency`. The store keeps an event in flight until its outcome is stored.
    let mut attempting: JoinSet<()> = JoinSet::new();
    // The route's plan, read again only after a reload.
    let mut plan: Option<(u64, Option<Plan>)> = None;
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if stop.is_cancelled() {
            break;
        }
        let generation = queue.generation();
        let current = match plan {
            Some((seen, current)) if seen == generation => current,
            _ => {
                let current = deliver.plan(&route);
                plan = Some((generation, current));
                current
            }
        };
        let Some(current) = current else {
            // Removed by a reload: its events wait, stored, for it to return.
            break;
        };
        let free = current.concurrency.saturating_sub(attempting.len());
        let mut next_due = None;
        let mut store_failed = false;
        if free > 0 && !queue.is_paused(&route) {
            let now = queue.clock.unix_millis();
            let in_order = current.concurrency == 1;
            match queue.store().claim(&route, now, free, in_order).await {
                Ok(claimed) => {
                    next_due = claimed.next_due;
                    if !claimed.events.is_empty() {
                        let policy = deliver.policy();
                        for event in claimed.events {
                            let queue = Arc::clone(&queue);
                            let deliver = Arc::clone(&deliver);
                            attempting.spawn(attempt(queue, deliver, event, policy));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(route = %route, error = %e, "queue: cannot read pending events");
                    store_failed = true;
                }
            }
        }
        if !current.queued && attempting.is_empty() && !store_failed {
            // A route now `sync`: done once everything it stored was delivered.
            let counts = queue.store().counts().await.unwrap_or_default();
            if counts.get(&route).is_none_or(|c| c.pending == 0) {
                break;
            }
        }
        let clock = queue.clock.clone();
        // A shared store changes under other replicas too: look again now and then.
        let poll = queue.store().poll_every();
        let due = async move {
            let until_due = async {
                match (store_failed, next_due) {
                    (true, _) => tokio::time::sleep(STORE_PAUSE).await,
                    (false, Some(at)) => clock.sleep_until(from_unix_millis(at)).await,
                    (false, None) => std::future::pending().await,
                }
            };
            match poll {
                Some(every) => {
                    let _ = tokio::time::timeout(every, until_due).await;
                }
                None => until_due.await,
            }
        };
        tokio::select! {
            () = &mut woken => {}
            Some(_) = attempting.join_next(), if !attempting.is_empty() => {}
            () = due => {}
            () = stop.cancelled() => {}
        }
    }
    // Stopping: the attempts in flight end on their own (bounded by upstream.timeout)
    // and their outcomes are handed to the store, unless the grace runs out first.
    let drain = async { while attempting.join_next().await.is_some() {} };
    tokio::select! {
        () = drain => {}
        () = abort.cancelled() => {}
    }
    // Leaving with work left (a removed route comes back) is the supervisor's to see.
    drop(working);
    queue.signals.changed().notify_one();
    route
}

/// One attempt of `event`: the app's answer, what it makes of the event, counted,
/// logged, and handed to the store. When the store cannot take it the event stays
/// pending there and is attempted again (the app may see it twice; its Idempotency-Key
/// says so).
async fn attempt(queue: Arc<Queue>, deliver: Arc<dyn Deliver>, event: Pending, policy: Policy) {
    let number = event.attempts.saturating_add(1);
    let started = StdInstant::now();
    let at_ms = queue.clock.unix_millis();
    let sent = deliver.send(&event, number).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let then = if sent.delivered {
        Then::Delivered
    } else if number >= policy.max_attempts {
        Then::Dead
    } else {
        let delay = policy
            .backoff
            .delay(number, unit_random(), sent.retry_after);
        Then::RetryAt(at_ms.saturating_add(millis(delay)))
    };
    let result = match then {
        Then::Delivered => AttemptResult::Delivered,
        Then::RetryAt(_) => AttemptResult::Failed,
        Then::Dead => AttemptResult::DeadLettered,
    };
    queue.metrics.attempted(&event.route, result);
    tracing::info!(
        route = %event.route,
        event_id = %event.shown_id.escape_debug(),
        attempt = number,
        status = sent.status,
        error = sent.error.as_deref(),
        result = result.as_str(),
        duration_ms,
        "delivery attempt"
    );
    let settle = Settle {
        attempt: Attempt {
            at_ms,
            status: sent.status,
            error: sent.error,
            duration_ms,
            response: sent.response,
        },
        then,
    };
    if let Err(e) = queue.store().settle(&event, settle).await {
        tracing::warn!(route = %event.route, error = %e, "queue: an attempt's outcome was not stored");
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
