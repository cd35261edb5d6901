//! The queue as one piece (store, lanes, workers, supervisor, levers) with a stand-in for
//! the app that notices an event attempted twice at once: the interleaving that once
//! sent an event twice, forced; thousands of events through many workers with random
//! store delays; pause, retry-now and the stop.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::backoff::unit_random;
use super::disk::tests::event;
use super::model::{Attempt, Settle};
use super::*;
use crate::metrics::Metrics;
use crate::sync::lock;

const ROUTE: &str = "r";

/// An app that records every attempt, fails a share of them, and counts any event it is
/// sent while an attempt of it is still in progress.
#[derive(Default)]
struct App {
    concurrency: usize,
    max_attempts: u32,
    /// Of 1.0: how many attempts fail with a 503.
    failing: f64,
    /// Longest an attempt takes.
    slowest: Duration,
    /// Held answers: until opened, attempts wait.
    gate: Option<Arc<tokio::sync::Semaphore>>,
    in_flight: Mutex<HashSet<Vec<u8>>>,
    overlaps: AtomicUsize,
    attempts: Mutex<HashMap<Vec<u8>, Vec<u32>>>,
    delivered: Mutex<HashMap<Vec<u8>, u32>>,
    delivered_total: AtomicUsize,
    arrived: Notify,
}

struct Stand(Arc<App>);

impl Deliver for Stand {
    fn plan(&self, route: &str) -> Option<Plan> {
        (route == ROUTE).then_some(Plan {
            concurrency: self.0.concurrency,
            queued: true,
            dedup_ttl: Duration::from_secs(3600),
        })
    }

    fn routes(&self) -> Vec<(String, Plan)> {
        vec![(ROUTE.into(), self.plan(ROUTE).unwrap())]
    }

    fn policy(&self) -> Policy {
        Policy {
            max_attempts: self.0.max_attempts,
            backoff: Backoff {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(4),
            },
            retention: Duration::from_secs(3600),
            dedup_ttl: Duration::from_secs(3600),
        }
    }

    fn send(&self, event: &Pending, attempt: u32) -> BoxFuture<'static, Sent> {
        let app = Arc::clone(&self.0);
        let id = event.id.to_vec();
        Box::pin(async move {
            if !lock(&app.in_flight).insert(id.clone()) {
                app.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            lock(&app.attempts)
                .entry(id.clone())
                .or_default()
                .push(attempt);
            app.arrived.notify_waiters();
            if let Some(gate) = &app.gate {
                let _ = gate.acquire().await.map(|p| p.forget());
            }
            let wait = app.slowest.mul_f64(unit_random());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let delivered = unit_random() >= app.failing;
            lock(&app.in_flight).remove(&id);
            if delivered {
                *lock(&app.delivered).entry(id).or_default() += 1;
                app.delivered_total.fetch_add(1, Ordering::SeqCst);
                app.arrived.notify_waiters();
            }
            Sent {
                delivered,
                status: Some(if delivered { 200 } else { 503 }),
                ..Sent::default()
            }
        })
    }
}

impl App {
    /// Resolves once `n` events were delivered (at most 60 s).
    async fn delivered(&self, n: usize) {
        let wait = async {
            loop {
                let arrived = self.arrived.notified();
                if self.delivered_total.load(Ordering::SeqCst) >= n {
                    return;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {n} delivered",
                    self.delivered_total.load(Ordering::SeqCst)
                )
            });
    }

    /// Resolves once `n` attempts have started.
    async fn attempted(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if lock(&self.attempts).values().map(Vec::len).sum::<usize>() >= n {
                return;
            }
            arrived.await;
        }
    }
}

fn open(dir: &std::path::Path) -> Arc<Queue> {
    let config = crate::config::QueueConfig {
        backend: crate::config::QueueBackend::Disk,
        dir: dir.to_path_buf(),
        max_bytes: 1 << 30,
        max_attempts: 20,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        retention: Duration::from_secs(3600),
    };
    let metrics = Metrics::new().queue.clone();
    Arc::new(Queue::open(&config, Duration::from_secs(12), Clock::system(), metrics).unwrap())
}

fn hooks(queue: &Queue) -> &disk::Hooks {
    match &queue.backend {
        Backend::Disk(disk) => disk.hooks(),
        Backend::Redis(_) => panic!("these tests run on the disk store"),
    }
}

