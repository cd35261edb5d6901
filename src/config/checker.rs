//! The problem collector every section's validation writes to, and the checks of values
//! that more than one section has (durations, addresses, URLs, header names, pointers).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use http::header::HeaderName;
use http::Uri;

use super::Problem;

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
