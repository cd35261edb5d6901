//! What `sign` and `send` produce verifies on a route of the same provider, and one
//! changed byte of the body, the timestamp or the signature never does, for every
//! preset (docs/providers.md).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use proptest::prelude::*;

mod edges;

use super::{route_request, Key};
use crate::providers::{verify, Request, VerifyError};
use crate::route::catalog::{Check, Handshake};
use crate::route::{Provider, Route, Secret};

const NOW: i64 = 1_764_000_000;
const URL: &str = "https://hooks.example.com/in";

fn ed25519() -> Key {
    Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
}

fn p256() -> Key {
    let key = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).expect("scalar");
    Key::P256(key)
}

/// A route of `provider` through the real loader, with what its scheme needs.
fn route(provider: Provider, key: &Key) -> Route {
    use base64::Engine as _;
    use p256::pkcs8::EncodePublicKey as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let whsec = "secrets = [\"whsec_c2VjcmV0LWtleS1ieXRlcw==\"]";
    let credential = match (provider, key.public()) {
        (Provider::StandardWebhooks, Some(crate::route::PublicKey::Ed25519(k))) => {
            format!("secrets = [\"whpk_{}\"]", b64.encode(k.as_bytes()))
        }
        (Provider::Described(_), Some(crate::route::PublicKey::Ed25519(k))) => {
            format!("public_key = [\"{}\"]", b64.encode(k.as_bytes()))
        }
        (Provider::Described(d), None) => match &d.check {
            Check::StandardWebhooks => whsec.into(),
            Check::Hmac(s) if s.key == crate::route::KeyEncoding::Base64 => {
                "secrets = [\"c2hoLXNlY3JldA==\"]".into()
            }
            _ if d.handshake == Some(Handshake::MetaGet) => {
                "secrets = [\"shh-secret\"]\nverify_token = \"vt\"".into()
            }
            _ => "secrets = [\"shh-secret\"]".into(),
        },
        (_, Some(crate::route::PublicKey::Ed25519(k))) => {
            format!("public_key = [\"{}\"]", hex::encode(k.as_bytes()))
        }
        (_, Some(crate::route::PublicKey::P256(k))) => format!(
            "public_key = [\"{}\"]",
            b64.encode(k.to_public_key_der().expect("der").as_bytes())
        ),
        (Provider::StandardWebhooks, None) => whsec.into(),
        (_, None) => "secrets = [\"shh-secret\"]".into(),
    };
    let url = if provider.signs_url() {
        format!("public_url = \"{URL}\"")
    } else {
        String::new()
    };
    let text = format!(
        "[upstream]\nurl = \"http://127.0.0.1:1\"\n[[routes]]\nname = \"r\"\npath = \"/in\"\nprovider = \"{}\"\n{credential}\n{url}\n",
        provider.name()
    );
    let loaded = crate::config::load_str(&text, std::path::Path::new("."), &|_| None)
        .unwrap_or_else(|e| panic!("{}", e.lines().join("; ")));
    loaded.config.routes[0].as_ref().clone()
}

fn key_for(provider: Provider) -> Key {
    match provider {
        Provider::Discord => ed25519(),
        Provider::Sendgrid => p256(),
        _ if provider.uses_public_key() => ed25519(),
        _ if provider == Provider::StandardWebhooks => Key::Secret(Secret::new(&b"unused"[..])),
        _ => Key::Secret(Secret::new(&b"shh-secret"[..])),
    }
}

/// The presets, and Standard Webhooks' Ed25519 form.
fn cases() -> Vec<(Provider, Route, Option<Key>)> {
    let mut out: Vec<(Provider, Route, Option<Key>)> = Provider::all()
        .filter(|p| {
            !matches!(
                p,
                Provider::SmartCv
                    | Provider::Semantikmatch
                    | Provider::Hrflow
                    | Provider::JobAffinity
                    | Provider::StandardWebhooks
                    | Provider::Hmac
                    | Provider::Mailgun
            )
        })
        .map(|p| {
            let key = key_for(p);
            let route = route(p, &key);
            let private = matches!(key, Key::Ed25519(_) | Key::P256(_)).then_some(key);
            (p, route, private)
        })
        .collect();
    let key = ed25519();
    out.push((
        Provider::StandardWebhooks,
        route(Provider::StandardWebhooks, &key),
        Some(key),
    ));
    out
}

/// A signed request as the gateway would see it.
struct Sent {
    headers: HeaderMap,
    query: Option<String>,
    body: Vec<u8>,
}

fn sign(route: &Route, private: Option<&Key>, body: &[u8]) -> Sent {
    let signed = route_request(route, private, body, NOW, "msg_1").expect("signed");
    let mut headers = HeaderMap::new();
    for (name, value) in signed.headers {
        headers.append(name, value);
    }
    Sent {
        headers,
        query: signed.query,
        body: signed.body.unwrap_or_else(|| body.to_vec()),
    }
}

