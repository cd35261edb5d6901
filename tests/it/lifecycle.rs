//! The real binary's lifecycle: SIGHUP reloads (a rotated secret takes effect, a broken
//! file changes nothing) and SIGTERM drains in-flight requests before exiting 0.

use crate::binary::Gateway;
use crate::support::free_port;
use crate::support::{now, pairs, send, smartcv_headers, Gate, Reply, Upstream};

fn config(port: u16, admin: u16, upstream: &str, secret: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace = "10s"
[admin]
listen = "127.0.0.1:{admin}"
[upstream]
url = "{upstream}"
[log]
format = "text"
[[routes]]
name = "smartcv"
path = "/webhooks/smartcv"
provider = "smartcv"
secrets = ["{secret}"]
"#
    )
}

// Multi-threaded: `wait_for` blocks on log lines while the upstream keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_a_secret_and_a_broken_file_keeps_the_old_config() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.toml");
    let (port, admin) = (free_port(), free_port());
    std::fs::write(&path, config(port, admin, &upstream.url(), "old-secret")).expect("write");
    let gw = Gateway::start(&path, port, admin);
    assert_eq!(gw.deliver("old-secret", "e1").await.status, 200);

    std::fs::write(&path, config(port, admin, &upstream.url(), "new-secret")).expect("write");
    gw.signal("HUP");
    gw.wait_for("configuration reloaded");
    assert_eq!(gw.deliver("new-secret", "e2").await.status, 200);
    let old = gw.deliver("old-secret", "e3").await;
    assert_eq!(
        (old.status, old.error().as_str()),
        (401, "invalid_signature")
    );

    std::fs::write(&path, "[[routes]]\nname = \"BROKEN\"\n").expect("write");
    gw.signal("HUP");
    let refused = gw.wait_for("routes[0].name");
    assert!(refused.contains("reload refused"), "{refused}");
    assert_eq!(
        gw.deliver("new-secret", "e4").await.status,
        200,
        "the old config still serves"
    );
    assert_eq!(upstream.received().len(), 3);

    let m = send(gw.admin, "GET", "/metrics", &[], "".into()).await;
    let m = crate::support::parse_metrics(&String::from_utf8_lossy(&m.body));
    assert_eq!(m[r#"hookwarden_config_reloads_total{result="ok"}"#], 1.0);
    assert_eq!(m[r#"hookwarden_config_reloads_total{result="error"}"#], 1.0);
    assert_eq!(
        m["hookwarden_dedup_entries"], 3.0,
        "the dedup cache survived the reload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let upstream = Upstream::start().await;
    let gate = Gate::new();
    upstream.script([Reply::status(200).held(&gate)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.toml");
    let (port, admin) = (free_port(), free_port());
    std::fs::write(&path, config(port, admin, &upstream.url(), "s")).expect("write");
    let mut gw = Gateway::start(&path, port, admin);

    let body = r#"{"id":"slow","type":"t"}"#;
    let headers = smartcv_headers("s", now(), body);
    let addr = gw.addr;
    let in_flight = tokio::spawn(async move {
        send(
            addr,
            "POST",
            "/webhooks/smartcv",
            &pairs(&headers),
            body.into(),
        )
        .await
    });
    upstream.arrivals(1).await;

    gw.signal("TERM");
    gw.wait_for("listener closed");
    let ready = send(gw.admin, "GET", "/readyz", &[], "".into()).await;
    assert_eq!(ready.status, 503, "not ready while draining");
    let refused = tokio::net::TcpStream::connect(gw.addr).await;
    assert!(refused.is_err(), "the public listener stopped accepting");

    gate.open();
    let answer = in_flight.await.expect("task");
    assert_eq!(answer.status, 200, "the in-flight request completed");
    let status = gw.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_with_escaped_ids_and_no_secrets() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.toml");
    let (port, admin) = (free_port(), free_port());
    let text = config(port, admin, &upstream.url(), "json-secret")
        .replace("format = \"text\"", "format = \"json\"");
    std::fs::write(&path, text).expect("write");
    let gw = Gateway::start(&path, port, admin);
    assert_eq!(
        gw.deliver("json-secret", "line\\nbreak\\u0007")
            .await
            .status,
        200
    );
    let line = gw.wait_for("\"message\":\"request\"");
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["route"], "smartcv");
    assert_eq!(entry["outcome"], "delivered");
    assert_eq!(entry["status"], 200);
    assert_eq!(
        entry["event_id"], "line\\nbreak\\u{7}",
        "control characters are escaped"
    );
    assert!(entry["duration_ms"].as_f64().is_some());
    let bad = gw.deliver("wrong", "e2").await;
    assert_eq!(bad.status, 401);
    let refused = gw.wait_for("\"message\":\"request\"");
    assert!(refused.contains("invalid_signature"), "{refused}");
    for l in [&line, &refused] {
        assert!(!l.contains("json-secret") && !l.contains("sha256="), "{l}");
    }
}

/// A secret in a file laid out as Kubernetes mounts a Secret (each key a symlink through
/// `..data` to a timestamped folder, swapped in one rename on rotation), read through
/// `${file:…}`: after the swap, a SIGHUP takes the new value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reads_a_secret_file_that_kubernetes_rotated() {
    use std::os::unix::fs::symlink;

    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = dir.path().join("secrets");
    let version = |name: &str, value: &str| {
        let folder = mounted.join(name);
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("SMARTCV_SECRET"), value).expect("write");
        let next = mounted.join("..data_tmp");
        symlink(name, &next).expect("symlink");
        std::fs::rename(&next, mounted.join("..data")).expect("swap");
    };
    version("..2026_12_07_01", "first-secret-value\n");
    symlink("..data/SMARTCV_SECRET", mounted.join("SMARTCV_SECRET")).expect("symlink");

    let path = dir.path().join("hookwarden.toml");
    let (port, admin) = (free_port(), free_port());
    let text = config(
        port,
        admin,
        &upstream.url(),
        "${file:secrets/SMARTCV_SECRET}",
    );
    std::fs::write(&path, text).expect("write");
    let gw = Gateway::start(&path, port, admin);
    assert_eq!(gw.deliver("first-secret-value", "k1").await.status, 200);

    version("..2026_12_07_02", "second-secret-value\n");
    gw.signal("HUP");
    gw.wait_for("configuration reloaded");
    assert_eq!(gw.deliver("second-secret-value", "k2").await.status, 200);
    let old = gw.deliver("first-secret-value", "k3").await;
    assert_eq!(old.error(), "invalid_signature");
    assert_eq!(upstream.received().len(), 2);
}
