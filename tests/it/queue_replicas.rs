//! Queue delivery shared by replicas through Redis (docs/queue.md "Replicas"), with real
//! processes: two gateways deliver 1,000 events between them, each once; a replica
//! killed with attempts in flight has them delivered by the other; Redis killed and
//! restarted (append-only file on) loses nothing answered `queued`; Redis down answers
//! 503 and fails readiness, and delivery resumes by itself once it is back.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::binary::Gateway as Binary;
use crate::store::{RedisCluster, RedisServer, Server};
use crate::support::{
    free_port, now, pairs, send, smartcv_headers, try_send, Gate, Reply, Upstream,
};

const SECRET: &str = "replica_secret";

fn write_config(
    dir: &Path,
    name: &str,
    port: u16,
    admin: u16,
    upstream: &str,
    redis: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:{admin}"
[upstream]
url = "{upstream}"
timeout = "1s"
[queue]
backend = "redis"
redis_url = "{redis}"
backoff = {{ initial = "100ms", max = "1s" }}
[log]
level = "warn,hookwarden=info"
[[routes]]
name = "q"
path = "/q"
provider = "smartcv"
secrets = ["{SECRET}"]
delivery = "queue"
"#
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn replica(dir: &Path, name: &str, upstream: &Upstream, redis: &str) -> Binary {
    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir, name, port, admin, &upstream.url(), redis);
    Binary::start(&path, port, admin)
}

/// Posts event `id`; its answer's status, `None` when there was none.
async fn post(addr: std::net::SocketAddr, id: &str) -> Option<u16> {
    let body = format!(r#"{{"id":"{id}","type":"t"}}"#);
    let headers = smartcv_headers(SECRET, now(), &body);
    let answer = try_send(addr, "POST", "/q", &pairs(&headers), body.into())
        .await
        .ok()?;
    Some(answer.status)
}

/// How many times the app received each event.
fn received(upstream: &Upstream) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in upstream.received() {
        let id = r.json()["id"].as_str().expect("id").to_string();
        *seen.entry(id).or_default() += 1;
    }
    seen
}

/// Waits (at most `secs`) until the app has every one of `ids`.
async fn all_arrive(upstream: &Upstream, ids: &HashSet<String>, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = received(upstream);
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} events never arrived"
        );
        let arrived = upstream.arrivals(upstream.received().len() + 1);
        let _ = tokio::time::timeout(Duration::from_millis(500), arrived).await;
    }
}

/// Waits (at most `secs`) until the replica's API says route `q` has nothing pending.
async fn nothing_pending(gw: &Binary, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let answer = send(gw.admin, "GET", "/api/routes", &[], "".into()).await;
        if answer.json()["routes"][0]["queue"]["pending"] == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "still pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_deliver_each_of_1000_events_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start(dir.path());
    two_replicas_deliver_each_of_1000_events_once(dir.path(), &redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_a_redis_cluster_deliver_each_of_1000_events_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = RedisCluster::start(dir.path()).await;
    two_replicas_deliver_each_of_1000_events_once(dir.path(), &cluster.url()).await;
    // The route's keys and the queue's own ({q} and {_}) sit on different members, so
    // the gateway really spoke to the cluster as one, not to the member it was given.
    let mut holding = 0;
    for server in cluster.servers() {
        let keys: i64 = ::redis::cmd("DBSIZE")
            .query_async(&mut server.client().await)
            .await
            .expect("DBSIZE");
        holding += usize::from(keys > 0);
    }
    assert!(holding >= 2, "keys on {holding} member(s)");
}

async fn two_replicas_deliver_each_of_1000_events_once(dir: &Path, redis: &str) {
    let upstream = Upstream::start().await;
    let a = replica(dir, "a.toml", &upstream, redis);
    let b = replica(dir, "b.toml", &upstream, redis);
    let addrs = [a.addr, b.addr];
    let mut senders = Vec::new();
    for s in 0..8 {
        senders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..125 {
                let id = format!("r{s}-{i}");
                // Spread over both replicas, as a load balancer would.
                let status = post(addrs[(s + i) % 2], &id).await;
                assert_eq!(status, Some(200), "{id}");
                ids.push(id);
            }
            ids
        }));
    }
    let mut ids = HashSet::new();
    for sender in senders {
        ids.extend(sender.await.expect("sender"));
    }
    assert_eq!(ids.len(), 1000);
    all_arrive(&upstream, &ids, 60).await;
    // Everything delivered, as both replicas see it (the shared queue), then no copy.
    for gw in [&a, &b] {
        nothing_pending(gw, 10).await;
    }
    let seen = received(&upstream);
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(seen.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_attempt_has_its_events_delivered_by_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start(dir.path());
    let upstream = Upstream::start().await;
    // A slow app: the first answers wait until the test lets them go.
    let gate = Gate::new();
    upstream.script((0..40).map(|_| Reply::status(200).held(&gate)));
    let mut a = replica(dir.path(), "a.toml", &upstream, &redis.url());
    let b = replica(dir.path(), "b.toml", &upstream, &redis.url());
    let mut ids = HashSet::new();
    for i in 0..20 {
        let id = format!("k{i}");
        assert_eq!(post(a.addr, &id).await, Some(200));
        ids.insert(id);
    }
    // Attempts are in flight at the app (held); then replica a dies.
    upstream.arrivals(8).await;
    let taken_before = received(&upstream);
    a.child.kill().expect("kill -9");
    let _ = a.child.wait();
    gate.open();
    // The app took a's attempts, but a never stored their outcomes: its leases end
    // after upstream.timeout + 10 s, then b takes those events over and delivers them.
    all_arrive(&upstream, &ids, 40).await;
    nothing_pending(&b, 40).await;
    let seen = received(&upstream);
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(id, _)| id)
        .collect();
    println!(
        "replica killed with attempts in flight: {} events, all delivered; {} delivered twice ({:?}), all of them taken by the app before the kill",
        ids.len(),
        twice.len(),
        twice
    );
    for id in &twice {
        assert!(
            taken_before.contains_key(*id),
            "{id} sent twice, but not in flight at the kill"
        );
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_its_append_only_file_loses_nothing_queued() {
    killed_and_restarted_loses_nothing_queued(Server::Redis).await;
}

/// Valkey 8 offers `WAITAOF` (Debian's Redis 7.0 does not): each write is answered
/// `queued` only once it is in the append-only file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_killed_and_restarted_loses_nothing_queued_each_write_waited_for_its_file() {
    let waits = killed_and_restarted_loses_nothing_queued(Server::Valkey).await;
    assert!(waits >= 200, "WAITAOF ran {waits} times for 200 writes");
}

