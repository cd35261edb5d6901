//! Every connection is bounded in time and memory, whatever it sends (docs/request-handling.md): silent
//! connections, half prefaces, unfinished HTTP/2 header blocks and idle keep-alives are
//! closed; past `max_connections` new ones wait; past `max_buffered_bytes` a request is
//! refused before its body is read. And HTTP/1.1 needs exactly one Host.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::delivery::{config, SC_BODY, SECRET};
use crate::support::{now, pairs, raw, send, smartcv_headers, Gateway, Upstream};

/// Short limits, so the closing is seen at once; the bounds below only keep a broken
/// build from hanging the suite.
const SHORT: &str = "header_read_timeout = \"300ms\"\nidle_timeout = \"600ms\"";
const BOUND: Duration = Duration::from_secs(10);

async fn gateway(server: &str) -> (Gateway, Upstream) {
    let upstream = Upstream::start().await;
    let text = format!("[server]\n{server}\n{}", config(&upstream.url(), ""));
    (Gateway::start(&text).await, upstream)
}

/// Whether the gateway closes `stream` (reads reach the end) within the bound.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut rest))
        .await
        .is_ok()
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A signed SmartCV request for `body`, as HTTP/1.1 bytes.
fn signed_request(body: &str) -> String {
    let mut request = format!(
        "POST /webhooks/smartcv HTTP/1.1\r\nhost: gw\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in smartcv_headers(SECRET, now(), body) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request + "\r\n" + body
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_half_a_preface_is_closed() {
    let (gw, _upstream) = gateway(SHORT).await;
    let mut h2_settings = PREFACE.to_vec();
    h2_settings.extend_from_slice(SETTINGS);
    for opening in [&b""[..], b"P", b"PRI * HTTP/2.0\r\n", PREFACE, &h2_settings] {
        let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
        stream.write_all(opening).await.expect("write");
        assert!(
            closed(&mut stream).await,
            "left open after {:?}",
            String::from_utf8_lossy(opening)
        );
    }
}

#[tokio::test]
async fn an_http2_header_block_left_unfinished_is_closed() {
    let (gw, upstream) = gateway(SHORT).await;
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(SETTINGS);
    // HEADERS on stream 1 with END_STREAM but not END_HEADERS (`:method GET`), and no
    // CONTINUATION ever.
    bytes.extend_from_slice(&[0, 0, 1, 1, 0x1, 0, 0, 0, 1, 0x82]);
    stream.write_all(&bytes).await.expect("write");
    assert!(
        closed(&mut stream).await,
        "the unfinished block held it open"
    );
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn an_idle_http1_keep_alive_serves_again_then_is_closed_after_the_idle_timeout() {
    let (gw, upstream) = gateway("header_read_timeout = \"200ms\"\nidle_timeout = \"2s\"").await;
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(signed_request(SC_BODY).as_bytes())
        .await
        .expect("write");
    upstream.arrivals(1).await;
    // Idle longer than a head may take, shorter than the idle timeout: still served. The
    // wait is the behaviour under test (time passing), not a synchronisation.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream
        .write_all(signed_request(&SC_BODY.replace("evt_1", "evt_2")).as_bytes())
        .await
        .expect("the connection is still open");
    upstream.arrivals(2).await;
    let mut answers = String::new();
    let ended = tokio::time::timeout(BOUND, stream.read_to_string(&mut answers)).await;
    assert!(ended.is_ok(), "the idle connection stayed open");
    assert_eq!(answers.matches("HTTP/1.1 200").count(), 2, "{answers}");
}

#[tokio::test]
async fn an_idle_h2c_connection_is_closed_after_the_idle_timeout() {
    let (gw, upstream) = gateway(SHORT).await;
    let stream = TcpStream::connect(gw.addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    let conn = tokio::spawn(conn);
    let mut request = http::Request::post(format!("http://{}/webhooks/smartcv", gw.addr));
    for (name, value) in smartcv_headers(SECRET, now(), SC_BODY) {
        request = request.header(name, value);
    }
    let response = sender
        .send_request(
            request
                .body(Full::new(Bytes::from(SC_BODY)))
                .expect("request"),
        )
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await;
    assert_eq!(upstream.received().len(), 1);
    // The gateway ending the connection ends the client's connection task.
    let ended = tokio::time::timeout(BOUND, conn).await;
    assert!(ended.is_ok(), "the idle h2c connection stayed open");
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_for_a_free_slot() {
    let (gw, upstream) = gateway("max_connections = 2\nheader_read_timeout = \"30s\"").await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(gw.addr).await.expect("connect"));
    }
    let addr = gw.addr;
    let provider = tokio::spawn(async move {
        let headers = smartcv_headers(SECRET, now(), SC_BODY);
        send(
            addr,
            "POST",
            "/webhooks/smartcv",
            &pairs(&headers),
            SC_BODY.into(),
        )
        .await
    });
    // While both slots are held the request is not served. (A negative can only be
    // watched for a while: 300 ms.)
    let early = tokio::time::timeout(Duration::from_millis(300), upstream.arrivals(1)).await;
    assert!(early.is_err(), "served past max_connections");
    drop(silent.pop());
    let answer = tokio::time::timeout(BOUND, provider)
        .await
        .expect("served once a slot was free")
        .expect("task");
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn past_max_buffered_bytes_a_request_gets_503_before_its_body_is_read() {
    let (gw, upstream) =
        gateway("max_body_bytes = 32768\nmax_buffered_bytes = 65536\nrequest_timeout = \"30s\"")
            .await;
    // Two slow senders announce 32 KiB each and send one byte: the budget is spent.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
        stream
            .write_all(
                b"POST /webhooks/smartcv HTTP/1.1\r\nhost: gw\r\ncontent-length: 32768\r\n\r\n{",
            )
            .await
            .expect("write");
        slow.push(stream);
    }
    // Each holds its room once its head is read; the third must be refused unread. The
    // held room is polled through the app's budget, the signal the gateway keeps.
    let budget = async {
        while gw.app.body_room() > 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(BOUND, budget)
        .await
        .expect("the slow senders hold their room");
    let headers = smartcv_headers(SECRET, now(), SC_BODY);
    let refused = gw
        .post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
        .await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error(), "overloaded");
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(upstream.received().is_empty());
    let metrics = gw.metrics().await;
    assert_eq!(
        metrics[r#"hookwarden_requests_total{outcome="overloaded",route="smartcv"}"#],
        1.0
    );

    // The slow senders go away: their room comes back and real providers are served.
    drop(slow);
    let room = async {
        while gw.app.body_room() < 65536 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(BOUND, room)
        .await
        .expect("room given back");
    let served = gw
        .post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
        .await;
    assert_eq!(served.status, 200);
}

#[tokio::test]
async fn an_http11_request_without_exactly_one_host_is_refused_400() {
    let (gw, upstream) = gateway("").await;
    let body = "{}";
    for host in ["", "host: a\r\nhost: b\r\n"] {
        let request = format!(
            "POST /webhooks/smartcv HTTP/1.1\r\n{host}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = raw(gw.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{host:?}: {answer}");
        assert!(answer.contains("bad_request"), "{answer}");
    }
    // HTTP/1.0 has no Host requirement: it reaches the route's checks.
    let old = format!(
        "POST /webhooks/smartcv HTTP/1.0\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(gw.addr, old.as_bytes()).await;
    assert!(answer.contains("missing_signature"), "{answer}");
    assert!(upstream.received().is_empty());
    let metrics = gw.metrics().await;
    let counted: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("hookwarden_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(counted, 1.0, "Host refusals are not counted per route");
}
