//! The admin listener (docs/operations.md "Admin port", docs/admin-api.md): `/metrics`, `/healthz`, `/readyz`, the API of
//! [`api`] under `/api` and the console of [`ui`] under `/ui`. Never on the public port,
//! and it keeps answering while the public side drains.
//!
//! `/api` shows event payloads (personal data), so it is guarded: with `admin.token`
//! every call needs `Authorization: Bearer <token>` (compared in constant time), and
//! without one it is served only on a loopback address (404 elsewhere). The console is
//! a page of no data that calls `/api` with the token the person gives it.

mod api;
mod ui;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::route::Auth;

/// The admin port's requests are small and local: a head must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// At the stop, a request in progress on the admin port gets this long to finish.
const DRAIN: Duration = Duration::from_secs(1);

/// Serves the admin endpoints until `stop`; then lets the requests in progress finish
/// (briefly) and returns once every connection's task has ended, so that nothing of the
/// gateway's (its queue's folder) is still in use.
pub(crate) async fn serve(app: Arc<App>, listener: TcpListener, stop: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        connections.spawn(connection(Arc::clone(&app), stream, stop.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn connection(app: Arc<App>, stream: tokio::net::TcpStream, stop: CancellationToken) {
    let service = service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(handle(&app, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

async fn handle(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == "/api" || path.starts_with("/api/") {
        if let Some(refused) = guard(app, &req) {
            return refused;
        }
        return api::handle(app, req).await;
    }
    if path == "/ui" || path.starts_with("/ui/") {
        if !app.runtime().config.admin.api_enabled() {
            return api::error(StatusCode::NOT_FOUND, "not_found", "no such path");
        }
        // The page holds no data: without the token it is served as the sign-in page,
        // with 401, and asks for it.
        let signed_in = guard(app, &req).is_none();
        return ui::serve(&path, req.method(), signed_in);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match path.as_str() {
        "/metrics" => {
            // Sizes are read when scraped rather than tracked on every request.
            app.metrics
                .dedup_entries
                .set(i64::try_from(app.dedup.len()).unwrap_or(i64::MAX));
            api::queue_gauges(app).await;
            let mut response = Response::new(Full::new(Bytes::from(app.metrics.render())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/" => ui::index(app.runtime().config.admin.api_enabled()),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if app.is_draining() => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/readyz" => match unready(app).await {
            Some(problem) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
            None => text(StatusCode::OK, "ready\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Why this replica should get no traffic now: a Redis it needs cannot be reached, so
/// its routes (queue routes for the queue's, every route for the dedup store's) would
/// answer 503. The dedup store is asked here, so that readiness comes back by itself
/// while no request reaches the replica; the queue's workers ask theirs on their own.
async fn unready(app: &App) -> Option<String> {
    if let Some(problem) = app.queue.as_ref().and_then(|q| q.problem()) {
        return Some(problem);
    }
    match &app.shared {
        Some(shared) => shared.probe().await,
        None => None,
    }
}

/// The refusal of a request `/api` must not serve, if any (docs/admin-api.md "Access").
fn guard<B>(app: &App, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
    let admin = &app.runtime().config.admin;
    if !admin.api_enabled() {
        return Some(api::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such path",
        ));
    }
    let token = admin.token.clone()?;
    match crate::auth::check(&Auth::Bearer(token), req.headers()) {
        Ok(()) => None,
        Err(_) => Some(api::error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this needs Authorization: Bearer <admin.token>",
        )),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
