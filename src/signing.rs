//! Signing the way each provider does, so that `hookwarden sign` and `send` produce
//! exactly what a route verifies, and re-signing what the app receives.

use base64::Engine;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use crate::providers::hmac_tag;
use crate::route::Provider;
use crate::route::{Auth, HmacAlgorithm, HmacScheme, MessagePart, Route, Secret, SigEncoding};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why headers could not be produced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignError {
    #[error("route {0:?} has no secret to sign with")]
    NoSecret(String),
    #[error("a credential or id cannot be sent as a header value (control characters?)")]
    BadHeaderValue,
}

/// The headers a provider sends for `body` on `route`: credentials of `[routes.auth]`,
/// then the signature scheme, signed with the route's first secret at `timestamp`, with
/// `id` where the scheme carries one.
pub(crate) fn route_headers(
    route: &Route,
    body: &[u8],
    timestamp: i64,
    id: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    let mut out = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    if let Some(auth) = &route.auth {
        out.push(credentials(auth)?);
    }
    let ts = timestamp.to_string();
    let secret = || {
        route
            .secrets
            .first()
            .ok_or_else(|| SignError::NoSecret(route.name.clone()))
    };
    let hex_sha256 = |key: &Secret, message: &[&[u8]]| {
        hex::encode(hmac_tag(HmacAlgorithm::Sha256, key.expose(), message))
    };
    let mut add = |name: &'static str, value: String| -> Result<(), SignError> {
        out.push((HeaderName::from_static(name), value_of(value)?));
        Ok(())
    };
    match route.provider {
        Provider::SmartCv => {
            let sig = hex_sha256(secret()?, &[ts.as_bytes(), b".", body]);
            add("x-smartcv-timestamp", ts)?;
            add("x-smartcv-signature", format!("sha256={sig}"))?;
        }
        Provider::Semantikmatch => {
            add("x-semantikmatch-signature", hex_sha256(secret()?, &[body]))?
        }
        Provider::Hrflow => add("http-hrflow-signature", hex_sha256(secret()?, &[body]))?,
        Provider::StandardWebhooks => {
            for (name, value) in standard_webhooks(secret()?, id, timestamp, body) {
                add(name, value)?;
            }
        }
        Provider::Hmac | Provider::JobAffinity => {
            if let Some(scheme) = &route.hmac {
                out.extend(generic(scheme, secret()?, body, &ts, id)?);
            }
        }
    }
    Ok(out)
}

/// Standard Webhooks headers: `webhook-id`, `webhook-timestamp`, and `webhook-signature`
/// = `v1,` base64 HMAC-SHA256 over `<id>.<timestamp>.<body>` with the decoded key.
pub(crate) fn standard_webhooks(
    key: &Secret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let ts = timestamp.to_string();
    let tag = hmac_tag(
        HmacAlgorithm::Sha256,
        key.expose(),
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", format!("v1,{}", B64.encode(tag))),
    ]
}

fn generic(
    scheme: &HmacScheme,
    key: &Secret,
    body: &[u8],
    ts: &str,
    id: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    let message: Vec<&[u8]> = scheme
        .message
        .iter()
        .map(|part| match part {
            MessagePart::Literal(text) => text.as_bytes(),
            MessagePart::Body => body,
            MessagePart::Timestamp => ts.as_bytes(),
            MessagePart::Id => id.as_bytes(),
        })
        .collect();
    let tag = hmac_tag(scheme.algorithm, key.expose(), &message);
    let encoded = match scheme.encoding {
        SigEncoding::Hex => hex::encode(tag),
        SigEncoding::Base64 => B64.encode(tag),
    };
    let prefix = scheme.prefix.as_deref().unwrap_or_default();
    let mut out = vec![(
        scheme.header.clone(),
        value_of(format!("{prefix}{encoded}"))?,
    )];
    if let Some(name) = &scheme.timestamp_header {
        out.push((name.clone(), value_of(ts.to_string())?));
    }
    if let Some(name) = &scheme.id_header {
        out.push((name.clone(), value_of(id.to_string())?));
    }
    Ok(out)
}

