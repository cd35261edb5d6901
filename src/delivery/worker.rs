//! `queue` delivery, delivering (SPEC §8): one worker per route with stored events, at
//! most `concurrency` attempts in flight, each the request of SPEC §5 plus
//! `X-Hookwarden-Attempt`.
//!
//! A worker takes its route's due events off the route's lane (the pending events the
//! queue knows in memory, handed over as they are stored; see [`Queue`]), reading the
//! store only when the lane does not know them all, attempts them, and sleeps until the
//! soonest of: an attempt ending, a new event, the next event falling due (on the
//! gateway's clock, so tests move time instead of waiting), or the stop. An event is
//! never attempted twice at once: it stays marked in flight until its outcome is
//! committed. With `concurrency = 1` only the oldest pending event is ever looked at, so
//! a failing event holds back the ones behind it.
//!
//! Each attempt reads the configuration in force when it starts, so a reload's upstream,
//! `forward_path` and headers apply to pending events. The supervisor keeps a worker for
//! every configured route that is a queue route or holds pending events; the events of a
//! route a reload removed wait, stored, until it returns. It also sweeps settled events
//! past their retention.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::backoff::{unit_random, Backoff};
use crate::app::{App, RouteState, Runtime};
use crate::clock::from_unix_millis;
use crate::forward::{ForwardError, Message};
use crate::metrics::{Failure, Outcome};
use crate::queue::{content_type, Queue};
use crate::route::DeliveryMode;
use crate::spool::{AttemptOutcome, Pending, Then};

/// Attempts in flight for a route whose mode is now `sync` but that still holds events.
const LEFTOVER_CONCURRENCY: usize = 8;
/// How often settled events past their retention are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// After the store fails a read or write, a worker waits this long before looking again.
const STORE_PAUSE: Duration = Duration::from_secs(1);
/// Events read from the store beyond the free slots, so that a route catching up is not
/// read once per event.
const READ_AHEAD: usize = 64;

/// The running delivery of stored events.
pub(crate) struct Workers {
    stop: Stop,
    supervisor: JoinHandle<()>,
}

/// Stops new attempts; cheap to clone into a shutdown future.
#[derive(Clone)]
pub(crate) struct Stop(Arc<watch::Sender<bool>>);

impl Stop {
    pub(crate) fn now(&self) {
        let _ = self.0.send(true);
    }
}

impl Workers {
    /// Starts delivering, when the gateway has a spool.
    pub(crate) fn start(app: &Arc<App>) -> Option<Workers> {
        app.queue.as_ref()?;
        let (stop, stopping) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(Arc::clone(app), stopping));
        Some(Workers {
            stop: Stop(Arc::new(stop)),
            supervisor,
        })
    }

    /// What stops new attempts (those in flight go on).
    pub(crate) fn stopper(&self) -> Stop {
        self.stop.clone()
    }

    /// Waits, until `deadline`, for the attempts in flight to end. Whatever was not
    /// attempted stays stored for the next start.
    pub(crate) async fn finish(self, deadline: Instant) {
        self.stop.now();
        let supervisor = self.supervisor;
        tokio::pin!(supervisor);
        if tokio::time::timeout_at(deadline, &mut supervisor)
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace ran out with delivery attempts in flight; they will be attempted again at the next start");
            supervisor.abort();
        }
    }
}

async fn supervise(app: Arc<App>, mut stopping: watch::Receiver<bool>) {
    let Some(queue) = app.queue.as_ref() else {
        return;
    };
    let mut workers: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut last_sweep: Option<StdInstant> = None;
    loop {
        if *stopping.borrow() {
            break;
        }
        let changed = queue.changed().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        workers.retain(|_, w| !w.is_finished());
        let rt = app.runtime();
        let counts = queue.spool.counts();
        for route in &rt.config.routes {
            let queued = matches!(route.delivery, DeliveryMode::Queue { .. });
            let holds = counts
                .get(&route.name)
                .is_some_and(|(pending, _)| *pending > 0);
            if (queued || holds) && !workers.contains_key(&route.name) {
                let worker = work(Arc::clone(&app), route.name.clone(), stopping.clone());
                workers.insert(route.name.clone(), tokio::spawn(worker));
            }
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            last_sweep = Some(StdInstant::now());
            sweep(&app, queue, &rt).await;
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stopping.changed() => {}
        }
    }
    for (_, worker) in workers {
        let _ = worker.await;
    }
}

