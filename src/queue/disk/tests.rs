//! The disk store on real files: dedup at ingest, limits, claims, attempts, redelivery,
//! the levers, retention in chunks, reopening (and opening what the previous release
//! wrote), the bounded way in, and the folder's lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::super::model::{Attempt, Counts, NewEvent, Settle, State, Then};
use super::super::store::{Bulk, Cutoffs, Signals, Store};
use super::*;

const TTL: Option<Duration> = Some(Duration::from_secs(3600));

fn open(dir: &Path, max_bytes: u64) -> DiskStore {
    DiskStore::open(
        dir,
        max_bytes,
        IntCounter::new("e", "e").unwrap(),
        Arc::new(Signals::default()),
    )
    .unwrap()
}

pub(in crate::queue) fn event(id: &str) -> NewEvent {
    NewEvent {
        id: bytes::Bytes::copy_from_slice(id.as_bytes()),
        shown_id: id.into(),
        kind: "t".into(),
        body: format!(r#"{{"id":"{id}"}}"#).into_bytes().into(),
        content_type: Some("application/json".into()),
    }
}

fn write(route: &str, events: Vec<NewEvent>, now: i64) -> Enqueue {
    Enqueue {
        route: route.into(),
        limited: false,
        dedup_ttl: TTL,
        events,
        now_ms: now,
        admit: Box::new(|| Ok(())),
    }
}

async fn stored(store: &DiskStore, route: &str, ids: &[&str], now: i64) -> Enqueued {
    let events = ids.iter().map(|id| event(id)).collect();
    store.enqueue(write(route, events, now)).await.unwrap()
}

/// Claims every due event of `route` (at most 100).
async fn claim(store: &DiskStore, route: &str, now: i64) -> Vec<Pending> {
    store.claim(route, now, 100, false).await.unwrap().events
}

fn outcome(at: i64, status: u16, then: Then) -> Settle {
    Settle {
        attempt: Attempt {
            at_ms: at,
            status: Some(status),
            error: None,
            duration_ms: 3,
            response: Some("nope".into()),
        },
        then,
    }
}

/// Settles `event` and waits until its outcome is committed.
async fn settled(store: &DiskStore, event: &Pending, outcome: Settle) {
    store.settle(event, outcome).await.unwrap();
    store.barrier().await.unwrap();
}

fn counts(store: &DiskStore, route: &str) -> Counts {
    store
        .shared
        .lanes
        .counts()
        .get(route)
        .copied()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_id_is_stored_once_while_pending_and_for_the_ttl_after_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    assert_eq!(
        stored(&store, "r", &["a", "b", "a"], 0).await,
        Enqueued::Stored(vec![true, true, false]),
        "copies in one batch are stored once"
    );
    assert_eq!(
        stored(&store, "r", &["a"], 1).await,
        Enqueued::Stored(vec![false])
    );
    assert_eq!(
        stored(&store, "other", &["a"], 1).await,
        Enqueued::Stored(vec![true]),
        "routes are apart"
    );
    let first = claim(&store, "r", 10).await.remove(0);
    settled(&store, &first, outcome(100, 200, Then::Delivered)).await;
    assert_eq!(
        stored(&store, "r", &["a"], 3_600_100).await,
        Enqueued::Stored(vec![false])
    );
    assert_eq!(
        stored(&store, "r", &["a"], 3_600_101).await,
        Enqueued::Stored(vec![true]),
        "forgotten once the ttl after delivery ran out"
    );
    let mut no_dedup = write("r", vec![event("b"), event("b")], 5);
    no_dedup.dedup_ttl = None;
    assert_eq!(
        store.enqueue(no_dedup).await.unwrap(),
        Enqueued::Stored(vec![true, true])
    );
}

#[tokio::test]
async fn concurrent_copies_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), 1 << 20));
    let mut copies = Vec::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        copies.push(tokio::spawn(async move {
            stored(&store, "r", &["same"], 0).await
        }));
    }
    let mut new = 0;
    for copy in copies {
        if copy.await.unwrap() == Enqueued::Stored(vec![true]) {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(
        counts(&store, "r"),
        Counts {
            pending: 1,
            dead: 0
        }
    );
}

#[tokio::test]
async fn admission_is_asked_once_and_only_for_something_new() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    stored(&store, "r", &["old"], 0).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let counting = |events: Vec<NewEvent>| {
        let asked = Arc::clone(&asked);
        Enqueue {
            admit: Box::new(move || {
                asked.fetch_add(1, Ordering::SeqCst);
                Err(Duration::from_secs(9))
            }),
            ..write("r", events, 1)
        }
    };
    let dup = store.enqueue(counting(vec![event("old")])).await.unwrap();
    assert_eq!(
        dup,
        Enqueued::Stored(vec![false]),
        "duplicates are not refused"
    );
    let refused = store
        .enqueue(counting(vec![event("new"), event("old")]))
        .await
        .unwrap();
    assert_eq!(refused, Enqueued::Refused(Duration::from_secs(9)));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(
        counts(&store, "r").pending,
        1,
        "nothing stored when refused"
    );
}

