//! Mailgun (docs/providers.md): the signature travels inside the JSON body, as
//! `/signature/{timestamp,token,signature}`, the signature being hex HMAC-SHA256 of
//! `<timestamp><token>` keyed with the webhook signing key. The event data is not
//! signed, so one captured request would vouch for any event: the pipeline refuses a
//! token it has already accepted on the route while the timestamp is in the window.

use super::fields::{self, Kind, Pointers};
use super::json::{Found, Payload};
use super::{checks, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::{HmacAlgorithm, Route};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const POINTERS: Pointers = Pointers {
    id: Some("/event-data/id"),
    kind: Kind::At("/event-data/event"),
    occurred_at: Some("/event-data/timestamp"),
    data: Some("/event-data"),
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    // A body that is not a JSON object carries no signature object.
    let payload = Payload::read(req.body, true).map_err(|_| VerifyError::MissingSignature)?;
    let [object, timestamp, token, signature] = payload.lookup_all([
        Some("/signature"),
        Some("/signature/timestamp"),
        Some("/signature/token"),
        Some("/signature/signature"),
    ]);
    if !object.is_some_and(Found::is_object) {
        return Err(VerifyError::MissingSignature);
    }
    let signature = signature
        .and_then(Found::string)
        .ok_or(VerifyError::MissingSignature)?;
    // Signed as the string sent; a number is taken as its digits.
    let ts_text = timestamp
        .and_then(|t| t.string().or_else(|| t.id()))
        .ok_or(VerifyError::InvalidTimestamp)?;
    let ts = checks::integer(ts_text.as_bytes())?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let token = token
        .and_then(Found::string)
        .filter(|t| !t.is_empty())
        .ok_or(VerifyError::InvalidSignature)?;
    let expected = checks::decode_hex(signature.as_bytes(), b"")?;
    let message: [&[u8]; 2] = [ts_text.as_bytes(), token.as_bytes()];
    checks::hmac_matches(HmacAlgorithm::Sha256, &route.secrets, &message, &expected)?;
    let mut verified = Verified::new(req, None);
    let until = ts.saturating_add(i64::try_from(route.tolerance.as_secs()).unwrap_or(i64::MAX));
    verified.replay_token = Some((token.into_bytes(), until));
    Ok(verified)
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::one_from_json(route, &POINTERS, &verified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("mailgun");
    }
}
