//! Each event reaches the app once: concurrent copies, retries after failures, routes
//! kept apart, a full cache, batches.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    hmac_hex, now, pairs, smartcv_headers, smartcv_on_raw_connection, Gate, Gateway, Reply,
    Upstream,
};

const SECRET: &str = "sc";

fn config(upstream: &str, dedup: &str) -> String {
    format!(
        r#"
[upstream]
url = "{upstream}"
[dedup]
{dedup}
[[routes]]
name = "a"
path = "/a"
provider = "smartcv"
secrets = ["{SECRET}"]
[[routes]]
name = "b"
path = "/b"
provider = "smartcv"
secrets = ["{SECRET}"]
[[routes]]
name = "nodedup"
path = "/nodedup"
provider = "smartcv"
secrets = ["{SECRET}"]
dedup_ttl = "0s"
[[routes]]
name = "hrflow"
path = "/hrflow"
provider = "hrflow"
secrets = ["{SECRET}"]
"#
    )
}

fn event(id: &str) -> String {
    format!(r#"{{"id":"{id}","type":"resume.created","data":{{}}}}"#)
}

async fn send(gw: &Gateway, path: &str, body: &str) -> crate::support::Answer {
    gw.post(
        path,
        &pairs(&smartcv_headers(SECRET, now(), body)),
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn twenty_concurrent_copies_reach_the_app_once() {
    let upstream = Upstream::start().await;
    let gate = Gate::new();
    upstream.script([Reply::status(200).held(&gate)]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let body = event("evt_concurrent");
    let answers = copies_held(&gw, "/a", &body, 20, &gate).await;
    assert_eq!(
        upstream.received().len(),
        1,
        "the app received the event once"
    );
    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let duplicates = answers
        .iter()
        .filter(|a| a.json() == json!({"status": "duplicate", "id": "evt_concurrent"}))
        .count();
    assert_eq!(duplicates, 19, "every other copy is a duplicate");
}

#[tokio::test]
async fn copies_waiting_on_a_failed_first_copy_answer_as_it_did_and_the_retry_goes_through() {
    let upstream = Upstream::start().await;
    let gate = Gate::new();
    upstream.script([Reply::status(503).held(&gate)]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let body = event("evt_retry");
    let answers = copies_held(&gw, "/a", &body, 5, &gate).await;
    assert!(answers
        .iter()
        .all(|a| a.status == 502 && a.error() == "upstream_unavailable"));
    assert_eq!(
        upstream.received().len(),
        1,
        "waiting copies are not forwarded"
    );

    let retry = send(&gw, "/a", &body).await;
    assert_eq!(retry.status, 200, "the failure released the id");
    let again = send(&gw, "/a", &body).await;
    assert_eq!(
        again.json(),
        json!({"status": "duplicate", "id": "evt_retry"})
    );
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn a_forward_whose_provider_hung_up_runs_to_its_end_and_its_retry_waits_for_it() {
    let upstream = Upstream::start().await;
    let gate = Gate::new();
    upstream.script([Reply::status(200).held(&gate)]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let body = event("evt_hung_up");
    let provider = smartcv_on_raw_connection(gw.addr, SECRET, &body).await;
    upstream.arrivals(1).await;
    // The provider gives up while the app holds its answer.
    drop(provider);

    // Its retry waits for the forward still running, then answers as it ended.
    let addr = gw.addr;
    let retry_body = body.clone();
    let retry = tokio::spawn(async move {
        let headers = smartcv_headers(SECRET, now(), &retry_body);
        crate::support::send(addr, "POST", "/a", &pairs(&headers), retry_body.into()).await
    });
    gate.open();
    let retry = retry.await.expect("retry");
    assert_eq!(
        retry.json(),
        json!({"status": "duplicate", "id": "evt_hung_up"})
    );
    assert_eq!(upstream.received().len(), 1, "the app got one copy");

    // The hung-up request was counted and left the in-flight gauge.
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="delivered",route="a"}"#],
        1.0
    );
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="duplicate",route="a"}"#],
        1.0
    );
    assert_eq!(m["hookwarden_inflight_requests"], 0.0);
}

#[tokio::test]
async fn ids_of_different_routes_never_collide_and_dedup_can_be_off() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let body = event("evt_shared");
    assert_eq!(send(&gw, "/a", &body).await.status, 200);
    assert_eq!(send(&gw, "/b", &body).await.status, 200);
    assert_eq!(send(&gw, "/a", &body).await.json()["status"], "duplicate");
    assert_eq!(send(&gw, "/nodedup", &body).await.status, 200);
    assert_eq!(send(&gw, "/nodedup", &body).await.status, 200);
    let routes: Vec<_> = upstream
        .received()
        .iter()
        .map(|r| r.header("x-hookwarden-route").map(str::to_string))
        .collect();
    assert_eq!(
        routes,
        [Some("a"), Some("b"), Some("nodedup"), Some("nodedup")].map(|r| r.map(String::from))
    );
}

#[tokio::test]
async fn when_the_cache_is_full_the_newest_ids_are_still_deduplicated() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "max_entries = 5")).await;
    for i in 0..20 {
        assert_eq!(send(&gw, "/a", &event(&format!("e{i}"))).await.status, 200);
    }
    for i in 15..20 {
        let answer = send(&gw, "/a", &event(&format!("e{i}"))).await;
        assert_eq!(answer.json()["status"], "duplicate", "e{i} was forgotten");
    }
    assert_eq!(upstream.received().len(), 20);
    let m = gw.metrics().await;
    assert_eq!(m["hookwarden_dedup_entries"], 5.0);
    assert_eq!(m["hookwarden_dedup_evictions_total"], 15.0);
}