#[tokio::test]
async fn past_max_bytes_nothing_is_stored_until_room_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let body = event("x").body.len() as u64;
    let store = open(dir.path(), body * 2);
    stored(&store, "r", &["x", "y"], 0).await;
    let full = store.enqueue(write("r", vec![event("z")], 0)).await;
    assert!(matches!(full, Err(QueueError::Full)), "{full:?}");
    assert_eq!(counts(&store, "r").pending, 2);
    let first = store.claim("r", 0, 1, true).await.unwrap().events.remove(0);
    settled(&store, &first, outcome(1, 200, Then::Delivered)).await;
    assert_eq!(
        store.stored_bytes(),
        body,
        "a delivered body no longer counts"
    );
    assert_eq!(
        stored(&store, "r", &["z"], 2).await,
        Enqueued::Stored(vec![true])
    );
}

#[tokio::test]
async fn a_claimed_event_is_not_claimed_again_until_its_outcome_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    stored(&store, "r", &["e1", "e2", "e3"], 0).await;
    let first = claim(&store, "r", 0).await;
    assert_eq!(first.len(), 3);
    assert!(claim(&store, "r", 0).await.is_empty(), "all in flight");
    // A failure: back, due later, and only then.
    settled(&store, &first[0], outcome(5, 503, Then::RetryAt(1000))).await;
    let early = store.claim("r", 999, 10, false).await.unwrap();
    assert!(early.events.is_empty());
    assert_eq!(early.next_due, Some(1000), "the worker sleeps until then");
    let again = claim(&store, "r", 1000).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].seq, again[0].attempts), (first[0].seq, 1));
}

#[tokio::test]
async fn in_arrival_order_the_next_waits_for_the_last_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    stored(&store, "r", &["o1", "o2"], 0).await;
    let head = store.claim("r", 0, 8, true).await.unwrap().events;
    assert_eq!(head.len(), 1, "only the oldest");
    assert!(store
        .claim("r", 0, 8, true)
        .await
        .unwrap()
        .events
        .is_empty());
    settled(&store, &head[0], outcome(1, 500, Then::RetryAt(50))).await;
    let held = store.claim("r", 10, 8, true).await.unwrap();
    assert!(held.events.is_empty(), "o2 never passes the failing o1");
    assert_eq!(held.next_due, Some(50));
    let head = store.claim("r", 50, 8, true).await.unwrap().events;
    assert_eq!(head[0].id, &b"o1"[..]);
}

#[tokio::test]
async fn attempts_are_recorded_and_events_redelivered_or_hurried() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    stored(&store, "r", &["e1", "e2"], 0).await;
    let claimed = claim(&store, "r", 0).await;
    let (e1, e2) = (&claimed[0], &claimed[1]);
    settled(&store, e1, outcome(10, 503, Then::RetryAt(20))).await;
    let e1 = claim(&store, "r", 20).await.remove(0);
    let mut dead = outcome(20, 0, Then::Dead);
    dead.attempt.status = None;
    dead.attempt.error = Some("connection refused".into());
    dead.attempt.response = None;
    settled(&store, &e1, dead).await;
    assert_eq!(
        counts(&store, "r"),
        Counts {
            pending: 1,
            dead: 1
        }
    );
    let detail = store.detail("r", b"e1").await.unwrap().unwrap();
    assert_eq!(detail.summary.state, State::Dead);
    assert_eq!(detail.summary.attempts, 2);
    assert_eq!(detail.history.len(), 2);
    assert_eq!(detail.history[0].status, Some(503));
    assert_eq!(detail.history[0].response.as_deref(), Some("nope"));
    assert_eq!(
        detail.history[1].error.as_deref(),
        Some("connection refused")
    );

    assert_eq!(
        store.redeliver("r", b"nope", 30).await.unwrap(),
        Redelivered::NotFound
    );
    assert_eq!(
        store.redeliver("r", b"e2", 30).await.unwrap(),
        Redelivered::InFlight,
        "e2 is being attempted"
    );
    settled(&store, e2, outcome(30, 500, Then::RetryAt(600_000))).await;
    assert_eq!(
        store.redeliver("r", b"e2", 31).await.unwrap(),
        Redelivered::Hurried,
        "a waiting event is attempted now"
    );
    let hurried = claim(&store, "r", 31).await;
    assert_eq!(
        (hurried.len(), hurried[0].attempts),
        (1, 1),
        "attempts kept"
    );
    assert_eq!(
        store.redeliver("r", b"e1", 40).await.unwrap(),
        Redelivered::Requeued
    );
    let back = claim(&store, "r", 40).await;
    assert_eq!((&back[0].id[..], back[0].attempts), (&b"e1"[..], 0));
    assert_eq!(
        counts(&store, "r"),
        Counts {
            pending: 2,
            dead: 0
        }
    );
    let history = store.detail("r", b"e1").await.unwrap().unwrap().history;
    assert_eq!(history.len(), 2, "the history outlives a redelivery");
}

