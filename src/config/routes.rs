//! Validation of one `[[routes]]` entry and its tables (`auth`, `hmac`, `fields`,
//! `rate_limit`), into a runtime [`Route`].

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use http::Uri;
use ipnet::IpNet;

use super::checker::Checker;
use super::file::{FieldsSection, RateLimitSection, RouteSection};
use super::{auth, hmac, keys, secrets};
use crate::route::{DeliveryMode, Fields, ForwardMode, Provider, RateLimit, Route};

pub(super) fn route(
    c: &mut Checker<'_>,
    at: &str,
    r: &RouteSection,
    global_upstream: Option<&Uri>,
    default_ttl: Duration,
    warnings: &mut Vec<String>,
) -> Option<Route> {
    let name = name(c, at, r.name.as_deref());
    let path = path(c, at, r.path.as_deref());
    let provider = provider(c, at, r.provider.as_deref());
    let tolerance = match &r.tolerance {
        Some(raw) => c.duration(&format!("{at}.tolerance"), raw),
        None => Some(Duration::from_secs(300)),
    };
    let forward = forward(c, at, r.forward.as_deref());
    let delivery = delivery(c, at, r);
    let rate_limit = r.rate_limit.as_ref().and_then(|rl| rate_limit(c, at, rl));
    let dedup_ttl = match &r.dedup_ttl {
        Some(raw) => c.duration(&format!("{at}.dedup_ttl"), raw),
        None => Some(default_ttl),
    };
    let route_upstream = r
        .upstream
        .as_deref()
        .and_then(|u| c.upstream_url(&format!("{at}.upstream"), u));
    let allow_ips = allow_ips(c, at, r.allow_ips.as_deref().unwrap_or_default());
    let fields = fields(c, at, r.fields.as_ref());
    let auth = r
        .auth
        .as_ref()
        .and_then(|a| auth::auth(c, &format!("{at}.auth"), a));
    let hmac = r
        .hmac
        .as_ref()
        .and_then(|h| hmac::hmac(c, &format!("{at}.hmac"), h));
    if let Some(d) = &r.default_type {
        if d.is_empty() {
            c.fail::<()>(format!("{at}.default_type"), "must not be empty");
        }
    }

    let provider = provider?;
    if r.hmac.is_some() && !matches!(provider, Provider::Hmac | Provider::JobAffinity) {
        c.fail::<()>(
            format!("{at}.hmac"),
            format!(
                "not used by provider {:?} (only hmac and jobaffinity)",
                provider.name()
            ),
        );
    }
    if provider == Provider::Hmac && r.hmac.is_none() {
        c.fail::<()>(format!("{at}.hmac"), "required for provider \"hmac\"");
    }
    if provider == Provider::JobAffinity && r.auth.is_none() && r.hmac.is_none() {
        c.fail::<()>(at, "provider \"jobaffinity\" needs [routes.auth] or [routes.hmac]: a route that authenticates nothing is refused");
    }
    let signs = (provider.uses_secrets() && !provider.learns_secret())
        || r.hmac.is_some()
        || (provider.learns_secret() && r.secrets.is_some());
    let base64_key = hmac
        .as_ref()
        .is_some_and(|h| h.key == crate::route::KeyEncoding::Base64);
    let secrets = secrets::secrets(c, at, provider, signs, base64_key, r.secrets.as_ref());
    warnings.extend(secrets::sample_secrets(at, r.secrets.as_ref()));
    let public_keys = keys::public_keys(c, at, provider, r.public_key.as_ref());
    let public_url = keys::public_url(c, at, provider, r.public_url.as_deref());
    let verify_token = secrets::verify_token(c, at, provider, r.verify_token.as_ref());
    let token_header = token_header(c, at, provider, r.header.as_deref());

    let upstream = route_upstream.as_ref().or(global_upstream);
    let forward_path = r.forward_path.as_ref().or(r.path.as_ref());
    let forward_uri = match (upstream, forward_path) {
        (Some(base), Some(fp)) if fp.starts_with('/') => join_uri(base, fp)
            .or_else(|| c.fail(format!("{at}.forward_path"), format!("invalid path {fp:?}"))),
        (Some(_), Some(fp)) => c.fail(
            format!("{at}.forward_path"),
            format!("invalid path {fp:?} (must start with \"/\")"),
        ),
        _ => None,
    };

    let tolerance = tolerance?;
    let dedup_ttl = dedup_ttl?;
    // Standard Webhooks' `whpk_` entries sit among its secrets but are public keys.
    let (secrets, whpk) = secrets?;
    let mut public_keys = public_keys?;
    public_keys.extend(whpk);
    let timestamped =
        provider.has_timestamp() || hmac.as_ref().is_some_and(|h| h.timestamp.is_some());
    if timestamped && !dedup_ttl.is_zero() && dedup_ttl < tolerance * 2 {
        warnings.push(format!(
            "{at}: dedup ttl {} is shorter than twice the tolerance {}: a replay inside the window could be forwarded again",
            humantime::format_duration(dedup_ttl),
            humantime::format_duration(tolerance)
        ));
    }
    Some(Route {
        name: name?,
        path: path?,
        provider,
        secrets,
        public_keys,
        public_url: public_url?,
        verify_token: verify_token?,
        token_header: token_header?,
        tolerance,
        forward_uri: forward_uri?,
        forward: forward?,
        delivery: delivery?,
        rate_limit: match r.rate_limit {
            Some(_) => Some(rate_limit?),
            None => None,
        },
        dedup_ttl,
        allow_ips: allow_ips?,
        default_type: r.default_type.clone(),
        fields: fields?,
        auth: match r.auth {
            Some(_) => Some(auth?),
            None => None,
        },
        hmac: match r.hmac {
            Some(_) => Some(hmac?),
            None => None,
        },
    })
}

