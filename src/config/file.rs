//! The configuration file as written: serde structs that mirror docs/configuration.md key for key.
//!
//! Values whose meaning needs checking (durations, URLs, CIDRs, provider names) are kept
//! as strings here so that one bad value does not stop serde before `validate` can report
//! every problem at once.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file. Each section is deserialized on its own (see `config::load`), so this
/// struct documents the shape rather than being the unit of parsing.
#[derive(Debug, Default)]
pub(super) struct FileConfig {
    pub server: ServerSection,
    pub admin: AdminSection,
    pub upstream: UpstreamSection,
    pub dedup: DedupSection,
    pub queue: QueueSection,
    pub log: LogSection,
    pub routes: Vec<RouteSection>,
}

/// Top-level keys, in file order of the spec.
pub(super) const SECTIONS: &[&str] = &[
    "server", "admin", "upstream", "dedup", "queue", "log", "routes",
];

/// `[server]`: the public listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServerSection {
    /// Address of the public listener.
    pub listen: String,
    /// Larger bodies get 413.
    pub max_body_bytes: u64,
    /// Slowloris guard: headers must arrive within this time.
    pub header_read_timeout: String,
    /// Bounds the whole request, upstream call included.
    pub request_timeout: String,
    /// Drain time after SIGTERM.
    pub shutdown_grace: String,
    /// After SIGTERM, keep serving (with `/readyz` 503) this long before draining.
    pub shutdown_delay: String,
    /// A connection with no request in progress is closed after this.
    pub idle_timeout: String,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: u64,
    /// Request bodies held in memory at once, all connections together.
    pub max_buffered_bytes: u64,
    /// Optional HTTPS.
    pub tls: Option<TlsSection>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            max_body_bytes: 1024 * 1024,
            header_read_timeout: "10s".into(),
            request_timeout: "30s".into(),
            shutdown_grace: "25s".into(),
            shutdown_delay: "0s".into(),
            idle_timeout: "60s".into(),
            max_connections: 4096,
            max_buffered_bytes: 256 * 1024 * 1024,
            tls: None,
        }
    }
}

/// `[server.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsSection {
    /// PEM certificate chain.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

/// `[admin]`: metrics, probes, the API and the console; never on the public port.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AdminSection {
    pub listen: String,
    /// Bearer token for `/api` and `/ui`.
    pub token: Option<String>,
    /// How many recent requests `/api/requests` keeps.
    pub request_log: u64,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".into(),
            token: None,
            request_log: 10_000,
        }
    }
}

impl std::fmt::Debug for AdminSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSection")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("request_log", &self.request_log)
            .finish()
    }
}

/// `[upstream]`: the application.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct UpstreamSection {
    /// Base URL of the application; optional when every route sets its own.
    pub url: Option<String>,
    /// Per forwarded request.
    pub timeout: Option<String>,
    /// `whsec_…`: re-sign forwarded requests with Standard Webhooks headers.
    pub signing_secret: Option<String>,
    /// Static headers added to forwarded requests (values may hold secrets).
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for UpstreamSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSection")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `[dedup]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct DedupSection {
    /// How long a delivered event id is remembered.
    pub ttl: String,
    /// Memory bound; least-recently-used beyond it.
    pub max_entries: u64,
    /// `memory` | `redis`.
    pub backend: String,
    /// SharedIds store for several replicas (may hold a password).
    pub redis_url: Option<String>,
}

impl Default for DedupSection {
    fn default() -> Self {
        Self {
            ttl: "24h".into(),
            max_entries: 1_000_000,
            backend: "memory".into(),
            redis_url: None,
        }
    }
}

impl std::fmt::Debug for DedupSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupSection")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .field("backend", &self.backend)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `[queue]`: the spool of routes with `delivery = "queue"` (docs/queue.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct QueueSection {
    /// The spool's folder, relative to the config file's.
    pub dir: String,
    /// `disk` | `redis`.
    pub backend: String,
    /// Default: `dedup.redis_url`.
    pub redis_url: Option<String>,
    /// Every key of the queue in Redis starts with it.
    pub redis_prefix: String,
    /// Stored bodies (pending and dead) at most; past it queue routes answer 503.
    pub max_bytes: u64,
    /// Delivery attempts before an event becomes a dead letter.
    pub max_attempts: u64,
    /// Exponential, x2, with full jitter between attempts.
    pub backoff: BackoffSection,
    /// Delivered events and dead letters are kept this long.
    pub retention: String,
}

