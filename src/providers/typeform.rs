//! Typeform (docs/providers.md): `Typeform-Signature: sha256=<base64>` = HMAC-SHA256 of the body.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("typeform-signature");

const POINTERS: Pointers = Pointers {
    id: Some("/event_id"),
    kind: Kind::At("/event_type"),
    occurred_at: None,
    data: Some("/form_response"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = checks::signature(req.headers, SIGNATURE)?.single()?;
    let expected = checks::decode_base64(raw.strip_prefix(b"sha256=").unwrap_or(raw))
        .ok_or(VerifyError::InvalidSignature)?;
    checks::hmac_matches(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &[req.body],
        &expected,
    )?;
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("typeform");
    }
}
