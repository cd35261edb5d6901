//! Standard Webhooks (docs/providers.md; standardwebhooks.com, used by Svix and others):
//! `webhook-signature: v1,<base64> …` = HMAC(key, `<id>.<timestamp>.<body>`) with the
//! key from `whsec_<base64>` (decoded at load), and `v1a,<base64>` entries = Ed25519 over
//! the same message, checked only against `whpk_` public keys. Svix's older
//! `svix-id`/`svix-timestamp`/`svix-signature` are read when the `webhook-*` ones are
//! absent.

use http::{HeaderMap, HeaderName};

use super::fields::{self, Kind, Pointers};
use super::{
    checks, keys, EventId, Events, MalformedPayload, Normalized, Request, Scheme, Verified,
    VerifyError,
};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

/// id, timestamp and signature headers, by their standard names and by Svix's.
static STANDARD: [HeaderName; 3] = [
    HeaderName::from_static("webhook-id"),
    HeaderName::from_static("webhook-timestamp"),
    HeaderName::from_static("webhook-signature"),
];
static SVIX: [HeaderName; 3] = [
    HeaderName::from_static("svix-id"),
    HeaderName::from_static("svix-timestamp"),
    HeaderName::from_static("svix-signature"),
];

/// Svix's names only when none of the standard ones is there, so a request cannot mix
/// the two sets.
fn names(headers: &HeaderMap) -> &'static [HeaderName; 3] {
    if STANDARD.iter().any(|name| headers.contains_key(name)) {
        &STANDARD
    } else if SVIX.iter().any(|name| headers.contains_key(name)) {
        &SVIX
    } else {
        &STANDARD
    }
}

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Kind::At("/type"),
    occurred_at: Some("/timestamp"),
    data: Some("/data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let id = check(route, req)?;
    Ok(Verified::new(req, Some(id)))
}

/// Whether the request carries a Standard Webhooks signature (by either set of names).
pub(super) fn signed(headers: &HeaderMap) -> bool {
    headers.contains_key(&STANDARD[2]) || headers.contains_key(&SVIX[2])
}

/// Checks 6–9; the signed `webhook-id`. The presets that sign this way (Clerk, OpenAI…)
/// verify through it too.
pub(super) fn check(route: &Route, req: &Request<'_>) -> Result<EventId, VerifyError> {
    let [id_name, ts_name, sig_name] = names(req.headers);
    let signature = checks::signature(req.headers, sig_name)?;
    let (ts_text, ts) = checks::timestamp(req.headers, ts_name)?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let id = checks::header(req.headers, id_name).single()?;
    if id.is_empty() {
        return Err(VerifyError::InvalidSignature);
    }
    // Space-separated `version,signature` entries: v1 is HMAC-SHA256, v1a Ed25519;
    // other versions are ignored rather than refused.
    let entries: Vec<&[u8]> = signature.single()?.split(|&b| b == b' ').collect();
    let decoded = |version: &[u8]| -> Vec<Vec<u8>> {
        entries
            .iter()
            .filter_map(|entry| entry.strip_prefix(version))
            .filter_map(checks::decode_base64)
            .collect()
    };
    let message: [&[u8]; 5] = [id, b".", ts_text, b".", req.body];
    let hmacs = decoded(b"v1,");
    let hmacs: Vec<&[u8]> = hmacs.iter().map(Vec::as_slice).collect();
    let hmac_signs =
        || checks::any_secret_signs(HmacAlgorithm::Sha256, &route.secrets, &message, &hmacs);
    let ed25519_signs = || {
        let ed25519 = decoded(b"v1a,");
        !ed25519.is_empty() && {
            let message = message.concat();
            ed25519
                .iter()
                .any(|sig| keys::ed25519_signs(&route.public_keys, &message, sig))
        }
    };
    if !hmac_signs() && !ed25519_signs() {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(EventId::from_header(id))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    events(route, verified).map(Normalized::from)
}

fn events(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    let event = fields::event_from_json(route, &POINTERS, &verified, false)?;
    Ok(Events::one(event))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("standard-webhooks");
    }
}
