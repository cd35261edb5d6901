//! JobAffinity (docs/providers.md): the provider signs with whatever the integrator agrees with
//! its support, so a route carries `[routes.auth]` and/or `[routes.hmac]`.

use super::fields::{self, Kind, Pointers};
use super::{
    described, Events, MalformedPayload, Normalized, Request, Scheme, Verified, VerifyError,
};
use crate::route::Route;

pub(super) const SCHEME: Scheme = Scheme {
    verify,
    normalize,
    // Only with [routes.hmac], which validation accounts for separately.
};

const POINTERS: Pointers = Pointers {
    id: None,
    kind: Kind::At("/event"),
    occurred_at: Some("/datetime"),
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    if let Some(scheme) = &route.hmac {
        let id = described::hmac(route, scheme, req)?;
        return Ok(Verified::new(req, id));
    }
    // Credentials alone: the pipeline checked them (check 5) before calling us. A route
    // with neither is refused at load; should one exist anyway, nothing verifies.
    match route.auth {
        Some(_) => Ok(Verified::new(req, None)),
        None => Err(VerifyError::InvalidSignature),
    }
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    events(route, verified).map(Normalized::from)
}

fn events(route: &Route, verified: Verified) -> Result<Events, MalformedPayload> {
    let event = fields::event_from_json(route, &POINTERS, &verified, true)?;
    Ok(Events::one(event))
}
