//! File shape → runtime [`Config`]. Every problem is pushed with its key path and the
//! program goes on, so `check` can print all of them at once.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::{HeaderMap, Uri};

use super::checker::Checker;
use super::file::{
    AdminSection, DedupSection, FileConfig, LogSection, QueueSection, ServerSection,
    UpstreamSection,
};
use super::{routes, secrets};
use super::{
    AdminConfig, Config, DedupBackend, DedupConfig, LogConfig, LogFormat, Problem, QueueBackend,
    QueueConfig, ServerConfig, TlsConfig, UpstreamConfig,
};
use crate::route::{Route, Secret};

/// Validates `file`, section by section; returns `None` when any problem was found (all
/// of them are in `problems`).
pub(super) fn validate(
    file: &FileConfig,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<Config> {
    let mut c = Checker { problems };
    let server = server(&mut c, &file.server, base_dir);
    let admin = admin(&mut c, &file.admin, warnings);
    let upstream_url = file
        .upstream
        .url
        .as_deref()
        .and_then(|raw| c.upstream_url("upstream.url", raw));
    let upstream = upstream(&mut c, &file.upstream);
    let dedup = dedup(&mut c, &file.dedup);
    let queue = queue(
        &mut c,
        &file.queue,
        base_dir,
        file.dedup.redis_url.as_deref(),
    );
    let log = log(&mut c, &file.log);
    let default_ttl = dedup.as_ref().map_or(Duration::ZERO, |d| d.ttl);
    let routes = all_routes(&mut c, file, upstream_url.as_ref(), default_ttl, warnings);
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

/// `[server]`: the public listener and the bounds of every connection.
fn server(c: &mut Checker<'_>, s: &ServerSection, base_dir: &Path) -> Option<ServerConfig> {
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
        Some(t) => tls(c, base_dir, &t.cert_file, &t.key_file).map(Some),
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
}

/// `[server.tls]`, loaded now so that `check` catches a bad certificate or key.
fn tls(c: &mut Checker<'_>, base_dir: &Path, cert: &str, key: &str) -> Option<TlsConfig> {
    let (cert_file, key_file) = (base_dir.join(cert), base_dir.join(key));
    match crate::tls::server_config(&cert_file, &key_file) {
        Ok(rustls) => Some(TlsConfig {
            cert_file,
            key_file,
            rustls,
        }),
        Err(e @ (crate::tls::TlsError::Key { .. } | crate::tls::TlsError::Rejected(_))) => {
            c.fail("server.tls.key_file", e.to_string())
        }
        Err(e) => c.fail("server.tls.cert_file", e.to_string()),
    }
}

/// `[upstream]` but its `url`, which the routes read.
fn upstream(c: &mut Checker<'_>, u: &UpstreamSection) -> Option<UpstreamConfig> {
    let timeout = match &u.timeout {
        Some(raw) => c.duration("upstream.timeout", raw),
        None => Some(Duration::from_secs(10)),
    };
    let signing_secret = u
        .signing_secret
        .as_deref()
        .and_then(|raw| secrets::whsec(c, "upstream.signing_secret", raw));
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
}

/// `[dedup]`: how long ids are remembered, and where.
fn dedup(c: &mut Checker<'_>, d: &DedupSection) -> Option<DedupConfig> {
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
}

/// `[log]`.
fn log(c: &mut Checker<'_>, l: &LogSection) -> Option<LogConfig> {
    let format = match l.format.as_str() {
        "json" => Some(LogFormat::Json),
        "text" => Some(LogFormat::Text),
        other => c.fail(
            "log.format",
            format!("unknown format {other:?} (expected \"json\" or \"text\")"),
        ),
    };
    if tracing_subscriber::EnvFilter::try_new(&l.level).is_err() {
        c.fail::<()>("log.level", format!("invalid level {:?}", l.level));
    }
    Some(LogConfig {
        format: format?,
        level: l.level.clone(),
    })
}

/// Every `[[routes]]` entry that validates, with names and paths unique; a route without
/// its own upstream needs `upstream.url`.
fn all_routes(
    c: &mut Checker<'_>,
    file: &FileConfig,
    upstream_url: Option<&Uri>,
    default_ttl: Duration,
    warnings: &mut Vec<String>,
) -> Vec<Arc<Route>> {
    if file.routes.is_empty() {
        warnings.push("no [[routes]]: every request will get 404".into());
    }
    if upstream_url.is_none() && file.upstream.url.is_none() {
        let unrouted: Vec<String> = (0..file.routes.len())
            .filter(|&i| file.routes[i].upstream.is_none())
            .map(|i| format!("routes[{i}]"))
            .collect();
        if !unrouted.is_empty() {
            c.fail::<()>(
                "upstream.url",
                format!(
                    "required unless every route sets its own upstream (routes without one: {})",
                    unrouted.join(", ")
                ),
            );
        }
    }
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
        if let Some(route) = routes::route(c, &at, r, upstream_url, default_ttl, warnings) {
            routes.push(Arc::new(route));
        }
    }
    routes
}

/// `[admin]`: where, and who may use `/api` and `/ui` (docs/admin-api.md).
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

/// `[queue]` (docs/queue.md).
fn queue(
    c: &mut Checker<'_>,
    q: &QueueSection,
    base_dir: &Path,
    dedup_redis_url: Option<&str>,
) -> Option<QueueConfig> {
    let backend = match q.backend.as_str() {
        "disk" => Some(QueueBackend::Disk),
        "redis" => match q.redis_url.as_deref().or(dedup_redis_url) {
            None => c.fail(
                "queue.redis_url",
                "required when queue.backend = \"redis\" (or set dedup.redis_url)",
            ),
            Some(url) => Some(QueueBackend::Redis {
                url: url.to_string(),
                prefix: q.redis_prefix.clone(),
            }),
        },
        other => c.fail(
            "queue.backend",
            format!("unknown backend {other:?} (expected \"disk\" or \"redis\")"),
        ),
    };
    if q.redis_prefix.is_empty() || q.redis_prefix.contains(['{', '}']) {
        c.fail::<()>(
            "queue.redis_prefix",
            format!(
                "{:?}: must not be empty nor hold braces (the route's hash tag follows it)",
                q.redis_prefix
            ),
        );
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
        backend: backend?,
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
