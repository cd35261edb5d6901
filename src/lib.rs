//! hookwarden: a webhook gateway that stands in front of an application, verifies each
//! provider's signature and replay window, normalizes the payload into one JSON envelope
//! and forwards it to the app.
//!
//! # Modules
//! - [`config`]: the TOML file (serde structs) validated into runtime types; `${…}`
//!   interpolation; every problem reported with its key path.
//! - [`app`]: [`App`], the state every request shares (routes, upstream client, clock).
//! - [`server`]: the public listener (HTTP/1.1 and HTTP/2), its limits and graceful drain.
//! - [`pipeline`]: one request, check by check, in the order of SPEC §3.
//! - [`auth`]: static credentials of `[routes.auth]`.
//! - [`providers`]: one file per signature scheme behind the `Provider` enum; the only
//!   code that can make a `Verified` payload, and the normalization into `Event`s.
//! - [`envelope`]: the normalized JSON the app receives.
//! - [`forward`]: the pooled upstream client and the mapping of the app's answer.
//! - [`error`]: [`GatewayError`], its status and JSON body.
//! - [`logging`]: log format and level.
//!
//! # The path of a request
//! `server` accepts a connection and hands each request to `pipeline::handle`, which
//! finds the route by exact path, checks the method, the source address and the body
//! size (reading the body with a hard cap), checks `[routes.auth]`, and calls
//! `providers::verify` with the clock's `now`. The `Verified` payload is normalized into
//! events, each rendered by `envelope` and sent by `forward`; the app's 2xx/4xx answer
//! goes back to the provider, anything else becomes 502/504 so the provider retries.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod config;
pub mod envelope;
pub mod error;
pub mod forward;
pub mod logging;
pub mod pipeline;
pub mod providers;
pub mod server;

use std::future::Future;
use std::sync::Arc;

pub use app::{App, Clock};
pub use error::GatewayError;

/// Binds the public listener of `config` and serves until `shutdown` resolves.
pub async fn run(
    config: config::Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, routes = config.routes.len(), "hookwarden listening");
    let app = Arc::new(App::new(config, Clock::system()));
    server::serve(app, listener, shutdown).await;
    Ok(())
}
