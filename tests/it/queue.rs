//! Queue delivery (docs/queue.md) over real HTTP, on a real spool in a temporary folder: the
//! `queued` answer, delivery with `X-Hookwarden-Attempt`, an app down then up, the app's
//! `Retry-After`, backoff and dead letters on an injected clock, arrival order, a full or
//! failing store, restarts, reloads, and the admin API that lists and redelivers.

use std::time::{Duration, SystemTime};

use hookwarden::Clock;
use serde_json::{json, Value};

use crate::store::{RedisCluster, RedisServer};
use crate::support::{now, pairs, smartcv_headers, Gate, Gateway, Reply, Upstream};

pub(crate) const SECRET: &str = "q_secret";

/// A queue route `q` (and a sync route `s`) forwarding to `upstream`, its spool in
/// `store`; `queue` goes in `[queue]`, `route` in the queue route.
pub(crate) fn config(upstream: &str, store: &TestStore, queue: &str, route: &str) -> String {
    format!(
        r#"
[upstream]
url = "{upstream}"
timeout = "2s"
[queue]
{}
{queue}
[[routes]]
name = "q"
path = "/q"
provider = "smartcv"
secrets = ["{SECRET}"]
delivery = "queue"
{route}
[[routes]]
name = "s"
path = "/s"
provider = "smartcv"
secrets = ["{SECRET}"]
"#,
        store.lines()
    )
}

fn event(id: &str, kind: &str) -> String {
    format!(r#"{{"id":"{id}","type":"{kind}","data":{{"n":1}}}}"#)
}

/// Posts event `id` to `path`, signed at the clock's time.
pub(crate) async fn post(
    gw: &Gateway,
    clock: &Clock,
    path: &str,
    id: &str,
) -> crate::support::Answer {
    post_typed(gw, clock, path, id, "resume.created").await
}

/// [`post`] with an event type.
pub(crate) async fn post_typed(
    gw: &Gateway,
    clock: &Clock,
    path: &str,
    id: &str,
    kind: &str,
) -> crate::support::Answer {
    let body = event(id, kind);
    let ts = hookwarden::unix_seconds(clock.now());
    gw.post(path, &pairs(&smartcv_headers(SECRET, ts, &body)), body)
        .await
}

/// Where a test's queue lives: a folder of its own, and for Redis a server of its own
/// (`redis-server` on a socket in that folder) or a cluster of three. Fields drop in
/// order: the servers first.
pub(crate) struct TestStore {
    redis: Option<Shared>,
    dir: tempfile::TempDir,
}

enum Shared {
    One(RedisServer),
    Cluster(RedisCluster),
}

impl TestStore {
    pub(crate) fn disk() -> Self {
        TestStore {
            redis: None,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) fn redis() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        TestStore {
            redis: Some(Shared::One(RedisServer::start(dir.path()))),
            dir,
        }
    }

    pub(crate) async fn cluster() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        TestStore {
            redis: Some(Shared::Cluster(RedisCluster::start(dir.path()).await)),
            dir,
        }
    }

    /// The `[queue]` keys that put the queue there.
    pub(crate) fn lines(&self) -> String {
        let dir = self.spool();
        let url = match &self.redis {
            None => return format!("dir = \"{}\"", dir.display()),
            Some(Shared::One(redis)) => redis.url(),
            Some(Shared::Cluster(cluster)) => cluster.url(),
        };
        format!(
            "dir = \"{}\"\nbackend = \"redis\"\nredis_url = \"{url}\"",
            dir.display()
        )
    }

    /// The Redis servers (one, or a cluster's every member), for a test on a Redis store.
    pub(crate) fn redis_servers(&self) -> Vec<&RedisServer> {
        match &self.redis {
            None => Vec::new(),
            Some(Shared::One(redis)) => vec![redis],
            Some(Shared::Cluster(cluster)) => cluster.servers().collect(),
        }
    }

    /// The disk store's folder.
    pub(crate) fn spool(&self) -> std::path::PathBuf {
        self.dir.path().join("spool")
    }
}

/// Runs each named test on every store: `disk::NAME`, `redis::NAME` and
/// `redis_cluster::NAME`, one suite.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod disk {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::queue::TestStore::disk()).await
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::queue::TestStore::redis()).await
            })*
        }
        mod redis_cluster {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::queue::TestStore::cluster().await).await
            })*
        }
    };
}

pub(crate) fn clock() -> Clock {
    Clock::manual(SystemTime::now())
}

