//! hookwarden: a webhook gateway that stands in front of an application, verifies each
//! provider's signature and replay window, normalizes the payload into one JSON envelope
//! and forwards it to the app.
//!
//! # Modules, from the leaves up
//! Each uses only modules listed before it (`tests/it/layering.rs` fails on a cycle).
//! - [`route`]: the route model (`Route`, `Secret`, the schemes' parameters, a data-only
//!   `Provider`); `config` builds it, everyone else reads it. [`clock`], [`sync`],
//!   [`budget`], [`tls`], [`read_tap`]: the injectable clock, the one way to take a
//!   mutex, the room for request bodies, the rustls configuration of `[server.tls]`, a
//!   connection's reads shown to its watchers; [`reachability`]: whether a Redis in use
//!   answers, for `/readyz`; [`redis_link`]: one server or a Redis Cluster, told apart
//!   on first contact.
//! - [`config`]: the TOML file (serde structs) validated section by section into
//!   runtime types; `${…}` interpolation; every problem reported with its key path.
//! - [`metrics`], [`framing`], [`ratelimit`], [`dedup`], [`replay_tokens`]: the
//!   Prometheus families on the gateway's own registry; the watch on each connection's
//!   HTTP/1 framing; per-route limits (governor); claim / deliver / release of event ids
//!   (and, with `backend = "redis"`, the same in Redis for several replicas); Mailgun's
//!   one-time tokens; [`learned_secrets`]: secrets handed over in a handshake (Asana's),
//!   kept under `queue.dir` or in Redis.
//! - [`queue`]: queue delivery as one piece: the store behind a trait (SQLite under
//!   `queue.dir`), the events in flight, the workers and their schedule, the operators'
//!   levers. It knows nothing of HTTP: the layer above sends for it.
//! - [`providers`]: one file per signature scheme behind the `Provider` enum; the only
//!   code that can make a `Verified` payload, and its normalization into `Event`s.
//! - [`auth`], [`envelope`], [`request_log`], [`signing`]: `[routes.auth]`; the JSON the
//!   app receives; the last requests for the console; signing as each provider does.
//! - [`forward`]: the request to the app, its keep-alive connections, and the mapping of
//!   its answer. [`error`]: `GatewayError`, its status, outcome and JSON body.
//! - [`app`]: [`App`], the state every request shares: the hot-swappable `Runtime`
//!   (routes, limiters, upstreams) and what survives reloads (dedup, metrics, the
//!   connections, the queue).
//! - [`delivery`]: what becomes of verified events: `sync` forwards while the provider
//!   waits, `queue` stores them through the queue, whose workers send each attempt
//!   through it. [`pipeline`]: one request, check by check, in the order of
//!   docs/request-handling.md. [`admin`]: `/metrics`, probes, the admin
//!   API and the console. [`logging`]: log format, level and reload.
//! - [`server`]: the public listener (HTTP/1.1 and HTTP/2), its limits and drain.
//!   [`run`] (below) serves both listeners; [`cli`] is the command line.
//! - [`fuzzing`]: the properties `fuzz/` checks, built for tests and fuzzing only.
//!
//! # The path of a request
//! `server` accepts a connection and hands each request to `pipeline::handle`, which
//! takes a snapshot of the `Runtime`, refuses ambiguous framing, finds the route by exact
//! path, checks the method, the source address and the body size (reading the body with
//! a hard cap), checks `[routes.auth]`, and calls `providers::verify` with the clock's
//! `now`. The `Verified` payload is normalized into events, which `delivery` takes in
//! the route's mode. `sync`: each event is claimed in `dedup` (and then in Redis, when
//! replicas share ids), the route's limiter takes a token, `envelope` renders it and
//! `forward` sends it; the app's 2xx marks the id delivered and goes back to the
//! provider, anything else releases the id so the provider's retry is forwarded.
//! `queue`: the events are stored through the [`queue`] (dedup and the limit asked in the
//! same write), the provider gets 200 once they are on disk, and the route's worker
//! delivers them with retries until the app takes them or they become dead letters.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod admin;
mod app;
mod auth;
mod budget;
pub mod cli;
mod clock;
pub mod config;
mod dedup;
mod delivery;
mod envelope;
mod error;
mod forward;
mod framing;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
mod learned_secrets;
mod logging;
mod metrics;
mod pipeline;
mod providers;
mod queue;
mod ratelimit;
mod reachability;
mod read_tap;
mod redis_link;
mod replay_tokens;
mod request_log;
mod route;
mod server;
mod signing;
mod sync;
mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use app::App;
pub use clock::{unix_millis, unix_seconds, Clock};
pub use forward::Pool;
pub use providers::{derived_id, header_safe};
pub use route::Provider;

