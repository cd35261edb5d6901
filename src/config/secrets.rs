//! `secrets` of a route and `upstream.signing_secret`: the keys signatures are checked
//! and made with.

use base64::Engine;

use super::checker::Checker;
use super::keys;
use crate::route::{Provider, PublicKey, Secret};

/// `[routes] secrets`: required when the route checks signatures, refused otherwise.
/// Standard Webhooks' `whpk_` entries come back apart, as public keys.
pub(super) fn secrets(
    c: &mut Checker<'_>,
    at: &str,
    provider: Provider,
    signs: bool,
    base64_key: bool,
    raw: Option<&toml::Value>,
) -> Option<(Vec<Secret>, Vec<PublicKey>)> {
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
            let why = if provider.uses_public_key() {
                format!(
                    "provider {:?} verifies with public_key, not secrets",
                    provider.name()
                )
            } else {
                format!(
                    "provider {:?} without [routes.hmac] does not use secrets",
                    provider.name()
                )
            };
            return c.fail(path, why);
        }
        return Some((Vec::new(), Vec::new()));
    }
    if list.is_empty() {
        return c.fail(path, "at least one secret is required");
    }
    // `[routes.hmac] key_encoding = "base64"` makes any route's secrets base64 keys.
    let form = if base64_key {
        Form::Base64
    } else {
        form(provider)
    };
    let mut out = Vec::with_capacity(list.len());
    let mut public = Vec::new();
    let mut ok = true;
    for (j, s) in list.iter().enumerate() {
        let path = format!("{at}.secrets[{j}]");
        if s.is_empty() {
            ok = c.fail::<()>(path, "must not be empty").is_some();
        } else if form == Form::Whsec && s.starts_with("whpk_") {
            match keys::whpk(c, &path, s) {
                Some(key) => public.push(key),
                None => ok = false,
            }
        } else if form == Form::Whsec || (form == Form::WhsecOrToken && s.starts_with("whsec_")) {
            match whsec(c, &path, s) {
                Some(key) => out.push(key),
                None => ok = false,
            }
        } else if form == Form::Base64 {
            match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                Ok(key) if !key.is_empty() => out.push(Secret::new(key)),
                _ => {
                    ok = c
                        .fail::<()>(path, "must be base64 (the key as the provider shows it)")
                        .is_some()
                }
            }
        } else {
            out.push(Secret::new(s.as_bytes()));
        }
    }
    ok.then_some((out, public))
}

/// How a provider's secrets are written.
#[derive(PartialEq, Eq)]
enum Form {
    /// The key's own bytes.
    Raw,
    /// `whsec_` + base64 of the key (or `whpk_`, a public key): Standard Webhooks.
    Whsec,
    /// A `whsec_` key, or else a token compared as written (GitLab).
    WhsecOrToken,
    /// Base64 of the key (Airtable).
    Base64,
}

fn form(provider: Provider) -> Form {
    use crate::route::catalog::Check;
    use crate::route::KeyEncoding;
    match provider.described().map(|d| &d.check) {
        _ if provider == Provider::StandardWebhooks => Form::Whsec,
        Some(Check::StandardWebhooks) => Form::Whsec,
        Some(Check::TokenOrStandardWebhooks { .. }) => Form::WhsecOrToken,
        Some(Check::Hmac(s)) if s.key == KeyEncoding::Base64 => Form::Base64,
        _ => Form::Raw,
    }
}

/// `verify_token`: required by Meta's GET handshake, refused elsewhere.
pub(super) fn verify_token(
    c: &mut Checker<'_>,
    at: &str,
    provider: Provider,
    raw: Option<&toml::Value>,
) -> Option<Option<Secret>> {
    let path = format!("{at}.verify_token");
    let meta = provider.described().and_then(|d| d.handshake)
        == Some(crate::route::catalog::Handshake::MetaGet);
    match (raw, meta) {
        (None, false) => Some(None),
        (None, true) => c.fail(
            path,
            "required for provider \"meta\": the Verify Token set in the app's webhook settings",
        ),
        (Some(_), false) => c.fail(
            path,
            format!(
                "provider {:?} does not take verify_token (only meta)",
                provider.name()
            ),
        ),
        (Some(toml::Value::String(token)), true) if !token.is_empty() => {
            Some(Some(Secret::new(token.as_bytes())))
        }
        (Some(_), true) => c.fail(path, "must be a non-empty string"),
    }
}

/// A Standard Webhooks secret: `whsec_` + base64 of the key bytes.
pub(super) fn whsec(c: &mut Checker<'_>, path: &str, raw: &str) -> Option<Secret> {
    let Some(b64) = raw.strip_prefix("whsec_") else {
        return c.fail(
            path,
            "must start with \"whsec_\" (or \"whpk_\" for an Ed25519 public key) followed by base64",
        );
    };
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(key) if !key.is_empty() => Some(Secret::new(key)),
        _ => c.fail(path, "the part after \"whsec_\" is not valid base64"),
    }
}

/// Secrets of a sample or a placeholder, and secrets too short to resist guessing:
/// warnings, so that they never reach production unnoticed. The value is never repeated.
pub(super) fn sample_secrets(at: &str, raw: Option<&toml::Value>) -> Vec<String> {
    let Some(toml::Value::Array(items)) = raw else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(j, item)| {
            let secret = item.as_str()?;
            let why = placeholder(secret)?;
            Some(format!(
                "{at}.secrets[{j}]: {why}; replace it before real use"
            ))
        })
        .collect()
}

/// Why a secret looks like no real one, if it does.
pub(super) fn placeholder(secret: &str) -> Option<&'static str> {
    const SHORTEST: usize = 16;
    let lower = secret.to_ascii_lowercase();
    if lower.starts_with("sample-") || lower.starts_with("sample_") {
        Some("a sample secret")
    } else if [
        "replace-me",
        "replace_me",
        "changeme",
        "change-me",
        "change_me",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        Some("a placeholder, not a secret")
    } else if secret.is_empty() {
        None
    } else if secret.len() < SHORTEST {
        Some("shorter than 16 bytes, easy to guess")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::placeholder;

    #[test]
    fn samples_placeholders_and_short_secrets_are_flagged() {
        for flagged in [
            "sample-smartcv-secret",
            "Sample_x",
            "please-replace-me-now",
            "CHANGEME",
            "short",
        ] {
            assert!(placeholder(flagged).is_some(), "{flagged}");
        }
        for real in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "k8Jq2L0pX9vR4tYw1zA7",
        ] {
            assert_eq!(placeholder(real), None, "{real}");
        }
    }
}