/// Polls the admin API until `check` holds for the event `id` of route `q` (the signal
/// the gateway keeps of an attempt's stored outcome), for at most 10 s.
pub(crate) async fn wait_for(gw: &Gateway, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/events/q/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = gw.api("GET", &path, None).await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {id} never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn rfc3339_millis(text: &Value) -> i64 {
    let t = humantime::parse_rfc3339(text.as_str().expect("a time")).expect("RFC 3339");
    hookwarden::unix_millis(t)
}

async fn a_queued_event_is_answered_once_stored_then_delivered_with_its_attempt_number(
    store: TestStore,
) {
    let upstream = Upstream::start().await;
    let clock = clock();
    let gw = Gateway::start_at(&config(&upstream.url(), &store, "", ""), clock.clone()).await;
    let answer = post(&gw, &clock, "/q", "evt_1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"status": "queued", "id": "evt_1"}));
    upstream.arrivals(1).await;
    let got = &upstream.received()[0];
    assert_eq!(got.header("x-hookwarden-attempt"), Some("1"));
    assert_eq!(got.header("idempotency-key"), Some("evt_1"));
    assert_eq!(got.json()["id"], "evt_1");
    assert_eq!(got.json()["data"], json!({"n": 1}));
    wait_for(&gw, "evt_1", |e| e["state"] == "delivered").await;

    let again = post(&gw, &clock, "/q", "evt_1").await;
    assert_eq!(again.json(), json!({"status": "duplicate", "id": "evt_1"}));
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="queued",route="q"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="duplicate",route="q"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_delivery_attempts_total{result="delivered",route="q"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_queue_events{route="q",state="pending"}"#],
        0.0
    );
    assert_eq!(
        m[r#"hookwarden_queue_oldest_pending_seconds{route="q"}"#],
        0.0
    );
    assert_eq!(upstream.received().len(), 1);
}

async fn an_app_down_then_up_gets_every_event(store: TestStore) {
    let upstream = Upstream::start_down().await;
    let clock = clock();
    let text = config(&upstream.url(), &store, "", "");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    for i in 0..20 {
        let answer = post(&gw, &clock, "/q", &format!("evt_{i}")).await;
        assert_eq!(answer.json()["status"], "queued", "event {i}");
    }
    // Each has failed against the closed port: once, or more when full jitter drew a
    // delay under a millisecond, which is due at once even on the stopped clock (1 in
    // 1,000 draws: a flake of about one full run in twenty until this said `>= 1`).
    for i in 0..20 {
        wait_for(&gw, &format!("evt_{i}"), |e| {
            e["attempts"].as_u64() >= Some(1)
        })
        .await;
    }
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_queue_events{route="q",state="pending"}"#],
        20.0
    );

    // The app comes up; the next attempts (backoff ≤ 1 s after a first failure, ≤ 2 s
    // after a second) reach it.
    upstream.up();
    clock.advance(Duration::from_secs(4));
    upstream.arrivals(20).await;
    for i in 0..20 {
        wait_for(&gw, &format!("evt_{i}"), |e| e["state"] == "delivered").await;
    }
    let mut ids: Vec<String> = upstream
        .received()
        .iter()
        .map(|r| r.json()["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every event arrived");
    // None reached the app while it was down: every delivery is a later attempt.
    assert!(upstream.received().iter().all(|r| r
        .header("x-hookwarden-attempt")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n >= 2)));
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_queue_events{route="q",state="pending"}"#],
        0.0
    );
}

async fn a_429_with_retry_after_waits_that_long_and_backoff_doubles_on_the_clock(store: TestStore) {
    let upstream = Upstream::start().await;
    upstream.script([
        Reply::status(429).with_header("retry-after", "120"),
        Reply::status(503),
        Reply::status(503),
    ]);
    let clock = clock();
    let text = config(
        &upstream.url(),
        &store,
        "backoff = { initial = \"10s\", max = \"1h\" }",
        "",
    );
    let gw = Gateway::start_at(&text, clock.clone()).await;
    post(&gw, &clock, "/q", "evt_r").await;
    let first = wait_for(&gw, "evt_r", |e| e["attempts"] == 1).await;
    let at = rfc3339_millis(&first["history"][0]["at"]);
    assert_eq!(first["last_status"], 429);
    assert_eq!(
        rfc3339_millis(&first["next_attempt_at"]) - at,
        120_000,
        "the app's Retry-After, longer than the jittered 10 s"
    );
    clock.advance(Duration::from_secs(60));
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_queue_oldest_pending_seconds{route="q"}"#],
        60.0
    );
    assert_eq!(
        m[r#"hookwarden_queue_events{route="q",state="pending"}"#],
        1.0
    );
    clock.advance(Duration::from_secs(60));
    let second = wait_for(&gw, "evt_r", |e| e["attempts"] == 2).await;
    let wait =
        rfc3339_millis(&second["next_attempt_at"]) - rfc3339_millis(&second["history"][1]["at"]);
    assert!(
        (0..=20_000).contains(&wait),
        "full jitter under 2 x 10 s: {wait} ms"
    );
    clock.advance(Duration::from_secs(20));
    let third = wait_for(&gw, "evt_r", |e| e["attempts"] == 3).await;
    let wait =
        rfc3339_millis(&third["next_attempt_at"]) - rfc3339_millis(&third["history"][2]["at"]);
    assert!(
        (0..=40_000).contains(&wait),
        "full jitter under 4 x 10 s: {wait} ms"
    );
    clock.advance(Duration::from_secs(40));
    wait_for(&gw, "evt_r", |e| e["state"] == "delivered").await;
    assert_eq!(upstream.received().len(), 4);
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_delivery_attempts_total{result="failed",route="q"}"#],
        3.0
    );
}