#[tokio::test]
async fn bulk_redelivery_and_retry_now_go_in_chunks_over_what_matches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 30);
    let ids: Vec<String> = (0..25).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    stored(&store, "a", &refs, 0).await;
    stored(&store, "b", &["b1"], 5_000).await;
    for event in claim(&store, "a", 0).await {
        settled(&store, &event, outcome(1, 500, Then::Dead)).await;
    }
    for event in claim(&store, "b", 5_000).await {
        settled(&store, &event, outcome(1, 500, Then::Dead)).await;
    }
    // A filter on the time received picks route b's only, in chunks of 10 looked at.
    let bulk = Bulk {
        filter: Filter {
            since: Some(1_000),
            ..Filter::default()
        },
        state: State::Dead,
    };
    let mut cursor: Option<String> = None;
    let mut changed = 0;
    let mut chunks = 0;
    loop {
        let chunk = store
            .redeliver_chunk(&bulk, cursor.as_deref(), 6_000, 10)
            .await
            .unwrap();
        changed += chunk.changed;
        chunks += 1;
        match chunk.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(changed, 1);
    assert!(
        chunks >= 3,
        "25 dead letters of a looked at 10 at a time: {chunks}"
    );
    assert_eq!(
        counts(&store, "b"),
        Counts {
            pending: 1,
            dead: 0
        }
    );
    assert_eq!(
        counts(&store, "a"),
        Counts {
            pending: 0,
            dead: 25
        }
    );

    // Retry now: b1 is due already; a's, made to wait, are hurried 10 at a time.
    let all = Bulk {
        filter: Filter::default(),
        state: State::Dead,
    };
    let mut cursor = None;
    loop {
        let chunk = store
            .redeliver_chunk(&all, cursor.as_deref(), 7_000, 10)
            .await
            .unwrap();
        match chunk.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for event in claim(&store, "a", 7_000).await {
        settled(&store, &event, outcome(7_001, 503, Then::RetryAt(900_000))).await;
    }
    assert_eq!(store.retry_now_chunk("a", 8_000, 10).await.unwrap(), 10);
    assert_eq!(store.retry_now_chunk("a", 8_000, 10).await.unwrap(), 10);
    assert_eq!(store.retry_now_chunk("a", 8_000, 10).await.unwrap(), 5);
    assert_eq!(store.retry_now_chunk("a", 8_000, 10).await.unwrap(), 0);
    assert_eq!(claim(&store, "a", 8_000).await.len(), 25, "all due now");
}

#[tokio::test]
async fn listings_page_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    stored(&store, "a", &["1", "2", "3"], 1_000).await;
    stored(&store, "b", &["4"], 2_000).await;
    let route_a = Filter {
        route: Some("a".into()),
        ..Filter::default()
    };
    let page = |limit, before| PageRequest { limit, before };
    let first = store.list(route_a.clone(), page(2, None)).await.unwrap();
    let ids: Vec<_> = first.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["3", "2"]);
    let second = store.list(route_a, page(2, first.next)).await.unwrap();
    let ids: Vec<_> = second.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1"]);
    assert_eq!(second.next, None);
    let dead = Filter {
        state: Some(State::Dead),
        ..Filter::default()
    };
    assert!(store
        .list(dead, page(10, None))
        .await
        .unwrap()
        .events
        .is_empty());
    let window = Filter {
        since: Some(1_500),
        until: Some(2_001),
        kind: Some("t".into()),
        ..Filter::default()
    };
    let ids: Vec<_> = store.list(window, page(10, None)).await.unwrap().events;
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].id, "4");
    let other_type = Filter {
        kind: Some("nope".into()),
        ..Filter::default()
    };
    assert!(store
        .list(other_type, page(10, None))
        .await
        .unwrap()
        .events
        .is_empty());
}

