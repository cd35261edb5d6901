//! Queue delivery through the real binary: `kill -9` while events arrive loses none that
//! were answered `queued`; a second process on the same `queue.dir` is refused; SIGTERM
//! keeps what was not attempted; and the `hookwarden events` client.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::binary::Gateway as Binary;
use crate::support::free_port;
use crate::support::{now, pairs, smartcv_headers, try_send, Upstream};

const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");
const SECRET: &str = "crash_secret";

fn write_config(
    dir: &Path,
    name: &str,
    port: u16,
    admin: u16,
    upstream: &str,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:{admin}"
{extra}
[upstream]
url = "{upstream}"
timeout = "2s"
[queue]
dir = "spool"
backoff = {{ initial = "100ms", max = "1s" }}
[log]
level = "warn,hookwarden=info"
[[routes]]
name = "q"
path = "/webhooks/smartcv"
provider = "smartcv"
secrets = ["{SECRET}"]
delivery = "queue"
"#
    );
    std::fs::write(&path, text).expect("write config");
    path
}

async fn post(addr: std::net::SocketAddr, id: &str) -> Option<u16> {
    let body = format!(r#"{{"id":"{id}","type":"t"}}"#);
    let headers = smartcv_headers(SECRET, now(), &body);
    // A gateway killed mid-request gives no answer: the event counts as not queued.
    let answered = try_send(
        addr,
        "POST",
        "/webhooks/smartcv",
        &pairs(&headers),
        body.into(),
    )
    .await
    .ok()?;
    (answered.json()["status"] == "queued").then_some(answered.status)
}

// Multi-threaded: the senders run while the test kills the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_events_arrive_loses_no_event_that_was_answered_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start_down().await;
    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir.path(), "a.toml", port, admin, &upstream.url(), "");
    let first = Binary::start(&path, port, admin);
    let addr = first.addr;

    // Eight senders, each its own ids, until told to stop; what was answered `queued`
    // is noted only once the answer arrived.
    let queued: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for s in 0..8 {
        let (queued, stop) = (Arc::clone(&queued), Arc::clone(&stop));
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let id = format!("crash-{s}-{i}");
                match post(addr, &id).await {
                    Some(200) => {
                        queued.lock().expect("lock").insert(id);
                    }
                    Some(_) => {}
                    None => return,
                }
                i += 1;
            }
        }));
    }
    // At least 1,000 queued, then a random moment within the next few hundred.
    let extra = 1000 + (now() as usize % 7) * 50;
    while queued.lock().expect("lock").len() < extra {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut first = first;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for sender in senders {
        let _ = sender.await;
    }
    let queued = queued.lock().expect("lock").clone();
    assert!(queued.len() >= 1000, "{} queued", queued.len());

    // Restarted on the same folder, with the app up: every queued event arrives.
    upstream.up();
    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir.path(), "b.toml", port, admin, &upstream.url(), "");
    let _second = Binary::start(&path, port, admin);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let arrived: HashSet<String> = upstream
            .received()
            .iter()
            .filter_map(|r| r.json()["id"].as_str().map(str::to_string))
            .collect();
        let missing: Vec<&String> = queued.iter().filter(|id| !arrived.contains(*id)).collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing.len();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in upstream.received() {
        if let Some(id) = r.json()["id"].as_str() {
            *copies.entry(id.to_string()).or_default() += 1;
        }
    }
    let twice = copies.values().filter(|&&n| n > 1).count();
    println!(
        "kill -9: {} answered queued, {missing} lost, {twice} arrived twice, {} stored without an answer",
        queued.len(),
        copies.keys().filter(|id| !queued.contains(*id)).count()
    );
    assert_eq!(missing, 0, "events answered `queued` were lost");
}

