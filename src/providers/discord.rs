//! Discord (docs/providers.md): `X-Signature-Ed25519: <hex>` = Ed25519 over `<ts><body>` with
//! `X-Signature-Timestamp` in the replay window, checked against the application's
//! public key. Two kinds of body share the endpoint: interactions, and webhook events
//! (those with `/event`, or `/type` 0). Both PINGs are answered by the gateway.

use http::{HeaderName, StatusCode};
use serde_json::json;

use super::fields::{self, Kind, Pointers};
use super::json::{Found, Payload};
use super::{
    checks, keys, Events, Handshake, HandshakeBody, MalformedPayload, Normalized, Request, Scheme,
    Verified, VerifyError,
};
use crate::route::Route;

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-signature-ed25519");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");

const INTERACTION: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::Code("/type"),
    occurred_at: None,
    data: None,
};

const WEBHOOK_EVENT: Pointers = Pointers {
    id: None,
    kind: Kind::At("/event/type"),
    occurred_at: Some("/event/timestamp"),
    data: Some("/event/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = checks::signature(req.headers, SIGNATURE)?;
    let (ts_text, ts) = checks::timestamp(req.headers, TIMESTAMP)?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let signature = checks::decode_hex(signature.single()?, b"")?;
    let message = [ts_text, req.body.as_ref()].concat();
    if !keys::ed25519_signs(&route.public_keys, &message, &signature) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    let payload = Payload::read(&verified.body, true)?;
    let [event, kind] = payload.lookup_all([Some("/event"), Some("/type")]);
    let kind = kind.filter(|k| !k.is_string()).and_then(Found::id);
    let handshake = |status, body| Ok(Normalized::Handshake(Handshake { status, body }));
    match (event.is_some(), kind.as_deref()) {
        (_, Some("0")) => handshake(StatusCode::NO_CONTENT, HandshakeBody::None),
        (true, _) => {
            let event = fields::event(route, &WEBHOOK_EVENT, &verified, payload, &verified.body);
            Ok(Events::one(event).into())
        }
        (false, Some("1")) => handshake(StatusCode::OK, HandshakeBody::Json(json!({ "type": 1 }))),
        (false, _) => {
            let event = fields::event(route, &INTERACTION, &verified, payload, &verified.body);
            Ok(Events::one(event).into())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("discord");
    }
}
