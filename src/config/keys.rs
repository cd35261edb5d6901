//! `public_key` and `public_url` of a route (docs/providers.md): the public keys of Discord,
//! SendGrid and Standard Webhooks' `whpk_` secrets, checked at load so that a pasted key
//! of the wrong shape is a `check` error naming its key path, not a 401 in production.

use base64::Engine;
use http::Uri;
use p256::pkcs8::DecodePublicKey;

use super::checker::Checker;
use crate::route::{Provider, PublicKey};

/// `[routes] public_key`: a list (for rotation), required by the public-key presets and
/// refused elsewhere.
pub(super) fn public_keys(
    c: &mut Checker<'_>,
    at: &str,
    provider: Provider,
    raw: Option<&toml::Value>,
) -> Option<Vec<PublicKey>> {
    let path = format!("{at}.public_key");
    let Some(raw) = raw else {
        if provider.uses_public_key() {
            return c.fail(path, "at least one public key is required");
        }
        return Some(Vec::new());
    };
    if !provider.uses_public_key() {
        return c.fail(
            path,
            format!(
                "provider {:?} does not use public_key (only discord, sendgrid and telnyx; standard-webhooks takes whpk_ keys in secrets)",
                provider.name()
            ),
        );
    }
    let list: Vec<&str> = match raw {
        toml::Value::String(one) => vec![one.as_str()],
        toml::Value::Array(items) => match items.iter().map(toml::Value::as_str).collect() {
            Some(list) => list,
            None => return c.fail(path, "must be a list of strings"),
        },
        _ => return c.fail(path, "must be a list of strings"),
    };
    if list.is_empty() {
        return c.fail(path, "at least one public key is required");
    }
    let mut keys = Vec::with_capacity(list.len());
    for (j, text) in list.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let key = match provider {
            Provider::Discord => ed25519_hex(text),
            Provider::Described(_) => ed25519_base64(text),
            _ => p256_der_base64(text),
        };
        match key {
            Ok(key) => keys.push(key),
            Err(why) => {
                c.fail::<()>(path, format!("{why}: {text:?}"));
            }
        }
    }
    (keys.len() == list.len()).then_some(keys)
}

/// A Standard Webhooks public key: `whpk_` + base64 of the raw 32-byte Ed25519 key.
pub(super) fn whpk(c: &mut Checker<'_>, path: &str, raw: &str) -> Option<PublicKey> {
    let b64 = raw.strip_prefix("whpk_").unwrap_or(raw);
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok());
    match key {
        Some(key) => Some(PublicKey::Ed25519(key)),
        None => c.fail(
            path,
            "the part after \"whpk_\" is not the base64 of a 32-byte Ed25519 public key",
        ),
    }
}

/// Discord's "Public Key" from the developer portal: 64 hex digits.
fn ed25519_hex(text: &str) -> Result<PublicKey, &'static str> {
    const WHY: &str = "not an Ed25519 public key (64 hex digits, as Discord shows it)";
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| WHY)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map(PublicKey::Ed25519)
        .map_err(|_| WHY)
}

/// Telnyx's "Public Key": base64 of the raw 32-byte Ed25519 key.
fn ed25519_base64(text: &str) -> Result<PublicKey, &'static str> {
    const WHY: &str = "not an Ed25519 public key (base64 of 32 bytes, as Telnyx shows it)";
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| WHY)?;
    let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| WHY)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map(PublicKey::Ed25519)
        .map_err(|_| WHY)
}

/// SendGrid's "Verification Key": base64 of a DER SubjectPublicKeyInfo on P-256 (a PEM
/// `PUBLIC KEY` block, as `openssl` writes one, is taken too).
fn p256_der_base64(text: &str) -> Result<PublicKey, &'static str> {
    const WHY: &str =
        "not a P-256 public key (base64 of DER SubjectPublicKeyInfo, as SendGrid shows it)";
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        return p256::ecdsa::VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey::P256)
            .map_err(|_| WHY);
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| WHY)?;
    p256::ecdsa::VerifyingKey::from_public_key_der(&der)
        .map(PublicKey::P256)
        .map_err(|_| WHY)
}

/// `[routes] public_url`: the absolute http(s) URL configured at the provider, required
/// by the presets that sign it and refused elsewhere.
pub(super) fn public_url(
    c: &mut Checker<'_>,
    at: &str,
    provider: Provider,
    raw: Option<&str>,
) -> Option<Option<String>> {
    let path = format!("{at}.public_url");
    let Some(url) = raw else {
        if provider.signs_url() {
            return c.fail(
                path,
                format!(
                    "required for provider {:?}: the exact URL configured at the provider, which it signs",
                    provider.name()
                ),
            );
        }
        return Some(None);
    };
    if !provider.signs_url() {
        return c.fail(
            path,
            format!(
                "provider {:?} does not sign its URL (only twilio and square)",
                provider.name()
            ),
        );
    }
    let parsed = url.parse::<Uri>().ok();
    let absolute = parsed.as_ref().is_some_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    });
    if !absolute || url.contains('#') {
        return c.fail(
            path,
            format!("{url:?} is not an absolute http(s) URL without a fragment"),
        );
    }
    if provider == Provider::Twilio && url.contains('?') {
        return c.fail(
            path,
            format!("{url:?} has a query: Twilio signs the query of each request, so give the URL without it"),
        );
    }
    Some(Some(url.to_string()))
}
