//! Test support: the real gateway on 127.0.0.1:0, a recording upstream, and a plain
//! HTTP/1 client that can send anything (repeated headers, absolute-form targets).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hookwarden::{App, Clock};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

// === Recording upstream ===

/// What the upstream answers to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: &'static str,
    pub content_type: Option<&'static str>,
    /// Holds the answer until the test opens the gate.
    pub gate: Option<Gate>,
    /// More headers on the answer.
    pub headers: Vec<(&'static str, &'static str)>,
}

/// A port free now, for a gateway process that binds it itself (the in-process gateway
/// binds 127.0.0.1:0 instead).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Holds the answers of the replies given it until the test opens it.
#[derive(Clone, Debug)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Gate {
    pub fn new() -> Self {
        Gate(Arc::new(tokio::sync::Semaphore::new(0)))
    }

    /// Lets every held answer (and every later one) go.
    pub fn open(&self) {
        self.0.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    async fn pass(&self) {
        // The semaphore is never closed.
        let _ = self.0.acquire().await.map(|p| p.forget());
    }
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            body: r#"{"ok":true}"#,
            content_type: Some("application/json"),
            gate: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_body(mut self, content_type: &'static str, body: &'static str) -> Self {
        self.content_type = Some(content_type);
        self.body = body;
        self
    }

    /// Answers once `gate` opens.
    pub fn held(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the upstream received JSON")
    }

    /// The body as the app got it, byte for byte.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("the upstream received UTF-8")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }
}

#[derive(Default)]
struct UpstreamState {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    arrived: tokio::sync::Notify,
    connections: AtomicUsize,
    /// Down: every connection is closed unanswered, as an app that is restarting.
    down: std::sync::atomic::AtomicBool,
}

/// An app that records every request and answers from a script (200 once it runs out).
pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<UpstreamState>,
}

impl Upstream {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// An app serving HTTPS with `tls`.
    pub async fn start_tls(tls: tokio_rustls::TlsAcceptor) -> Self {
        Self::start_with(Some(tls)).await
    }

    /// An app that is down (each connection closed unanswered) until [`Upstream::up`].
    pub async fn start_down() -> Self {
        let upstream = Self::start().await;
        upstream.state.down.store(true, Ordering::SeqCst);
        upstream
    }

    /// From now on it answers.
    pub fn up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        Self::listen(listener, tls)
    }

    fn listen(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(UpstreamState::default());
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if shared.down.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| record(Arc::clone(&state), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Err(_) => return,
                        },
                    };
                });
            }
        });
        Upstream { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections the app accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Resolves once `n` requests have arrived (before they are answered).
    pub async fn arrivals(&self, n: usize) {
        loop {
            let notified = self.state.arrived.notified();
            if self.state.received.lock().expect("lock").len() >= n {
                return;
            }
            notified.await;
        }
    }
}

async fn record(
    state: Arc<UpstreamState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    state.received.lock().expect("lock").push(Received {
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    });
    state.arrived.notify_waiters();
    let reply = state
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Reply::status(200));
    if let Some(gate) = &reply.gate {
        gate.pass().await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(reply.body.as_bytes())));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    if let Some(ct) = reply.content_type {
        response
            .headers_mut()
            .insert("content-type", ct.parse().expect("ct"));
    }
    for (name, value) in &reply.headers {
        response
            .headers_mut()
            .append(*name, value.parse().expect("header value"));
    }
    Ok(response)
}

// === Gateway ===

/// The real gateway, serving on 127.0.0.1:0 (and its admin port) until dropped.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    finished: Option<oneshot::Receiver<()>>,
}

impl Gateway {
    /// Starts a gateway on `config` (TOML) judged at the system clock.
    pub async fn start(config: &str) -> Self {
        Self::start_at(config, Clock::system()).await
    }

    pub async fn start_at(config: &str, clock: Clock) -> Self {
        let pool = hookwarden::Pool::new(clock.clone()).expect("TLS client config");
        Self::start_with(config, clock, pool).await
    }

