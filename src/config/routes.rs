//! Validation of one `[[routes]]` entry and its tables (`auth`, `hmac`, `fields`,
//! `rate_limit`), into a runtime [`Route`].

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use http::Uri;
use ipnet::IpNet;

use super::file::{AuthSection, FieldsSection, HmacSection, RateLimitSection, RouteSection};
use super::validate::Checker;
use crate::route::{
    Auth, DeliveryMode, Fields, ForwardMode, HmacAlgorithm, HmacScheme, MessagePart, Provider,
    RateLimit, Route, Secret, SigEncoding,
};

pub(super) fn route(
    c: &mut Checker<'_>,
    at: &str,
    r: &RouteSection,
    global_upstream: Option<&Uri>,
    default_ttl: Duration,
    warnings: &mut Vec<String>,
) -> Option<Route> {
    let name = match &r.name {
        None => c.fail(format!("{at}.name"), "missing"),
        Some(n) if valid_name(n) => Some(n.clone()),
        Some(n) => c.fail(
            format!("{at}.name"),
            format!("invalid name {n:?} (use [a-z0-9_-]+, not starting with \"_\")"),
        ),
    };
    let path = match &r.path {
        None => c.fail(format!("{at}.path"), "missing"),
        Some(p) if p.starts_with('/') && !p.contains(['?', '#']) && Uri::from_str(p).is_ok() => {
            Some(p.clone())
        }
        Some(p) => c.fail(
            format!("{at}.path"),
            format!("invalid path {p:?} (must start with \"/\", no query or fragment)"),
        ),
    };
    let provider = match &r.provider {
        None => c.fail(format!("{at}.provider"), "missing"),
        Some(p) => match Provider::from_name(p) {
            Some(provider) => Some(provider),
            None => c.fail(
                format!("{at}.provider"),
                format!(
                    "unknown provider {p:?} (expected one of: {})",
                    Provider::ALL
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        },
    };
    let tolerance = match &r.tolerance {
        Some(raw) => c.duration(&format!("{at}.tolerance"), raw),
        None => Some(Duration::from_secs(300)),
    };
    let forward = match r.forward.as_deref() {
        None | Some("normalized") => Some(ForwardMode::Normalized),
        Some("raw") => Some(ForwardMode::Raw),
        Some(other) => c.fail(
            format!("{at}.forward"),
            format!("unknown mode {other:?} (expected \"normalized\" or \"raw\")"),
        ),
    };
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
        .and_then(|a| auth(c, &format!("{at}.auth"), a));
    let hmac = r
        .hmac
        .as_ref()
        .and_then(|h| hmac(c, &format!("{at}.hmac"), h));
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
    let signs = provider.uses_secrets() || r.hmac.is_some();
    let secrets = secrets(c, at, provider, signs, r.secrets.as_ref());

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
    let timestamped =
        provider.has_timestamp() || hmac.as_ref().is_some_and(|h| h.timestamp_header.is_some());
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
        secrets: secrets?,
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

fn secrets(
    c: &mut Checker<'_>,
    at: &str,
    provider: Provider,
    signs: bool,
    raw: Option<&toml::Value>,
) -> Option<Vec<Secret>> {
    let path = format!("{at}.secrets");
    let list: Vec<&str> = match raw {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => {
            let strings: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
            match strings {
                Some(s) => s,
                None => return c.fail(path, "must be a list of strings"),
            }
        }
        Some(_) => return c.fail(path, "must be a list of strings, e.g. [\"${SECRET}\"]"),
    };
    if !signs {
        if !list.is_empty() {
            return c.fail(
                path,
                format!(
                    "provider {:?} without [routes.hmac] does not use secrets",
                    provider.name()
                ),
            );
        }
        return Some(Vec::new());
    }
    if list.is_empty() {
        return c.fail(path, "at least one secret is required");
    }
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, s) in list.iter().enumerate() {
        let path = format!("{at}.secrets[{j}]");
        if s.is_empty() {
            ok = c.fail::<()>(path, "must not be empty").is_some();
        } else if provider == Provider::StandardWebhooks {
            match whsec(c, &path, s) {
                Some(key) => out.push(key),
                None => ok = false,
            }
        } else {
            out.push(Secret::new(s.as_bytes()));
        }
    }
    ok.then_some(out)
}

/// A Standard Webhooks secret: `whsec_` + base64 of the key bytes.
pub(super) fn whsec(c: &mut Checker<'_>, path: &str, raw: &str) -> Option<Secret> {
    let Some(b64) = raw.strip_prefix("whsec_") else {
        return c.fail(path, "must start with \"whsec_\" followed by base64");
    };
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(key) if !key.is_empty() => Some(Secret::new(key)),
        _ => c.fail(path, "the part after \"whsec_\" is not valid base64"),
    }
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

fn auth(c: &mut Checker<'_>, at: &str, a: &AuthSection) -> Option<Auth> {
    let set = [a.basic.is_some(), a.bearer.is_some(), a.header.is_some()];
    if set.iter().filter(|&&b| b).count() != 1 {
        return c.fail(at, "must hold exactly one of basic, bearer, header");
    }
    if let Some(b) = &a.basic {
        if b.username.contains(':') {
            return c.fail(format!("{at}.basic.username"), "must not contain \":\"");
        }
        if b.password.is_empty() {
            return c.fail(format!("{at}.basic.password"), "must not be empty");
        }
        let pair = format!("{}:{}", b.username, b.password);
        return Some(Auth::Basic(Secret::new(pair.into_bytes())));
    }
    if let Some(token) = &a.bearer {
        if token.is_empty() {
            return c.fail(format!("{at}.bearer"), "must not be empty");
        }
        return Some(Auth::Bearer(Secret::new(token.as_bytes())));
    }
    let h = a.header.as_ref()?;
    let name = c.header_name(&format!("{at}.header.name"), &h.name)?;
    if h.value.is_empty() {
        return c.fail(format!("{at}.header.value"), "must not be empty");
    }
    Some(Auth::Header {
        name,
        value: Secret::new(h.value.as_bytes()),
    })
}

fn hmac(c: &mut Checker<'_>, at: &str, h: &HmacSection) -> Option<HmacScheme> {
    let header = match &h.header {
        None => c.fail(format!("{at}.header"), "missing"),
        Some(n) => c.header_name(&format!("{at}.header"), n),
    };
    let encoding = match h.encoding.as_deref() {
        None | Some("hex") => Some(SigEncoding::Hex),
        Some("base64") => Some(SigEncoding::Base64),
        Some(o) => c.fail(
            format!("{at}.encoding"),
            format!("unknown encoding {o:?} (expected \"hex\" or \"base64\")"),
        ),
    };
    let algorithm = match h.algorithm.as_deref() {
        None | Some("sha256") => Some(HmacAlgorithm::Sha256),
        Some("sha512") => Some(HmacAlgorithm::Sha512),
        Some(o) => c.fail(
            format!("{at}.algorithm"),
            format!("unknown algorithm {o:?} (expected \"sha256\" or \"sha512\")"),
        ),
    };
    let template = h.message.as_deref().unwrap_or("{body}");
    let message = parse_template(template);
    let uses = |p: &MessagePart| message.contains(p);
    if !uses(&MessagePart::Body) {
        c.fail::<()>(
            format!("{at}.message"),
            format!(
                "{template:?} does not contain {{body}}: it would verify nothing about the payload"
            ),
        );
    }
    let timestamp_header = match (&h.timestamp_header, uses(&MessagePart::Timestamp)) {
        (Some(n), true) => c.header_name(&format!("{at}.timestamp_header"), n),
        (None, false) => None,
        (Some(_), false) => c.fail(format!("{at}.timestamp_header"), "the message template does not sign {timestamp}: an unsigned timestamp protects nothing"),
        (None, true) => c.fail(format!("{at}.timestamp_header"), "required because the message template uses {timestamp}"),
    };
    let id_header = match (&h.id_header, uses(&MessagePart::Id)) {
        (Some(n), true) => c.header_name(&format!("{at}.id_header"), n),
        (None, false) => None,
        (Some(_), false) => c.fail(format!("{at}.id_header"), "the message template does not sign {id}: an unsigned id would let a replay with a fresh id slip past dedup"),
        (None, true) => c.fail(format!("{at}.id_header"), "required because the message template uses {id}"),
    };
    let ok = uses(&MessagePart::Body)
        && (h.timestamp_header.is_some() == timestamp_header.is_some())
        && (h.id_header.is_some() == id_header.is_some());
    let scheme = HmacScheme {
        header: header?,
        prefix: h.prefix.clone().filter(|p| !p.is_empty()),
        encoding: encoding?,
        algorithm: algorithm?,
        message,
        timestamp_header,
        id_header,
    };
    ok.then_some(scheme)
}

/// Splits a template into literals and the `{body}`, `{timestamp}`, `{id}` placeholders;
/// any other brace is literal text.
fn parse_template(t: &str) -> Vec<MessagePart> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = t;
    while !rest.is_empty() {
        let found = [
            ("{body}", MessagePart::Body),
            ("{timestamp}", MessagePart::Timestamp),
            ("{id}", MessagePart::Id),
        ]
        .into_iter()
        .find(|(tag, _)| rest.starts_with(tag));
        match found {
            Some((tag, part)) => {
                if !literal.is_empty() {
                    parts.push(MessagePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &rest[tag.len()..];
            }
            None => {
                let ch = rest.chars().next().unwrap_or_default();
                literal.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
    }
    if !literal.is_empty() {
        parts.push(MessagePart::Literal(literal));
    }
    parts
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
    fn templates_split_into_placeholders_and_literals() {
        assert_eq!(
            parse_template("v0:{timestamp}:{body}{x}"),
            vec![
                MessagePart::Literal("v0:".into()),
                MessagePart::Timestamp,
                MessagePart::Literal(":".into()),
                MessagePart::Body,
                MessagePart::Literal("{x}".into()),
            ]
        );
    }

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
