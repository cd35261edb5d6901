//! The public listener: HTTP/1.1 and HTTP/2 on one port, optionally over TLS, with the
//! HTTP-level limits of SPEC §3 and a graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::app::App;
use crate::config::ServerConfig;
use crate::framing::Observed;
use crate::pipeline;

/// Header sections larger than this get 431 (SPEC §3).
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// Serves `listener` until `shutdown` resolves, then stops accepting and lets in-flight
/// requests finish within `server.shutdown_grace`.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            Arc::clone(&app),
            stream,
            peer,
            graceful.watcher(),
        ));
    }
    drop(listener);
    tracing::info!("listener closed; waiting for in-flight requests");
    let grace = app.runtime().config.server.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = %humantime::format_duration(grace), "shutdown grace ran out with requests in flight");
    }
}

/// One accepted connection, with the settings in force when it arrived (so a reload's
/// timeouts and certificates apply to the next connection).
async fn connection(app: Arc<App>, stream: TcpStream, peer: SocketAddr, watcher: Watcher) {
    let server = app.runtime().config.server.clone();
    match &server.tls {
        None => http(app, &server, stream, peer, watcher).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.rustls));
            // Plain HTTP, or a client that never finishes the handshake, ends here.
            match tokio::time::timeout(server.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => http(app, &server, tls_stream, peer, watcher).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn http<S>(
    app: Arc<App>,
    server: &ServerConfig,
    stream: S,
    peer: SocketAddr,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, verdicts) = Observed::new(stream);
    let service = service_fn(move |req| {
        let app = Arc::clone(&app);
        let ambiguous = verdicts.next_is_ambiguous();
        async move { Ok::<_, Infallible>(pipeline::handle(app, req, peer, ambiguous).await) }
    });
    let conn = connection_builder(server)
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

fn connection_builder(server: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper ignores header_read_timeout without a timer: the timer is what makes the
    // slowloris guard real.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}
