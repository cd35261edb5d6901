//! Semantikmatch (docs/providers.md): `x-semantikmatch-signature: <hex>` over the raw body, no
//! timestamp. Its sample code accepts a request without the header; we do not.
//!
//! Two payload shapes: an envelope (`type` string + `payload` object) and a flat
//! evaluation result whose `client_data` is often JSON inside a string.

use http::HeaderName;
use serde_json::Value;

use super::fields::{self, Kind, Pointers};
use super::json::{Found, Payload};
use super::{
    checks, parse_json, Events, MalformedPayload, Normalized, Request, Scheme, Verified,
    VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-semantikmatch-signature");

const ENVELOPE: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::At("/type"),
    occurred_at: None,
    data: Some("/payload"),
};

const FLAT: Pointers = Pointers {
    id: None,
    kind: Kind::None,
    occurred_at: None,
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = checks::signature(req.headers, SIGNATURE)?;
    let expected = checks::decode_hex(signature.single()?, b"")?;
    if !checks::any_secret_signs(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &[req.body],
        &[&expected],
    ) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    events(route, verified).map(Normalized::from)
}

fn events(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    let payload = Payload::read(&verified.body, true)?;
    let [kind, inner] = payload.lookup_all([Some("/type"), Some("/payload")]);
    // The envelope shape forwards its payload as sent; the flat one has `client_data`
    // to decode, so it needs a tree.
    if kind.is_some_and(Found::is_string) && inner.is_some_and(Found::is_object) {
        let event = fields::event(route, &ENVELOPE, &verified, payload, &verified.body);
        return Ok(Events::one(event));
    }
    let mut tree = payload.into_tree()?;
    decode_client_data(&mut tree);
    let event = fields::event(route, &FLAT, &verified, Payload::Tree(tree), &verified.body);
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
