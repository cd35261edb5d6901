//! File shape → runtime [`Config`]. Every problem is pushed with its key path and the
//! program goes on, so `check` can print all of them at once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Uri};

use super::file::{AdminSection, FileConfig, QueueSection};
use super::routes;
use super::{
    AdminConfig, Config, DedupBackend, DedupConfig, LogConfig, LogFormat, Problem, QueueConfig,
    ServerConfig, TlsConfig, UpstreamConfig,
};
use crate::route::Secret;

/// Collects problems; every `check` records one and returns `None`.
pub(super) struct Checker<'a> {
    pub(super) problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    pub(super) fn fail<T>(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Option<T> {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
        None
    }

    pub(super) fn duration(&mut self, path: &str, raw: &str) -> Option<Duration> {
        match humantime::parse_duration(raw) {
            Ok(d) => Some(d),
            Err(e) => self.fail(
                path,
                format!("invalid duration {raw:?} ({e}; e.g. \"30s\", \"5m\")"),
            ),
        }
    }

    pub(super) fn socket_addr(&mut self, path: &str, raw: &str) -> Option<SocketAddr> {
        match SocketAddr::from_str(raw) {
            Ok(a) => Some(a),
            Err(_) => self.fail(path, format!("invalid address {raw:?} (expected IP:PORT)")),
        }
    }

    /// An `http`/`https` URL with a host and nothing that does not belong in a base URL.
    pub(super) fn upstream_url(&mut self, path: &str, raw: &str) -> Option<Uri> {
        let bad = |what: &str| format!("invalid upstream URL {raw:?}: {what}");
        let uri = match Uri::from_str(raw) {
            Ok(u) => u,
            Err(e) => return self.fail(path, bad(&e.to_string())),
        };
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return self.fail(path, bad("the scheme must be http or https")),
        }
        let Some(authority) = uri.authority() else {
            return self.fail(path, bad("no host"));
        };
        if authority.host().is_empty() {
            return self.fail(path, bad("no host"));
        }
        if authority.as_str().contains('@') {
            return self.fail(path, format!("invalid upstream URL: credentials are not allowed in {path} (use upstream.headers)"));
        }
        if uri.query().is_some() || raw.contains('?') {
            return self.fail(path, bad("a query is not allowed"));
        }
        if raw.contains('#') {
            return self.fail(path, bad("a fragment is not allowed"));
        }
        Some(uri)
    }

    pub(super) fn header_name(&mut self, path: &str, raw: &str) -> Option<HeaderName> {
        match HeaderName::from_bytes(raw.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => self.fail(path, format!("invalid header name {raw:?}")),
        }
    }

    pub(super) fn pointer(&mut self, path: &str, raw: &Option<String>) -> Option<Option<String>> {
        match raw {
            None => Some(None),
            Some(p) if p.is_empty() || p.starts_with('/') => Some(Some(p.clone())),
            Some(p) => self.fail(
                path,
                format!("invalid JSON pointer {p:?} (must be empty or start with \"/\")"),
            ),
        }
    }
}

