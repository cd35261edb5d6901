//! The queue's levers over real HTTP (docs/admin-api.md): hurry one waiting event, retry
//! every waiting event now, pause and resume a route, redeliver in bulk with filters;
//! the lists' filters, what the app answered kept in the history, and the metrics the
//! queue exports (and those it must not).

use std::time::Duration;

use serde_json::json;

use crate::queue::{clock, config, post, post_typed, wait_for, TestStore};
use crate::support::{Gate, Gateway, Reply, Upstream};

/// A gateway whose queue route `q` waits an hour between attempts.
async fn slow_backoff(upstream: &Upstream, store: &TestStore) -> (Gateway, hookwarden::Clock) {
    let clock = clock();
    let text = config(
        &upstream.url(),
        store,
        "backoff = { initial = \"1h\", max = \"1h\" }",
        "",
    );
    // Full jitter can draw a short wait; the tests below never move the clock, so a
    // wait of any length above zero holds the event until a lever moves it.
    (Gateway::start_at(&text, clock.clone()).await, clock)
}

async fn a_waiting_event_is_attempted_now_on_redeliver_and_409_only_while_in_flight(
    store: TestStore,
) {
    let upstream = Upstream::start().await;
    let gate = Gate::new();
    upstream.script([Reply::status(503), Reply::status(200).held(&gate)]);
    let (gw, clock) = slow_backoff(&upstream, &store).await;
    post(&gw, &clock, "/q", "w1").await;
    let waiting = wait_for(&gw, "w1", |e| e["attempts"] == 1).await;
    assert_eq!(waiting["state"], "pending");
    assert_ne!(waiting["next_attempt_at"], waiting["history"][0]["at"]);

    let (status, body) = gw.api("POST", "/api/events/q/w1/redeliver", None).await;
    assert_eq!((status, body), (202, json!({"redelivered": 1})));
    upstream.arrivals(2).await;
    let second = &upstream.received()[1];
    assert_eq!(
        second.header("x-hookwarden-attempt"),
        Some("2"),
        "attempts kept"
    );
    // The app holds its answer: an attempt is in progress.
    let (status, body) = gw.api("POST", "/api/events/q/w1/redeliver", None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("in_flight")));
    gate.open();
    wait_for(&gw, "w1", |e| e["state"] == "delivered").await;
}

async fn retry_now_sends_every_waiting_event_at_once(store: TestStore) {
    let upstream = Upstream::start_down().await;
    let (gw, clock) = slow_backoff(&upstream, &store).await;
    for id in ["r1", "r2", "r3"] {
        post(&gw, &clock, "/q", id).await;
    }
    for id in ["r1", "r2", "r3"] {
        wait_for(&gw, id, |e| e["attempts"] == 1).await;
    }
    upstream.up();
    let (status, body) = gw.api("POST", "/api/routes/q/retry-now", None).await;
    assert_eq!((status, body), (202, json!({"rescheduled": 3})));
    for id in ["r1", "r2", "r3"] {
        let done = wait_for(&gw, id, |e| e["state"] == "delivered").await;
        assert_eq!(done["attempts"], 2);
    }
    let (status, body) = gw.api("POST", "/api/routes/q/retry-now", None).await;
    assert_eq!((status, body), (202, json!({"rescheduled": 0})));
    let (status, body) = gw.api("POST", "/api/routes/s/retry-now", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_a_queue_route"))
    );
    let (status, _) = gw.api("POST", "/api/routes/nosuch/retry-now", None).await;
    assert_eq!(status, 404);
    let (status, _) = gw.api("GET", "/api/routes/q/retry-now", None).await;
    assert_eq!(status, 405);
}

