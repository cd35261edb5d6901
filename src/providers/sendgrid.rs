//! SendGrid's Event Webhook (docs/providers.md): `X-Twilio-Email-Event-Webhook-Signature` =
//! base64 DER ECDSA P-256/SHA-256 over `<ts><body>`, with
//! `X-Twilio-Email-Event-Webhook-Timestamp` in the replay window, checked against the
//! verification key. The body is an array of events: a batch.

use http::HeaderName;

use super::fields::{self, Kind, Pointers};
use super::{checks, keys, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError};
use crate::route::Route;

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-timestamp");

const POINTERS: Pointers = Pointers {
    id: Some("/sg_event_id"),
    kind: Kind::At("/event"),
    occurred_at: Some("/timestamp"),
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let signature = checks::signature(req.headers, SIGNATURE)?;
    let (ts_text, ts) = checks::timestamp(req.headers, TIMESTAMP)?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let der = checks::decode_base64(signature.single()?).ok_or(VerifyError::InvalidSignature)?;
    if !keys::p256_signs(&route.public_keys, &[ts_text, req.body], &der) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    fields::object_or_batch(route, &POINTERS, &verified).map(Normalized::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("sendgrid");
    }
}
