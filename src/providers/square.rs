//! Square (docs/providers.md): `x-square-hmacsha256-signature: <base64>` = HMAC-SHA256 of the
//! notification URL followed by the body. The URL is the route's `public_url`, exactly
//! as configured at Square: behind a load balancer the gateway cannot rebuild it.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-square-hmacsha256-signature");

const POINTERS: Pointers = Pointers {
    id: Some("/event_id"),
    kind: Kind::At("/type"),
    occurred_at: Some("/created_at"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = checks::signature(req.headers, SIGNATURE)?.single()?;
    let expected = checks::decode_base64(raw).ok_or(VerifyError::InvalidSignature)?;
    // Validation requires public_url for this provider; without it nothing verifies.
    let url = route
        .public_url
        .as_deref()
        .ok_or(VerifyError::InvalidSignature)?;
    let message: [&[u8]; 2] = [url.as_bytes(), req.body];
    checks::hmac_matches(HmacAlgorithm::Sha256, &route.secrets, &message, &expected)?;
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("square");
    }
}
