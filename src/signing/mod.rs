//! Signing the way each provider does, so that `hookwarden sign` and `send` produce
//! exactly what a route verifies, and re-signing what the app receives. The presets of
//! docs/providers.md are in [`presets`].

mod presets;
#[cfg(test)]
mod round_trip;
mod without_route;

use base64::Engine;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use crate::providers::hmac_tag;
use crate::route::catalog::Check;
use crate::route::{
    Auth, HmacAlgorithm, HmacScheme, MessagePart, Provider, PublicKey, Route, Secret, SigEncoding,
    SigList, TimeUnit,
};

pub(crate) use presets::Message;
pub(crate) use without_route::{for_provider, SignInput};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why headers could not be produced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignError {
    #[error("route {0:?} has no secret to sign with")]
    NoSecret(String),
    #[error("a credential or id cannot be sent as a header value (control characters?)")]
    BadHeaderValue,
    #[error("this provider signs its public URL: give --url (send: the route's public_url)")]
    NoUrl,
    #[error("mailgun signs inside a JSON body: the body file must be JSON")]
    NotJson,
    #[error("this provider signs with {0}")]
    WrongKey(&'static str),
    #[error("not a preset")]
    NotAPreset,
}

/// What to sign with: a shared secret, or the private half of a public-key scheme.
pub(crate) enum Key {
    Secret(Secret),
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted key]")
    }
}

impl Key {
    /// A PEM private key: Ed25519 (PKCS#8) or P-256 (PKCS#8 or SEC1, as `openssl`
    /// writes them).
    pub(crate) fn from_pem(pem: &str) -> Result<Key, String> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Key::Ed25519(key));
        }
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Key::P256(key));
        }
        if let Ok(key) = p256::SecretKey::from_sec1_pem(pem) {
            return Ok(Key::P256(key.into()));
        }
        Err("--private-key: not a PEM Ed25519 or P-256 private key".into())
    }

    /// The public key that verifies what this key signs.
    pub(crate) fn public(&self) -> Option<PublicKey> {
        match self {
            Key::Secret(_) => None,
            Key::Ed25519(key) => Some(PublicKey::Ed25519(key.verifying_key())),
            Key::P256(key) => Some(PublicKey::P256(*key.verifying_key())),
        }
    }
}

/// A signed request: its headers, and where a scheme needs them, the query to post to
/// (Twilio's `bodySHA256`) and the body to send instead of the file (Mailgun's).
pub(crate) struct Signed {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub query: Option<String>,
    pub body: Option<Vec<u8>>,
}

impl Signed {
    fn json() -> Self {
        Signed {
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            query: None,
            body: None,
        }
    }

    fn header(&mut self, name: &'static str, value: String) -> Result<(), SignError> {
        self.headers
            .push((HeaderName::from_static(name), value_of(value)?));
        Ok(())
    }

    /// Form bodies are sent as forms (Slack's slash commands, Twilio's callbacks).
    fn form(&mut self) {
        self.headers[0].1 = HeaderValue::from_static("application/x-www-form-urlencoded");
    }

    fn form_unless_json(&mut self, body: &[u8]) {
        if !looks_like_json(body) {
            self.form();
        }
    }
}

/// A body that starts like a JSON object or array (after whitespace).
fn looks_like_json(body: &[u8]) -> bool {
    matches!(body.trim_ascii_start().first(), Some(b'{' | b'['))
}

/// What a provider sends for `body` on `route`: credentials of `[routes.auth]`, then the
/// signature scheme, signed at `timestamp` with the route's first secret (or `private`,
/// for the public-key schemes), with `id` where the scheme carries one.
pub(crate) fn route_request(
    route: &Route,
    private: Option<&Key>,
    body: &[u8],
    timestamp: i64,
    id: &str,
) -> Result<Signed, SignError> {
    let first_secret = route.secrets.first().cloned().map(Key::Secret);
    let message = Message {
        body,
        timestamp,
        id,
        url: route.public_url.as_deref(),
    };
    let preset = match private.or(first_secret.as_ref()) {
        Some(key) => presets::sign(route.provider, key, &message)?,
        None if route.provider.uses_public_key() => {
            return Err(SignError::WrongKey("a private key (--private-key)"))
        }
        None => None,
    };
    let mut signed = match (preset, private) {
        (Some(signed), _) => signed,
        // Standard Webhooks' Ed25519 form, for a route of `whpk_` keys.
        (None, Some(key @ Key::Ed25519(_))) if route.provider == Provider::StandardWebhooks => {
            let mut signed = Signed::json();
            for (name, value) in standard_webhooks_v1a(key, id, timestamp, body)? {
                signed.header(name, value)?;
            }
            signed
        }
        (None, _) => {
            let mut signed = Signed::json();
            signed
                .headers
                .extend(route_headers(route, body, timestamp, id)?);
            signed
        }
    };
    if let Some(auth) = &route.auth {
        signed.headers.push(credentials(auth)?);
    }
    Ok(signed)
}