async fn store(queue: &Queue, ids: &[&str]) {
    let write = Enqueue {
        route: ROUTE.into(),
        limited: false,
        dedup_ttl: Some(Duration::from_secs(3600)),
        events: ids.iter().map(|id| event(id)).collect(),
        now_ms: queue.clock.unix_millis(),
        admit: Box::new(|| Ok(())),
    };
    queue.accept(write).await.unwrap();
}

/// The interleaving that sent `evt_b` twice (both as attempt 1): the store has committed
/// it, and before the in-memory side hears of it, a worker looks for work. Here the
/// writer is held at exactly that point while the route's worker is woken and a second
/// claimant asks the store for due events; then it is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_but_not_yet_handed_over_is_attempted_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let app = Arc::new(App {
        concurrency: 8,
        max_attempts: 5,
        ..App::default()
    });
    queue.start(Arc::new(Stand(Arc::clone(&app))));
    store(&queue, &["evt_a"]).await;
    app.delivered(1).await;

    let armed = Arc::new(AtomicBool::new(true));
    let (entered_tx, entered) = std_mpsc::channel::<()>();
    let (release, released) = std_mpsc::channel::<()>();
    let (entered_tx, released) = (Mutex::new(entered_tx), Mutex::new(released));
    let hook_armed = Arc::clone(&armed);
    *lock(&hooks(&queue).between_commit_and_lanes) = Some(Box::new(move || {
        if hook_armed.swap(false, Ordering::SeqCst) {
            let _ = lock(&entered_tx).send(());
            let _ = lock(&released).recv();
        }
    }));
    let storing = tokio::spawn({
        let queue = Arc::clone(&queue);
        async move { store(&queue, &["evt_b"]).await }
    });
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    // Committed, not handed over: the worker looks, and so does a second claimant.
    queue.signals.wake(ROUTE);
    let now = queue.clock.unix_millis();
    let meanwhile = queue.store().claim(ROUTE, now, 8, false).await.unwrap();
    assert!(meanwhile.events.is_empty(), "{:?}", meanwhile.events);
    tokio::task::yield_now().await;
    release.send(()).unwrap();
    storing.await.unwrap();
    app.delivered(2).await;
    let later = queue.store().claim(ROUTE, now, 8, false).await.unwrap();
    assert!(later.events.is_empty(), "delivered, not claimable again");
    queue.close().await;
    assert_eq!(lock(&app.attempts)[&b"evt_b".to_vec()], vec![1]);
    assert_eq!(app.overlaps.load(Ordering::SeqCst), 0);
}

