//! Intercom (docs/providers.md): `X-Hub-Signature: sha1=<hex>` = HMAC-SHA1 of the body, keyed
//! with the app's client secret. SHA-1 because that is what Intercom sends.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature");

const POINTERS: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::At("/topic"),
    occurred_at: Some("/created_at"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = checks::signature(req.headers, SIGNATURE)?.single()?;
    let expected = checks::decode_hex(raw, b"sha1=")?;
    checks::hmac_matches(HmacAlgorithm::Sha1, &route.secrets, &[req.body], &expected)?;
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("intercom");
    }
}