/// Deletes delivered events and dead letters past `queue.retention` (kept longer when a
/// route's dedup ttl is longer: they are what tells a late copy it is a duplicate).
async fn sweep(app: &App, queue: &Queue, rt: &Runtime) {
    let now = app.clock.unix_millis();
    let retention = rt.config.queue.retention;
    let cutoff = |ttl: Duration| now.saturating_sub(millis(retention.max(ttl)));
    let cutoffs = rt
        .config
        .routes
        .iter()
        .map(|r| (r.name.clone(), cutoff(r.dedup_ttl)))
        .collect();
    match queue
        .spool
        .sweep(cutoffs, cutoff(rt.config.dedup.ttl))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            removed = n,
            "queue: settled events past their retention deleted"
        ),
        Err(e) => tracing::warn!(error = %e, "queue: the retention sweep failed"),
    }
}

/// Delivers `route`'s stored events until told to stop (then lets its attempts in flight
/// end), or until the route is gone or has nothing left to deliver.
async fn work(app: Arc<App>, route: String, mut stopping: watch::Receiver<bool>) {
    let Some(queue) = app.queue.as_ref() else {
        return;
    };
    let wake = queue.waker(&route);
    // Attempts waiting for the app; then their outcomes waiting for the store. A slot of
    // `concurrency` is an attempt with the app; an event is `held` (never picked again)
    // until its outcome is stored.
    let mut attempting: JoinSet<Answered> = JoinSet::new();
    let mut settling: JoinSet<Settled> = JoinSet::new();
    let mut held: HashSet<i64> = HashSet::new();
    loop {
        if *stopping.borrow() {
            break;
        }
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let rt = app.runtime();
        let Some(state) = rt.route_named(&route).cloned() else {
            // Removed by a reload: its events wait, stored, for it to return.
            break;
        };
        let (concurrency, queued) = match state.route.delivery {
            DeliveryMode::Queue { concurrency } => (concurrency, true),
            DeliveryMode::Sync => (LEFTOVER_CONCURRENCY, false),
        };
        // In arrival order the next event waits for the last one's outcome to be stored:
        // if it failed, it is back at the head of the line.
        let in_order = concurrency == 1;
        let used = attempting.len() + if in_order { settling.len() } else { 0 };
        let mut next_due: Option<i64> = None;
        let mut pause = false;
        if used < concurrency {
            let free = concurrency - used;
            // The store is read only when it holds events the lane and the events held
            // do not, and, out of order, only when the lane is short of work (in order, an
            // older event may be waiting there).
            let known = queue.known(&route);
            let stored = queue.spool.pending(&route);
            if ((known + held.len()) as u64) < stored && (in_order || known < free) {
                // Enough past what is held, and a margin so that a route catching up is
                // not read for every event.
                let wanted = held.len() + concurrency + READ_AHEAD;
                match queue.spool.next_pending(&route, in_order, wanted).await {
                    Ok(events) => queue.keep(&route, events, &held),
                    Err(e) => {
                        tracing::warn!(route = %route, error = %e, "queue: cannot read pending events");
                        pause = true;
                    }
                }
            }
            let now = app.clock.unix_millis();
            let due = queue.take_due(&route, now, free, in_order);
            next_due = due.next;
            if due.events.is_empty() && held.is_empty() && next_due.is_none() && !queued && !pause {
                // A route now `sync` whose stored events are all delivered.
                break;
            }
            for event in due.events {
                held.insert(event.seq);
                attempting.spawn(attempt(
                    Arc::clone(&app),
                    Arc::clone(&rt),
                    Arc::clone(&state),
                    event,
                ));
            }
        }
        let due = async {
            match (pause, next_due) {
                (true, _) => tokio::time::sleep(STORE_PAUSE).await,
                (false, Some(at)) => app.clock.sleep_until(from_unix_millis(at)).await,
                (false, None) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut woken => {}
            Some(done) = attempting.join_next(), if !attempting.is_empty() => {
                if let Ok(answered) = done {
                    settling.spawn(settle(Arc::clone(&app), answered));
                }
            }
            Some(done) = settling.join_next(), if !settling.is_empty() => {
                if let Ok(settled) = done {
                    held.remove(&settled.seq);
                    if let Some(again) = settled.again {
                        // Failed: back in the lane with its next time.
                        queue.keep(&route, vec![again], &held);
                    }
                }
            }
            () = due => {}
            _ = stopping.changed() => {}
        }
    }
    // Stopping: the attempts in flight end on their own (bounded by upstream.timeout),
    // and their outcomes are stored.
    while let Some(done) = attempting.join_next().await {
        if let Ok(answered) = done {
            settling.spawn(settle(Arc::clone(&app), answered));
        }
    }
    while settling.join_next().await.is_some() {}
    // Leaving with work left (a removed route comes back, a stop) is the supervisor's to
    // notice; say so in case events arrived meanwhile.
    queue.changed().notify_one();
}

/// An attempt the app answered (or did not): its outcome, to store.
struct Answered {
    seq: i64,
    route: String,
    outcome: AttemptOutcome,
    /// The event as it waits for its next attempt, when it failed.
    again: Option<Pending>,
}

/// An attempt whose outcome was stored.
struct Settled {
    seq: i64,
    again: Option<Pending>,
}

/// One attempt of `event`, to the app.
async fn attempt(
    app: Arc<App>,
    rt: Arc<Runtime>,
    state: Arc<RouteState>,
    event: Pending,
) -> Answered {
    let number = event.attempts.saturating_add(1);
    let started = StdInstant::now();
    let at_ms = app.clock.unix_millis();
    let sent = send(&rt, &state, &event, number).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let config = &rt.config.queue;
    let backoff = Backoff {
        initial: config.backoff_initial,
        max: config.backoff_max,
    };
    let (status, error, retry_after, delivered) = match &sent {
        Ok(answer) => (
            Some(answer.status.as_u16()),
            None,
            answer.retry_after,
            answer.status.is_success(),
        ),
        Err(ForwardError::Failing {
            status,
            retry_after,
        }) => (Some(status.as_u16()), None, *retry_after, false),
        Err(e) => (None, Some(e.to_string()), None, false),
    };
    let then = if delivered {
        Then::Delivered
    } else if number >= config.max_attempts {
        Then::Dead
    } else {
        let delay = backoff.delay(number, unit_random(), retry_after);
        Then::RetryAt(at_ms.saturating_add(millis(delay)))
    };
    let result = match then {
        Then::Delivered => "delivered",
        Then::RetryAt(_) => "failed",
        Then::Dead => "dead_lettered",
    };
    app.metrics.delivery_attempt(&state.route.name, result);
    if delivered {
        state.metrics.forwarded(&event.kind);
        state.metrics.delivered_at(at_ms);
    } else {
        let outcome = match &sent {
            Ok(_) => Outcome::UpstreamRejected,
            Err(ForwardError::Timeout) => Outcome::UpstreamTimeout,
            Err(ForwardError::Failing { .. } | ForwardError::Unavailable(_)) => {
                Outcome::UpstreamUnavailable
            }
        };
        state.metrics.failed(Failure {
            at_ms,
            outcome,
            status,
        });
    }
    tracing::info!(
        route = %state.route.name,
        event_id = %event.shown_id.escape_debug(),
        attempt = number,
        status,
        error = error.as_deref(),
        result,
        duration_ms,
        "delivery attempt"
    );
    let again = match then {
        Then::RetryAt(at) => Some(Pending {
            attempts: number,
            next_attempt_at: at,
            ..event.clone()
        }),
        Then::Delivered | Then::Dead => None,
    };
    Answered {
        seq: event.seq,
        route: event.route,
        outcome: AttemptOutcome {
            at_ms,
            status,
            error,
            duration_ms,
            then,
        },
        again,
    }
}

/// Stores an attempt's outcome.
async fn settle(app: Arc<App>, answered: Answered) -> Settled {
    let Answered {
        seq,
        route,
        outcome,
        again,
    } = answered;
    let Some(queue) = app.queue.as_ref() else {
        return Settled { seq, again: None };
    };
    match queue.spool.settle(seq, outcome).await {
        Ok(()) => Settled { seq, again },
        Err(e) => {
            // Still pending in the store: attempted again, so the app may see it twice;
            // its Idempotency-Key tells it so. What the store says is what counts: the
            // worker reads it from there.
            tracing::warn!(route = %route, error = %e, "queue: an attempt's outcome was not stored");
            tokio::time::sleep(STORE_PAUSE).await;
            Settled { seq, again: None }
        }
    }
}

/// The attempt itself: the request of SPEC §5 with `X-Hookwarden-Attempt`.
async fn send(
    rt: &Runtime,
    state: &RouteState,
    event: &Pending,
    number: u32,
) -> Result<crate::forward::Answer, ForwardError> {
    let message = Message {
        id: &event.id,
        shown_id: &event.shown_id,
        kind: &event.kind,
        body: event.body.clone(),
        content_type: content_type(event.content_type.as_deref()),
        attempt: Some(number),
    };
    let deadline = Instant::now() + rt.config.upstream.timeout;
    rt.forwarder
        .send(&state.upstream, &state.forward_headers, &message, deadline)
        .await
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