impl Default for QueueSection {
    fn default() -> Self {
        Self {
            dir: "./hookwarden-data".into(),
            backend: "disk".into(),
            redis_url: None,
            redis_prefix: "hookwarden:".into(),
            max_bytes: 1 << 30,
            max_attempts: 20,
            backoff: BackoffSection::default(),
            retention: "7d".into(),
        }
    }
}

impl std::fmt::Debug for QueueSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSection")
            .field("dir", &self.dir)
            .field("backend", &self.backend)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[redacted]"))
            .field("max_bytes", &self.max_bytes)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("retention", &self.retention)
            .finish()
    }
}

/// `backoff = { initial, max }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct BackoffSection {
    pub initial: String,
    pub max: String,
}

impl Default for BackoffSection {
    fn default() -> Self {
        Self {
            initial: "1s".into(),
            max: "30m".into(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LogSection {
    /// `json` | `text`.
    pub format: String,
    /// A tracing filter; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteSection {
    /// Unique, `[a-z0-9_-]+`; metric label and dedup namespace.
    pub name: Option<String>,
    /// Exact path match, unique.
    pub path: Option<String>,
    /// One of the schemes of docs/providers.md.
    pub provider: Option<String>,
    /// Any one of them may produce the signature (rotation). Kept untyped here so that a
    /// wrong shape is reported without serde echoing the value, which is a secret.
    pub secrets: Option<toml::Value>,
    /// Public keys of the public-key presets (`discord` hex, `sendgrid` base64 DER).
    pub public_key: Option<toml::Value>,
    /// The URL the provider posts to, for the presets that sign it (`twilio`, `square`).
    pub public_url: Option<String>,
    /// Replay window for timestamped schemes.
    pub tolerance: Option<String>,
    /// Path on the upstream (default: `path`).
    pub forward_path: Option<String>,
    /// `normalized` | `raw`.
    pub forward: Option<String>,
    /// `sync` | `queue`.
    pub delivery: Option<String>,
    /// Queue routes: deliveries in flight at once.
    pub concurrency: Option<u64>,
    /// Per-route limit of verified deliveries.
    pub rate_limit: Option<RateLimitSection>,
    /// Per-route override of `dedup.ttl`; `"0s"` turns dedup off.
    pub dedup_ttl: Option<String>,
    /// Per-route override of `upstream.url`.
    pub upstream: Option<String>,
    /// Source CIDR allowlist.
    pub allow_ips: Option<Vec<String>>,
    /// Type to use when the payload has none.
    pub default_type: Option<String>,
    /// JSON pointers overriding where id, type, occurred_at and data are read.
    pub fields: Option<FieldsSection>,
    /// Static credentials the provider must present.
    pub auth: Option<AuthSection>,
    /// Generic HMAC scheme (provider `hmac`, optional for `jobaffinity`).
    pub hmac: Option<HmacSection>,
    /// Meta: the token its GET handshake must carry. Untyped, as `secrets`.
    pub verify_token: Option<toml::Value>,
    /// Okta: the header its secret travels in (default `Authorization`).
    pub header: Option<String>,
}

impl std::fmt::Debug for RouteSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSection")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("provider", &self.provider)
            .field("secrets", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// `rate_limit = { per_second, burst }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitSection {
    pub per_second: f64,
    pub burst: Option<u32>,
}

/// `fields = { id, type, occurred_at, data }`: JSON pointers (RFC 6901).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldsSection {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub occurred_at: Option<String>,
    pub data: Option<String>,
}

/// `[routes.auth]`: exactly one of the three.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthSection {
    pub basic: Option<BasicAuthSection>,
    pub bearer: Option<String>,
    pub header: Option<HeaderAuthSection>,
}

impl std::fmt::Debug for AuthSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthSection([redacted])")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BasicAuthSection {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderAuthSection {
    pub name: String,
    pub value: String,
}

/// `[routes.hmac]` (docs/providers.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HmacSection {
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub encoding: Option<String>,
    pub algorithm: Option<String>,
    pub message: Option<String>,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
    /// `seconds` (default), `milliseconds` or `rfc3339`.
    pub timestamp_unit: Option<String>,
    /// `raw` (default) or `base64`: how a secret becomes the key.
    pub key_encoding: Option<String>,
    /// One character between several signatures in the header, each with `prefix`.
    pub separator: Option<String>,
    /// With `separator`: the timestamp is the header's `<timestamp_key>=<value>` entry.
    pub timestamp_key: Option<String>,
}
