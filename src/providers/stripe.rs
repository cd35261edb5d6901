//! Stripe (SPEC §4.7): `Stripe-Signature: t=<ts>,v1=<hex>[,v1=…]` = HMAC-SHA256 of
//! `<ts>.<body>` keyed with the whole `whsec_…` string (Stripe does not decode it, unlike
//! Standard Webhooks). Other schemes in the list (`v0`) are ignored.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

const POINTERS: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::At("/type"),
    occurred_at: Some("/created"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let header = checks::signature(req.headers, SIGNATURE)?.single()?;
    let (ts_text, ts) = checks::list_timestamp(header, b',', b"t")?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let candidates: Vec<Vec<u8>> = checks::list_values(header, b',', b"v1")
        .filter_map(|hex| checks::decode_hex(hex, b"").ok())
        .collect();
    let candidates: Vec<&[u8]> = candidates.iter().map(Vec::as_slice).collect();
    let message: [&[u8]; 3] = [ts_text, b".", req.body];
    if !checks::any_secret_signs(HmacAlgorithm::Sha256, &route.secrets, &message, &candidates) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("stripe");
    }
}
