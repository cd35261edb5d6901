//! The generic `hmac` scheme (docs/providers.md): header, prefix, hex or base64, SHA-256 or
//! SHA-512, over a message template of `{body}`, `{timestamp}` and `{id}`. JobAffinity
//! routes with `[routes.hmac]` use the same check.

use super::fields::{self, Kind, Pointers};
use super::{
    checks, EventId, Events, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError,
};
use crate::route::{HmacScheme, MessagePart, Route, SigEncoding};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const POINTERS: Pointers = Pointers {
    id: Some("/id"),
    kind: Kind::At("/type"),
    occurred_at: None,
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    // Validation requires [routes.hmac] for this provider; without it nothing verifies.
    let scheme = route.hmac.as_ref().ok_or(VerifyError::InvalidSignature)?;
    let id = check(route, scheme, req)?;
    Ok(Verified::new(req, id))
}

/// Checks 6–9 for a `[routes.hmac]` scheme; returns the signed id header, if any.
pub(super) fn check(
    route: &Route,
    scheme: &HmacScheme,
    req: &Request<'_>,
) -> Result<Option<EventId>, VerifyError> {
    let signature = checks::signature(req.headers, &scheme.header)?;
    let timestamp = match &scheme.timestamp_header {
        Some(name) => {
            let (text, value) = checks::timestamp(req.headers, name)?;
            checks::within_window(value, req.now, route.tolerance)?;
            Some(text)
        }
        None => None,
    };
    // A signed id that is absent or repeated cannot be trusted: check 9.
    let id = match &scheme.id_header {
        Some(name) => Some(checks::header(req.headers, name).single()?),
        None => None,
    };
    let raw = signature.single()?;
    let prefix = scheme.prefix.as_deref().unwrap_or_default().as_bytes();
    let expected = match scheme.encoding {
        SigEncoding::Hex => checks::decode_hex(raw, prefix)?.to_vec(),
        SigEncoding::Base64 => checks::decode_base64(raw.strip_prefix(prefix).unwrap_or(raw))
            .ok_or(VerifyError::InvalidSignature)?,
    };
    let message: Vec<&[u8]> = scheme
        .message
        .iter()
        .map(|part| match part {
            MessagePart::Literal(text) => text.as_bytes(),
            MessagePart::Body => req.body,
            MessagePart::Timestamp => timestamp.unwrap_or_default(),
            MessagePart::Id => id.unwrap_or_default(),
        })
        .collect();
    if !checks::any_secret_signs(scheme.algorithm, &route.secrets, &message, &[&expected]) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(id.map(EventId::from_header))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    events(route, verified).map(Normalized::from)
}

fn events(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    let event = fields::event_from_json(route, &POINTERS, &verified, false)?;
    Ok(Events::one(event))
}
