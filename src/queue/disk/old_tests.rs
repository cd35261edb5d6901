//! The spool on real files: dedup at ingest, limits, attempts, redelivery, retention,
//! reopening, and the folder's lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::writer::Admit;
use super::*;

const TTL: Option<Duration> = Some(Duration::from_secs(3600));

fn open(dir: &Path, max_bytes: u64) -> Spool {
    Spool::open(
        dir,
        max_bytes,
        IntCounter::new("e", "e").unwrap(),
        Box::new(|_| {}),
    )
    .unwrap()
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.as_bytes().to_vec(),
        shown_id: id.into(),
        kind: "t".into(),
        body: format!(r#"{{"id":"{id}"}}"#).into_bytes().into(),
        content_type: Some("application/json".into()),
    }
}

fn admit_all() -> Admit {
    Box::new(|| Ok(()))
}

async fn stored(spool: &Spool, route: &str, ids: &[&str], now: i64) -> Enqueued {
    let events = ids.iter().map(|id| event(id)).collect();
    spool
        .enqueue(route, TTL, events, now, admit_all())
        .await
        .unwrap()
}

fn retry(at: i64, status: u16) -> AttemptOutcome {
    AttemptOutcome {
        at_ms: at,
        status: Some(status),
        error: None,
        duration_ms: 3,
        then: Then::RetryAt(at + 1000),
    }
}

#[tokio::test]
async fn an_id_is_stored_once_while_pending_and_for_the_ttl_after_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 20);
    assert_eq!(
        stored(&spool, "r", &["a", "b", "a"], 0).await,
        Enqueued::Stored(vec![true, true, false]),
        "copies in one batch are stored once"
    );
    assert_eq!(
        stored(&spool, "r", &["a"], 1).await,
        Enqueued::Stored(vec![false])
    );
    assert_eq!(
        stored(&spool, "other", &["a"], 1).await,
        Enqueued::Stored(vec![true]),
        "routes are apart"
    );
    let first = spool.next_pending("r", true, 10).await.unwrap()[0].clone();
    let delivered = AttemptOutcome {
        then: Then::Delivered,
        ..retry(100, 200)
    };
    spool.settle(first.seq, delivered).await.unwrap();
    assert_eq!(
        stored(&spool, "r", &["a"], 3_600_100).await,
        Enqueued::Stored(vec![false])
    );
    assert_eq!(
        stored(&spool, "r", &["a"], 3_600_101).await,
        Enqueued::Stored(vec![true]),
        "forgotten once the ttl after delivery ran out"
    );
    let no_dedup = spool
        .enqueue("r", None, vec![event("b"), event("b")], 5, admit_all())
        .await
        .unwrap();
    assert_eq!(no_dedup, Enqueued::Stored(vec![true, true]));
}

#[tokio::test]
async fn concurrent_copies_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(open(dir.path(), 1 << 20));
    let mut copies = Vec::new();
    for _ in 0..50 {
        let spool = Arc::clone(&spool);
        copies.push(tokio::spawn(async move {
            stored(&spool, "r", &["same"], 0).await
        }));
    }
    let mut new = 0;
    for copy in copies {
        if copy.await.unwrap() == Enqueued::Stored(vec![true]) {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(spool.counts()["r"], (1, 0));
}

#[tokio::test]
async fn admission_is_asked_once_and_only_for_something_new() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 20);
    stored(&spool, "r", &["old"], 0).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let counting = |answer: Result<(), Duration>| -> Admit {
        let asked = Arc::clone(&asked);
        Box::new(move || {
            asked.fetch_add(1, Ordering::SeqCst);
            answer
        })
    };
    let dup = spool
        .enqueue(
            "r",
            TTL,
            vec![event("old")],
            1,
            counting(Err(Duration::from_secs(9))),
        )
        .await
        .unwrap();
    assert_eq!(
        dup,
        Enqueued::Stored(vec![false]),
        "duplicates are not refused"
    );
    let refused = spool
        .enqueue(
            "r",
            TTL,
            vec![event("new"), event("old")],
            1,
            counting(Err(Duration::from_secs(9))),
        )
        .await
        .unwrap();
    assert_eq!(refused, Enqueued::Refused(Duration::from_secs(9)));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(spool.counts()["r"], (1, 0), "nothing stored when refused");
}

#[tokio::test]
async fn past_max_bytes_nothing_is_stored_until_room_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let body = event("x").body.len() as u64;
    let spool = open(dir.path(), body * 2);
    stored(&spool, "r", &["x", "y"], 0).await;
    let full = spool
        .enqueue("r", TTL, vec![event("z")], 0, admit_all())
        .await;
    assert!(matches!(full, Err(SpoolError::Full)), "{full:?}");
    assert_eq!(spool.counts()["r"], (2, 0));
    let seq = spool.next_pending("r", true, 1).await.unwrap()[0].seq;
    let delivered = AttemptOutcome {
        then: Then::Delivered,
        ..retry(1, 200)
    };
    spool.settle(seq, delivered).await.unwrap();
    assert_eq!(
        spool.stored_bytes(),
        body,
        "a delivered body no longer counts"
    );
    assert_eq!(
        stored(&spool, "r", &["z"], 2).await,
        Enqueued::Stored(vec![true])
    );
}

