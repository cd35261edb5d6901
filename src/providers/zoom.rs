//! Zoom (docs/providers.md): `x-zm-signature: v0=<hex>` = HMAC-SHA256 of `v0:<ts>:<body>`
//! with `x-zm-request-timestamp` in the replay window. Zoom validates an endpoint with
//! `endpoint.url_validation`, which the gateway answers with the secret that verified.

use http::{HeaderName, StatusCode};
use serde_json::json;

use super::fields::{self, Kind, Pointers};
use super::json::Payload;
use super::{
    checks, Events, Handshake, HandshakeBody, MalformedPayload, Normalized, Request, Scheme,
    Verified, VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-zm-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-zm-request-timestamp");

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Kind::At("/event"),
    occurred_at: Some("/event_ts"),
    data: Some("/payload"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let secret = checks::v0_signature(
        req.headers,
        req.body,
        [&SIGNATURE, &TIMESTAMP],
        &route.secrets,
        req.now,
        route.tolerance,
    )?;
    let mut verified = Verified::new(req, None);
    verified.secret = Some(secret.clone());
    Ok(verified)
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    let payload = Payload::read(&verified.body, true)?;
    let [event, token] = payload.lookup_all([Some("/event"), Some("/payload/plainToken")]);
    let validation = event.and_then(|e| e.string()).as_deref() == Some("endpoint.url_validation");
    if let (true, Some(plain), Some(secret)) = (
        validation,
        token.and_then(|t| t.string()),
        verified.secret.as_ref(),
    ) {
        let encrypted = checks::tag(HmacAlgorithm::Sha256, secret.expose(), &[plain.as_bytes()]);
        return Ok(Normalized::Handshake(Handshake {
            status: StatusCode::OK,
            body: HandshakeBody::Json(
                json!({ "plainToken": plain, "encryptedToken": hex::encode(encrypted) }),
            ),
        }));
    }
    let event = fields::event(route, &POINTERS, &verified, payload, &verified.body);
    Ok(Events::one(event).into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("zoom");
    }
}