#[tokio::test]
async fn a_second_process_on_the_same_queue_dir_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir.path(), "a.toml", port, admin, &upstream.url(), "");
    let first = Binary::start(&path, port, admin);
    let other = write_config(
        dir.path(),
        "b.toml",
        free_port(),
        free_port(),
        &upstream.url(),
        "",
    );
    let out = Command::new(BIN)
        .args(["run", "--config", other.to_str().expect("utf-8")])
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is in use by another hookwarden process")
            && stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
}

// Multi-threaded: the app answers while the test blocks waiting for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_attempt_in_flight_end_and_keeps_the_rest_for_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let gate = crate::support::Gate::new();
    upstream.script([crate::support::Reply::status(200).held(&gate)]);
    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir.path(), "a.toml", port, admin, &upstream.url(), "");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace(
            "delivery = \"queue\"",
            "delivery = \"queue\"\nconcurrency = 1",
        ),
    )
    .expect("write");
    let mut gw = Binary::start(&path, port, admin);
    for id in ["t1", "t2", "t3"] {
        assert_eq!(post(gw.addr, id).await, Some(200));
    }
    upstream.arrivals(1).await;
    gw.signal("TERM");
    gw.wait_for("shutting down");
    // The attempt in flight is let end, and recorded.
    gate.open();
    let status = gw.child.wait().expect("exit");
    assert_eq!(status.code(), Some(0));
    assert_eq!(upstream.received().len(), 1, "no new attempt after SIGTERM");

    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir.path(), "b.toml", port, admin, &upstream.url(), "");
    let _again = Binary::start(&path, port, admin);
    upstream.arrivals(3).await;
    let mut ids: Vec<String> = upstream
        .received()
        .iter()
        .map(|r| r.json()["id"].as_str().expect("id").to_string())
        .collect();
    // After the first, in any order: the restart's route has the default concurrency.
    ids[1..].sort();
    assert_eq!(
        ids,
        ["t1", "t2", "t3"],
        "t1 was recorded delivered, not sent again"
    );
}

/// Waits (at most 10 s) until the gateway on admin port `admin` lists `n` dead letters.
async fn dead_letters(admin: u16, token: &str, n: usize) {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], admin).into();
    let bearer = format!("Bearer {token}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = crate::support::send(
            addr,
            "GET",
            "/api/events?state=dead",
            &[("authorization", bearer.as_str())],
            "".into(),
        )
        .await;
        let listed = answer.json()["events"].as_array().map_or(0, Vec::len);
        if listed >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{listed} dead letters"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn events(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("events")
        .args(args)
        .env_remove("HOOKWARDEN_CONFIG")
        .env_remove("HOOKWARDEN_ADMIN_TOKEN")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_events_client_lists_shows_and_redelivers_and_says_what_went_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start_down().await;
    let (port, admin) = (free_port(), free_port());
    let token = "[admin]\ntoken = \"cli-token\"";
    let path = write_config(dir.path(), "a.toml", port, admin, &upstream.url(), "")
        .to_str()
        .expect("utf-8")
        .to_string();
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text
        .replace(
            &format!("[admin]\nlisten = \"127.0.0.1:{admin}\""),
            &format!("{token}\nlisten = \"127.0.0.1:{admin}\""),
        )
        .replace("dir = \"spool\"", "dir = \"spool\"\nmax_attempts = 1");
    std::fs::write(&path, text).expect("write");
    let gw = Binary::start(Path::new(&path), port, admin);
    for id in ["c1", "c2"] {
        assert_eq!(post(gw.addr, id).await, Some(200));
    }
    // Both die at their first attempt (max_attempts = 1), and that is stored.
    gw.wait_for("dead_lettered");
    gw.wait_for("dead_lettered");
    dead_letters(admin, "cli-token", 2).await;

    let (code, out, err) = events(&["--config", &path, "list"]);
    assert_eq!(code, 0, "{err}");
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(listed.len(), 2, "{out}");
    assert_eq!(listed[0]["id"], "c2", "newest first");
    assert_eq!(listed[0]["state"], "dead");
    for key in [
        "route",
        "type",
        "attempts",
        "received_at",
        "next_attempt_at",
        "last_status",
        "last_error",
    ] {
        assert!(listed[0].get(key).is_some(), "{key} missing: {}", listed[0]);
    }

    let (code, out, err) = events(&["show", "q", "c1", "--config", &path]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["body"]["id"], "c1");
    assert_eq!(shown["history"].as_array().expect("history").len(), 1);

    upstream.up();
    let (code, out, err) = events(&["redeliver", "q", "c1", "--config", &path]);
    assert_eq!((code, out.trim()), (0, "redelivered 1"), "{err}");
    let (code, out, err) = events(&["redeliver", "--dead", "--route", "q", "--config", &path]);
    assert_eq!((code, out.trim()), (0, "redelivered 1"), "{err}");
    upstream.arrivals(2).await;

    let admin_url = format!("http://127.0.0.1:{admin}");
    let (code, _, err) = events(&["list", "--admin", &admin_url, "--token", "wrong"]);
    assert_eq!(code, 1);
    assert!(err.contains("refused the token"), "{err}");
    let (code, _, err) = events(&["show", "q", "nosuch", "--config", &path]);
    assert_eq!(code, 1);
    assert!(err.contains("no such event"), "{err}");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let (code, _, err) = events(&["list", "--admin", &nobody]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the gateway's admin API"),
        "{err}"
    );
}

