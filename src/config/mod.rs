//! Configuration in two layers: [`file`] mirrors the TOML, [`validate`] turns it into the
//! runtime types below, reporting every problem with its key path.

mod auth;
mod checker;
mod file;
mod hmac;
mod interpolate;
mod keys;
mod load;
mod routes;
mod secrets;
mod validate;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::route::{Route, Secret};

pub use interpolate::InterpolateError;
pub use load::{load_file, load_str};

/// A validated configuration, ready to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) server: ServerConfig,
    pub(crate) admin: AdminConfig,
    pub(crate) upstream: UpstreamConfig,
    pub(crate) dedup: DedupConfig,
    pub(crate) queue: QueueConfig,
    pub(crate) log: LogConfig,
    pub(crate) routes: Vec<Arc<Route>>,
}

/// A configuration and the warnings its validation produced (things that work but are
/// probably not what the operator meant).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub(crate) warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub shutdown_delay: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_buffered_bytes: u64,
    pub tls: Option<TlsConfig>,
}

#[derive(Clone)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Loaded and checked at validation (so `check` catches a bad key).
    pub rustls: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token for `/api` and `/ui`.
    pub token: Option<Secret>,
    /// How many recent requests `/api/requests` keeps.
    pub request_log: usize,
}

impl AdminConfig {
    /// Whether `/api` and `/ui` are served: with a token, or on a loopback address only
    /// (docs/admin-api.md); otherwise they answer 404.
    pub fn api_enabled(&self) -> bool {
        self.token.is_some() || self.listen.ip().is_loopback()
    }
}

/// `[queue]`, for routes with `delivery = "queue"` (docs/queue.md).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Where the events are kept.
    pub backend: QueueBackend,
    /// The disk store's folder, resolved against the config file's.
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub retention: Duration,
}

/// `queue.backend`.
#[derive(Clone, PartialEq, Eq)]
pub enum QueueBackend {
    /// SQLite under `queue.dir`, one gateway process at a time.
    Disk,
    /// Redis, shared by every replica pointed at it.
    Redis {
        /// `queue.redis_url`, else `dedup.redis_url`. May hold a password: never logged.
        url: String,
        /// Every key of the queue starts with it.
        prefix: String,
    },
}

impl std::fmt::Debug for QueueBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueBackend::Disk => f.write_str("Disk"),
            // The URL may carry a password.
            QueueBackend::Redis { prefix, .. } => f
                .debug_struct("Redis")
                .field("url", &"[redacted]")
                .field("prefix", prefix)
                .finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub timeout: Duration,
    pub signing_secret: Option<Secret>,
    /// Added to every forwarded request. May carry API keys: never logged.
    pub headers: HeaderMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupBackend {
    Memory,
    /// SharedIds by several replicas: `redis_url` is set and parses.
    Redis,
}

#[derive(Clone)]
pub struct DedupConfig {
    pub ttl: Duration,
    pub max_entries: u64,
    pub backend: DedupBackend,
    pub redis_url: Option<String>,
}

impl std::fmt::Debug for DedupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupConfig")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// Every problem, one line each, as `check` prints them.
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(problems) => problems.iter().map(|p| p.to_string()).collect(),
            other => vec![other.to_string()],
        }
    }
}

/// One invalid value: the TOML key path (`routes[1].provider`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Problems<'a>(&'a [Problem]);

impl std::fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
