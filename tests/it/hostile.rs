//! Hostile input: smuggling shapes, undecodable payloads after a valid signature, and
//! random bytes. Each is refused, reaches nothing, and leaves the gateway serving.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::delivery::{config, SC_BODY, SECRET};
use crate::support::{now, pairs, raw, smartcv_headers, Gateway, Upstream};

async fn setup() -> (Gateway, Upstream) {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    (gw, upstream)
}

/// A signed request with extra raw header lines and a raw body tail.
fn request(extra_headers: &str, body: &str) -> String {
    let mut head =
        String::from("POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
    for (k, v) in smartcv_headers(SECRET, now(), SC_BODY) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    format!("{head}{extra_headers}\r\n{body}")
}

#[tokio::test]
async fn content_length_with_chunked_or_twice_is_refused() {
    let (gw, upstream) = setup().await;
    let chunked = format!("{:x}\r\n{SC_BODY}\r\n0\r\n\r\n", SC_BODY.len());
    let both = request(
        &format!(
            "content-length: {}\r\ntransfer-encoding: chunked\r\n",
            chunked.len()
        ),
        &chunked,
    );
    let answer = raw(gw.addr, both.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let len = SC_BODY.len();
    let twice = request(
        &format!("content-length: {len}\r\ncontent-length: {len}\r\n"),
        SC_BODY,
    );
    let answer = raw(gw.addr, twice.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let conflicting = request(
        &format!("content-length: {len}\r\ncontent-length: 5\r\n"),
        SC_BODY,
    );
    let answer = raw(gw.addr, conflicting.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(upstream.received().is_empty());
    // The same event, framed once, is delivered: the refusals were about framing only.
    let fine = request(&format!("content-length: {len}\r\n"), SC_BODY);
    assert!(raw(gw.addr, fine.as_bytes())
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn undecodable_json_after_a_valid_signature_is_malformed() {
    let (gw, upstream) = setup().await;
    for body in [
        &b"{\"id\":\"\xff\xfe\"}"[..],
        b"{\"a\":1}\x00",
        b"\xef\xbb\xbf{\"a\":1}",
        b"{\"a\":Infinity}",
    ] {
        let ts = now().to_string();
        let sig = crate::support::hmac_hex(SECRET, &[ts.as_bytes(), b".", body]);
        let headers = [
            ("x-smartcv-timestamp", ts.as_str()),
            ("x-smartcv-signature", sig.as_str()),
        ];
        let answer = gw.post("/webhooks/smartcv", &headers, body.to_vec()).await;
        assert_eq!(
            (answer.status, answer.error().as_str()),
            (400, "malformed_payload"),
            "{body:?}"
        );
    }
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn random_bytes_never_take_the_gateway_down() {
    let (gw, upstream) = setup().await;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]),
    );
    let junk = proptest::collection::vec(proptest::arbitrary::any::<u8>(), 1..4096);
    for i in 0..200 {
        let mut bytes = junk.new_tree(&mut runner).expect("junk").current();
        if i % 2 == 0 {
            // Half start like a request, to get past the first line.
            bytes.splice(0..0, b"POST /webhooks/smartcv HTTP/1.1\r\n".iter().copied());
        }
        if let Ok(mut stream) = TcpStream::connect(gw.addr).await {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
    }
    assert!(upstream.received().is_empty());
    let headers = smartcv_headers(SECRET, now(), SC_BODY);
    assert_eq!(
        gw.post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
            .await
            .status,
        200
    );
}
