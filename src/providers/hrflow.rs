//! HrFlow.ai (docs/providers.md). `HTTP-HRFLOW-SIGNATURE` holds one of three forms:
//! 1. hex HMAC of the raw body;
//! 2. for form bodies, hex HMAC of the canonical JSON of the form (see [`super::form`]);
//! 3. a signed request `<base64url A>.<base64url B>` whose B is the event itself, with A
//!    either the raw HMAC of B's text (documented) or the hex HMAC of B's JSON (what the
//!    Python SDK checks).
//!
//! JSON array bodies are batches: one event per element.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::fields::{self, Kind, Pointers};
use super::json::Payload;
use super::{
    checks, form, parse_json, Event, Events, MalformedPayload, Normalized, Request, Scheme,
    Verified, VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("http-hrflow-signature");

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Kind::At("/type"),
    occurred_at: None,
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = checks::signature(req.headers, SIGNATURE)?.single()?;
    // Hex never contains a dot, so a dot means form 3.
    if let Some(dot) = signature.iter().position(|&b| b == b'.') {
        return signed_request(route, &signature[..dot], &signature[dot + 1..]);
    }
    let expected = checks::decode_hex(signature, b"")?;
    let signs = |message: &[u8]| {
        checks::any_secret_signs(
            HmacAlgorithm::Sha256,
            &route.secrets,
            &[message],
            &[&expected],
        )
    };
    let verified = Verified::new(req, None);
    if signs(req.body) {
        return Ok(verified);
    }
    if verified.is_form() && signs(form::canonical_json(&form::fields(req.body)).as_bytes()) {
        return Ok(verified);
    }
    Err(VerifyError::InvalidSignature)
}

fn signed_request(route: &Route, a: &[u8], b: &[u8]) -> Result<Verified, VerifyError> {
    let a = checks::decode_base64url(a).ok_or(VerifyError::InvalidSignature)?;
    let event = checks::decode_base64url(b).ok_or(VerifyError::InvalidSignature)?;
    let signs = |message: &[u8], tag: &[u8]| {
        checks::any_secret_signs(HmacAlgorithm::Sha256, &route.secrets, &[message], &[tag])
    };
    let documented = signs(b, &a);
    let sdk = || hex::decode(&a).is_ok_and(|tag| signs(&event, &tag));
    if documented || sdk() {
        Ok(Verified::other_payload(
            Bytes::from(event),
            HeaderValue::from_static("application/json"),
        ))
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    events(route, verified).map(Normalized::from)
}

fn events(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    if verified.is_form() {
        return Ok(Events::one(form_event(route, &verified)));
    }
    fields::object_or_batch(route, &POINTERS, &verified)
}

/// The fields of the form as a JSON object; `profile` and `job` hold JSON text, which
/// the app wants as values. The id comes from the canonical JSON, so fields that
/// `parse_qs` drops cannot mint a new id for the same event.
fn form_event(route: &Route, verified: &Verified) -> Event {
    let fields = form::fields(&verified.body);
    let canonical = form::canonical_json(&fields);
    let mut object = Map::with_capacity(fields.len());
    for (key, value) in fields {
        let decoded = match key.as_str() {
            "profile" | "job" => parse_json(value.as_bytes()).ok(),
            _ => None,
        };
        object.insert(key, decoded.unwrap_or(Value::String(value)));
    }
    fields::event(
        route,
        &POINTERS,
        verified,
        Payload::Tree(Value::Object(object)),
        canonical.as_bytes(),
    )
}
