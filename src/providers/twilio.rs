//! Twilio (docs/providers.md): `X-Twilio-Signature: <base64>` = HMAC-SHA1 (HMAC-SHA256 when
//! `X-Twilio-Webhooks-Signature-Settings` says `algorithm=HMAC_SHA256`) keyed with the
//! auth token, over the URL Twilio posted to, then for form bodies every field's decoded
//! name and value, sorted. The URL is the route's `public_url` plus the request's raw
//! query: the gateway cannot rebuild it behind a load balancer. As Twilio's SDK, the URL
//! with and without the scheme's default port both verify. JSON bodies are signed through
//! the URL alone, whose `bodySHA256` query must then be the body's hex SHA-256.
//!
//! Names and values are run together without separators, so `a=bc` and `ab=c` sign
//! alike: that is Twilio's scheme (its SDK accepts both), kept as is. Twilio signs no
//! timestamp, so only dedup stands between a route and a replayed request.
//!
//! Hand-written because no maintained Rust crate validates Twilio requests; the rules
//! are those of `twilio-python`'s `RequestValidator`.

use http::{HeaderName, Uri};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::fields::{self, Kind, Pointers};
use super::json::Payload;
use super::{
    checks, form, Events, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const SETTINGS: HeaderName = HeaderName::from_static("x-twilio-webhooks-signature-settings");

const POINTERS: Pointers = Pointers {
    // Every status callback of one message carries the same `MessageSid`.
    id: None,
    kind: Kind::FirstOf("/MessageStatus", "/CallStatus"),
    occurred_at: None,
    data: None,
};

const EVENT_TYPE: Pointers = Pointers {
    kind: Kind::At("/EventType"),
    ..POINTERS
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = checks::signature(req.headers, SIGNATURE)?.single()?;
    let expected = checks::decode_base64(raw).ok_or(VerifyError::InvalidSignature)?;
    let algorithm = match checks::header(req.headers, SETTINGS) {
        checks::Header::One(v) if contains(v, b"algorithm=HMAC_SHA256") => HmacAlgorithm::Sha256,
        _ => HmacAlgorithm::Sha1,
    };
    // Validation requires public_url for this provider; without it nothing verifies.
    let url = checks::signed_url(route.public_url.as_deref(), req.query)
        .ok_or(VerifyError::InvalidSignature)?;
    let signed_fields = match body_sha256(req.query) {
        // The body is signed through its hash in the (signed) URL.
        Some(hash) => {
            let actual = hex::encode(Sha256::digest(req.body));
            if !bool::from(
                actual
                    .as_bytes()
                    .ct_eq(hash.to_ascii_lowercase().as_bytes()),
            ) {
                return Err(VerifyError::InvalidSignature);
            }
            String::new()
        }
        None if super::is_form(req.headers.get(http::header::CONTENT_TYPE)) => {
            form::sorted_fields(req.body)
        }
        // Any other body would not be covered by the signature at all.
        None => return Err(VerifyError::InvalidSignature),
    };
    let signs = |url: &str| {
        checks::any_secret_signs(
            algorithm,
            &route.secrets,
            &[url.as_bytes(), signed_fields.as_bytes()],
            &[&expected],
        )
    };
    if url_variants(&url).iter().any(|u| signs(u)) {
        Ok(Verified::new(req, None))
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `bodySHA256` query parameter, decoded.
fn body_sha256(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned())
}

/// The URL as given, and with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Ok(uri) = url.parse::<Uri>() else {
        return out;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return out;
    };
    let default = if scheme == "https" { 443 } else { 80 };
    let prefix = format!("{scheme}://");
    let rest = &url[prefix.len().min(url.len())..];
    let Some(after_authority) = rest.strip_prefix(authority.as_str()) else {
        return out;
    };
    match authority.port_u16() {
        None => out.push(format!("{prefix}{authority}:{default}{after_authority}")),
        Some(port) if port == default => {
            let host = authority.as_str().rsplit_once(':').map_or("", |(h, _)| h);
            out.push(format!("{prefix}{host}{after_authority}"));
        }
        Some(_) => {}
    }
    out
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    if !verified.is_form() {
        return fields::one_from_json(route, &EVENT_TYPE, &verified);
    }
    // Blank values are part of what Twilio signs, so the app sees them too.
    let mut object = Map::new();
    for (key, value) in form_urlencoded::parse(&verified.body) {
        object
            .entry(key.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    let pointers = if object.contains_key("MessageStatus") || object.contains_key("CallStatus") {
        &POINTERS
    } else {
        &EVENT_TYPE
    };
    let payload = Payload::Tree(Value::Object(object));
    let event = fields::event(route, pointers, &verified, payload, &verified.body);
    Ok(Events::one(event).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("twilio");
    }

    #[test]
    fn the_default_port_is_added_or_removed_never_another() {
        assert_eq!(
            url_variants("https://h.example/p?a=1"),
            ["https://h.example/p?a=1", "https://h.example:443/p?a=1"]
        );
        assert_eq!(
            url_variants("http://h.example:80/p"),
            ["http://h.example:80/p", "http://h.example/p"]
        );
        assert_eq!(
            url_variants("https://h.example:8443/p"),
            ["https://h.example:8443/p"]
        );
    }

    #[test]
    fn fields_sort_by_name_then_value_and_keep_blanks() {
        assert_eq!(
            super::form::sorted_fields(b"b=2&a=&b=1&c=x+y%21"),
            "ab1b2cx y!"
        );
    }
}