/// The signature headers of the schemes that are not presets.
fn route_headers(
    route: &Route,
    body: &[u8],
    timestamp: i64,
    id: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    let secret = || {
        route
            .secrets
            .first()
            .ok_or_else(|| SignError::NoSecret(route.name.clone()))
    };
    let mut out = Vec::new();
    let ts = timestamp.to_string();
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
            for (name, value) in standard_webhooks(secret()?, id, timestamp, &[body]) {
                add(name, value)?;
            }
        }
        Provider::Hmac | Provider::JobAffinity => {
            if let Some(scheme) = &route.hmac {
                out.extend(described_hmac(
                    scheme,
                    secret()?,
                    body,
                    timestamp,
                    id,
                    None,
                )?);
            }
        }
        // A secret itself in a header (Okta's, GitLab's token) or Basic credentials
        // (Postmark's), in the header the route names.
        Provider::Described(d) => {
            let (header, basic) = match &d.check {
                Check::Token { header, basic } => (*header, *basic),
                Check::TokenOrStandardWebhooks { header } => (*header, false),
                _ => return Err(SignError::NotAPreset),
            };
            let header = route.token_header.as_deref().unwrap_or(header);
            let token = secret()?.expose();
            let value = if basic {
                format!("Basic {}", B64.encode(token))
            } else {
                String::from_utf8_lossy(token).into_owned()
            };
            let mut value = value_of(value)?;
            value.set_sensitive(true);
            let name = HeaderName::try_from(header).map_err(|_| SignError::BadHeaderValue)?;
            out.push((name, value));
        }
        // Signed by `presets`, which `route_request` asks first.
        _ => return Err(SignError::NotAPreset),
    }
    Ok(out)
}

/// Standard Webhooks' Ed25519 form: `webhook-signature: v1a,<base64>`.
fn standard_webhooks_v1a(
    key: &Key,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], SignError> {
    let ts = timestamp.to_string();
    let message = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    let signature = key.ed25519(&message)?;
    Ok([
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        (
            "webhook-signature",
            format!("v1a,{}", B64.encode(signature)),
        ),
    ])
}

/// Standard Webhooks headers: `webhook-id`, `webhook-timestamp`, and `webhook-signature`
/// = `v1,` base64 HMAC-SHA256 over `<id>.<timestamp>.<body>` with the decoded key.
pub(crate) fn standard_webhooks(
    key: &Secret,
    id: &str,
    timestamp: i64,
    body: &[&[u8]],
) -> [(&'static str, String); 3] {
    let ts = timestamp.to_string();
    let mut message: Vec<&[u8]> = vec![id.as_bytes(), b".", ts.as_bytes(), b"."];
    message.extend_from_slice(body);
    let tag = hmac_tag(HmacAlgorithm::Sha256, key.expose(), &message);
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", format!("v1,{}", B64.encode(tag))),
    ]
}

/// Signs as an HMAC description says (`[routes.hmac]`, the table's presets): the
/// signature in the first of its headers, with its timestamp and id headers, the
/// timestamp written in the description's unit; a request to `url` (signed by some) is
/// a `POST`.
pub(crate) fn described_hmac(
    scheme: &HmacScheme,
    key: &Secret,
    body: &[u8],
    timestamp: i64,
    id: &str,
    url: Option<&str>,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    let ts = match scheme.timestamp.as_ref().map(|t| t.unit) {
        Some(TimeUnit::Millis) => (i128::from(timestamp) * 1000).to_string(),
        Some(TimeUnit::Rfc3339) => {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(timestamp).unwrap_or(0));
            humantime::format_rfc3339_seconds(at).to_string()
        }
        Some(TimeUnit::Seconds) | None => timestamp.to_string(),
    };
    let url = match (scheme.message.contains(&MessagePart::Url), url) {
        (true, None) => return Err(SignError::NoUrl),
        (_, url) => url.unwrap_or_default(),
    };
    let sorted = if scheme.message.contains(&MessagePart::SortedForm) {
        crate::providers::form::sorted_fields(body)
    } else {
        String::new()
    };
    let message: Vec<&[u8]> = scheme
        .message
        .iter()
        .map(|part| match part {
            MessagePart::Literal(text) => text.as_bytes(),
            MessagePart::Body => body,
            MessagePart::Timestamp => ts.as_bytes(),
            MessagePart::Id => id.as_bytes(),
            MessagePart::Method => b"POST",
            MessagePart::Url => url.as_bytes(),
            MessagePart::SortedForm => sorted.as_bytes(),
        })
        .collect();
    let tag = hmac_tag(scheme.algorithm, key.expose(), &message);
    let encoded = match scheme.encoding {
        SigEncoding::Hex => hex::encode(tag),
        SigEncoding::Base64 => B64.encode(tag),
    };
    let prefix = scheme.prefix.as_deref().unwrap_or_default();
    let value = match &scheme.list {
        SigList::One | SigList::Each(_) => format!("{prefix}{encoded}"),
        SigList::Keyed {
            separator,
            timestamp,
            signature,
        } => {
            let separator = char::from(*separator);
            format!("{timestamp}={ts}{separator}{signature}={encoded}")
        }
    };
    let name = |n: &str| HeaderName::try_from(n).map_err(|_| SignError::BadHeaderValue);
    let first = scheme.headers.first().ok_or(SignError::NotAPreset)?;
    let mut out = vec![(name(first)?, value_of(value)?)];
    if let Some(header) = scheme.timestamp.as_ref().and_then(|t| t.header.as_ref()) {
        out.push((name(header)?, value_of(ts)?));
    }
    if let Some(header) = &scheme.id_header {
        out.push((name(header)?, value_of(id.to_string())?));
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