fn check(route: &Route, sent: &Sent) -> Result<(), VerifyError> {
    let body = Bytes::copy_from_slice(&sent.body);
    let request = Request {
        method: &http::Method::POST,
        headers: &sent.headers,
        query: sent.query.as_deref(),
        body: &body,
        now: NOW,
        now_ms: NOW * 1000,
    };
    verify(route, &request).map(|_| ())
}

/// A JSON body every preset can verify (Linear needs its `webhookTimestamp`).
fn json_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "webhookTimestamp": NOW * 1000,
        "type": text,
    }))
    .expect("json")
}

/// Whether one changed byte of the body must fail the signature. A token covers no
/// body (Okta, Postmark, GitLab's secret token only say who sent the request); a
/// signature over decoded form fields (Mandrill) is the same for `+` and a space, as
/// Twilio's is.
fn signs_every_byte(provider: Provider) -> bool {
    match provider.described().map(|d| &d.check) {
        Some(Check::Token { .. } | Check::TokenOrStandardWebhooks { .. }) => false,
        Some(Check::Hmac(s)) => !s.message.contains(&crate::route::MessagePart::SortedForm),
        _ => true,
    }
}

/// The headers a preset signs or times the request with.
fn signed_headers(provider: Provider) -> Vec<HeaderName> {
    let names: Vec<&str> = match provider.described().map(|d| &d.check) {
        Some(Check::Hmac(s)) => {
            let timestamp = s.timestamp.as_ref().and_then(|t| t.header.as_deref());
            std::iter::once(s.headers[0].as_ref())
                .chain(timestamp)
                .chain(s.id_header.as_deref())
                .collect()
        }
        Some(Check::Token { header, .. } | Check::TokenOrStandardWebhooks { header }) => {
            vec![header]
        }
        Some(Check::Ed25519 {
            signature,
            timestamp,
            ..
        }) => vec![signature, timestamp],
        Some(Check::StandardWebhooks) | None => match provider {
            Provider::Github => vec!["x-hub-signature-256"],
            Provider::Slack => vec!["x-slack-signature", "x-slack-request-timestamp"],
            Provider::Shopify => vec!["x-shopify-hmac-sha256"],
            Provider::Zoom => vec!["x-zm-signature", "x-zm-request-timestamp"],
            Provider::Linear => vec!["linear-signature"],
            Provider::Twilio => vec!["x-twilio-signature"],
            Provider::Square => vec!["x-square-hmacsha256-signature"],
            Provider::Discord => vec!["x-signature-ed25519", "x-signature-timestamp"],
            Provider::Sendgrid => vec![
                "x-twilio-email-event-webhook-signature",
                "x-twilio-email-event-webhook-timestamp",
            ],
            _ => vec!["webhook-signature", "webhook-timestamp", "webhook-id"],
        },
    };
    names
        .into_iter()
        .map(|n| HeaderName::from_bytes(n.as_bytes()).expect("a header name"))
        .collect()
}

#[test]
fn every_preset_verifies_what_it_signs_and_refuses_another_key() {
    for (provider, route, private) in cases() {
        let sent = sign(&route, private.as_ref(), &json_body("ok"));
        assert_eq!(check(&route, &sent), Ok(()), "{}", provider.name());
        let other = match &private {
            Some(Key::Ed25519(_)) => Some(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                &[8; 32],
            ))),
            Some(Key::P256(_)) => Some(Key::P256(
                p256::ecdsa::SigningKey::from_bytes(&[10u8; 32].into()).expect("scalar"),
            )),
            _ => None,
        };
        let mut wrong = route.clone();
        wrong.secrets = vec![Secret::new(&b"another"[..])];
        let sent = sign(&wrong, other.as_ref(), &json_body("ok"));
        assert_eq!(
            check(&route, &sent),
            Err(VerifyError::InvalidSignature),
            "{}",
            provider.name()
        );
    }
}