async fn after_max_attempts_an_event_is_a_dead_letter_until_redelivered_through_the_api(
    store: TestStore,
) {
    let upstream = Upstream::start().await;
    // Two events, two attempts each: four failures, then the app takes what comes.
    upstream.script([
        Reply::status(500),
        Reply::status(500),
        Reply::status(500),
        Reply::status(500),
    ]);
    let clock = clock();
    let text = config(&upstream.url(), &store, "max_attempts = 2", "");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    post(&gw, &clock, "/q", "evt_dead").await;
    post(&gw, &clock, "/q", "evt_dead_2").await;
    wait_for(&gw, "evt_dead", |e| e["attempts"] == 1).await;
    wait_for(&gw, "evt_dead_2", |e| e["attempts"] == 1).await;
    clock.advance(Duration::from_secs(1));
    let dead = wait_for(&gw, "evt_dead", |e| e["state"] == "dead").await;
    wait_for(&gw, "evt_dead_2", |e| e["state"] == "dead").await;
    assert_eq!(dead["attempts"], 2);
    assert_eq!(dead["next_attempt_at"], Value::Null);
    assert_eq!(dead["history"].as_array().expect("history").len(), 2);
    assert_eq!(dead["body"]["id"], "evt_dead", "the envelope, as JSON");

    let (status, list) = gw.api("GET", "/api/events?state=dead&route=q", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(&"evt_dead"), "{list}");

    let (status, body) = gw
        .api("POST", "/api/events/q/evt_dead/redeliver", None)
        .await;
    assert_eq!((status, body), (202, json!({"redelivered": 1})));
    let delivered = wait_for(&gw, "evt_dead", |e| e["state"] == "delivered").await;
    assert_eq!(delivered["attempts"], 1, "attempts start again from zero");
    assert_eq!(delivered["history"].as_array().expect("history").len(), 3);
    let last = upstream.received().pop().expect("redelivered");
    assert_eq!(last.header("x-hookwarden-attempt"), Some("1"));

    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_delivery_attempts_total{result="dead_lettered",route="q"}"#],
        2.0
    );
    // Every dead letter of the route goes back at once.
    let (status, body) = gw
        .api("POST", "/api/dead-letters/redeliver?route=q", None)
        .await;
    assert_eq!((status, body), (202, json!({"redelivered": 1})));
    wait_for(&gw, "evt_dead_2", |e| e["state"] == "delivered").await;
}