#[tokio::test]
async fn a_batch_is_deduplicated_element_by_element() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(200), Reply::status(500)]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let batch = r#"[{"type":"a","n":1},{"type":"b","n":2}]"#;
    let sig = hmac_hex(SECRET, &[batch.as_bytes()]);
    let headers = [
        ("content-type", "application/json"),
        ("http-hrflow-signature", sig.as_str()),
    ];
    let first = gw.post("/hrflow", &headers, batch).await;
    assert_eq!(first.status, 502, "the second element failed");
    let retry = gw.post("/hrflow", &headers, batch).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json()["ids"].as_array().map(Vec::len), Some(2));
    let types: Vec<_> = upstream
        .received()
        .iter()
        .map(|r| r.json()["type"].clone())
        .collect();
    assert_eq!(
        types,
        [json!("a"), json!("b"), json!("b")],
        "the delivered element is not sent again"
    );
    let third = gw.post("/hrflow", &headers, batch).await;
    assert_eq!(third.status, 200);
    assert_eq!(upstream.received().len(), 3);
    let m = gw.metrics().await;
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="duplicate",route="hrflow"}"#],
        3.0
    );
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="delivered",route="hrflow"}"#],
        2.0
    );
    assert_eq!(
        m[r#"hookwarden_requests_total{outcome="upstream_unavailable",route="hrflow"}"#],
        1.0
    );
}

/// `n` copies of one signed delivery, sent at once on their own connections.
/// `n` copies sent at once; the app's answer to the first is held by `gate` until every
/// other copy waits on it.
async fn copies_held(
    gw: &Gateway,
    path: &'static str,
    body: &str,
    n: usize,
    gate: &Gate,
) -> Vec<crate::support::Answer> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (addr, body) = (gw.addr, body.to_string());
            let headers = smartcv_headers(SECRET, now(), &body);
            tokio::spawn(async move {
                crate::support::send(addr, "POST", path, &pairs(&headers), body.into()).await
            })
        })
        .collect();
    let all_wait = async {
        while gw.app.copies_waiting() < n - 1 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), all_wait)
        .await
        .expect("every later copy waits on the first");
    gate.open();
    let mut answers = Vec::with_capacity(n);
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    answers
}
