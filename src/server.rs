//! The public listener: HTTP/1.1 and HTTP/2 on one port, optionally over TLS, with the
//! HTTP-level limits of docs/request-handling.md and a graceful drain.
//!
//! Every connection is bounded in time whatever it sends (see [`watch`]): hyper's own
//! `header_read_timeout` starts only once hyper-util has seen enough bytes to choose a
//! protocol, and HTTP/2 has no such timer at all, so a connection that says nothing, or
//! half a preface, or leaves a header block unfinished, would otherwise stay open for
//! ever. At most `server.max_connections` are open at once: past that the listener stops
//! accepting, and new connections wait in the kernel's backlog rather than exhausting
//! file descriptors.

mod watch;

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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::app::App;
use crate::config::ServerConfig;
use crate::framing::FramingWatch;
use crate::pipeline;
use crate::read_tap::ReadTap;
use watch::Activity;

/// Header sections larger than this get 431 (docs/request-handling.md).
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// Serves `listener` until `shutdown` resolves, then stops accepting and lets in-flight
/// requests finish within `server.shutdown_grace`.
pub(crate) async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    // Read once: the cap is the listener's, not a configuration's (a reload keeps it).
    let slots = Arc::new(Semaphore::new(
        app.runtime()
            .config
            .server
            .max_connections
            .min(Semaphore::MAX_PERMITS),
    ));
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then the connection: past the cap, clients wait in the
        // kernel's backlog instead of costing a descriptor and a task each.
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = &mut shutdown => break,
        };
        let Some((stream, peer, slot)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            Arc::clone(&app),
            stream,
            peer,
            graceful.watcher(),
            slot,
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

/// The next connection, with the slot it holds while open; `None` when accepting failed.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring only waits.
    let slot = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, slot)),
        Err(e) => {
            // Out of file descriptors and the like: back off instead of spinning.
            tracing::warn!(error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// One accepted connection, with the settings in force when it arrived (so a reload's
/// timeouts and certificates apply to the next connection).
async fn connection(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    _slot: OwnedSemaphorePermit,
) {
    let accepted = Instant::now();
    let server = app.runtime().config.server.clone();
    match &server.tls {
        None => http(app, &server, stream, peer, watcher, accepted).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.rustls));
            // Plain HTTP, or a client that never finishes the handshake, ends here.
            let until = accepted + server.header_read_timeout;
            match tokio::time::timeout_at(until, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => http(app, &server, tls_stream, peer, watcher, accepted).await,
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
    accepted: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(accepted));
    let (framing, verdicts) = FramingWatch::new();
    let stream = ReadTap::new(stream, (Arc::clone(&activity), framing));
    let requests = Arc::clone(&activity);
    let service = service_fn(move |req| {
        let app = Arc::clone(&app);
        let ambiguous = verdicts.next_is_ambiguous();
        let busy = requests.begin();
        async move {
            // Its own task: a provider that hangs up drops this future, and the forward
            // must still run to its end and settle the id (docs/request-handling.md), and the request be
            // counted and logged.
            // Boxed first: the task then moves a pointer, not the whole request's future.
            let handled = tokio::spawn(Box::pin(pipeline::handle(app, req, peer, ambiguous))).await;
            drop(busy);
            Ok::<_, Infallible>(handled.unwrap_or_else(|e| {
                tracing::error!(error = %e, "request handler failed");
                pipeline::internal_error()
            }))
        }
    });
    let conn = connection_builder()
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    let limits = watch::Limits {
        first_head_by: accepted + server.header_read_timeout,
        head: server.header_read_timeout,
        idle: server.idle_timeout,
    };
    tokio::select! {
        served = watcher.watch(conn) => {
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = watch::until_expired(&activity, limits) => {
            tracing::debug!(%peer, "connection closed: no request within its time limit");
        }
    }
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The connection's time limits are the watch's (see `watch`). hyper's own head timer
    // would also run between requests, closing an idle keep-alive connection after
    // `header_read_timeout` instead of `idle_timeout`, so it is off.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}