async fn with_concurrency_1_events_go_in_arrival_order_behind_a_failing_head(store: TestStore) {
    let upstream = Upstream::start().await;
    let gate = Gate::new();
    upstream.script([Reply::status(503).held(&gate)]);
    let clock = clock();
    let text = config(&upstream.url(), &store, "", "concurrency = 1");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    for id in ["o1", "o2", "o3", "o4"] {
        post(&gw, &clock, "/q", id).await;
    }
    upstream.arrivals(1).await;
    gate.open();
    wait_for(&gw, "o1", |e| e["attempts"] == 1).await;
    // The head failed: nothing behind it moves until it is due again.
    let (_, o2) = gw.api("GET", "/api/events/q/o2", None).await;
    assert_eq!(o2["attempts"], 0);
    clock.advance(Duration::from_secs(1));
    wait_for(&gw, "o4", |e| e["state"] == "delivered").await;
    let order: Vec<String> = upstream
        .received()
        .iter()
        .map(|r| r.json()["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(order, ["o1", "o1", "o2", "o3", "o4"]);
}

async fn a_full_queue_answers_503_and_stores_nothing(store: TestStore) {
    let app = Upstream::start_down().await;
    let clock = clock();
    // Room for one envelope of these events (about 150 bytes), not two.
    let text = config(&app.url(), &store, "max_bytes = 200", "");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    assert_eq!(post(&gw, &clock, "/q", "f1").await.status, 200);
    let full = post(&gw, &clock, "/q", "f2").await;
    assert_eq!(full.status, 503);
    assert_eq!(full.error(), "queue_unavailable");
    assert!(full.headers.contains_key("retry-after"));
    let (_, list) = gw.api("GET", "/api/events", None).await;
    assert_eq!(list["events"].as_array().expect("events").len(), 1);
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="queue_unavailable",route="q"}"#],
        1.0
    );
}

async fn a_rate_limited_queue_route_spends_its_budget_on_new_events_only(store: TestStore) {
    let app = Upstream::start().await;
    let clock = clock();
    let route = "rate_limit = { per_second = 0.001, burst = 2 }";
    let gw = Gateway::start_at(&config(&app.url(), &store, "", route), clock.clone()).await;
    assert_eq!(post(&gw, &clock, "/q", "r1").await.status, 200);
    let again = post(&gw, &clock, "/q", "r1").await;
    assert_eq!(
        (again.status, again.json()["status"].clone()),
        (200, json!("duplicate"))
    );
    for redis in store.redis_servers() {
        // A Redis that restarted has forgotten the gateway's scripts: it loads them again.
        let mut c = redis.client().await;
        let flushed: String = ::redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut c)
            .await
            .expect("flush");
        assert_eq!(flushed, "OK");
    }
    assert_eq!(post(&gw, &clock, "/q", "r2").await.status, 200);
    let limited = post(&gw, &clock, "/q", "r3").await;
    assert_eq!(
        (limited.status, limited.error().as_str()),
        (429, "rate_limited")
    );
    // Not one failure counted, even when the flush fell between a script's load and
    // its run (a settle under load did, before scripts were run a second time).
    let m = gw.metrics().await;
    assert_eq!(m["hookwarden_queue_store_errors_total"], 0.0);
}

#[tokio::test]
async fn a_store_that_refuses_writes_answers_503_never_200() {
    let store = TestStore::disk();
    let app = Upstream::start_down().await;
    let clock = clock();
    let text = config(&app.url(), &store, "", "");
    let gw = Gateway::start_at(&text, clock.clone()).await;
    assert_eq!(post(&gw, &clock, "/q", "w1").await.status, 200);
    // SQLite refuses to grow the file, as a full disk does.
    let db = gw.app.queue_database().expect("a queue on disk");
    let pages = std::fs::metadata(db).expect("db").len() / 4096;
    gw.app.limit_queue_pages(pages.max(1)).await.expect("limit");
    let mut refused = 0;
    for i in 0..50 {
        let answer = post(&gw, &clock, "/q", &format!("big_{i}_{}", "x".repeat(2000))).await;
        match answer.status {
            503 => refused += 1,
            200 => {
                // Stored after all (room left in a page): it must then be listed.
                let id = format!("big_{i}_{}", "x".repeat(2000));
                let (status, _) = gw.api("GET", &format!("/api/events/q/{id}"), None).await;
                assert_eq!(status, 200, "answered 200 but not stored");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "the store never refused");
    let m = gw.metrics().await;
    assert!(m["hookwarden_queue_store_errors_total"] >= 1.0);
}

async fn a_restarted_gateway_delivers_what_the_last_one_stored(store: TestStore) {
    let upstream = Upstream::start_down().await;
    let text = config(&upstream.url(), &store, "", "");
    let clock = clock();
    let first = Gateway::start_at(&text, clock.clone()).await;
    for id in ["r1", "r2", "r3"] {
        assert_eq!(post(&first, &clock, "/q", id).await.status, 200);
    }
    wait_for(&first, "r3", |e| e["attempts"] == 1).await;
    first.shutdown().await;

    upstream.up();
    let second = Gateway::start_at(&text, clock.clone()).await;
    clock.advance(Duration::from_secs(1));
    upstream.arrivals(3).await;
    for id in ["r1", "r2", "r3"] {
        wait_for(&second, id, |e| e["state"] == "delivered").await;
    }
}

#[tokio::test]
async fn when_run_returns_every_task_has_ended_and_the_folder_is_free() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let store = TestStore::disk();
    let dir = store.spool();
    let upstream = Upstream::start().await;
    let text = config(&upstream.url(), &store, "", "");
    let clock = clock();
    let gw = Gateway::start_at(&text, clock.clone()).await;
    assert_eq!(post(&gw, &clock, "/q", "k1").await.status, 200);
    // An operator's keep-alive connection to the admin port, idle when the stop comes.
    let mut admin = tokio::net::TcpStream::connect(gw.admin)
        .await
        .expect("admin");
    admin
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .expect("send");
    let mut first = [0u8; 64];
    let n = admin.read(&mut first).await.expect("answer");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));

    let old = gw.stop_keeping_app().await;
    // Closed cleanly: SQLite folded its log into the database and removed it.
    for leftover in ["queue.db-wal", "queue.db-shm"] {
        assert!(!dir.join(leftover).exists(), "{leftover} left behind");
    }
    assert!(dir.join("queue.db").exists());
    // The admin connection was let go, not left running beside a stopped gateway.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), admin.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the admin connection was closed"
    );
    // A new gateway takes the folder while the old one's state is still held here.
    let loaded =
        hookwarden::config::load_str(&text, std::path::Path::new("."), &|_| None).expect("config");
    let pool = hookwarden::Pool::new(clock.clone()).expect("pool");
    let again = hookwarden::App::new(loaded.config, clock, pool);
    assert!(again.is_ok(), "the lock was released: {:?}", again.err());
    drop(old);
}

