//! Stripe (docs/providers.md): `Stripe-Signature: t=<ts>,v1=<hex>[,v1=…]` = HMAC-SHA256 of
//! `<ts>.<body>` keyed with the whole `whsec_…` string (Stripe does not decode it, unlike
//! Standard Webhooks). Other schemes in the list (`v0`) are ignored.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::Route;

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

const POINTERS: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::At("/type"),
    occurred_at: Some("/created"),
    data: Some("/data"),
};

const LIST: checks::SignatureList = checks::SignatureList {
    separator: b',',
    timestamp_key: b"t",
    signature_key: b"v1",
    joiner: b".",
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let header = checks::signature(req.headers, SIGNATURE)?.single()?;
    LIST.verify(header, req.body, &route.secrets, req.now, route.tolerance)?;
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
