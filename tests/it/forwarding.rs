//! What the app answers, and what the provider gets back (docs/request-handling.md forwarding rules).

use crate::delivery::{config, SC_BODY, SECRET};
use crate::support::{now, pairs, send, smartcv_headers, Gate, Gateway, Reply, Upstream};

async fn deliver(gw: &Gateway) -> crate::support::Answer {
    let headers = smartcv_headers(SECRET, now(), SC_BODY);
    gw.post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
        .await
}

#[tokio::test]
async fn upstream_500_gives_502_and_the_providers_retry_is_forwarded() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(500)]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let first = deliver(&gw).await;
    assert_eq!(
        (first.status, first.error().as_str()),
        (502, "upstream_unavailable")
    );
    let retry = deliver(&gw).await;
    assert_eq!(retry.status, 200);
    let received = upstream.received();
    assert_eq!(received.len(), 2, "the retry reached the app");
    assert_eq!(received[0].json()["id"], received[1].json()["id"]);
}

#[tokio::test]
async fn redirects_count_as_unavailable() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(302)]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let answer = deliver(&gw).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (502, "upstream_unavailable")
    );
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_502() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let gw = Gateway::start(&config(&format!("http://{closed}"), "")).await;
    let answer = deliver(&gw).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (502, "upstream_unavailable")
    );
    assert!(
        !String::from_utf8_lossy(&answer.body).contains("127.0.0.1"),
        "internal addresses leak"
    );
}

#[tokio::test]
async fn an_upstream_slower_than_its_timeout_gives_504() {
    let upstream = Upstream::start().await;
    // Held for good: the app never answers.
    upstream.script([Reply::status(200).held(&Gate::new())]);
    let text = config(&upstream.url(), "").replace(
        "[upstream.headers]",
        "timeout = \"200ms\"\n[upstream.headers]",
    );
    let gw = Gateway::start(&text).await;
    let answer = deliver(&gw).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (504, "upstream_timeout")
    );
}

#[tokio::test]
async fn the_request_timeout_bounds_the_upstream_call_too() {
    let upstream = Upstream::start().await;
    // Held for good: the app never answers.
    upstream.script([Reply::status(200).held(&Gate::new())]);
    let text = format!(
        "[server]\nrequest_timeout = \"200ms\"\n{}",
        config(&upstream.url(), "")
    );
    let gw = Gateway::start(&text).await;
    let answer = deliver(&gw).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (504, "upstream_timeout")
    );
}

#[tokio::test]
async fn upstream_4xx_and_2xx_answers_pass_back_as_they_are() {
    let upstream = Upstream::start().await;
    upstream.script([
        Reply::status(422).with_body("text/plain", "bad candidate"),
        Reply::status(202).with_body("application/xml", "<ok/>"),
    ]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let rejected = deliver(&gw).await;
    assert_eq!(rejected.status, 422);
    assert_eq!(rejected.headers["content-type"], "text/plain");
    assert_eq!(&rejected.body[..], b"bad candidate");
    let accepted = deliver(&gw).await;
    assert_eq!(accepted.status, 202);
    assert_eq!(accepted.headers["content-type"], "application/xml");
    assert_eq!(&accepted.body[..], b"<ok/>");
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn raw_forwarding_keeps_the_exact_bytes_and_content_type() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "forward = \"raw\"")).await;
    let body = "{\"id\":\"e\",  \"type\":\"t\",\"n\":1.000}\n";
    let mut headers = smartcv_headers(SECRET, now(), body);
    headers[0].1 = "application/json; charset=utf-8".into();
    assert_eq!(
        gw.post("/webhooks/smartcv", &pairs(&headers), body)
            .await
            .status,
        200
    );
    // A second event (dedup would answer a repeat of the first) without Content-Type.
    let second = body.replace("\"e\"", "\"e2\"");
    let headers: Vec<_> = smartcv_headers(SECRET, now(), &second)
        .into_iter()
        .filter(|(k, _)| k != "content-type")
        .collect();
    let answer = gw.post("/webhooks/smartcv", &pairs(&headers), second).await;
    assert_eq!(answer.status, 200);
    let received = upstream.received();
    assert_eq!(&received[0].body[..], body.as_bytes());
    assert_eq!(
        received[0].header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(received[0].header("x-hookwarden-event-id"), Some("e"));
    assert_eq!(
        received[1].header("content-type"),
        None,
        "no Content-Type was sent, none is invented"
    );
}

#[tokio::test]
async fn the_host_header_and_absolute_targets_never_choose_the_upstream() {
    let upstream = Upstream::start().await;
    let elsewhere = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let mut headers = smartcv_headers(SECRET, now(), SC_BODY);
    let evil = elsewhere.addr.to_string();
    headers.push(("host".into(), evil.clone()));
    let target = format!("http://{evil}/webhooks/smartcv");
    let answer = send(gw.addr, "POST", &target, &pairs(&headers), SC_BODY.into()).await;
    assert_eq!(answer.status, 200);
    assert!(elsewhere.received().is_empty());
    let got = &upstream.received()[0];
    assert_eq!(got.uri, "/hooks/smartcv");
    assert_eq!(got.header("host"), Some(upstream.addr.to_string().as_str()));
}

#[tokio::test]
async fn a_route_upstream_with_a_base_path_overrides_the_global_one() {
    let global = Upstream::start().await;
    let own = Upstream::start().await;
    let route = format!("upstream = \"{}/app/\"", own.url());
    let gw = Gateway::start(&config(&global.url(), &route)).await;
    assert_eq!(deliver(&gw).await.status, 200);
    assert!(global.received().is_empty());
    assert_eq!(own.received()[0].uri, "/app/hooks/smartcv");
}
