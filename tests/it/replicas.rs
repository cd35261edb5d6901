//! Several replicas sharing their ids in Redis (`dedup.backend = "redis"`): an event
//! reaches the app once whichever replica each copy lands on.

use std::time::Duration;

use serde_json::json;

use crate::binary;
use crate::store::{keys, RedisCluster, RedisServer};
use crate::support::free_port;
use crate::support::{
    now, pairs, smartcv_headers, smartcv_on_raw_connection, Answer, Gate, Gateway, Reply, Upstream,
};

const SECRET: &str = "sc";

fn config(upstream: &str, redis: &str) -> String {
    format!(
        r#"
[server]
request_timeout = "10s"
[upstream]
url = "{upstream}"
[dedup]
backend = "redis"
redis_url = "{redis}"
[[routes]]
name = "a"
path = "/a"
provider = "smartcv"
secrets = ["{SECRET}"]
dedup_ttl = "1h"
"#
    )
}

fn event(id: &str) -> String {
    format!(r#"{{"id":"{id}","type":"resume.created","data":{{}}}}"#)
}

async fn send(gw: &Gateway, body: &str) -> Answer {
    gw.post(
        "/a",
        &pairs(&smartcv_headers(SECRET, now(), body)),
        body.to_string(),
    )
    .await
}

/// Two replicas of the gateway sharing one Redis, in front of one app that answers
/// `script` (then 200s). Fields drop in order: the gateways before the store.
struct Cluster {
    a: Gateway,
    b: Gateway,
    upstream: Upstream,
    redis: RedisServer,
    _dir: tempfile::TempDir,
}

async fn cluster(script: impl IntoIterator<Item = Reply>) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start(dir.path());
    let upstream = Upstream::start().await;
    upstream.script(script);
    let config = config(&upstream.url(), &redis.url());
    Cluster {
        a: Gateway::start(&config).await,
        b: Gateway::start(&config).await,
        upstream,
        redis,
        _dir: dir,
    }
}

#[tokio::test]
async fn an_event_delivered_by_one_replica_is_a_duplicate_at_the_other() {
    let cluster = cluster([]).await;
    let Cluster {
        a,
        b,
        upstream,
        redis,
        ..
    } = &cluster;
    let body = event("evt_shared");

    assert_eq!(send(a, &body).await.status, 200);
    let at_b = send(b, &body).await;
    assert_eq!(at_b.status, 200);
    assert_eq!(
        at_b.json(),
        json!({"status": "duplicate", "id": "evt_shared"})
    );
    assert_eq!(upstream.received().len(), 1, "the app received it once");

    let stored = keys(&mut redis.client().await, "a").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (_, value, ttl) = &stored[0];
    assert_eq!(value, "d");
    let hour = 3_600_000;
    assert!(
        *ttl > hour - 60_000 && *ttl <= hour,
        "remembered for the route's dedup_ttl: {ttl} ms"
    );
    let metrics = b.metrics().await;
    assert_eq!(
        metrics[r#"hookwarden_requests_total{outcome="duplicate",route="a"}"#],
        1.0
    );
}

/// On a Redis Cluster the ids' keys spread over its members; each replica finds them
/// wherever they are.
#[tokio::test]
async fn on_a_redis_cluster_events_delivered_by_one_replica_are_duplicates_at_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisCluster::start(dir.path()).await;
    let upstream = Upstream::start().await;
    let config = config(&upstream.url(), &redis.url());
    let (a, b) = (Gateway::start(&config).await, Gateway::start(&config).await);
    for i in 0..30 {
        let body = event(&format!("evt_{i}"));
        assert_eq!(send(&a, &body).await.status, 200);
        let at_b = send(&b, &body).await;
        assert_eq!(at_b.json()["status"], "duplicate", "evt_{i}");
    }
    assert_eq!(upstream.received().len(), 30, "the app received each once");
    let mut holding = 0;
    for server in redis.servers() {
        holding += usize::from(!keys(&mut server.client().await, "a").await.is_empty());
    }
    assert_eq!(holding, 3, "30 ids' keys on every member");
}