#[tokio::test]
async fn the_events_client_filters_pages_and_pulls_the_levers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let (port, admin) = (free_port(), free_port());
    let path = write_config(dir.path(), "a.toml", port, admin, &upstream.url(), "");
    let path = path.to_str().expect("utf-8").to_string();
    let gw = Binary::start(Path::new(&path), port, admin);
    let (code, out, err) = events(&["pause", "q", "--config", &path]);
    assert_eq!((code, out.trim()), (0, "q: paused"), "{err}");
    for id in ["f1", "f2", "f3"] {
        assert_eq!(post(gw.addr, id).await, Some(200));
    }
    // One page at a time: the rest is announced on stderr with its cursor.
    let (code, out, err) = events(&["list", "--limit", "2", "--config", &path]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let cursor = err
        .split("--cursor ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no cursor in {err:?}"))
        .to_string();
    let (code, out, err) = events(&[
        "list", "--limit", "2", "--cursor", &cursor, "--config", &path,
    ]);
    assert_eq!((code, out.lines().count(), err.as_str()), (0, 1, ""));
    assert!(out.contains(r#""id":"f1""#), "{out}");
    let (code, out, _) = events(&["list", "--limit", "1", "--all", "--config", &path]);
    assert_eq!((code, out.lines().count()), (0, 3));
    let (code, out, _) = events(&["list", "--type", "nope", "--config", &path]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, out, _) = events(&["list", "--type", "t", "--since", "0", "--config", &path]);
    assert_eq!((code, out.lines().count()), (0, 3));
    assert!(upstream.received().is_empty(), "paused");

    let (code, out, err) = events(&["resume", "q", "--config", &path]);
    assert_eq!((code, out.trim()), (0, "q: delivering"), "{err}");
    upstream.arrivals(3).await;
    let (code, out, err) = events(&["retry-now", "q", "--config", &path]);
    assert_eq!((code, out.trim()), (0, "rescheduled 0"), "{err}");
    // Delivered events of a type, sent again.
    gw.wait_for("delivered");
    let mut again = 0;
    for _ in 0..50 {
        let (code, out, err) = events(&[
            "redeliver",
            "--state",
            "delivered",
            "--route",
            "q",
            "--type",
            "t",
            "--config",
            &path,
        ]);
        assert_eq!(code, 0, "{err}");
        again += out
            .trim()
            .trim_start_matches("redelivered ")
            .parse::<u32>()
            .expect("a count");
        if again == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(again, 3);
    upstream.arrivals(6).await;
    let (code, _, err) = events(&["pause", "nosuch", "--config", &path]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no route named \"nosuch\"; its routes: "),
        "the routes that exist are named: {err}"
    );
}