/// `name`: a metrics label and an admin API path segment.
fn name(c: &mut Checker<'_>, at: &str, raw: Option<&str>) -> Option<String> {
    match raw {
        None => c.fail(format!("{at}.name"), "missing"),
        Some(n) if valid_name(n) => Some(n.to_string()),
        Some(n) => c.fail(
            format!("{at}.name"),
            format!("invalid name {n:?} (use [a-z0-9_-]+, not starting with \"_\")"),
        ),
    }
}

/// `path`: matched exactly, so it has no query or fragment.
fn path(c: &mut Checker<'_>, at: &str, raw: Option<&str>) -> Option<String> {
    match raw {
        None => c.fail(format!("{at}.path"), "missing"),
        Some(p) if p.starts_with('/') && !p.contains(['?', '#']) && Uri::from_str(p).is_ok() => {
            Some(p.to_string())
        }
        Some(p) => c.fail(
            format!("{at}.path"),
            format!("invalid path {p:?} (must start with \"/\", no query or fragment)"),
        ),
    }
}

/// `header`: where an Okta route's secret travels; refused elsewhere.
fn token_header(
    c: &mut Checker<'_>,
    at: &str,
    provider: Provider,
    raw: Option<&str>,
) -> Option<Option<crate::route::Name>> {
    let Some(raw) = raw else { return Some(None) };
    let path = format!("{at}.header");
    // The presets whose secret is a header's whole value (Okta's authentication header).
    let token = matches!(
        provider.described().map(|d| &d.check),
        Some(crate::route::catalog::Check::Token { basic: false, .. })
    );
    if !token {
        return c.fail(
            path,
            format!(
                "provider {:?} does not take header (only okta)",
                provider.name()
            ),
        );
    }
    let name = c.header_name(&path, raw)?;
    Some(Some(std::borrow::Cow::Owned(name.as_str().to_string())))
}

fn provider(c: &mut Checker<'_>, at: &str, raw: Option<&str>) -> Option<Provider> {
    let p = match raw {
        None => return c.fail(format!("{at}.provider"), "missing"),
        Some(p) => p,
    };
    Provider::from_name(p).or_else(|| {
        let known: Vec<&str> = Provider::all().map(|p| p.name()).collect();
        c.fail(
            format!("{at}.provider"),
            format!(
                "unknown provider {p:?} (expected one of: {})",
                known.join(", ")
            ),
        )
    })
}

fn forward(c: &mut Checker<'_>, at: &str, raw: Option<&str>) -> Option<ForwardMode> {
    match raw {
        None | Some("normalized") => Some(ForwardMode::Normalized),
        Some("raw") => Some(ForwardMode::Raw),
        Some(other) => c.fail(
            format!("{at}.forward"),
            format!("unknown mode {other:?} (expected \"normalized\" or \"raw\")"),
        ),
    }
}