/// The public and admin listeners of `config`, bound. A failure names the key and the
/// address, since "Address already in use" alone does not say which port is taken.
pub(crate) async fn bind(config: &config::Config) -> std::io::Result<(TcpListener, TcpListener)> {
    let bind = |key: &'static str, addr: std::net::SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({key}): {e}"))
        })
    };
    let public = bind("server.listen", config.server.listen).await?;
    let admin = bind("admin.listen", config.admin.listen).await?;
    Ok((public, admin))
}

/// Serves `app` on `public` (webhooks) and `admin` (metrics, probes, API) and delivers
/// its stored events, until `shutdown` resolves; then readiness fails, requests are
/// served for `server.shutdown_delay`, and requests and delivery attempts in flight get
/// `server.shutdown_grace` to end. Returns once every task it started has ended and the
/// queue is closed (its folder's lock free for the next process). The binary and the
/// integration tests both run this.
pub async fn run(
    app: Arc<App>,
    public: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let server = app.runtime().config.server.clone();
    tracing::info!(
        listen = %public.local_addr()?,
        admin = %admin.local_addr()?,
        routes = app.runtime().config.routes.len(),
        "hookwarden listening"
    );
    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(admin::serve(Arc::clone(&app), admin, admin_stop.clone()));
    // Stored events are delivered from the start, before any new one arrives.
    if let Some(queue) = &app.queue {
        queue.start(Arc::new(delivery::Attempts::new(Arc::clone(&app))));
    }
    let draining = Arc::clone(&app);
    let (signalled, signal_time) = tokio::sync::oneshot::channel();
    server::serve(Arc::clone(&app), public, async move {
        shutdown.await;
        let _ = signalled.send(tokio::time::Instant::now());
        // No new delivery attempts; those in flight have the grace to end.
        if let Some(queue) = &draining.queue {
            queue.stop_attempts();
        }
        // Readiness fails first, so no new traffic is sent our way while we drain; load
        // balancers that still send for a moment are served during `shutdown_delay`.
        draining.start_draining();
        if !server.shutdown_delay.is_zero() {
            let delay = humantime::format_duration(server.shutdown_delay);
            tracing::info!(%delay, "shutting down: serving until the delay ends");
            tokio::time::sleep(server.shutdown_delay).await;
        }
        tracing::info!("shutting down: draining in-flight requests");
    })
    .await;
    if let Some(queue) = &app.queue {
        let since = signal_time
            .await
            .unwrap_or_else(|_| tokio::time::Instant::now());
        queue
            .finish(since + server.shutdown_delay + server.shutdown_grace)
            .await;
    }
    // The admin port answers until the end, then its connections are let go.
    admin_stop.cancel();
    let _ = admin.await;
    if let Some(queue) = &app.queue {
        queue.close().await;
    }
    Ok(())
}

/// From now on, each SIGHUP reloads `path` into `app` (docs/operations.md). Call it before the
/// gateway says it is listening: a SIGHUP sent then must reload, not meet the default
/// action (exit).
pub(crate) fn reload_on_sighup(app: &Arc<App>, path: PathBuf) {
    if let Some(signals) = hangup::listen() {
        tokio::spawn(reload_on_sighup_task(Arc::clone(app), path, signals));
    }
}

async fn reload_on_sighup_task(app: Arc<App>, path: PathBuf, mut signals: hangup::Signals) {
    while hangup::next(&mut signals).await {
        tracing::info!(path = %path.display(), "SIGHUP: reloading the configuration");
        let file = path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load_file(&file)).await;
        match loaded {
            Ok(loaded) => {
                app.reload(loaded);
            }
            Err(e) => tracing::error!(error = %e, "reload task failed"),
        }
    }
}

#[cfg(unix)]
mod hangup {
    use tokio::signal::unix::{signal, SignalKind};

    pub(crate) type Signals = tokio::signal::unix::Signal;

    pub(crate) fn listen() -> Option<Signals> {
        signal(SignalKind::hangup())
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload needs a restart");
            })
            .ok()
    }

    pub(crate) async fn next(signals: &mut Signals) -> bool {
        signals.recv().await.is_some()
    }
}

#[cfg(not(unix))]
mod hangup {
    pub struct Signals;

    pub fn listen() -> Option<Signals> {
        None
    }

    pub async fn next(_: &mut Signals) -> bool {
        false
    }
}