#[tokio::test]
async fn the_sweep_deletes_what_settled_before_its_cutoff_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    let ids: Vec<String> = (0..7).map(|i| format!("old{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    stored(&store, "r", &refs, 0).await;
    stored(&store, "r", &["new", "waiting"], 0).await;
    let claimed = claim(&store, "r", 0).await;
    for event in &claimed {
        let then = match &event.id[..] {
            b"new" => outcome(900, 200, Then::Delivered),
            b"waiting" => outcome(900, 503, Then::RetryAt(5_000)),
            _ => outcome(100, 500, Then::Dead),
        };
        settled(&store, event, then).await;
    }
    assert_eq!(counts(&store, "r").dead, 7);
    let cutoffs = Cutoffs {
        routes: [("r".to_string(), 500)].into(),
        others: 0,
    };
    assert_eq!(store.sweep_chunk(&cutoffs, 3).await.unwrap(), 3);
    assert_eq!(store.sweep_chunk(&cutoffs, 3).await.unwrap(), 3);
    assert_eq!(store.sweep_chunk(&cutoffs, 3).await.unwrap(), 1);
    assert_eq!(store.sweep_chunk(&cutoffs, 3).await.unwrap(), 0);
    assert!(store.detail("r", b"old0").await.unwrap().is_none());
    assert!(store.detail("r", b"new").await.unwrap().is_some());
    assert!(
        store.detail("r", b"waiting").await.unwrap().is_some(),
        "pending is never swept"
    );
    assert_eq!(
        counts(&store, "r"),
        Counts {
            pending: 1,
            dead: 0
        }
    );
    assert_eq!(store.stored_bytes(), event("waiting").body.len() as u64);
}

#[tokio::test]
async fn a_reopened_store_counts_what_it_holds_and_a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    stored(&store, "r", &["a", "b"], 0).await;
    store.set_paused("r", true).await.unwrap();
    let second = DiskStore::open(
        dir.path(),
        1 << 20,
        IntCounter::new("e", "e").unwrap(),
        Arc::new(Signals::default()),
    );
    let err = second.err().expect("locked");
    assert!(matches!(err, QueueError::Locked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    // Closed, the folder is free at once, while this handle still exists.
    store.close().await;
    assert!(matches!(
        store.enqueue(write("r", vec![event("late")], 1)).await,
        Err(QueueError::Closed)
    ));
    let reopened = open(dir.path(), 1 << 20);
    assert_eq!(
        counts(&reopened, "r"),
        Counts {
            pending: 2,
            dead: 0
        }
    );
    assert_eq!(reopened.stored_bytes(), 2 * event("a").body.len() as u64);
    assert_eq!(
        reopened.paused().await.unwrap(),
        ["r".to_string()].into(),
        "a pause is kept"
    );
    assert_eq!(
        claim(&reopened, "r", 0).await.len(),
        2,
        "read back from disk"
    );
}

#[tokio::test]
async fn a_store_that_cannot_grow_refuses_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 30);
    stored(&store, "r", &["before"], 0).await;
    let pages = std::fs::metadata(store.path()).unwrap().len() / 4096;
    store.limit_pages(pages.max(1)).await.unwrap();
    let big = NewEvent {
        body: vec![b'x'; 256 * 1024].into(),
        ..event("big")
    };
    let refused = store.enqueue(write("r", vec![big], 1)).await;
    assert!(matches!(refused, Err(QueueError::Sqlite(_))), "{refused:?}");
    assert_eq!(counts(&store, "r").pending, 1);
    assert!(store.detail("r", b"big").await.unwrap().is_none());
    assert_eq!(store.shared.errors.get(), 1, "counted once");
}