/// Queues 200 events on `server` (append-only file, fsync at every write), kills it,
/// restarts it and waits for every event; how many `WAITAOF`s the server ran.
async fn killed_and_restarted_loses_nothing_queued(server: Server) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("redis");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut redis = RedisServer::start_durable_as(server, &data);
    let upstream = Upstream::start_down().await;
    let gw = replica(dir.path(), "a.toml", &upstream, &redis.url());
    let mut queued = HashSet::new();
    for i in 0..200 {
        let id = format!("p{i}");
        assert_eq!(post(gw.addr, &id).await, Some(200), "{id}");
        queued.insert(id);
    }
    let stats: String = ::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis.client().await)
        .await
        .expect("INFO");
    let waits = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_waitaof:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    redis.kill();
    drop(redis);
    // While Redis is gone nothing is accepted.
    assert_eq!(post(gw.addr, "while-down").await, Some(503));
    let _redis = RedisServer::start_durable_as(server, &data);
    upstream.up();
    all_arrive(&upstream, &queued, 30).await;
    assert!(received(&upstream).keys().all(|id| id != "while-down"));
    waits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_queue_routes_answer_503_readiness_fails_and_both_come_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = RedisServer::start(dir.path());
    let socket = redis.socket();
    let upstream = Upstream::start().await;
    let gw = replica(dir.path(), "a.toml", &upstream, &redis.url());
    assert_eq!(post(gw.addr, "before").await, Some(200));
    redis.kill();
    drop(redis);
    let body = r#"{"id":"down","type":"t"}"#;
    let answer = send(
        gw.addr,
        "POST",
        "/q",
        &pairs(&smartcv_headers(SECRET, now(), body)),
        body.into(),
    )
    .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.error(), "queue_unavailable");
    assert!(answer.headers.contains_key("retry-after"));
    let ready = send(gw.admin, "GET", "/readyz", &[], "".into()).await;
    assert_eq!(ready.status, 503);
    assert!(
        String::from_utf8_lossy(&ready.body).contains("Redis"),
        "{:?}",
        ready.body
    );
    let errors = crate::support::parse_metrics(&String::from_utf8_lossy(
        &send(gw.admin, "GET", "/metrics", &[], "".into()).await.body,
    ));
    assert!(errors["hookwarden_queue_store_errors_total"] >= 1.0);

    let _redis = RedisServer::start_on(socket);
    // Back by itself: the workers' next look reaches Redis, and readiness follows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = send(gw.admin, "GET", "/readyz", &[], "".into()).await;
        if ready.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post(gw.addr, "after").await, Some(200));
    let ids: HashSet<String> = ["after".to_string()].into();
    all_arrive(&upstream, &ids, 10).await;
}
