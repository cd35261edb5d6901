//! Slack (docs/providers.md): `X-Slack-Signature: v0=<hex>` = HMAC-SHA256 of
//! `v0:<ts>:<body>` with `X-Slack-Request-Timestamp` in the replay window. Events API
//! bodies are JSON; interactivity and slash commands are forms. The Events API's
//! `url_verification` is answered here, after verification, and never forwarded.

use http::{HeaderName, StatusCode};
use serde_json::{json, Map, Value};

use super::fields::{self, Kind, Pointers};
use super::json::Payload;
use super::{
    checks, form, parse_json, Events, Handshake, HandshakeBody, MalformedPayload, Normalized,
    Request, Scheme, Verified, VerifyError,
};
use crate::route::Route;

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

const EVENTS_API: Pointers = Pointers {
    id: Some("/event_id"),
    kind: Kind::FirstOf("/event/type", "/type"),
    occurred_at: Some("/event_time"),
    data: Some("/event"),
};

const FORM: Pointers = Pointers {
    id: None,
    kind: Kind::FirstOf("/payload/type", "/command"),
    occurred_at: None,
    data: None,
};

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    checks::v0_signature(
        req.headers,
        req.body,
        [&SIGNATURE, &TIMESTAMP],
        &route.secrets,
        req.now,
        route.tolerance,
    )?;
    Ok(Verified::new(req, None))
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    if verified.is_form() {
        let event = fields::event(
            route,
            &FORM,
            &verified,
            Payload::Tree(form_object(&verified.body)),
            &verified.body,
        );
        return Ok(Events::one(event).into());
    }
    let payload = Payload::read(&verified.body, true)?;
    let [kind, challenge] = payload.lookup_all([Some("/type"), Some("/challenge")]);
    if kind.and_then(|k| k.string()).as_deref() == Some("url_verification") {
        if let Some(challenge) = challenge.and_then(|c| c.string()) {
            return Ok(Normalized::Handshake(Handshake {
                status: StatusCode::OK,
                body: HandshakeBody::Json(json!({ "challenge": challenge })),
            }));
        }
    }
    let event = fields::event(route, &EVENTS_API, &verified, payload, &verified.body);
    Ok(Events::one(event).into())
}

/// The form's fields as HrFlow's are read (docs/providers.md), with `payload` decoded when it
/// holds JSON (interactivity sends the whole interaction there).
fn form_object(body: &[u8]) -> Value {
    let fields = form::fields(body);
    let mut object = Map::with_capacity(fields.len());
    for (key, value) in fields {
        let decoded = (key == "payload")
            .then(|| parse_json(value.as_bytes()).ok())
            .flatten();
        object.insert(key, decoded.unwrap_or(Value::String(value)));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_its_vectors() {
        super::super::tests::presets_pass("slack");
    }
}
