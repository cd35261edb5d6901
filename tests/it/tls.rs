//! HTTPS end to end with a certificate made in the test: deliveries over TLS (HTTP/1.1
//! and HTTP/2 by ALPN), plaintext refused, and `check` refusing a bad key.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::delivery::{config, SC_BODY, SECRET};
use crate::support::{now, raw, smartcv_headers, Gateway, Upstream};

struct Certs {
    _dir: tempfile::TempDir,
    cert_file: String,
    key_file: String,
    der: CertificateDer<'static>,
}

fn certs() -> Certs {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, made.cert.pem()).expect("write");
    std::fs::write(&key_file, made.key_pair.serialize_pem()).expect("write");
    Certs {
        cert_file: cert_file.display().to_string(),
        key_file: key_file.display().to_string(),
        der: made.cert.der().clone(),
        _dir: dir,
    }
}

fn tls_config(certs: &Certs, upstream: &str) -> String {
    format!(
        "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{}",
        certs.cert_file,
        certs.key_file,
        config(upstream, "")
    )
}

async fn connect(
    addr: SocketAddr,
    certs: &Certs,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.der.clone()).expect("root");
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![alpn.to_vec()];
    let stream = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, stream)
        .await
        .expect("handshake")
}

fn signed_request(scheme_authority: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::post(format!("{scheme_authority}/webhooks/smartcv"));
    for (k, v) in smartcv_headers(SECRET, now(), SC_BODY) {
        builder = builder.header(k, v);
    }
    builder
        .body(Full::new(Bytes::from_static(SC_BODY.as_bytes())))
        .expect("request")
}

#[tokio::test]
async fn a_delivery_over_tls_arrives_by_http1_and_http2() {
    let certs = certs();
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&tls_config(&certs, &upstream.url())).await;

    let tls = connect(gw.addr, &certs, b"http/1.1").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1");
    tokio::spawn(conn);
    let mut request = signed_request("https://localhost");
    request
        .headers_mut()
        .insert("host", "localhost".parse().expect("host"));
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);

    let tls = connect(gw.addr, &certs, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2");
    tokio::spawn(conn);
    let response = sender
        .send_request(signed_request("https://localhost"))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(
        &body[..],
        br#"{"status":"duplicate","id":"evt_1"}"#,
        "the same event again is a duplicate"
    );
    assert_eq!(
        upstream.received().len(),
        1,
        "the h2 copy was the same event: not forwarded again"
    );
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_not_served() {
    let certs = certs();
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&tls_config(&certs, &upstream.url())).await;
    let answer = raw(
        gw.addr,
        b"POST /webhooks/smartcv HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert!(
        !answer.contains("HTTP/1.1"),
        "plaintext got an HTTP answer: {answer:?}"
    );
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_connection_silent_after_its_handshake_is_closed() {
    use tokio::io::AsyncReadExt;

    let certs = certs();
    let upstream = Upstream::start().await;
    let text = format!(
        "[server]\nheader_read_timeout = \"300ms\"\n{}",
        tls_config(&certs, &upstream.url())
    );
    let gw = Gateway::start(&text).await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut tls = connect(gw.addr, &certs, alpn).await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tls.read_to_end(&mut rest),
        )
        .await;
        assert!(closed.is_ok(), "a silent {alpn:?} connection stayed open");
    }
}

#[test]
fn check_refuses_a_key_that_does_not_fit_and_a_missing_certificate() {
    let (ours, other) = (certs(), certs());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.toml");
    let mismatched = Certs {
        _dir: tempfile::tempdir().expect("tempdir"),
        cert_file: ours.cert_file.clone(),
        key_file: other.key_file.clone(),
        der: ours.der.clone(),
    };
    std::fs::write(&path, tls_config(&mismatched, "http://127.0.0.1:3000")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hookwarden"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.tls.key_file: the key does not fit the certificate"),
        "{stderr}"
    );

    let missing =
        tls_config(&ours, "http://127.0.0.1:3000").replace(&ours.cert_file, "/nonexistent/tls.crt");
    std::fs::write(&path, missing).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hookwarden"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("server.tls.cert_file: cannot read certificates from /nonexistent/tls.crt"));
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections() {
    let (old, new) = (certs(), certs());
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&tls_config(&old, &upstream.url())).await;
    let trusts = |certs: &Certs| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certs.der.clone()).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(client))
    };
    let handshake = |connector: tokio_rustls::TlsConnector| async move {
        let stream = TcpStream::connect(gw.addr).await.expect("connect");
        connector
            .connect(ServerName::try_from("localhost").expect("name"), stream)
            .await
            .is_ok()
    };
    assert!(handshake(trusts(&old)).await);
    assert!(
        !handshake(trusts(&new)).await,
        "the new certificate is not served yet"
    );

    let text = tls_config(&new, &upstream.url());
    let loaded = hookwarden::config::load_str(&text, std::path::Path::new("."), &|_| None);
    assert!(gw.app.reload(loaded));
    assert!(
        handshake(trusts(&new)).await,
        "new connections get the reloaded certificate"
    );
    assert!(!handshake(trusts(&old)).await);
}

/// `hookwarden send` to a gateway whose certificate no public CA signed: refused with a
/// hint, then accepted once `--cacert` names the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_trusts_a_private_ca_given_by_cacert_and_no_other() {
    let certs = certs();
    let upstream = Upstream::start().await;
    let text = tls_config(&certs, &upstream.url());
    let gw = Gateway::start(&text).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, body) = (dir.path().join("h.toml"), dir.path().join("body.json"));
    std::fs::write(&config, &text).expect("write");
    std::fs::write(&body, SC_BODY).expect("write");
    let to = format!("https://localhost:{}", gw.addr.port());
    let send = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hookwarden"))
            .args(["send", "--config"])
            .arg(&config)
            .args(["--route", "smartcv", "--to", &to])
            .args(extra)
            .arg(&body)
            .output()
            .expect("send")
    };

    let untrusting = send(&[]);
    assert_eq!(untrusting.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&untrusting.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the gateway at {to}/webhooks/smartcv"
        )) && stderr.contains("--cacert FILE"),
        "{stderr}"
    );
    assert!(upstream.received().is_empty());

    let trusting = send(&["--cacert", &certs.cert_file]);
    let stdout = String::from_utf8_lossy(&trusting.stdout);
    assert_eq!(trusting.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("200 OK"), "{stdout}");
    assert_eq!(upstream.received().len(), 1);

    let not_pem = send(&["--cacert", config.to_str().expect("utf-8")]);
    assert_eq!(not_pem.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&not_pem.stderr).contains("no PEM certificate in it"),
        "{}",
        String::from_utf8_lossy(&not_pem.stderr)
    );
}
