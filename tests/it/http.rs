//! HTTP-level behaviour: routing, methods, the body cap, timeouts and header limits.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::delivery::{config, SC_BODY, SECRET};
use crate::support::{now, pairs, raw, send, smartcv_headers, Gateway, Upstream};

async fn gateway(server: &str) -> (Gateway, Upstream) {
    let upstream = Upstream::start().await;
    let text = format!("[server]\n{server}\n{}", config(&upstream.url(), ""));
    (Gateway::start(&text).await, upstream)
}

/// Reads one response head (status line and headers) without waiting for the
/// connection to close.
async fn head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(_) => buf.push(byte[0]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn unknown_paths_get_404_and_other_methods_405() {
    let (gw, upstream) = gateway("").await;
    let missing = gw.post("/webhooks/smartcv/", &[], "{}").await;
    assert_eq!(
        (missing.status, missing.error().as_str()),
        (404, "not_found")
    );
    for method in ["GET", "PUT", "DELETE"] {
        let answer = send(gw.addr, method, "/webhooks/smartcv", &[], "".into()).await;
        assert_eq!(
            (answer.status, answer.error().as_str()),
            (405, "method_not_allowed"),
            "{method}"
        );
        assert_eq!(answer.headers["allow"], "POST");
    }
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_declared_oversize_body_is_refused_before_it_is_sent() {
    let (gw, upstream) = gateway("max_body_bytes = 1000").await;
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(b"POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\ncontent-length: 1001\r\n\r\n")
        .await
        .expect("write");
    // No body byte was written: the answer can only come from the declared length.
    let answer = tokio::time::timeout(Duration::from_secs(5), head(&mut stream))
        .await
        .expect("answered unread");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_at_the_cap() {
    let (gw, upstream) = gateway("max_body_bytes = 1000").await;
    let chunk = "a".repeat(600);
    let request = format!(
        "POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let answer = raw(gw.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_body_at_the_cap_is_accepted() {
    let (gw, upstream) = gateway(&format!("max_body_bytes = {}", SC_BODY.len())).await;
    let headers = smartcv_headers(SECRET, now(), SC_BODY);
    assert_eq!(
        gw.post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
            .await
            .status,
        200
    );
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn headers_that_never_finish_get_the_connection_closed() {
    let (gw, _upstream) = gateway("header_read_timeout = \"200ms\"").await;
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(b"POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    // The server closing the connection is the signal; the bound only keeps a broken
    // build from hanging the suite.
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the slow connection was left open");
}

#[tokio::test]
async fn a_body_slower_than_the_request_timeout_gets_408() {
    let (gw, upstream) = gateway("request_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(b"POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12345")
        .await
        .expect("write");
    let answer = tokio::time::timeout(Duration::from_secs(10), head(&mut stream))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn more_than_100_headers_get_431() {
    let (gw, upstream) = gateway("").await;
    let mut request = String::from("POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\n");
    for i in 0..101 {
        request.push_str(&format!("x-h{i}: v\r\n"));
    }
    request.push_str("content-length: 0\r\nconnection: close\r\n\r\n");
    let answer = raw(gw.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_header_section_over_64_kib_gets_431() {
    let (gw, upstream) = gateway("").await;
    let big = "v".repeat(70 * 1024);
    let request = format!(
        "POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\ncontent-length: 0\r\n\r\n"
    );
    let answer = raw(gw.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(upstream.received().is_empty());
}
