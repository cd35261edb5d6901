//! Standard Webhooks (SPEC §4.5; standardwebhooks.com, used by Svix and others):
//! `webhook-signature: v1,<base64> …` = HMAC(key, `<id>.<timestamp>.<body>`) with the
//! key from `whsec_<base64>` (decoded at load).

use http::HeaderName;

use super::fields::{self, Pointers};
use super::{checks, EventId, Events, MalformedPayload, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const ID: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Some("/type"),
    occurred_at: Some("/timestamp"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = checks::signature(req.headers, SIGNATURE)?;
    let (ts_text, ts) = checks::timestamp(req.headers, TIMESTAMP)?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let id = checks::header(req.headers, ID).single()?;
    if id.is_empty() {
        return Err(VerifyError::InvalidSignature);
    }
    // Space-separated `version,signature` entries; only v1 is HMAC-SHA256, other
    // versions (v1a is asymmetric) are ignored rather than refused.
    let candidates: Vec<Vec<u8>> = signature
        .single()?
        .split(|&b| b == b' ')
        .filter_map(|entry| entry.strip_prefix(b"v1,"))
        .filter_map(checks::decode_base64)
        .collect();
    let candidates: Vec<&[u8]> = candidates.iter().map(Vec::as_slice).collect();
    let message: [&[u8]; 5] = [id, b".", ts_text, b".", req.body];
    if !checks::any_secret_signs(HmacAlgorithm::Sha256, &route.secrets, &message, &candidates) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(Verified::new(req, Some(EventId::from_header(id))))
}

fn normalize(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    let event = fields::event_from_json(route, &POINTERS, &verified, false)?;
    Ok(Events::one(event))
}
