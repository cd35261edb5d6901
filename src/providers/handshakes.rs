//! How the table's presets check an endpoint (docs/providers.md "Handshakes"): answered
//! by the gateway, never forwarded, counted as `handshake`.
//!
//! A `GET` handshake (Meta, Dropbox, Okta, X) carries no signature, so it is answered
//! from its query or header alone, and only on a route of that provider: Meta's only
//! with the route's `verify_token`, X's with an HMAC only the secret's holder can make;
//! Dropbox's and Okta's echo what they were sent, as text that is never sniffed, or as
//! JSON. A `POST` handshake (Twitch, Xero) is verified like any event first.

use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::checks::{self, Header};
use super::{parse_json, Handshake, HandshakeBody, MalformedPayload, Verified, VerifyError};
use crate::route::catalog::Handshake as Kind;
use crate::route::{HmacAlgorithm, Route};

/// The longest challenge echoed back: providers send short random strings, and an
/// unauthenticated echo should not be a way to make the gateway repeat a page.
const LONGEST_ECHO: usize = 512;

/// The answer to a `GET` or `HEAD` on `route`, when its provider checks the endpoint
/// that way and the request is such a check; `None` leaves the request refused (405).
pub(crate) fn on_get(
    route: &Route,
    method: &http::Method,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Result<Handshake, VerifyError>> {
    let kind = route
        .provider
        .described()?
        .handshake
        .filter(|h| h.is_get())?;
    // Only Mandrill checks with a HEAD; everyone else with a GET.
    if (*method == http::Method::HEAD) != (kind == Kind::Mandrill) {
        return None;
    }
    let param = |name: &str| {
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let echo = |value: String| (value.len() <= LONGEST_ECHO).then_some(value);
    match kind {
        Kind::MetaGet => {
            let challenge = echo(param("hub.challenge")?)?;
            let token = param("hub.verify_token").unwrap_or_default();
            let subscribe = param("hub.mode").as_deref() == Some("subscribe");
            let known = route
                .verify_token
                .as_ref()
                .is_some_and(|t| t.equals(token.as_bytes()));
            Some(if subscribe && known {
                Ok(text(challenge))
            } else {
                Err(VerifyError::Unauthorized)
            })
        }
        Kind::DropboxGet => Some(Ok(text(echo(param("challenge")?)?))),
        Kind::OktaGet => {
            let Header::One(value) = checks::header(headers, "x-okta-verification-challenge")
            else {
                return None;
            };
            let value = echo(String::from_utf8(value.to_vec()).ok()?)?;
            Some(Ok(json_answer(json!({ "verification": value }))))
        }
        Kind::XCrc => {
            let token = echo(param("crc_token")?)?;
            let secret = route.secrets.first()?;
            let tag = checks::tag(HmacAlgorithm::Sha256, secret.expose(), &[token.as_bytes()]);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&tag[..]);
            Some(Ok(json_answer(
                json!({ "response_token": format!("sha256={encoded}") }),
            )))
        }
        Kind::Mandrill => Some(Ok(Handshake {
            status: StatusCode::OK,
            body: HandshakeBody::None,
        })),
        Kind::TwitchChallenge | Kind::XeroIntent | Kind::AsanaSecret => None,
    }
}

/// The header in which Asana hands a route its secret, and in which the answer echoes it.
pub(crate) const HOOK_SECRET: http::HeaderName = http::HeaderName::from_static("x-hook-secret");

/// The secret of an Asana handshake: one `X-Hook-Secret` (read as every security
/// header is) on a request that carries no signature.
pub(crate) fn handed_over_secret(headers: &HeaderMap) -> Option<&http::HeaderValue> {
    if headers.contains_key("x-hook-signature") {
        return None;
    }
    match checks::header(headers, &HOOK_SECRET) {
        Header::One(secret) if !secret.is_empty() => headers.get(&HOOK_SECRET),
        _ => None,
    }
}

/// The answer to a verified `POST` that checks the endpoint, or `None` for an event.
pub(super) fn after_verifying(
    kind: Kind,
    verified: &Verified,
) -> Result<Option<Handshake>, MalformedPayload> {
    match kind {
        // Twitch's `webhook_callback_verification` carries `challenge`, which no
        // notification does.
        Kind::TwitchChallenge => {
            if memchr::memmem::find(&verified.body, b"\"challenge\"").is_none() {
                return Ok(None);
            }
            match parse_json(&verified.body)?.get("challenge") {
                Some(Value::String(challenge)) => Ok(Some(text(challenge.clone()))),
                _ => Ok(None),
            }
        }
        // Xero's intent to receive: a delivery with no events, answered 200 once its
        // signature verified (a bad one was refused 401 before this).
        Kind::XeroIntent => match parse_json(&verified.body)?.get("events") {
            Some(Value::Array(events)) if events.is_empty() => Ok(Some(empty())),
            _ => Ok(None),
        },
        // Mandrill's test when a webhook is added: `mandrill_events=[]`.
        Kind::Mandrill => match parse_json(&verified.body)? {
            Value::Array(events) if events.is_empty() => Ok(Some(empty())),
            _ => Ok(None),
        },
        Kind::MetaGet | Kind::DropboxGet | Kind::OktaGet | Kind::XCrc | Kind::AsanaSecret => {
            Ok(None)
        }
    }
}

fn empty() -> Handshake {
    Handshake {
        status: StatusCode::OK,
        body: HandshakeBody::None,
    }
}

fn text(challenge: String) -> Handshake {
    Handshake {
        status: StatusCode::OK,
        body: HandshakeBody::Text(challenge),
    }
}

fn json_answer(body: Value) -> Handshake {
    Handshake {
        status: StatusCode::OK,
        body: HandshakeBody::Json(body),
    }
}