#[tokio::test]
async fn a_copy_at_another_replica_while_the_first_is_forwarded_is_told_to_retry() {
    // The app takes its time over the first copy, so the second meets it in flight.
    let gate = Gate::new();
    let cluster = cluster([Reply::status(200).held(&gate)]).await;
    let Cluster {
        a,
        b,
        upstream,
        redis,
        ..
    } = &cluster;
    let body = event("evt_in_flight");

    let first = {
        let (addr, body) = (a.addr, body.clone());
        tokio::spawn(async move {
            let headers = smartcv_headers(SECRET, now(), &body);
            crate::support::send(addr, "POST", "/a", &pairs(&headers), body.into()).await
        })
    };
    upstream.arrivals(1).await;

    let stored = keys(&mut redis.client().await, "a").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (_, claim, lease) = &stored[0];
    assert!(claim.starts_with('p'), "a claim in flight: {claim:?}");
    assert!(
        *lease > 0 && *lease <= 11_000,
        "the claim lasts no longer than the request may (10 s + 1 s): {lease} ms"
    );

    let second = send(b, &body).await;
    assert_eq!(second.status, 409);
    assert_eq!(second.error(), "in_flight");
    assert_eq!(
        second.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );

    gate.open();
    assert_eq!(first.await.expect("first copy").status, 200);
    let retry = send(b, &body).await;
    assert_eq!(
        retry.json()["status"],
        "duplicate",
        "the retry finds it delivered"
    );
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn a_failed_forward_frees_the_id_for_a_retry_at_any_replica() {
    let cluster = cluster([Reply::status(503)]).await;
    let Cluster {
        a,
        b,
        upstream,
        redis,
        ..
    } = &cluster;
    let body = event("evt_failed");

    let failed = send(a, &body).await;
    assert_eq!(failed.status, 502);
    assert!(
        keys(&mut redis.client().await, "a").await.is_empty(),
        "the claim was released"
    );
    assert_eq!(send(b, &body).await.status, 200, "the retry is forwarded");
    assert_eq!(send(a, &body).await.json()["status"], "duplicate");
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn without_its_store_a_replica_forwards_nothing_and_serves_again_once_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start(dir.path());
    let socket = redis.socket();
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), &redis.url())).await;
    assert_eq!(send(&gw, &event("evt_before")).await.status, 200);

    drop(redis);
    let down = send(&gw, &event("evt_while_down")).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.error(), "store_unavailable");
    assert_eq!(down.headers["retry-after"], "1");
    assert_eq!(upstream.received().len(), 1, "nothing forwarded unchecked");
    let metrics = gw.metrics().await;
    assert!(metrics["hookwarden_dedup_store_errors_total"] >= 1.0);

    let _back = RedisServer::start_on(socket);
    let again = send(&gw, &event("evt_while_down")).await;
    assert_eq!(again.status, 200, "{:?}", again.json());
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn a_forward_whose_provider_hung_up_runs_to_its_end_and_settles_the_id_everywhere() {
    let gate = Gate::new();
    let cluster = cluster([Reply::status(200).held(&gate)]).await;
    let Cluster {
        a,
        b,
        upstream,
        redis,
        ..
    } = &cluster;
    let body = event("evt_hung_up");

    let provider = smartcv_on_raw_connection(a.addr, SECRET, &body).await;
    upstream.arrivals(1).await;
    drop(provider);

    // The forward goes on without its provider: a retry at the other replica finds it in
    // flight instead of forwarding a second copy.
    let meanwhile = send(b, &body).await;
    assert_eq!(meanwhile.status, 409, "{:?}", meanwhile.json());
    gate.open();

    // The outcome is settled in the background; nothing signals it outside the gateway,
    // so the store is asked until it says delivered, for at most 5 s.
    let mut conn = redis.client().await;
    let settled = async {
        loop {
            let stored = keys(&mut conn, "a").await;
            if stored.iter().any(|(_, state, _)| state == "d") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), settled)
        .await
        .expect("the hung-up forward was recorded as delivered");
    assert_eq!(send(b, &body).await.json()["status"], "duplicate");
    assert_eq!(upstream.received().len(), 1, "the app got one copy");
}

