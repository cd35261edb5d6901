//! HrFlow.ai (SPEC §4.3). `HTTP-HRFLOW-SIGNATURE` holds one of three forms:
//! 1. hex HMAC of the raw body;
//! 2. for form bodies, hex HMAC of the canonical JSON of the form (see [`super::form`]);
//! 3. a signed request `<base64url A>.<base64url B>` whose B is the event itself, with A
//!    either the raw HMAC of B's text (documented) or the hex HMAC of B's JSON (what the
//!    Python SDK checks).
//!
//! JSON array bodies are batches: one event per element.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::fields::{self, Pointers};
use super::json::Payload;
use super::{
    checks, form, json, parse_json, Event, Events, MalformedPayload, Request, Scheme, Verified,
    VerifyError,
};
use crate::route::{ForwardMode, HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("http-hrflow-signature");
const FORM: &str = "application/x-www-form-urlencoded";

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Some("/type"),
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
    if verified.media_type_is(FORM)
        && signs(form::canonical_json(&form::fields(req.body)).as_bytes())
    {
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

fn normalize(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    if verified.media_type_is(FORM) {
        return Ok(Events::one(form_event(route, &verified)));
    }
    // An object is one event, forwarded as sent (unless it repeats a key).
    if json::first_byte(&verified.body) == Some(b'{') {
        let payload = Payload::read(&verified.body, true)?;
        let event = fields::event(route, &POINTERS, &verified, payload, &verified.body);
        return Ok(Events::one(event));
    }
    match parse_json(&verified.body)? {
        // With raw forwarding the array travels as it came: one event.
        payload @ Value::Array(_) if route.forward == ForwardMode::Raw => {
            let payload = Payload::Tree(payload);
            let event = fields::event(route, &POINTERS, &verified, payload, &verified.body);
            Ok(Events::one(event))
        }
        Value::Array(elements) => batch(route, &verified, elements),
        _ => Err(MalformedPayload(
            "body is neither a JSON object nor an array of objects".into(),
        )),
    }
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

/// One event per element, each id derived from the element's exact bytes. Any element
/// that is not an object refuses the whole batch before anything is forwarded.
fn batch(
    route: &Route,
    verified: &Verified,
    elements: Vec<Value>,
) -> Result<Events, MalformedPayload> {
    // The same text parsed again for the elements' spans; it already parsed strictly.
    let spans: Vec<&RawValue> = serde_json::from_slice(&verified.body)
        .map_err(|e| MalformedPayload(format!("body is not valid JSON ({e})")))?;
    let mut events = Vec::with_capacity(elements.len());
    for (i, (element, span)) in elements.into_iter().zip(spans).enumerate() {
        if !element.is_object() {
            return Err(MalformedPayload(format!(
                "batch element {i} is not a JSON object"
            )));
        }
        events.push(fields::event(
            route,
            &POINTERS,
            verified,
            Payload::Tree(element),
            span.get().as_bytes(),
        ));
    }
    Ok(Events {
        events,
        batch: true,
    })
}