async fn a_reload_sends_pending_events_to_the_new_upstream(store: TestStore) {
    let old = Upstream::start_down().await;
    let clock = clock();
    let gw = Gateway::start_at(&config(&old.url(), &store, "", ""), clock.clone()).await;
    post(&gw, &clock, "/q", "moved").await;
    wait_for(&gw, "moved", |e| e["attempts"] == 1).await;
    let upstream = Upstream::start().await;
    let text = config(&upstream.url(), &store, "", "").replace(
        "[[routes]]\nname = \"q\"",
        "[[routes]]\nname = \"q\"\nforward_path = \"/new\"",
    );
    let loaded = hookwarden::config::load_str(&text, std::path::Path::new("."), &|_| None);
    assert!(gw.app.reload(loaded));
    clock.advance(Duration::from_secs(1));
    upstream.arrivals(1).await;
    assert_eq!(upstream.received()[0].uri, "/new");
}

/// `[queue]`'s delivery settings apply from the next attempt after a reload: an event on
/// its first of ten attempts becomes a dead letter at its second once ten is now two.
async fn a_reload_applies_max_attempts_from_the_next_attempt(store: TestStore) {
    let down = Upstream::start_down().await;
    let clock = clock();
    let ten = "max_attempts = 10\nbackoff = { initial = \"1h\", max = \"1h\" }";
    let gw = Gateway::start_at(&config(&down.url(), &store, ten, ""), clock.clone()).await;
    post(&gw, &clock, "/q", "shortened").await;
    let first = wait_for(&gw, "shortened", |e| e["attempts"] == 1).await;
    assert_eq!(first["state"], "pending");

    let two = "max_attempts = 2\nbackoff = { initial = \"1h\", max = \"1h\" }";
    let loaded = hookwarden::config::load_str(
        &config(&down.url(), &store, two, ""),
        std::path::Path::new("."),
        &|_| None,
    );
    assert!(gw.app.reload(loaded));
    // The second attempt is due in an hour, as scheduled before the reload.
    clock.advance(Duration::from_secs(3601));
    let dead = wait_for(&gw, "shortened", |e| e["state"] == "dead").await;
    assert_eq!(dead["attempts"], 2, "{dead}");
}

