//! GitHub (docs/providers.md): `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256 of the body.
//! The older SHA-1 `X-Hub-Signature` alone is not enough. `X-GitHub-Event` is not
//! signed: it names the type (with `.` + `/action`), never the id. A webhook set to
//! `application/x-www-form-urlencoded` sends the event JSON in the `payload` field,
//! and the signature covers the raw form.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::json::Payload;
use super::{
    checks, parse_json, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
const EVENT: HeaderName = HeaderName::from_static("x-github-event");

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Kind::Hinted(Some("/action")),
    occurred_at: None,
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let raw = checks::signature(req.headers, SIGNATURE)?.single()?;
    let expected = checks::decode_hex(raw, b"sha256=")?;
    checks::hmac_matches(
        HmacAlgorithm::Sha256,
        &route.secrets,
        &[req.body],
        &expected,
    )?;
    let mut verified = Verified::new(req, None);
    verified.kind_hint = checks::text(checks::header(req.headers, EVENT));
    Ok(verified)
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    if !verified.is_form() {
        return fields::one_from_json(route, &POINTERS, &verified);
    }
    let payload = form_urlencoded::parse(&verified.body)
        .find(|(name, _)| name == "payload")
        .ok_or_else(|| MalformedPayload("form body has no `payload` field".into()))?
        .1;
    let tree = parse_json(payload.as_bytes())?;
    let event = fields::event(
        route,
        &POINTERS,
        &verified,
        Payload::Tree(tree),
        &verified.body,
    );
    Ok(Normalized::from(super::Events::one(event)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("github");
    }
}
