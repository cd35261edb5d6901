//! Connections to the app: kept alive and reused (after a 5xx answer too), replaced
//! without losing an event when the app closes them, and HTTPS to an app whose root the
//! pool trusts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hookwarden::Clock;
use hookwarden::Pool;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::delivery::{config, SECRET};
use crate::support::{now, pairs, smartcv_headers, Gateway, Reply, Upstream};

fn event(i: usize) -> String {
    format!(
        r#"{{"id":"evt_conn_{i}","type":"resume.created","created":"2024-12-30T10:00:00Z","data":{{"n":{i}}}}}"#
    )
}

async fn deliver(gw: &Gateway, body: &str) -> (u16, String) {
    let headers = smartcv_headers(SECRET, now(), body);
    let answer = gw
        .post("/webhooks/smartcv", &pairs(&headers), body.to_string())
        .await;
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

#[tokio::test]
async fn events_one_after_another_share_one_connection_to_the_app() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    for i in 0..5 {
        assert_eq!(deliver(&gw, &event(i)).await.0, 200);
    }
    assert_eq!(upstream.received().len(), 5);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn a_large_payload_reaches_the_app_whole_inside_its_envelope() {
    // Large enough that the envelope is sent in pieces, the data uncopied.
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let data = format!(
        r#"{{"text":"{}","n":[1.50,2e3]}}"#,
        "ab\\u00e9".repeat(4000)
    );
    let body = format!(r#"{{"id":"evt_large","type":"resume.created","data":{data}}}"#);
    assert_eq!(deliver(&gw, &body).await.0, 200);
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    let envelope = &received[0].body;
    let length = received[0]
        .headers
        .get("content-length")
        .map(|v| v.as_bytes().to_vec());
    assert_eq!(length, Some(envelope.len().to_string().into_bytes()));
    let text = String::from_utf8_lossy(envelope);
    assert!(text.starts_with(r#"{"id":"evt_large","#), "{}", &text[..80]);
    assert!(
        text.ends_with(&format!(r#","data":{data}}}"#)),
        "the data as sent, then the brace"
    );
}

/// Reads one request from `stream`: the head, then as much body as its Content-Length
/// says. False when the connection ended first.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let body_end = loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&seen).to_lowercase();
        if let Some(head) = text.find("\r\n\r\n") {
            let length = text[..head]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break head + 4 + length;
        }
    };
    while seen.len() < body_end {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// An app that writes `answer` to each request on a connection, then closes it when
/// `close_after` (without saying so, as an app that restarts or drops idle connections
/// does) or else holds it open. Returns its address, how many connections it accepted
/// and how many requests it answered.
async fn raw_app(
    answer: &'static [u8],
    close_after: bool,
) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let (accepts, count) = (Arc::clone(&accepted), Arc::clone(&answered));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepts.fetch_add(1, Ordering::SeqCst);
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                while read_request(&mut stream).await {
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    if close_after {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted, answered)
}

#[tokio::test]
async fn an_app_closing_each_connection_after_its_answer_still_gets_every_event() {
    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    let (addr, _, answered) = raw_app(ok, true).await;
    let gw = Gateway::start(&config(&format!("http://{addr}"), "")).await;
    for i in 0..20 {
        let (status, body) = deliver(&gw, &event(i)).await;
        assert_eq!(status, 200, "event {i}: {body}");
    }
    assert_eq!(answered.load(Ordering::SeqCst), 20);
}

#[tokio::test]
async fn a_5xx_answer_keeps_its_connection_for_the_providers_retry() {
    let upstream = Upstream::start().await;
    upstream.script([
        Reply::status(503).with_body("application/json", r#"{"error":"overloaded"}"#),
        Reply::status(500).with_body("text/plain", "boom"),
    ]);
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let body = event(1);
    for expected in [502, 502, 200] {
        let (status, answer) = deliver(&gw, &body).await;
        assert_eq!(status, expected, "{answer}");
    }
    assert_eq!(upstream.received().len(), 3);
    assert_eq!(
        upstream.connections(),
        1,
        "a 5xx answer closed its connection"
    );
}

#[tokio::test]
async fn a_5xx_answer_whose_body_stalls_gets_502_and_its_connection_is_closed() {
    // 100 bytes announced, 5 sent, and the connection held open.
    let stalled = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\nbusy.";
    let (addr, accepted, answered) = raw_app(stalled, false).await;
    let gw = Gateway::start(&config(&format!("http://{addr}"), "")).await;
    for i in 0..2 {
        let (status, body) = deliver(&gw, &event(i)).await;
        assert_eq!(status, 502, "event {i}: {body}");
        assert!(body.contains("upstream_unavailable"), "{body}");
    }
    assert_eq!(answered.load(Ordering::SeqCst), 2);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the stalled connection was reused"
    );
}

#[tokio::test]
async fn a_2xx_whose_body_stalls_past_the_timeout_still_delivers_the_event_once() {
    // The app says 200, then holds the rest of its body: the status line is its decision.
    let stalled =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{\"ok\":";
    let (addr, _, answered) = raw_app(stalled, false).await;
    let url = format!("http://{addr}");
    let text = config(&url, "").replace(
        &format!("url = \"{url}\""),
        &format!("url = \"{url}\"\ntimeout = \"300ms\""),
    );
    let gw = Gateway::start(&text).await;
    let body = event(7);
    let (status, answer) = deliver(&gw, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, r#"{"status":"delivered","id":"evt_conn_7"}"#);
    // The provider's retry is a duplicate: the app got the event once.
    let (status, answer) = deliver(&gw, &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer, r#"{"status":"duplicate","id":"evt_conn_7"}"#);
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

fn tls_upstream() -> (tokio_rustls::TlsAcceptor, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let der = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key)
    .expect("server config");
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    (tokio_rustls::TlsAcceptor::from(Arc::new(server)), der)
}

#[tokio::test]
async fn https_reaches_an_app_whose_root_the_pool_trusts_and_no_other() {
    let (acceptor, root) = tls_upstream();
    let upstream = Upstream::start_tls(acceptor).await;
    let url = format!("https://localhost:{}", upstream.addr.port());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).expect("root");
    let pool = Pool::with_roots(roots, Clock::system()).expect("pool");
    let gw = Gateway::start_with(&config(&url, ""), Clock::system(), pool).await;
    for i in 0..2 {
        assert_eq!(deliver(&gw, &event(i)).await.0, 200);
    }
    let received = upstream.received();
    assert_eq!(received.len(), 2);
    let host = format!("localhost:{}", upstream.addr.port());
    assert_eq!(received[0].header("host"), Some(host.as_str()));
    assert_eq!(upstream.connections(), 1, "the TLS connection is reused");

    // The web PKI's roots do not include the test's own: refused, and nothing arrives.
    let untrusting = Gateway::start(&config(&url, "")).await;
    let (status, body) = deliver(&untrusting, &event(9)).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("upstream_unavailable"), "{body}");
    assert_eq!(upstream.received().len(), 2);
}
