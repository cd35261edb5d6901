//! How each preset of docs/providers.md signs, for `hookwarden sign` and `send`: written from
//! the providers' documentation, apart from the verifiers, and checked against them by
//! the round-trip tests and the vectors.

use base64::Engine;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};

use super::{Key, SignError, Signed};
use crate::providers::hmac_tag;
use crate::route::catalog::{Check, Described};
use crate::route::{HmacAlgorithm, Provider};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What a preset signs: the body, when, with which id, posted to which URL.
pub(crate) struct Message<'a> {
    pub body: &'a [u8],
    pub timestamp: i64,
    pub id: &'a str,
    /// The public URL (Twilio, Square).
    pub url: Option<&'a str>,
}

/// The headers (and, for Twilio's JSON bodies, the query; for Mailgun, the body) that
/// `provider` sends. `None` for the schemes that are not presets.
pub(super) fn sign(
    provider: Provider,
    key: &Key,
    m: &Message<'_>,
) -> Result<Option<Signed>, SignError> {
    let mut s = Signed::json();
    Ok(sign_into(&mut s, provider, key, m)?.then_some(s))
}

/// Adds what `provider` signs to `s`; false for the schemes that are not presets.
fn sign_into(
    s: &mut Signed,
    provider: Provider,
    key: &Key,
    m: &Message<'_>,
) -> Result<bool, SignError> {
    let ts = m.timestamp.to_string();
    let body = m.body;
    match provider {
        Provider::Github => {
            let tag = hex::encode(key.hmac(HmacAlgorithm::Sha256, &[body])?);
            s.header("x-github-delivery", m.id.to_string())?;
            s.header("x-hub-signature-256", format!("sha256={tag}"))?;
            s.form_unless_json(body);
        }
        Provider::Slack => {
            let tag =
                hex::encode(key.hmac(HmacAlgorithm::Sha256, &[b"v0:", ts.as_bytes(), b":", body])?);
            s.header("x-slack-request-timestamp", ts.clone())?;
            s.header("x-slack-signature", format!("v0={tag}"))?;
            s.form_unless_json(body);
        }
        Provider::Shopify => {
            let tag = B64.encode(key.hmac(HmacAlgorithm::Sha256, &[body])?);
            s.header("x-shopify-webhook-id", m.id.to_string())?;
            s.header("x-shopify-hmac-sha256", tag)?;
        }
        Provider::Zoom => {
            let tag =
                hex::encode(key.hmac(HmacAlgorithm::Sha256, &[b"v0:", ts.as_bytes(), b":", body])?);
            s.header("x-zm-request-timestamp", ts.clone())?;
            s.header("x-zm-signature", format!("v0={tag}"))?;
        }
        Provider::Linear => {
            let tag = hex::encode(key.hmac(HmacAlgorithm::Sha256, &[body])?);
            s.header("linear-delivery", m.id.to_string())?;
            s.header("linear-signature", tag)?;
        }
        Provider::Mailgun => {
            s.body = Some(mailgun_body(key, body, &ts)?);
        }
        Provider::Twilio => twilio(s, key, m)?,
        Provider::Square => {
            let url = m.url.ok_or(SignError::NoUrl)?;
            let tag = B64.encode(key.hmac(HmacAlgorithm::Sha256, &[url.as_bytes(), body])?);
            s.header("x-square-hmacsha256-signature", tag)?;
        }
        Provider::Discord => {
            let message = [ts.as_bytes(), body].concat();
            s.header("x-signature-timestamp", ts.clone())?;
            s.header("x-signature-ed25519", hex::encode(key.ed25519(&message)?))?;
        }
        Provider::Sendgrid => {
            let message = [ts.as_bytes(), body].concat();
            s.header("x-twilio-email-event-webhook-timestamp", ts.clone())?;
            s.header(
                "x-twilio-email-event-webhook-signature",
                B64.encode(key.p256_der(&message)?),
            )?;
        }
        Provider::Described(d) => return described(s, d, key, m),
        _ => return Ok(false),
    }
    Ok(true)
}

