//! Semantikmatch (SPEC §4.2): `x-semantikmatch-signature: <hex>` over the raw body, no
//! timestamp. Its sample code accepts a request without the header; we do not.
//!
//! Two payload shapes: an envelope (`type` string + `payload` object) and a flat
//! evaluation result whose `client_data` is often JSON inside a string.

use http::HeaderName;
use serde_json::Value;

use super::fields::{self, Pointers};
use super::{
    parse_json, parse_object, sig, Events, MalformedPayload, Request, Scheme, Verified, VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-semantikmatch-signature");

const ENVELOPE: Pointers = Pointers {
    id: Some("/id"),
    kind: Some("/type"),
    occurred_at: None,
    data: Some("/payload"),
};

const FLAT: Pointers = Pointers {
    id: None,
    kind: None,
    occurred_at: None,
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = sig::signature(req.headers, SIGNATURE)?;
    let expected = sig::decode_hex(signature.single()?, b"")?;
    if !sig::any_secret_signs(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &[req.body],
        &[&expected],
    ) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    // The envelope shape forwards its payload as sent; the flat one has `client_data`
    // to decode, so it needs a tree.
    if let Some(doc) = fields::json_text(&verified, true)? {
        let [kind, payload] = doc.lookup_all([Some("/type"), Some("/payload")]);
        if kind.is_some_and(|t| t.starts_with('"')) && payload.is_some_and(|t| t.starts_with('{')) {
            let event = fields::event_from_text(route, &ENVELOPE, &verified, &doc);
            return Ok(Events::one(event));
        }
    }
    let mut payload = parse_object(&verified.body)?;
    let is_envelope = payload.get("type").is_some_and(Value::is_string)
        && payload.get("payload").is_some_and(Value::is_object);
    let pointers = if is_envelope {
        &ENVELOPE
    } else {
        decode_client_data(&mut payload);
        &FLAT
    };
    let event = fields::event(route, pointers, &verified, payload, &verified.body);
    Ok(Events::one(event))
}

/// `client_data` is the integrator's own JSON, passed through as a string: hand the app
/// the value, not the string, when it parses.
fn decode_client_data(payload: &mut Value) {
    if let Some(slot) = payload.get_mut("client_data") {
        if let Some(decoded) = slot.as_str().and_then(|s| parse_json(s.as_bytes()).ok()) {
            *slot = decoded;
        }
    }
}
