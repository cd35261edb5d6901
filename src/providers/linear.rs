//! Linear (docs/providers.md): `Linear-Signature: <hex>` = HMAC-SHA256 of the body, and the
//! body's own `webhookTimestamp` (milliseconds) within the replay window, as Linear's
//! SDK checks it. The timestamp is read only once the signature has verified: nothing
//! unverified is interpreted.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::json::{Found, Payload};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("linear-signature");

const POINTERS: Pointers = Pointers {
    // `webhookId` names the subscription, not the event.
    id: None,
    kind: Kind::Dotted("/type", "/action"),
    occurred_at: Some("/createdAt"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = checks::signature(req.headers, SIGNATURE)?.single()?;
    let expected = checks::decode_hex(raw, b"")?;
    checks::hmac_matches(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &[req.body],
        &expected,
    )?;
    let payload = Payload::read(req.body, true).map_err(|_| VerifyError::InvalidTimestamp)?;
    let [sent] = payload.lookup_all([Some("/webhookTimestamp")]);
    let millis = sent
        .filter(|found| !found.is_string())
        .and_then(Found::id)
        .and_then(|digits| digits.parse::<i64>().ok())
        .ok_or(VerifyError::InvalidTimestamp)?;
    checks::within_window_ms(millis, req.now_ms, route.tolerance)?;
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("linear");
    }
}