/// A preset of the table, as its description says; the token presets are signed with
/// their route (`route_headers`), which names their header.
fn described(s: &mut Signed, d: &Described, key: &Key, m: &Message<'_>) -> Result<bool, SignError> {
    match &d.check {
        Check::Hmac(scheme) => {
            let Key::Secret(secret) = key else {
                return Err(SignError::WrongKey("a shared secret (--secret)"));
            };
            let signed = super::described_hmac(scheme, secret, m.body, m.timestamp, m.id, m.url)?;
            s.headers.extend(signed);
            if scheme
                .message
                .contains(&crate::route::MessagePart::SortedForm)
            {
                // It signs form fields: the body goes as the form it is (Mandrill).
                s.form();
            }
        }
        Check::StandardWebhooks => {
            let Key::Secret(secret) = key else {
                return Err(SignError::WrongKey("a shared secret (--secret)"));
            };
            for (name, value) in super::standard_webhooks(secret, m.id, m.timestamp, &[m.body]) {
                s.header(name, value)?;
            }
        }
        Check::Ed25519 {
            signature,
            timestamp,
            joiner,
        } => {
            let ts = m.timestamp.to_string();
            let message = [ts.as_bytes(), joiner.as_bytes(), m.body].concat();
            let sig = B64.encode(key.ed25519(&message)?);
            s.header(timestamp, ts)?;
            s.header(signature, sig)?;
        }
        Check::Token { .. } | Check::TokenOrStandardWebhooks { .. } => return Ok(false),
    }
    Ok(true)
}

/// Twilio: HMAC-SHA1 of the URL, then the form's sorted fields; a JSON body is signed
/// through `bodySHA256` in the URL's query.
fn twilio(s: &mut Signed, key: &Key, m: &Message<'_>) -> Result<(), SignError> {
    let url = m.url.ok_or(SignError::NoUrl)?;
    let (signed_url, tail) = if url.contains("bodySHA256=") {
        // The URL given already carries the body's hash: signed as it is.
        (url.to_string(), String::new())
    } else if super::looks_like_json(m.body) {
        let query = format!("bodySHA256={}", hex::encode(Sha256::digest(m.body)));
        let joined = format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' });
        s.query = Some(query);
        (joined, String::new())
    } else {
        s.form();
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(m.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        pairs.dedup();
        let tail: String = pairs.into_iter().map(|(k, v)| k + &v).collect();
        (url.to_string(), tail)
    };
    let tag = key.hmac(
        HmacAlgorithm::Sha1,
        &[signed_url.as_bytes(), tail.as_bytes()],
    )?;
    s.header("x-twilio-signature", B64.encode(tag))
}

/// Mailgun signs inside the body: the event (the file) goes under `event-data` unless
/// it already has it, next to a fresh `signature` object.
fn mailgun_body(key: &Key, body: &[u8], ts: &str) -> Result<Vec<u8>, SignError> {
    let parsed: serde_json::Value = serde_json::from_slice(body).map_err(|_| SignError::NotJson)?;
    let mut object = match parsed {
        serde_json::Value::Object(o) if o.contains_key("event-data") => o,
        other => {
            let mut o = serde_json::Map::new();
            o.insert("event-data".into(), other);
            o
        }
    };
    let token = format!("{}{}", super::random_hex(), &super::random_hex()[..18]);
    let tag = hex::encode(key.hmac(HmacAlgorithm::Sha256, &[ts.as_bytes(), token.as_bytes()])?);
    object.insert(
        "signature".into(),
        serde_json::json!({ "timestamp": ts, "token": token, "signature": tag }),
    );
    serde_json::to_vec(&object).map_err(|_| SignError::NotJson)
}

impl Key {
    fn hmac(&self, algorithm: HmacAlgorithm, message: &[&[u8]]) -> Result<Vec<u8>, SignError> {
        match self {
            Key::Secret(secret) => Ok(hmac_tag(algorithm, secret.expose(), message).to_vec()),
            _ => Err(SignError::WrongKey("a shared secret (--secret)")),
        }
    }

    pub(super) fn ed25519(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        match self {
            Key::Ed25519(key) => Ok(key.sign(message).to_bytes()),
            _ => Err(SignError::WrongKey(
                "an Ed25519 private key (--private-key)",
            )),
        }
    }

    fn p256_der(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            Key::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            _ => Err(SignError::WrongKey("a P-256 private key (--private-key)")),
        }
    }
}
