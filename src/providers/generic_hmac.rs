//! The generic `hmac` scheme (docs/providers.md): header, prefix, hex or base64, SHA-256 or
//! SHA-512, over a message template of `{body}`, `{timestamp}` and `{id}`, checked as
//! the table's presets are (`described`). JobAffinity routes with `[routes.hmac]` use
//! the same check.

use super::fields::{self, Kind, Pointers};
use super::{
    described, Events, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError,
};
use crate::route::Route;

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
    let id = described::hmac(route, scheme, req)?;
    Ok(Verified::new(req, id))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    events(route, verified).map(Normalized::from)
}

fn events(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    let event = fields::event_from_json(route, &POINTERS, &verified, false)?;
    Ok(Events::one(event))
}
