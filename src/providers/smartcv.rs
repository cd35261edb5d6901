//! SmartCV (docs/providers.md): `X-SmartCV-Signature: sha256=<hex>` over `<timestamp>.<body>`,
//! with `X-SmartCV-Timestamp` in a replay window.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, Events, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-smartcv-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-smartcv-timestamp");

const POINTERS: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::At("/type"),
    occurred_at: Some("/created"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = checks::signature(req.headers, SIGNATURE)?;
    let (ts_text, ts) = checks::timestamp(req.headers, TIMESTAMP)?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let expected = checks::decode_hex(signature.single()?, b"sha256=")?;
    // The timestamp is signed exactly as sent, so "0123" and "123" are different messages.
    let message: [&[u8]; 3] = [ts_text, b".", req.body];
    if !checks::any_secret_signs(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &message,
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
    let event = fields::event_from_json(route, &POINTERS, &verified, true)?;
    Ok(Events::one(event))
}