fn credentials(auth: &Auth) -> Result<(HeaderName, HeaderValue), SignError> {
    let (name, value) = match auth {
        Auth::Basic(pair) => (
            AUTHORIZATION,
            format!("Basic {}", B64.encode(pair.expose())),
        ),
        Auth::Bearer(token) => (
            AUTHORIZATION,
            format!("Bearer {}", String::from_utf8_lossy(token.expose())),
        ),
        Auth::Header { name, value } => (
            name.clone(),
            String::from_utf8_lossy(value.expose()).into_owned(),
        ),
    };
    let mut value = value_of(value)?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn value_of(text: String) -> Result<HeaderValue, SignError> {
    HeaderValue::try_from(text).map_err(|_| SignError::BadHeaderValue)
}

/// A fresh event id, `msg_` + 32 random hex digits.
pub(crate) fn random_id() -> String {
    format!("msg_{}", random_hex())
}

/// 32 random hex digits, for ids and tokens that must not repeat (never for keys).
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock, which still tells apart values made
        // at different moments.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    hex::encode(bytes)
}

/// The schemes `hookwarden sign --provider` knows (SPEC §1); the others need a route's
/// `[routes.hmac]` or `[routes.auth]`, which `hookwarden send` reads from the config.
pub(crate) const SIGN_PROVIDERS: [Provider; 4] = [
    Provider::SmartCv,
    Provider::Semantikmatch,
    Provider::Hrflow,
    Provider::StandardWebhooks,
];

/// What `hookwarden sign` prints: the headers `provider` sends for `body` with `secret`.
pub(crate) fn for_provider(
    provider: &str,
    secret: &str,
    body: &[u8],
    timestamp: i64,
    id: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let known = SIGN_PROVIDERS
        .iter()
        .find(|p| p.name() == provider)
        .ok_or_else(|| {
            let names: Vec<_> = SIGN_PROVIDERS.iter().map(|p| p.name()).collect();
            format!(
                "--provider must be one of {}; for other routes use `hookwarden send`",
                names.join(", ")
            )
        })?;
    // A one-route configuration, so the secret is checked exactly as `check` would.
    let mut doc = toml::Table::new();
    let mut upstream = toml::Table::new();
    upstream.insert("url".into(), "http://127.0.0.1:1".into());
    doc.insert("upstream".into(), upstream.into());
    let mut route = toml::Table::new();
    route.insert("name".into(), "sign".into());
    route.insert("path".into(), "/".into());
    route.insert("provider".into(), known.name().into());
    route.insert("secrets".into(), toml::Value::Array(vec![secret.into()]));
    doc.insert("routes".into(), toml::Value::Array(vec![route.into()]));
    // The secret is used as written, never as a `${…}` reference.
    let text = toml::to_string(&doc)
        .map_err(|e| e.to_string())?
        .replace("${", "$${");
    let loaded =
        crate::config::load_str(&text, std::path::Path::new("."), &|_| None).map_err(|e| {
            e.lines()
                .join("; ")
                .replace("routes[0].secrets[0]", "--secret")
        })?;
    let route = &loaded.config.routes[0];
    route_headers(route, body, timestamp, id).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_refuses_schemes_that_need_a_route_and_bad_secrets() {
        assert!(for_provider("hmac", "k", b"{}", 1, "i")
            .unwrap_err()
            .contains("hookwarden send"));
        let e = for_provider("standard-webhooks", "plain", b"{}", 1, "i").unwrap_err();
        assert!(e.starts_with("--secret: must start with \"whsec_\""), "{e}");
    }

    #[test]
    fn a_secret_with_dollars_is_used_as_written() {
        let headers = for_provider("semantikmatch", "a${B}$c", b"{}", 1, "i").expect("signed");
        let sig = &headers
            .iter()
            .find(|(n, _)| n == "x-semantikmatch-signature")
            .expect("header")
            .1;
        let expected = hex::encode(hmac_tag(HmacAlgorithm::Sha256, b"a${B}$c", &[b"{}"]));
        assert_eq!(sig.to_str().unwrap(), expected);
    }
}