/// `delivery` and `concurrency` (>= 1, default 8, queue routes only).
fn delivery(c: &mut Checker<'_>, at: &str, r: &RouteSection) -> Option<DeliveryMode> {
    match (r.delivery.as_deref(), r.concurrency) {
        (None | Some("sync"), None) => Some(DeliveryMode::Sync),
        (None | Some("sync"), Some(_)) => c.fail(
            format!("{at}.concurrency"),
            "only for routes with delivery = \"queue\"",
        ),
        (Some("queue"), None) => Some(DeliveryMode::Queue { concurrency: 8 }),
        (Some("queue"), Some(n)) => match usize::try_from(n) {
            Ok(concurrency) if concurrency >= 1 => Some(DeliveryMode::Queue { concurrency }),
            _ => c.fail(
                format!("{at}.concurrency"),
                format!("must be at least 1 (got {n})"),
            ),
        },
        (Some(other), _) => c.fail(
            format!("{at}.delivery"),
            format!("unknown mode {other:?} (expected \"sync\" or \"queue\")"),
        ),
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('_')
        && n.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

fn rate_limit(c: &mut Checker<'_>, at: &str, rl: &RateLimitSection) -> Option<RateLimit> {
    let slowest = 1.0 / RateLimit::MAX_PERIOD.as_secs_f64();
    if !(rl.per_second.is_finite() && rl.per_second >= slowest) {
        return c.fail(
            format!("{at}.rate_limit.per_second"),
            format!(
                "must be at least one a day ({slowest:.8}) (got {})",
                rl.per_second
            ),
        );
    }
    let burst = match rl.burst {
        Some(0) => return c.fail(format!("{at}.rate_limit.burst"), "must be at least 1"),
        Some(b) if b > RateLimit::MAX_BURST => {
            return c.fail(
                format!("{at}.rate_limit.burst"),
                format!("must be at most {}", RateLimit::MAX_BURST),
            )
        }
        Some(b) => b,
        None => rl.per_second.ceil().min(f64::from(RateLimit::MAX_BURST)) as u32,
    };
    Some(RateLimit {
        per_second: rl.per_second,
        burst,
    })
}

fn allow_ips(c: &mut Checker<'_>, at: &str, raw: &[String]) -> Option<Vec<IpNet>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (j, s) in raw.iter().enumerate() {
        match IpNet::from_str(s).or_else(|_| IpAddr::from_str(s).map(IpNet::from)) {
            Ok(net) => out.push(net.trunc()),
            Err(_) => {
                ok = c
                    .fail::<()>(
                        format!("{at}.allow_ips[{j}]"),
                        format!("invalid CIDR {s:?}"),
                    )
                    .is_some();
            }
        }
    }
    ok.then_some(out)
}

fn fields(c: &mut Checker<'_>, at: &str, f: Option<&FieldsSection>) -> Option<Fields> {
    let Some(f) = f else {
        return Some(Fields::default());
    };
    let id = c.pointer(&format!("{at}.fields.id"), &f.id);
    let kind = c.pointer(&format!("{at}.fields.type"), &f.kind);
    let occurred_at = c.pointer(&format!("{at}.fields.occurred_at"), &f.occurred_at);
    let data = c.pointer(&format!("{at}.fields.data"), &f.data);
    Some(Fields {
        id: id?,
        kind: kind?,
        occurred_at: occurred_at?,
        data: data?,
    })
}

/// `base` + `path`, keeping any path prefix of the base URL (`http://app/api` + `/hooks`).
fn join_uri(base: &Uri, path: &str) -> Option<Uri> {
    let prefix = base.path().trim_end_matches('/');
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(format!("{prefix}{path}").parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_paths_join_with_a_base_prefix() {
        let base: Uri = "http://app:8000/api/".parse().unwrap();
        assert_eq!(
            join_uri(&base, "/hooks/x").unwrap().to_string(),
            "http://app:8000/api/hooks/x"
        );
        let bare: Uri = "http://app:8000".parse().unwrap();
        assert_eq!(
            join_uri(&bare, "/h").unwrap().to_string(),
            "http://app:8000/h"
        );
    }

    #[test]
    fn route_names_follow_the_label_rules() {
        assert!(valid_name("smart_cv-2"));
        assert!(!valid_name("_unmatched"));
        assert!(!valid_name("Smart"));
        assert!(!valid_name(""));
    }
}