#[tokio::test]
async fn the_api_needs_the_token_when_one_is_set_and_is_off_elsewhere_without_one() {
    let store = TestStore::disk();
    let upstream = Upstream::start().await;
    let with_token = format!(
        "[admin]\ntoken = \"s3cret-token\"\n{}",
        config(&upstream.url(), &store, "", "")
    );
    let gw = Gateway::start(&with_token).await;
    for token in [None, Some("wrong"), Some("s3cret-token-"), Some("")] {
        let (status, body) = gw.api("GET", "/api/events", token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{token:?}"
        );
    }
    let (status, body) = gw.api("GET", "/api/events", Some("s3cret-token")).await;
    assert_eq!(status, 200, "{body}");
    let metrics = crate::support::send(gw.admin, "GET", "/metrics", &[], "".into()).await;
    assert_eq!(metrics.status, 200, "metrics never need the token");
    drop(gw);

    // No token, an address others can reach: /api does not exist.
    let store = TestStore::disk();
    let open = format!(
        "[admin]\nlisten = \"0.0.0.0:9090\"\n{}",
        config(&upstream.url(), &store, "", "")
    );
    let gw = Gateway::start(&open).await;
    let (status, _) = gw.api("GET", "/api/events", None).await;
    assert_eq!(status, 404);
}

async fn the_api_refuses_bad_parameters_and_unknown_events(store: TestStore) {
    let app = Upstream::start_down().await;
    let clock = clock();
    let gw = Gateway::start_at(&config(&app.url(), &store, "", ""), clock.clone()).await;
    for i in 0..5 {
        post(&gw, &clock, "/q", &format!("p{i}")).await;
    }
    for bad in [
        "/api/events?limit=0",
        "/api/events?limit=x",
        "/api/events?limit=-1",
        "/api/events?state=lost",
        "/api/events?cursor=abc",
        "/api/events?since=yesterday",
        "/api/events?until=2024-13-40T00:00:00Z",
        "/api/events/redeliver",
        "/api/events/redeliver?state=pending",
    ] {
        let method = if bad.starts_with("/api/events/redeliver") {
            "POST"
        } else {
            "GET"
        };
        let (status, body) = gw.api(method, bad, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    let (_, page) = gw.api("GET", "/api/events?limit=2", None).await;
    let ids: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["p4", "p3"], "newest first");
    let next = page["next"].as_str().expect("a cursor");
    let (_, rest) = gw
        .api("GET", &format!("/api/events?limit=2&cursor={next}"), None)
        .await;
    assert_eq!(rest["events"][0]["id"], "p2");
    let (_, big) = gw.api("GET", "/api/events?limit=999999", None).await;
    assert_eq!(big["events"].as_array().expect("events").len(), 5);
    let (_, none) = gw.api("GET", "/api/events?route=nosuch", None).await;
    assert_eq!(none, json!({"events": [], "next": null}));
    let (status, _) = gw.api("GET", "/api/events/q/nosuch", None).await;
    assert_eq!(status, 404);
    let (status, _) = gw.api("POST", "/api/events/q/nosuch/redeliver", None).await;
    assert_eq!(status, 404);
    let (status, _) = gw.api("DELETE", "/api/events", None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn a_batch_is_stored_in_one_write_and_answered_with_every_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let text = format!(
        r#"
[upstream]
url = "{}"
[queue]
dir = "{}"
[[routes]]
name = "q"
path = "/hf"
provider = "hrflow"
secrets = ["hf"]
delivery = "queue"
"#,
        upstream.url(),
        dir.path().display()
    );
    let gw = Gateway::start(&text).await;
    let batch = r#"[{"type":"a","n":1},{"type":"b","n":2},{"type":"a","n":1}]"#;
    let sig = crate::support::hmac_hex("hf", &[batch.as_bytes()]);
    let headers = [
        ("content-type", "application/json"),
        ("http-hrflow-signature", sig.as_str()),
    ];
    let answer = gw.post("/hf", &headers, batch).await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["status"], "queued");
    let ids = body["ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 3, "every element's id, duplicates too");
    assert_eq!(ids[0], ids[2]);
    upstream.arrivals(2).await;
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="queued",route="q"}"#],
        2.0
    );
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="duplicate",route="q"}"#],
        1.0
    );
    let _ = now();
}

on_every_store!(
    a_queued_event_is_answered_once_stored_then_delivered_with_its_attempt_number,
    an_app_down_then_up_gets_every_event,
    a_429_with_retry_after_waits_that_long_and_backoff_doubles_on_the_clock,
    after_max_attempts_an_event_is_a_dead_letter_until_redelivered_through_the_api,
    with_concurrency_1_events_go_in_arrival_order_behind_a_failing_head,
    a_full_queue_answers_503_and_stores_nothing,
    a_rate_limited_queue_route_spends_its_budget_on_new_events_only,
    a_restarted_gateway_delivers_what_the_last_one_stored,
    a_reload_sends_pending_events_to_the_new_upstream,
    a_reload_applies_max_attempts_from_the_next_attempt,
    the_api_refuses_bad_parameters_and_unknown_events,
);