async fn a_paused_route_queues_without_delivering_until_resumed(store: TestStore) {
    let upstream = Upstream::start().await;
    let clock = clock();
    let gw = Gateway::start_at(&config(&upstream.url(), &store, "", ""), clock.clone()).await;
    let (status, body) = gw.api("POST", "/api/routes/q/pause", None).await;
    assert_eq!((status, body), (200, json!({"route": "q", "paused": true})));
    for id in ["z1", "z2"] {
        let answer = post(&gw, &clock, "/q", id).await;
        assert_eq!(answer.json()["status"], "queued");
    }
    let (_, routes) = gw.api("GET", "/api/routes", None).await;
    let q = &routes["routes"][0];
    assert_eq!(q["name"], "q");
    assert_eq!(q["queue"]["paused"], true);
    assert_eq!(q["queue"]["pending"], 2);
    let m = gw.metrics().await;
    assert_eq!(m[r#"hookwarden_queue_paused{route="q"}"#], 1.0);
    // Nothing is attempted while paused; the sync route is not paused by it.
    assert!(upstream.received().is_empty());

    let (status, body) = gw.api("POST", "/api/routes/q/resume", None).await;
    assert_eq!(
        (status, body),
        (200, json!({"route": "q", "paused": false}))
    );
    upstream.arrivals(2).await;
    wait_for(&gw, "z2", |e| e["state"] == "delivered").await;
    let m = gw.metrics().await;
    assert_eq!(m[r#"hookwarden_queue_paused{route="q"}"#], 0.0);
    let (status, body) = gw.api("POST", "/api/routes/s/pause", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_a_queue_route"))
    );
    let (status, body) = gw.api("POST", "/api/routes/nosuch/pause", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

async fn bulk_redelivery_takes_the_list_filters_and_a_required_state(store: TestStore) {
    let upstream = Upstream::start().await;
    upstream.script((0..4).map(|_| Reply::status(500)));
    let clock = clock();
    let text = config(&upstream.url(), &store, "max_attempts = 1", "");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    for (id, kind) in [
        ("a1", "a.kind"),
        ("a2", "a.kind"),
        ("b1", "b.kind"),
        ("b2", "b.kind"),
    ] {
        post_typed(&gw, &clock, "/q", id, kind).await;
    }
    for id in ["a1", "a2", "b1", "b2"] {
        wait_for(&gw, id, |e| e["state"] == "dead").await;
    }
    let (_, dead_b) = gw
        .api("GET", "/api/events?state=dead&type=b.kind", None)
        .await;
    let ids: Vec<&str> = dead_b["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["b2", "b1"]);
    let later = clock.now() + Duration::from_secs(60);
    let until = humantime::format_rfc3339(later).to_string();
    let (_, none) = gw
        .api("GET", &format!("/api/events?since={until}"), None)
        .await;
    assert_eq!(none["events"], json!([]));
    let since = hookwarden::unix_seconds(clock.now()) - 60;
    let (_, all) = gw
        .api(
            "GET",
            &format!("/api/events?since={since}&until={until}"),
            None,
        )
        .await;
    assert_eq!(all["events"].as_array().expect("events").len(), 4);

    let (status, body) = gw
        .api(
            "POST",
            "/api/events/redeliver?state=dead&type=b.kind&route=q",
            None,
        )
        .await;
    assert_eq!((status, body), (202, json!({"redelivered": 2})));
    for id in ["b1", "b2"] {
        wait_for(&gw, id, |e| e["state"] == "delivered").await;
    }
    let (_, a1) = gw.api("GET", "/api/events/q/a1", None).await;
    assert_eq!(a1["state"], "dead", "outside the filter");
    // Delivered events can be sent again too.
    let (status, body) = gw
        .api(
            "POST",
            "/api/events/redeliver?state=delivered&route=q",
            None,
        )
        .await;
    assert_eq!((status, body), (202, json!({"redelivered": 2})));
    upstream.arrivals(8).await;
}

async fn the_history_keeps_the_start_of_what_the_app_answered(store: TestStore) {
    let upstream = Upstream::start().await;
    upstream.script([
        Reply::status(500).with_body("text/plain", "database is down"),
        Reply::status(422).with_body("application/json", r#"{"error":"bad candidate"}"#),
    ]);
    let clock = clock();
    let text = config(&upstream.url(), &store, "", "");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    post(&gw, &clock, "/q", "h1").await;
    wait_for(&gw, "h1", |e| e["attempts"] == 1).await;
    clock.advance(Duration::from_secs(1));
    wait_for(&gw, "h1", |e| e["attempts"] == 2).await;
    clock.advance(Duration::from_secs(2));
    let done = wait_for(&gw, "h1", |e| e["state"] == "delivered").await;
    let history = done["history"].as_array().expect("history");
    assert_eq!(history[0]["status"], 500);
    assert_eq!(history[0]["response"], "database is down");
    assert_eq!(history[1]["response"], r#"{"error":"bad candidate"}"#);
    assert_eq!(history[2]["response"], r#"{"ok":true}"#);

    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_upstream_duration_seconds_count{route="q"}"#], 3.0,
        "queue attempts are timed like sync forwards"
    );
}

async fn only_series_that_can_happen_are_exported(store: TestStore) {
    let upstream = Upstream::start().await;
    let clock = clock();
    let gw = Gateway::start_at(&config(&upstream.url(), &store, "", ""), clock).await;
    let m = gw.metrics().await;
    let unmatched: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("hookwarden_requests_total") && k.contains("_unmatched"))
        .collect();
    assert_eq!(unmatched.len(), 2, "{unmatched:?}");
    assert!(m.contains_key(r#"hookwarden_requests_total{outcome="not_found",route="_unmatched"}"#));
    assert!(m.contains_key(r#"hookwarden_requests_total{outcome="queued",route="q"}"#));
    assert!(!m.contains_key(r#"hookwarden_requests_total{outcome="queued",route="s"}"#));
    assert!(m.contains_key(r#"hookwarden_queue_events{route="q",state="pending"}"#));
    assert!(m.contains_key(r#"hookwarden_queue_paused{route="q"}"#));
    for series in m.keys().filter(|k| k.starts_with("hookwarden_queue_")) {
        assert!(
            !series.contains(r#"route="s""#),
            "a sync route has no queue: {series}"
        );
    }
}

crate::on_every_store!(
    a_waiting_event_is_attempted_now_on_redeliver_and_409_only_while_in_flight,
    retry_now_sends_every_waiting_event_at_once,
    a_paused_route_queues_without_delivering_until_resumed,
    bulk_redelivery_takes_the_list_filters_and_a_required_state,
    the_history_keeps_the_start_of_what_the_app_answered,
    only_series_that_can_happen_are_exported,
);