/// Validates `file`; returns `None` when any problem was found (all of them are in
/// `problems`).
pub fn validate(
    file: &FileConfig,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<Config> {
    let mut c = Checker { problems };

    let s = &file.server;
    let server = (|| {
        let listen = c.socket_addr("server.listen", &s.listen);
        if s.max_body_bytes == 0 {
            c.fail::<()>("server.max_body_bytes", "must be greater than 0");
        }
        let header_read_timeout = c.duration("server.header_read_timeout", &s.header_read_timeout);
        let request_timeout = c.duration("server.request_timeout", &s.request_timeout);
        let shutdown_grace = c.duration("server.shutdown_grace", &s.shutdown_grace);
        let shutdown_delay = c.duration("server.shutdown_delay", &s.shutdown_delay);
        let idle_timeout = c.duration("server.idle_timeout", &s.idle_timeout);
        let max_connections = match usize::try_from(s.max_connections) {
            Ok(n) if n > 0 => Some(n),
            _ => c.fail(
                "server.max_connections",
                format!(
                    "must be between 1 and {} (got {})",
                    usize::MAX,
                    s.max_connections
                ),
            ),
        };
        if s.max_buffered_bytes < s.max_body_bytes {
            c.fail::<()>(
                "server.max_buffered_bytes",
                format!(
                    "must be at least server.max_body_bytes ({}), or no body of that size \
                     could ever be read (got {})",
                    s.max_body_bytes, s.max_buffered_bytes
                ),
            );
        }
        let tls = match &s.tls {
            None => Some(None),
            Some(t) => {
                let (cert_file, key_file) =
                    (base_dir.join(&t.cert_file), base_dir.join(&t.key_file));
                match crate::tls::server_config(&cert_file, &key_file) {
                    Ok(rustls) => Some(Some(TlsConfig {
                        cert_file,
                        key_file,
                        rustls,
                    })),
                    Err(e @ crate::tls::TlsError::Key { .. }) => {
                        c.fail("server.tls.key_file", e.to_string())
                    }
                    Err(e @ crate::tls::TlsError::Rejected(_)) => {
                        c.fail("server.tls.key_file", e.to_string())
                    }
                    Err(e) => c.fail("server.tls.cert_file", e.to_string()),
                }
            }
        };
        Some(ServerConfig {
            listen: listen?,
            max_body_bytes: s.max_body_bytes,
            header_read_timeout: header_read_timeout?,
            request_timeout: request_timeout?,
            shutdown_grace: shutdown_grace?,
            shutdown_delay: shutdown_delay?,
            idle_timeout: idle_timeout?,
            max_connections: max_connections?,
            max_buffered_bytes: s.max_buffered_bytes,
            tls: tls?,
        })
    })();

    let admin = admin(&mut c, &file.admin, warnings);

    let u = &file.upstream;
    let upstream_url = u
        .url
        .as_deref()
        .and_then(|raw| c.upstream_url("upstream.url", raw));
    let upstream = (|| {
        let timeout = match &u.timeout {
            Some(raw) => c.duration("upstream.timeout", raw),
            None => Some(Duration::from_secs(10)),
        };
        let signing_secret = u
            .signing_secret
            .as_deref()
            .and_then(|raw| routes::whsec(&mut c, "upstream.signing_secret", raw));
        let mut headers = HeaderMap::new();
        for (name, value) in &u.headers {
            let path = format!("upstream.headers.{name:?}");
            let n = c.header_name(&path, name);
            let v = match HeaderValue::from_str(value) {
                Ok(v) => Some(v),
                Err(_) => c.fail(
                    &path,
                    "invalid header value (control characters or non-ASCII)",
                ),
            };
            if let (Some(n), Some(mut v)) = (n, v) {
                v.set_sensitive(true);
                headers.append(n, v);
            }
        }
        Some(UpstreamConfig {
            timeout: timeout?,
            signing_secret,
            headers,
        })
    })();

    let d = &file.dedup;
    let dedup = (|| {
        let ttl = c.duration("dedup.ttl", &d.ttl);
        if d.max_entries == 0 {
            c.fail::<()>("dedup.max_entries", "must be greater than 0");
        }
        let backend = match d.backend.as_str() {
            "memory" => Some(DedupBackend::Memory),
            "redis" => match d.redis_url.as_deref() {
                None => c.fail("dedup.redis_url", "required when dedup.backend = \"redis\""),
                Some(url) => match redis_url_problem(url) {
                    // The URL may carry a password: the message never repeats it.
                    Some(problem) => c.fail("dedup.redis_url", problem),
                    None => Some(DedupBackend::Redis),
                },
            },
            other => c.fail(
                "dedup.backend",
                format!("unknown backend {other:?} (expected \"memory\" or \"redis\")"),
            ),
        };
        Some(DedupConfig {
            ttl: ttl?,
            max_entries: d.max_entries,
            backend: backend?,
            redis_url: d.redis_url.clone(),
        })
    })();

    let queue = queue(
        &mut c,
        &file.queue,
        base_dir,
        file.dedup.redis_url.as_deref(),
    );

    let log = (|| {
        let format = match file.log.format.as_str() {
            "json" => Some(LogFormat::Json),
            "text" => Some(LogFormat::Text),
            other => c.fail(
                "log.format",
                format!("unknown format {other:?} (expected \"json\" or \"text\")"),
            ),
        };
        if tracing_subscriber::EnvFilter::try_new(&file.log.level).is_err() {
            c.fail::<()>("log.level", format!("invalid level {:?}", file.log.level));
        }
        Some(LogConfig {
            format: format?,
            level: file.log.level.clone(),
        })
    })();

    if file.routes.is_empty() {
        warnings.push("no [[routes]]: every request will get 404".into());
    }
    if upstream_url.is_none() && u.url.is_none() {
        let unrouted: Vec<_> = (0..file.routes.len())
            .filter(|&i| file.routes[i].upstream.is_none())
            .collect();
        if !unrouted.is_empty() {
            c.fail::<()>(
                "upstream.url",
                format!(
                    "required unless every route sets its own upstream (routes without one: {})",
                    unrouted
                        .iter()
                        .map(|i| format!("routes[{i}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    let default_ttl = dedup.as_ref().map_or(Duration::ZERO, |d| d.ttl);
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    let mut routes = Vec::new();
    for (i, r) in file.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if let Some(name) = &r.name {
            if !names.insert(name.clone()) {
                c.fail::<()>(
                    format!("{at}.name"),
                    format!("duplicate route name {name:?}"),
                );
            }
        }
        if let Some(path) = &r.path {
            if !paths.insert(path.clone()) {
                c.fail::<()>(
                    format!("{at}.path"),
                    format!("duplicate route path {path:?}"),
                );
            }
        }
        let route = routes::route(&mut c, &at, r, upstream_url.as_ref(), default_ttl, warnings);
        if let Some(route) = route {
            routes.push(Arc::new(route));
        }
    }

    Some(Config {
        server: server?,
        admin: admin?,
        upstream: upstream?,
        dedup: dedup?,
        queue: queue?,
        log: log?,
        routes,
    })
}

/// `[admin]`: where, and who may use `/api` and `/ui` (SPEC §9).
fn admin(c: &mut Checker<'_>, a: &AdminSection, warnings: &mut Vec<String>) -> Option<AdminConfig> {
    let listen = c.socket_addr("admin.listen", &a.listen);
    let token = match a.token.as_deref() {
        None => Some(None),
        Some("") => c.fail(
            "admin.token",
            "must not be empty (leave it out to have no token)",
        ),
        Some(t) => Some(Some(Secret::new(t.as_bytes()))),
    };
    let request_log = match usize::try_from(a.request_log) {
        Ok(n) => Some(n),
        Err(_) => c.fail(
            "admin.request_log",
            format!("too large ({})", a.request_log),
        ),
    };
    let config = AdminConfig {
        listen: listen?,
        token: token?,
        request_log: request_log?,
    };
    if !config.api_enabled() {
        warnings.push(format!(
            "admin.listen {} is not a loopback address and admin.token is not set: /api and /ui are off (404)",
            config.listen
        ));
    }
    Some(config)
}

/// `[queue]` (SPEC §8).
fn queue(
    c: &mut Checker<'_>,
    q: &QueueSection,
    base_dir: &Path,
    dedup_redis_url: Option<&str>,
) -> Option<QueueConfig> {
    match q.backend.as_str() {
        "disk" => {}
        "redis" => match q.redis_url.as_deref().or(dedup_redis_url) {
            None => {
                c.fail::<()>(
                    "queue.redis_url",
                    "required when queue.backend = \"redis\" (or set dedup.redis_url)",
                );
            }
            Some(_) => {
                c.fail::<()>(
                    "queue.backend",
                    "\"redis\" is not supported by this build yet (use \"disk\")",
                );
            }
        },
        other => {
            c.fail::<()>(
                "queue.backend",
                format!("unknown backend {other:?} (expected \"disk\" or \"redis\")"),
            );
        }
    }
    if let Some(url) = q.redis_url.as_deref() {
        if let Some(problem) = redis_url_problem(url) {
            c.fail::<()>("queue.redis_url", problem);
        }
    }
    if q.dir.is_empty() {
        c.fail::<()>("queue.dir", "must not be empty");
    }
    if q.max_bytes == 0 {
        c.fail::<()>("queue.max_bytes", "must be greater than 0");
    }
    let max_attempts = match u32::try_from(q.max_attempts) {
        Ok(n) if n >= 1 => Some(n),
        _ => c.fail(
            "queue.max_attempts",
            format!(
                "must be between 1 and {} (got {})",
                u32::MAX,
                q.max_attempts
            ),
        ),
    };
    let initial = c.duration("queue.backoff.initial", &q.backoff.initial);
    let max = c.duration("queue.backoff.max", &q.backoff.max);
    if let (Some(i), Some(m)) = (initial, max) {
        if i > m {
            c.fail::<()>(
                "queue.backoff.initial",
                format!(
                    "{} is longer than queue.backoff.max ({})",
                    q.backoff.initial, q.backoff.max
                ),
            );
        }
        if i.is_zero() {
            c.fail::<()>("queue.backoff.initial", "must be greater than 0");
        }
    }
    let retention = c.duration("queue.retention", &q.retention);
    Some(QueueConfig {
        dir: base_dir.join(&q.dir),
        max_bytes: q.max_bytes,
        max_attempts: max_attempts?,
        backoff_initial: initial?,
        backoff_max: max?,
        retention: retention?,
    })
}

/// What is wrong with a `dedup.redis_url`, in words that never repeat it.
fn redis_url_problem(url: &str) -> Option<String> {
    use redis::IntoConnectionInfo;
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("redis" | "rediss" | "redis+unix" | "unix") => match url.into_connection_info() {
            Ok(_) => None,
            Err(_) => Some(
                "not a valid Redis URL (redis[s]://[user:password@]host[:port][/db] or \
                 redis+unix:///path/to/socket)"
                    .into(),
            ),
        },
        _ => Some(
            "expected a redis://, rediss:// or redis+unix:// URL \
             (redis[s]://[user:password@]host[:port][/db])"
                .into(),
        ),
    }
}
