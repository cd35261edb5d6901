//! After a scripted mix of requests, every counter equals the mix exactly.

use crate::support::{hmac_hex, now, pairs, send, smartcv_headers, Gateway, Reply, Upstream};

const SECRET: &str = "sc";

fn config(upstream: &str) -> String {
    format!(
        r#"
[upstream]
url = "{upstream}"
[[routes]]
name = "sc"
path = "/sc"
provider = "smartcv"
secrets = ["{SECRET}"]
rate_limit = {{ per_second = 0.001, burst = 6 }}
[[routes]]
name = "hf"
path = "/hf"
provider = "hrflow"
secrets = ["{SECRET}"]
"#
    )
}

#[tokio::test]
async fn counters_equal_the_scripted_mix() {
    let upstream = Upstream::start().await;
    // Answers in arrival order: delivered e1, e2; 422 for e3; 500 for e4; then the batch.
    upstream.script([
        Reply::status(200),
        Reply::status(200),
        Reply::status(422),
        Reply::status(500),
    ]);
    let gw = Gateway::start(&config(&upstream.url())).await;
    let deliver = |id: &str| {
        let body = format!(r#"{{"id":"{id}","type":"type.{id}"}}"#);
        let headers = smartcv_headers(SECRET, now(), &body);
        (body, headers)
    };
    let mut statuses = Vec::new();
    for id in ["e1", "e2", "e1", "e3", "e4"] {
        let (body, headers) = deliver(id);
        statuses.push(gw.post("/sc", &pairs(&headers), body).await.status);
    }
    let (body, _) = deliver("e5");
    statuses.push(
        gw.post(
            "/sc",
            &pairs(&smartcv_headers("bad", now(), &body)),
            body.clone(),
        )
        .await
        .status,
    );
    statuses.push(gw.post("/sc", &[], body).await.status);
    statuses.push(gw.post("/nowhere", &[], "{}").await.status);
    statuses.push(gw.post("/elsewhere", &[], "{}").await.status);
    statuses.push(send(gw.addr, "GET", "/sc", &[], "".into()).await.status);
    // Four tokens so far (the duplicate took none); three more: the fifth and sixth
    // tokens, then a refusal.
    for id in ["e6", "e7", "e8"] {
        let (body, headers) = deliver(id);
        statuses.push(gw.post("/sc", &pairs(&headers), body).await.status);
    }
    let batch = r#"[{"type":"x"},{"type":"y"},{"type":"x"}]"#;
    let sig = hmac_hex(SECRET, &[batch.as_bytes()]);
    let hf = [
        ("content-type", "application/json"),
        ("http-hrflow-signature", sig.as_str()),
    ];
    statuses.push(gw.post("/hf", &hf, batch).await.status);
    assert_eq!(
        statuses,
        [200, 200, 200, 422, 502, 401, 401, 404, 404, 405, 200, 200, 429, 200]
    );

    let m = gw.metrics().await;
    let requests = |route: &str, outcome: &str| {
        m.get(&format!(
            r#"hookwarden_requests_total{{outcome="{outcome}",route="{route}"}}"#
        ))
        .copied()
        .unwrap_or(0.0)
    };
    let expected = [
        ("sc", "delivered", 4.0),
        ("sc", "duplicate", 1.0),
        ("sc", "upstream_rejected", 1.0),
        ("sc", "upstream_unavailable", 1.0),
        ("sc", "invalid_signature", 1.0),
        ("sc", "missing_signature", 1.0),
        ("sc", "method_not_allowed", 1.0),
        ("sc", "rate_limited", 1.0),
        ("_unmatched", "not_found", 2.0),
        // The batch: two distinct elements delivered, the third is the first's twin.
        ("hf", "delivered", 2.0),
        ("hf", "duplicate", 1.0),
    ];
    for (route, outcome, value) in expected {
        assert_eq!(requests(route, outcome), value, "{route}/{outcome}");
    }
    let total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("hookwarden_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 16.0, "no other outcome was counted");

    assert_eq!(
        m[r#"hookwarden_request_duration_seconds_count{route="sc"}"#],
        11.0
    );
    assert_eq!(
        m[r#"hookwarden_request_duration_seconds_count{route="_unmatched"}"#],
        2.0
    );
    assert_eq!(
        m[r#"hookwarden_request_duration_seconds_count{route="hf"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_upstream_duration_seconds_count{route="sc"}"#],
        6.0
    );
    assert_eq!(
        m[r#"hookwarden_upstream_duration_seconds_count{route="hf"}"#],
        2.0
    );
    assert_eq!(
        m[r#"hookwarden_events_forwarded_total{route="sc",type="type.e1"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_events_forwarded_total{route="sc",type="type.e6"}"#],
        1.0
    );
    assert!(
        !m.contains_key(r#"hookwarden_events_forwarded_total{route="sc",type="type.e3"}"#),
        "4xx is not forwarded"
    );
    assert_eq!(
        m[r#"hookwarden_events_forwarded_total{route="hf",type="x"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_events_forwarded_total{route="hf",type="y"}"#],
        1.0
    );
    assert_eq!(
        m["hookwarden_dedup_entries"], 6.0,
        "e1 e2 e6 e7 and the two batch elements"
    );
    assert_eq!(m["hookwarden_inflight_requests"], 0.0);
    assert_eq!(
        m[&format!(
            r#"hookwarden_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )],
        1.0
    );
    assert_eq!(m[r#"hookwarden_config_reloads_total{result="ok"}"#], 0.0);
}

#[tokio::test]
async fn the_admin_port_answers_health_readiness_and_nothing_else() {
    let upstream = Upstream::start().await;
    // A long shutdown delay: the gateway keeps serving, not ready, while the test looks.
    let text = format!(
        "[server]\nshutdown_delay = \"1h\"\n{}",
        config(&upstream.url())
    );
    let mut gw = Gateway::start(&text).await;
    let (admin, addr) = (gw.admin, gw.addr);
    let get = |path: &'static str| send(admin, "GET", path, &[], "".into());
    assert_eq!(get("/healthz").await.status, 200);
    assert_eq!(get("/readyz").await.status, 200);
    assert_eq!(get("/webhooks").await.status, 404);
    gw.signal_shutdown();
    let not_ready = async {
        while get("/readyz").await.status != 503 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), not_ready)
        .await
        .expect("readiness fails once the shutdown signal arrived");
    assert_eq!(get("/healthz").await.status, 200);
    let public = send(addr, "GET", "/metrics", &[], "".into()).await;
    assert_eq!(
        public.status, 404,
        "metrics are never on the public port (still served while the delay runs)"
    );
}
