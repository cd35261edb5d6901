//! Paddle Billing (docs/providers.md): `Paddle-Signature: ts=<ts>;h1=<hex>[;h1=…]` = HMAC-SHA256
//! of `<ts>:<body>`; several `h1` entries while a secret rotates.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::Route;

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("paddle-signature");

const POINTERS: Pointers = Pointers {
    id: Some("/event_id"),
    kind: Kind::At("/event_type"),
    occurred_at: Some("/occurred_at"),
    data: Some("/data"),
};

const LIST: checks::SignatureList = checks::SignatureList {
    separator: b';',
    timestamp_key: b"ts",
    signature_key: b"h1",
    joiner: b":",
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
        super::super::tests::presets_pass("paddle");
    }
}