#[tokio::test]
async fn attempts_are_recorded_and_a_dead_letter_can_be_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 20);
    stored(&spool, "r", &["e1", "e2"], 0).await;
    let seq = spool.next_pending("r", true, 1).await.unwrap()[0].seq;
    spool.settle(seq, retry(10, 503)).await.unwrap();
    let dead = AttemptOutcome {
        error: Some("connection refused".into()),
        status: None,
        then: Then::Dead,
        ..retry(20, 0)
    };
    spool.settle(seq, dead).await.unwrap();
    assert_eq!(spool.counts()["r"], (1, 1));
    let detail = spool.detail("r", b"e1").await.unwrap().unwrap();
    assert_eq!(detail.summary.state, State::Dead);
    assert_eq!(detail.summary.attempts, 2);
    assert_eq!(detail.history.len(), 2);
    assert_eq!(detail.history[0].status, Some(503));
    assert_eq!(
        detail.history[1].error.as_deref(),
        Some("connection refused")
    );

    assert_eq!(
        spool.redeliver("r", b"nope", 30).await.unwrap(),
        Redelivered::NotFound
    );
    assert_eq!(
        spool.redeliver("r", b"e2", 30).await.unwrap(),
        Redelivered::Pending
    );
    assert_eq!(
        spool.redeliver("r", b"e1", 30).await.unwrap(),
        Redelivered::Count(1)
    );
    let back = spool.next_pending("r", true, 1).await.unwrap();
    assert_eq!(
        (back[0].seq, back[0].attempts),
        (seq, 0),
        "pending again, attempts reset"
    );
    assert_eq!(spool.counts()["r"], (2, 0));
    spool
        .settle(
            seq,
            AttemptOutcome {
                then: Then::Dead,
                ..retry(40, 500)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        spool.redeliver_dead(Some("other"), 50).await.unwrap(),
        Redelivered::Count(0)
    );
    assert_eq!(
        spool.redeliver_dead(None, 50).await.unwrap(),
        Redelivered::Count(1)
    );
    let history = spool.detail("r", b"e1").await.unwrap().unwrap().history;
    assert_eq!(history.len(), 3, "the history outlives a redelivery");
}

#[tokio::test]
async fn listings_page_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 20);
    stored(&spool, "a", &["1", "2", "3"], 0).await;
    stored(&spool, "b", &["4"], 0).await;
    let first = spool
        .list(Filter {
            route: Some("a".into()),
            limit: 2,
            ..Filter::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = first.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["3", "2"]);
    let second = spool
        .list(Filter {
            route: Some("a".into()),
            limit: 2,
            before: first.next,
            ..Filter::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = second.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1"]);
    assert_eq!(second.next, None);
    let dead = spool
        .list(Filter {
            state: Some(State::Dead),
            limit: 10,
            ..Filter::default()
        })
        .await
        .unwrap();
    assert!(dead.events.is_empty());
}

#[tokio::test]
async fn the_sweep_deletes_what_settled_before_its_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 20);
    stored(&spool, "r", &["old", "new", "waiting"], 0).await;
    let seqs: Vec<i64> = spool
        .next_pending("r", true, 3)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    spool
        .settle(
            seqs[0],
            AttemptOutcome {
                then: Then::Dead,
                ..retry(100, 500)
            },
        )
        .await
        .unwrap();
    spool
        .settle(
            seqs[1],
            AttemptOutcome {
                then: Then::Delivered,
                ..retry(900, 200)
            },
        )
        .await
        .unwrap();
    let removed = spool.sweep(vec![("r".into(), 500)], 0).await.unwrap();
    assert_eq!(removed, 1);
    assert!(spool.detail("r", b"old").await.unwrap().is_none());
    assert!(spool.detail("r", b"new").await.unwrap().is_some());
    assert!(
        spool.detail("r", b"waiting").await.unwrap().is_some(),
        "pending is never swept"
    );
    assert_eq!(spool.counts()["r"], (1, 0));
}

#[tokio::test]
async fn a_reopened_spool_counts_what_it_holds_and_a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = open(dir.path(), 1 << 20);
        stored(&spool, "r", &["a", "b"], 0).await;
        let second = Spool::open(
            dir.path(),
            1 << 20,
            IntCounter::new("e", "e").unwrap(),
            Box::new(|_| {}),
        );
        let err = second.err().expect("locked");
        assert!(matches!(err, SpoolError::Locked { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
    let spool = open(dir.path(), 1 << 20);
    assert_eq!(spool.counts()["r"], (2, 0));
    assert_eq!(spool.stored_bytes(), 2 * event("a").body.len() as u64);
    assert_eq!(spool.routes_with_pending().await.unwrap(), ["r"]);
}

#[tokio::test]
async fn a_store_that_cannot_grow_refuses_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 30);
    stored(&spool, "r", &["before"], 0).await;
    let pages = std::fs::metadata(spool.path()).unwrap().len() / 4096;
    spool.limit_pages(pages.max(1)).await.unwrap();
    let big = NewEvent {
        body: vec![b'x'; 256 * 1024].into(),
        ..event("big")
    };
    let refused = spool.enqueue("r", TTL, vec![big], 1, admit_all()).await;
    assert!(matches!(refused, Err(SpoolError::Store(_))), "{refused:?}");
    assert_eq!(spool.counts()["r"], (1, 0));
    assert!(spool.detail("r", b"big").await.unwrap().is_none());
}
