//! Shopify (docs/providers.md): `X-Shopify-Hmac-Sha256: <base64>` = HMAC-SHA256 of the body.
//! `X-Shopify-Topic` is not signed, so it may name the type, never the id. Shopify's
//! newer event deliveries drop the `X-` prefix; each header is read without it when
//! the prefixed form is absent.

use http::{HeaderMap, HeaderName};

use super::checks::Header;
use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: [HeaderName; 2] = [
    HeaderName::from_static("x-shopify-hmac-sha256"),
    HeaderName::from_static("shopify-hmac-sha256"),
];
const TOPIC: [HeaderName; 2] = [
    HeaderName::from_static("x-shopify-topic"),
    HeaderName::from_static("shopify-topic"),
];

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Kind::Hinted(None),
    occurred_at: Some("/updated_at"),
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = match either(req.headers, &SIGNATURE) {
        Header::Absent => return Err(VerifyError::MissingSignature),
        found => found.single()?,
    };
    let expected = checks::decode_base64(raw).ok_or(VerifyError::InvalidSignature)?;
    checks::hmac_matches(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &[req.body],
        &expected,
    )?;
    let mut verified = Verified::new(req, None);
    verified.kind_hint = checks::text(either(req.headers, &TOPIC));
    Ok(verified)
}

/// The prefixed header, or the bare one when the prefixed one is absent.
fn either<'a>(headers: &'a HeaderMap, names: &[HeaderName; 2]) -> Header<'a> {
    match checks::header(headers, &names[0]) {
        Header::Absent => checks::header(headers, &names[1]),
        found => found,
    }
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("shopify");
    }
}