// Multi-threaded: the binary's log lines are awaited by blocking while the app serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_store_whose_root_ssl_cert_file_names_is_trusted_and_no_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cert, key) = (dir.path().join("redis.crt"), dir.path().join("redis.key"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.key_pair.serialize_pem()).expect("write key");
    let tls_port = free_port();
    let redis = RedisServer::start_tls(dir.path(), tls_port, &cert, &key);
    let upstream = Upstream::start().await;

    let start = |name: &str, env: &[(&str, &std::path::Path)]| {
        let (port, admin) = (free_port(), free_port());
        let path = dir.path().join(name);
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:{admin}"
[upstream]
url = "{}"
[dedup]
backend = "redis"
redis_url = "rediss://localhost:{tls_port}/0"
[[routes]]
name = "smartcv"
path = "/webhooks/smartcv"
provider = "smartcv"
secrets = ["{SECRET}"]
"#,
            upstream.url()
        );
        std::fs::write(&path, config).expect("write config");
        binary::Gateway::start_with_env(&path, port, admin, env)
    };

    let trusting = start("trusting.toml", &[("SSL_CERT_FILE", &cert)]);
    assert_eq!(trusting.deliver(SECRET, "evt_tls").await.status, 200);
    let again = trusting.deliver(SECRET, "evt_tls").await;
    assert_eq!(again.json()["status"], "duplicate");
    let stored = keys(&mut redis.client().await, "smartcv").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1, "d");

    // The system's roots (this machine's, or SSL_CERT_FILE as the tests inherit it) do
    // not hold the test's own: no connection, so nothing is forwarded.
    let untrusting = start("untrusting.toml", &[]);
    let refused = untrusting.deliver(SECRET, "evt_tls_2").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error(), "store_unavailable");
    assert_eq!(upstream.received().len(), 1);
}

/// `/readyz` answers 503 naming the dedup store while it is down and 200 again by
/// itself once it is back, with no request in between (a replica out of the load
/// balancer gets none); each change is logged once; `check` warns while it is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_dedup_store_while_it_is_down_and_comes_back_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = RedisServer::start(dir.path());
    let socket = redis.socket();
    let upstream = Upstream::start().await;
    let (port, admin) = (free_port(), free_port());
    let path = dir.path().join("h.toml");
    let text = config(&upstream.url(), &redis.url())
        .replace(
            "[server]\n",
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
        )
        .replace("path = \"/a\"", "path = \"/webhooks/smartcv\"");
    std::fs::write(
        &path,
        format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n{text}"),
    )
    .expect("write config");
    let gw = binary::Gateway::start(&path, port, admin);
    let ready = || async {
        let answer = crate::support::send(gw.admin, "GET", "/readyz", &[], "".into()).await;
        (
            answer.status,
            String::from_utf8_lossy(&answer.body).into_owned(),
        )
    };
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("check");
        assert_eq!(out.status.code(), Some(0), "a warning, not a refusal");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(ready().await, (200, "ready\n".to_string()));
    assert!(!check().contains("cannot be reached"));

    redis.kill();
    drop(redis);
    for _ in 0..3 {
        assert_eq!(
            ready().await,
            (
                503,
                "the dedup store's Redis (dedup.redis_url) cannot be reached\n".to_string()
            )
        );
    }
    let down = gw.deliver(SECRET, "evt_down").await;
    assert_eq!(down.error(), "store_unavailable");
    let warned = check();
    assert!(
        warned.contains("warning: dedup.redis_url: Redis cannot be reached now (")
            && warned.contains("every route answers 503 until it can"),
        "{warned}"
    );

    let _back = RedisServer::start_on(socket.clone());
    // Polled as a kubelet would: the probe itself is what brings readiness back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ready().await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = gw.lines_until("answers again");
    let warnings = logged
        .iter()
        .filter(|l| l.contains("cannot be reached"))
        .count();
    assert_eq!(
        warnings, 1,
        "logged once for 3 probes and a request: {logged:?}"
    );
    assert!(
        !logged.iter().any(|l| l.contains("redis://")),
        "no URL in the logs"
    );
    assert_eq!(gw.deliver(SECRET, "evt_after").await.status, 200);
}