/// Thousands of events through sixteen slots, a quarter of the attempts failing, the
/// writer pausing at random before each write and between each commit and its hand-over,
/// the lane overflowing into the database, and an operator hurrying and redelivering
/// along the way: no event is ever in two attempts at once, and each is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_ever_in_two_attempts_at_once_under_random_store_delays() {
    const EVENTS: usize = 6000;
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let delay = || {
        let micros = (unit_random() * 300.0) as u64;
        std::thread::sleep(Duration::from_micros(micros));
    };
    *lock(&hooks(&queue).before_write) = Some(Box::new(delay));
    *lock(&hooks(&queue).between_commit_and_lanes) = Some(Box::new(delay));
    let app = Arc::new(App {
        concurrency: 16,
        max_attempts: 3,
        failing: 0.25,
        slowest: Duration::from_millis(2),
        ..App::default()
    });
    queue.start(Arc::new(Stand(Arc::clone(&app))));
    let mut senders = Vec::new();
    for s in 0..8 {
        let queue = Arc::clone(&queue);
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while i < EVENTS / 8 {
                let n = 1 + (unit_random() * 4.0) as usize;
                let ids: Vec<String> = (i..(i + n).min(EVENTS / 8))
                    .map(|k| format!("e{s}-{k}"))
                    .collect();
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                store(&queue, &refs).await;
                i += n;
            }
        }));
    }
    // An operator at work meanwhile. Redelivering an event the app already took sends
    // it again, by design: those are noted.
    let mut requeued = HashSet::new();
    for _ in 0..20 {
        queue.retry_now(ROUTE).await.unwrap();
        let id = format!(
            "e{}-{}",
            (unit_random() * 8.0) as usize,
            (unit_random() * 100.0) as usize
        );
        if queue.redeliver(ROUTE, id.as_bytes()).await.unwrap() == Redelivered::Requeued {
            requeued.insert(id.into_bytes());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for sender in senders {
        sender.await.unwrap();
    }
    // Dead letters (three failures in a row) go back until everything is delivered.
    let dead = Bulk {
        filter: Filter::default(),
        state: State::Dead,
    };
    loop {
        let left = queue.counts(ROUTE).await.unwrap();
        let delivered = lock(&app.delivered).len();
        if delivered >= EVENTS && left.pending == 0 && left.dead == 0 {
            break;
        }
        queue.redeliver_matching(&dead).await.unwrap();
        let arrived = app.arrived.notified();
        let _ = tokio::time::timeout(Duration::from_millis(200), arrived).await;
    }
    queue.close().await;
    assert_eq!(
        app.overlaps.load(Ordering::SeqCst),
        0,
        "an event in two attempts at once"
    );
    let delivered = lock(&app.delivered);
    assert_eq!(delivered.len(), EVENTS);
    let twice: Vec<_> = delivered
        .iter()
        .filter(|(id, &n)| n != 1 && !requeued.contains(*id))
        .collect();
    assert!(
        twice.is_empty(),
        "delivered more than once: {}",
        twice.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_route_stores_but_attempts_nothing_until_resumed_and_the_pause_persists() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let app = Arc::new(App {
        concurrency: 4,
        max_attempts: 5,
        ..App::default()
    });
    queue.pause(ROUTE, true).await.unwrap();
    queue.start(Arc::new(Stand(Arc::clone(&app))));
    store(&queue, &["p1", "p2"]).await;
    // Nothing may be attempted: give the worker every chance to (it was woken).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(lock(&app.attempts).is_empty());
    assert_eq!(queue.counts(ROUTE).await.unwrap().pending, 2);
    queue.close().await;

    // A restart keeps the pause; resuming delivers.
    let queue = open(dir.path());
    queue.start(Arc::new(Stand(Arc::clone(&app))));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(queue.is_paused(ROUTE));
    assert!(lock(&app.attempts).is_empty());
    queue.pause(ROUTE, false).await.unwrap();
    app.delivered(2).await;
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_hurries_waiting_events_and_the_stop_lets_attempts_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let app = Arc::new(App {
        concurrency: 4,
        max_attempts: 50,
        gate: Some(Arc::clone(&gate)),
        ..App::default()
    });
    queue.start(Arc::new(Stand(Arc::clone(&app))));
    store(&queue, &["held"]).await;
    app.attempted(1).await;
    // The stop: no new attempt, but the one in flight ends and its outcome is stored.
    queue.stop_attempts();
    gate.add_permits(1);
    queue
        .finish(tokio::time::Instant::now() + Duration::from_secs(10))
        .await;
    assert_eq!(app.delivered_total.load(Ordering::SeqCst), 1);
    queue.close().await;
    let queue = open(dir.path());
    assert_eq!(
        queue.counts(ROUTE).await.unwrap().pending,
        0,
        "its outcome was stored"
    );

    // An event waiting out a long backoff is attempted at once on retry-now.
    store(&queue, &["waits"]).await;
    let now = queue.clock.unix_millis();
    let claimed = queue.store().claim(ROUTE, now, 4, false).await.unwrap();
    let later = Settle {
        attempt: Attempt {
            at_ms: now,
            status: Some(503),
            error: None,
            duration_ms: 1,
            response: None,
        },
        then: super::model::Then::RetryAt(now + 3_600_000),
    };
    queue
        .store()
        .settle(&claimed.events[0], later)
        .await
        .unwrap();
    let free = Arc::new(App {
        concurrency: 4,
        max_attempts: 50,
        ..App::default()
    });
    queue.start(Arc::new(Stand(Arc::clone(&free))));
    assert_eq!(queue.retry_now(ROUTE).await.unwrap(), 1);
    free.delivered(1).await;
    assert_eq!(lock(&free.attempts)[&b"waits".to_vec()], vec![2]);
    queue.close().await;
}