    /// With `pool` for the connections to the app (e.g. trusting a test root).
    pub async fn start_with(config: &str, clock: Clock, pool: hookwarden::Pool) -> Self {
        let loaded = hookwarden::config::load_str(config, Path::new("."), &|_| None)
            .unwrap_or_else(|e| panic!("test config refused:\n{e}"));
        let app = Arc::new(App::new(loaded.config, clock, pool).expect("the gateway starts"));
        Self::serve(app).await
    }

    /// Serves `app` as the binary does (`hookwarden::run`), on 127.0.0.1:0.
    pub async fn serve(app: Arc<App>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gateway");
        let addr = listener.local_addr().expect("addr");
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let admin = admin_listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let (done, finished) = oneshot::channel::<()>();
        tokio::spawn({
            let app = Arc::clone(&app);
            async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                let _ = hookwarden::run(app, listener, admin_listener, shutdown).await;
                let _ = done.send(());
            }
        });
        Gateway {
            addr,
            admin,
            app,
            stop: Some(stop),
            finished: Some(finished),
        }
    }

    /// Sends it the signal SIGTERM is to the binary, without waiting for the drain.
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops it as SIGTERM does, waits until it has drained, and until the last task
    /// holding the app (an admin connection closing, say) let it go, so that what it
    /// holds (the spool's lock) is released as a process exit would.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(finished) = self.finished.take() {
            let _ = finished.await;
        }
        let released = async {
            while Arc::strong_count(&self.app) > 1 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), released)
            .await
            .expect("the app was let go after shutdown");
    }

    /// Stops it as SIGTERM does and waits only until `run` returned, keeping the app:
    /// what `run` must release by itself (the queue's folder) is then free.
    pub async fn stop_keeping_app(mut self) -> Arc<App> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(finished) = self.finished.take() {
            let _ = finished.await;
        }
        Arc::clone(&self.app)
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        send(self.addr, "POST", path, headers, body.into()).await
    }

    /// A call to the admin API: its status and JSON body.
    pub async fn api(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("authorization", b)])
            .unwrap_or_default();
        let answer = send(self.admin, method, path, &headers, Bytes::new()).await;
        let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, body)
    }

    /// The admin port's `/metrics`, as `series -> value`.
    pub async fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let answer = send(self.admin, "GET", "/metrics", &[], Bytes::new()).await;
        assert_eq!(answer.status, 200);
        parse_metrics(&String::from_utf8_lossy(&answer.body))
    }
}

/// Prometheus text format: `name{labels} value` per sample line, comments skipped.
pub fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// === Client ===

/// A response as the provider sees it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` code of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error code")
            .to_string()
    }
}

/// One request on a fresh connection; headers are sent exactly as given (repeats too).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    try_send(addr, method, target, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

/// [`send`], saying why when there is no answer (a gateway killed mid-request).
pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let mut builder = Request::builder().method(method).uri(target);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        builder = builder.header("host", addr.to_string());
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("response: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Writes `bytes` on a fresh connection and reads until the server closes it.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

// === Signing, as the providers do it ===

pub fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    hex::encode(hmac_raw(secret, parts))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// SmartCV's headers for `body` signed at `ts`.
pub fn smartcv_headers(secret: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let ts = ts.to_string();
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-smartcv-timestamp".into(), ts.clone()),
        (
            "x-smartcv-signature".into(),
            format!(
                "sha256={}",
                hmac_hex(secret, &[ts.as_bytes(), b".", body.as_bytes()])
            ),
        ),
    ]
}

pub fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

pub fn hmac_raw(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    hmac_raw_key(secret.as_bytes(), parts)
}

pub fn hmac_raw_key(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `hookwarden sign`'s output, one `Name: value` per line, as header pairs.
pub fn header_lines(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(|l| l.split_once(": ").expect("Name: value"))
        .collect()
}

/// A signed SmartCV request for `/a`, written on a connection of its own, for the tests
/// whose provider hangs up while the app holds its answer: drop the stream to hang up.
pub async fn smartcv_on_raw_connection(
    addr: SocketAddr,
    secret: &str,
    body: &str,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut request = format!(
        "POST /a HTTP/1.1\r\nhost: gw\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in smartcv_headers(secret, now(), body) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream
}
