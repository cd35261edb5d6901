//! `hookwarden sign`: signing for a provider without a configuration. The key (and the
//! public URL) go through a one-route configuration, so they are checked exactly as
//! `check` would check them in a route.

use base64::Engine;

use super::{route_request, Key, Signed, B64};
use crate::route::catalog::Handshake;
use crate::route::{Provider, PublicKey};

/// What `hookwarden sign` is given besides the body.
pub(crate) struct SignInput<'a> {
    pub provider: &'a str,
    pub secret: Option<&'a str>,
    pub private_key: Option<&'a Key>,
    pub url: Option<&'a str>,
    pub timestamp: i64,
    pub id: &'a str,
}

/// What `hookwarden sign` prints: what `provider` sends for `body`. The key is checked
/// as `check` would check it in a route, through a one-route configuration.
pub(crate) fn for_provider(input: &SignInput<'_>, body: &[u8]) -> Result<Signed, String> {
    let provider = Provider::from_name(input.provider)
        .filter(|p| !matches!(p, Provider::Hmac | Provider::JobAffinity | Provider::Mailgun))
        .ok_or_else(|| {
            let names: Vec<_> = Provider::all()
                .filter(|p| !matches!(p, Provider::Hmac | Provider::JobAffinity | Provider::Mailgun))
                .map(|p| p.name())
                .collect();
            format!(
                "--provider must be one of {} (mailgun signs inside the body, hmac and jobaffinity need a route: use `hookwarden send`)",
                names.join(", ")
            )
        })?;
    let mut route = toml::Table::new();
    route.insert("name".into(), "sign".into());
    route.insert("path".into(), "/".into());
    route.insert("provider".into(), provider.name().into());
    let private = match (input.secret, input.private_key) {
        (Some(secret), None) if !provider.uses_public_key() => {
            route.insert("secrets".into(), toml::Value::Array(vec![secret.into()]));
            None
        }
        (None, Some(key))
            if provider.uses_public_key() || provider == Provider::StandardWebhooks =>
        {
            Some(key)
        }
        _ if provider.uses_public_key() => {
            return Err(format!(
                "{} signs with a private key: give --private-key FILE (PEM), not --secret",
                provider.name()
            ))
        }
        _ => {
            return Err(format!(
                "{} signs with a shared secret: give --secret",
                provider.name()
            ))
        }
    };
    if let Some(key) = private {
        // Stands in for the route's public key, so that the route validates; only the
        // private key signs.
        if provider == Provider::StandardWebhooks {
            route.insert(
                "secrets".into(),
                toml::Value::Array(vec!["whsec_c2lnbg==".into()]),
            );
        } else {
            route.insert(
                "public_key".into(),
                toml::Value::Array(vec![public_key_text(provider, key)?.into()]),
            );
        }
    }
    if provider.signs_url() {
        let url = input
            .url
            .ok_or("--url is required for this provider: the public URL the provider posts to")?;
        route.insert(
            "public_url".into(),
            url.split('?').next().unwrap_or(url).into(),
        );
    }
    if provider.described().and_then(|d| d.handshake) == Some(Handshake::MetaGet) {
        // Stands in for Meta's verify token, which only its GET handshake reads.
        route.insert("verify_token".into(), "unused".into());
    }
    let mut doc = toml::Table::new();
    let mut upstream = toml::Table::new();
    upstream.insert("url".into(), "http://127.0.0.1:1".into());
    doc.insert("upstream".into(), upstream.into());
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
                .replace("routes[0].public_url", "--url")
        })?;
    let mut route = loaded.config.routes[0].as_ref().clone();
    // A --url with a query signs exactly that URL (Twilio).
    route.public_url = input.url.map(str::to_string);
    route_request(&route, private, body, input.timestamp, input.id).map_err(|e| e.to_string())
}

/// A public key as a route's `public_key` holds it.
fn public_key_text(provider: Provider, key: &Key) -> Result<String, String> {
    use p256::pkcs8::EncodePublicKey as _;
    match (provider, key.public()) {
        (Provider::Discord, Some(PublicKey::Ed25519(public))) => Ok(hex::encode(public.as_bytes())),
        (Provider::Sendgrid, Some(PublicKey::P256(public))) => public
            .to_public_key_der()
            .map(|der| B64.encode(der.as_bytes()))
            .map_err(|e| e.to_string()),
        (Provider::Described(_), Some(PublicKey::Ed25519(public))) => {
            Ok(B64.encode(public.as_bytes()))
        }
        (Provider::Discord | Provider::Described(_), _) => Err(format!(
            "--private-key: {} signs with an Ed25519 key",
            provider.name()
        )),
        _ => Err("--private-key: sendgrid signs with a P-256 key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::hmac_tag;
    use crate::route::HmacAlgorithm;

    #[test]
    fn sign_refuses_schemes_that_need_a_route_and_bad_secrets() {
        let input = |provider, secret| SignInput {
            provider,
            secret: Some(secret),
            private_key: None,
            url: None,
            timestamp: 1,
            id: "i",
        };
        assert!(for_provider(&input("hmac", "k"), b"{}")
            .err()
            .unwrap()
            .contains("hookwarden send"));
        let e = for_provider(&input("standard-webhooks", "plain"), b"{}")
            .err()
            .unwrap();
        assert!(e.starts_with("--secret: must start with \"whsec_\""), "{e}");
        let e = for_provider(&input("twilio", "t"), b"a=b").err().unwrap();
        assert!(e.contains("--url"), "{e}");
        let e = for_provider(&input("discord", "t"), b"{}").err().unwrap();
        assert!(e.contains("--private-key"), "{e}");
    }

    /// `sign` works for every preset of the table, with the key it takes.
    #[test]
    fn sign_signs_every_preset_of_the_table() {
        let ed25519 = Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
        for d in crate::route::catalog::CATALOG {
            let provider = Provider::Described(d);
            let secret = match d.name {
                "airtable" => "c2hoLXNlY3JldA==",
                "clerk" | "resend" | "openai" | "replicate" => "whsec_c2VjcmV0",
                _ => "a-secret",
            };
            let input = SignInput {
                provider: d.name,
                secret: (!provider.uses_public_key()).then_some(secret),
                private_key: provider.uses_public_key().then_some(&ed25519),
                url: provider
                    .signs_url()
                    .then_some("https://hooks.example.com/in"),
                timestamp: 1_764_000_000,
                id: "msg_1",
            };
            let signed = for_provider(&input, b"{}").unwrap_or_else(|e| panic!("{}: {e}", d.name));
            assert!(signed.headers.len() > 1, "{}: {:?}", d.name, signed.headers);
        }
    }

    #[test]
    fn a_secret_with_dollars_is_used_as_written() {
        let input = SignInput {
            provider: "semantikmatch",
            secret: Some("a${B}$c"),
            private_key: None,
            url: None,
            timestamp: 1,
            id: "i",
        };
        let signed = for_provider(&input, b"{}").expect("signed");
        let sig = &signed
            .headers
            .iter()
            .find(|(n, _)| n == "x-semantikmatch-signature")
            .expect("header")
            .1;
        let expected = hex::encode(hmac_tag(HmacAlgorithm::Sha256, b"a${B}$c", &[b"{}"]));
        assert_eq!(sig.to_str().unwrap(), expected);
    }
}