#[test]
fn twilio_form_bodies_and_mailgun_bodies_verify() {
    let twilio = route(Provider::Twilio, &key_for(Provider::Twilio));
    let sent = sign(&twilio, None, b"MessageStatus=sent&To=%2B331&Body=");
    assert_eq!(sent.query, None);
    assert_eq!(check(&twilio, &sent), Ok(()));
    let mailgun = route(Provider::Mailgun, &key_for(Provider::Mailgun));
    let sent = sign(&mailgun, None, br#"{"event":"delivered","id":"e1"}"#);
    assert_eq!(check(&mailgun, &sent), Ok(()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_changed_byte_of_body_or_signed_headers_never_verifies(
        text in "[ -~]{0,40}",
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        which in any::<prop::sample::Index>(),
    ) {
        for (provider, route, private) in cases() {
            let sent = sign(&route, private.as_ref(), &json_body(&text));
            prop_assert_eq!(check(&route, &sent), Ok(()), "{}", provider.name());

            let mut body = sent.body.clone();
            let i = at.index(body.len());
            body[i] ^= flip;
            let tampered = Sent { body, headers: sent.headers.clone(), query: sent.query.clone() };
            if signs_every_byte(provider) {
                prop_assert!(check(&route, &tampered).is_err(), "{} accepted a changed body", provider.name());
            }

            let names = signed_headers(provider);
            let name = names[which.index(names.len())].clone();
            let value = sent.headers.get(&name).expect("signed header").as_bytes().to_vec();
            let mut changed = value.clone();
            let j = at.index(changed.len());
            changed[j] ^= flip;
            // Hex is read in either case (docs/providers.md), and base64 padding is optional: a case
            // change, or a changed padding `=` at the end, is the same signature.
            let same_hex = flip == 0x20 && value[j].is_ascii_alphabetic();
            let padding = value[j..].iter().all(|&b| b == b'=');
            if let (false, Ok(changed)) = (same_hex || padding, HeaderValue::from_bytes(&changed)) {
                let mut headers = sent.headers.clone();
                headers.insert(name.clone(), changed);
                let tampered = Sent { headers, body: sent.body.clone(), query: sent.query.clone() };
                prop_assert!(check(&route, &tampered).is_err(), "{} accepted a changed {}", provider.name(), name);
            }
        }
    }

    /// Twilio signs the decoded, sorted fields run together: a change verifies exactly
    /// when that text stays the same (`%41` for `A`; and, Twilio's own ambiguity,
    /// `ab=c` for `a=bc`).
    #[test]
    fn a_changed_twilio_form_verifies_only_if_its_fields_are_unchanged(
        body in "[a-zA-Z=&%+0-9]{1,40}",
        at in any::<prop::sample::Index>(),
        replacement in "[a-zA-Z=&%+0-9]",
    ) {
        let route = route(Provider::Twilio, &key_for(Provider::Twilio));
        let sent = sign(&route, None, body.as_bytes());
        prop_assert_eq!(check(&route, &sent), Ok(()));
        let fields = |b: &[u8]| {
            let mut pairs: Vec<(String, String)> = form_urlencoded::parse(b).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            pairs.sort();
            pairs.dedup();
            pairs.into_iter().map(|(k, v)| k + &v).collect::<String>()
        };
        let mut tampered = body.clone().into_bytes();
        tampered[at.index(body.len())] = replacement.as_bytes()[0];
        let expected = if fields(&tampered) == fields(body.as_bytes()) { Ok(()) } else { Err(VerifyError::InvalidSignature) };
        let tampered = Sent { body: tampered, headers: sent.headers.clone(), query: None };
        prop_assert_eq!(check(&route, &tampered), expected);
    }

    /// Mailgun's signature is in the body: a changed character of its timestamp, token
    /// or signature never verifies.
    #[test]
    fn a_changed_mailgun_signature_object_never_verifies(
        field in 0usize..3,
        at in any::<prop::sample::Index>(),
        replacement in "[0-9a-z]",
    ) {
        let route = route(Provider::Mailgun, &key_for(Provider::Mailgun));
        let sent = sign(&route, None, br#"{"event":"delivered"}"#);
        prop_assert_eq!(check(&route, &sent), Ok(()));
        let mut doc: serde_json::Value = serde_json::from_slice(&sent.body).expect("json");
        let key = ["timestamp", "token", "signature"][field];
        let value = doc["signature"][key].as_str().expect("string").to_string();
        let mut bytes = value.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != replacement.as_bytes()[0]);
        bytes[i] = replacement.as_bytes()[0];
        doc["signature"][key] = serde_json::Value::String(String::from_utf8(bytes).expect("ascii"));
        let tampered = Sent { body: serde_json::to_vec(&doc).expect("json"), headers: sent.headers.clone(), query: None };
        prop_assert!(check(&route, &tampered).is_err());
    }
}

#[test]
fn twilio_json_bodies_are_posted_with_their_hash_in_the_query() {
    let route = route(Provider::Twilio, &key_for(Provider::Twilio));
    let sent = sign(&route, None, br#"{"a":1}"#);
    let query = sent.query.clone().expect("query");
    assert!(query.starts_with("bodySHA256="), "{query}");
    assert_eq!(check(&route, &sent), Ok(()));
    let uri: Uri = format!("/in?{query}").parse().expect("uri");
    assert_eq!(uri.query(), Some(query.as_str()));
}

#[test]
fn a_twilio_url_that_already_has_the_body_hash_is_signed_as_given() {
    use sha2::Digest as _;
    let mut route = route(Provider::Twilio, &key_for(Provider::Twilio));
    let body = br#"{"a":1}"#;
    let query = format!("bodySHA256={}", hex::encode(sha2::Sha256::digest(body)));
    let given = route.clone();
    route.public_url = Some(format!("{URL}?{query}"));
    let mut sent = sign(&route, None, body);
    assert_eq!(sent.query, None, "no second bodySHA256");
    sent.query = Some(query);
    assert_eq!(check(&given, &sent), Ok(()));
}