/// The tables as the first release created them (user_version 0), with an event in each
/// state, then opened by this build.
#[tokio::test]
async fn a_store_written_by_the_first_release_opens_and_delivers() {
    const FIRST_RELEASE: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, route TEXT NOT NULL, id BLOB NOT NULL, shown_id TEXT NOT NULL,
    type TEXT NOT NULL, state INTEGER NOT NULL, size INTEGER NOT NULL, content_type TEXT,
    received_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL, last_status INTEGER, last_error TEXT,
    settled_at INTEGER, history TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS bodies (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_id ON events (route, id);
CREATE INDEX IF NOT EXISTS events_by_state ON events (route, state, seq);
CREATE INDEX IF NOT EXISTS events_due ON events (route, next_attempt_at, seq) WHERE state = 0;
INSERT INTO events VALUES (1, 'r', X'7031', 'p1', 't', 0, 2, 'application/json', 10, 1, 10,
    503, NULL, NULL, '{\"at\":5,\"status\":503,\"error\":null,\"duration_ms\":4}' || char(10));
INSERT INTO bodies VALUES (1, X'7B7D');
INSERT INTO events VALUES (2, 'r', X'6431', 'd1', 't', 2, 2, NULL, 10, 3, 10, 500, NULL, 20, '');
INSERT INTO bodies VALUES (2, X'7B7D');
INSERT INTO events VALUES (3, 'r', X'7631', 'v1', 't', 1, 2, NULL, 10, 1, 10, 200, NULL, 20, '');
INSERT INTO bodies VALUES (3, X'7B7D');
";
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(FIRST_RELEASE).unwrap();
    }
    let store = open(dir.path(), 1 << 20);
    let version: i64 = Connection::open(store.path())
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::latest());
    assert_eq!(
        counts(&store, "r"),
        Counts {
            pending: 1,
            dead: 1
        }
    );
    assert_eq!(store.stored_bytes(), 4, "pending and dead bodies");
    let old = store.detail("r", b"p1").await.unwrap().unwrap();
    assert_eq!(old.history.len(), 1);
    assert_eq!(old.history[0].response, None, "older lines kept no answer");
    let pending = claim(&store, "r", 10).await;
    assert_eq!((pending.len(), pending[0].attempts), (1, 1));
    settled(&store, &pending[0], outcome(30, 200, Then::Delivered)).await;
    assert_eq!(
        store.redeliver("r", b"d1", 40).await.unwrap(),
        Redelivered::Requeued
    );
    store.set_paused("r", true).await.unwrap();
}

#[tokio::test]
async fn a_store_from_a_newer_build_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let refused = DiskStore::open(
        dir.path(),
        1 << 20,
        IntCounter::new("e", "e").unwrap(),
        Arc::new(Signals::default()),
    );
    let err = refused.err().expect("refused");
    assert!(
        matches!(err, QueueError::NewerSchema { found: 99, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_refuses_new_writes_at_once_and_skips_those_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), 1 << 30));
    // The disk stalls: the writer waits before its next write until released.
    let (release, stalled) = std::sync::mpsc::channel::<()>();
    let stalled = Mutex::new(stalled);
    *lock(&store.shared.hooks.before_write) = Some(Box::new(move || {
        let _ = lock(&stalled).recv();
    }));
    let first = tokio::spawn({
        let store = Arc::clone(&store);
        async move { stored(&store, "r", &["first"], 0).await }
    });
    // A request that gives up while its write waits: skipped, never stored.
    let store2 = Arc::clone(&store);
    let gave_up = tokio::time::timeout(Duration::from_millis(50), async move {
        stored(&store2, "r", &["given-up"], 0).await
    })
    .await;
    assert!(gave_up.is_err());
    // Bodies pile up to the inbox's bound, then writes are refused at once.
    let big = || NewEvent {
        body: vec![b'x'; 8 << 20].into(),
        ..event("big")
    };
    let mut waiting = Vec::new();
    let mut busy = 0;
    for i in 0..20 {
        let mut one = write("r", vec![big()], 0);
        one.events[0].id = format!("big{i}").into_bytes().into();
        let store = Arc::clone(&store);
        let (tx, rx) = tokio::sync::oneshot::channel();
        waiting.push(tokio::spawn(async move {
            let answer = store.enqueue(one);
            tokio::pin!(answer);
            // Offered (or refused) on the first poll.
            let polled = futures_poll_once(answer.as_mut()).await;
            let _ = tx.send(polled.is_some());
            match polled {
                Some(done) => done.map(drop),
                None => answer.await.map(drop),
            }
        }));
        if rx.await.unwrap() {
            busy += 1;
        }
    }
    assert!(
        busy >= 10,
        "past 64 MiB waiting, 8 MiB writes are refused: {busy}"
    );
    for _ in 0..200 {
        let _ = release.send(());
    }
    let refused = waiting.into_iter().map(|w| async { w.await.unwrap() });
    let mut full = 0;
    for answer in refused {
        if let Err(QueueError::Busy) = answer.await {
            full += 1;
        }
    }
    assert_eq!(full, busy);
    assert_eq!(first.await.unwrap(), Enqueued::Stored(vec![true]));
    assert!(store.detail("r", b"given-up").await.unwrap().is_none());
}

/// Polls `future` once: its output if it is ready at once.
async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
    let mut future = future;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
