//! The rules common to all providers (docs/providers.md): where id, type, occurred_at and data come
//! from, and how ids are written into headers.

use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::json::{self, Found, Json, Payload};
use super::{parse_json, Event, EventId, Events, MalformedPayload, Normalized, Verified};
use crate::route::{ForwardMode, Route};

/// A provider's own pointers; a route's `fields` override each one.
pub(super) struct Pointers {
    pub id: Option<&'static str>,
    pub kind: Kind<'static>,
    pub occurred_at: Option<&'static str>,
    pub data: Option<&'static str>,
}

/// Where a provider's event type comes from. A route's `fields.type` replaces any of
/// these with one pointer.
#[derive(Clone, Copy)]
pub(super) enum Kind<'p> {
    None,
    /// The string at the pointer.
    At(&'p str),
    /// The string at the first pointer that finds one (Slack's `/event/type`, else `/type`).
    FirstOf(&'p str, &'p str),
    /// `<first>.<second>`, or `<first>` alone when the second finds no string (Linear).
    Dotted(&'p str, &'p str),
    /// The unsigned header's type (GitHub, Shopify), `.` + the string at the pointer when
    /// it finds one.
    Hinted(Option<&'p str>),
    /// A string, or an integer written as its digits (Discord's interaction `type`).
    Code(&'p str),
}

impl<'p> Kind<'p> {
    fn pointers(self) -> [Option<&'p str>; 2] {
        match self {
            Kind::None | Kind::Hinted(None) => [None, None],
            Kind::At(p) | Kind::Code(p) | Kind::Hinted(Some(p)) => [Some(p), None],
            Kind::FirstOf(a, b) | Kind::Dotted(a, b) => [Some(a), Some(b)],
        }
    }
}

/// Builds the event from a verified JSON body by the common rules, reading the body once
/// and forwarding its own text (see `json`); `object` refuses a top level that is not
/// an object. The id, when derived, is over the body.
pub(super) fn event_from_json(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
    object: bool,
) -> Result<Event, MalformedPayload> {
    let payload = Payload::read(&verified.body, object)?;
    Ok(event(route, defaults, verified, payload, &verified.body))
}

/// The one event of a JSON body (any JSON value), by the common rules.
pub(super) fn one_from_json(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
) -> Result<Normalized, MalformedPayload> {
    let event = event_from_json(route, defaults, verified, false)?;
    Ok(Events::one(event).into())
}

/// A JSON object is one event, forwarded as sent; an array is a batch of objects
/// (docs/request-handling.md), unless the route forwards raw bytes, which travel as they came: one event.
pub(super) fn object_or_batch(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
) -> Result<Events, MalformedPayload> {
    if json::first_byte(&verified.body) == Some(b'{') {
        let event = event_from_json(route, defaults, verified, true)?;
        return Ok(Events::one(event));
    }
    match parse_json(&verified.body)? {
        payload @ Value::Array(_) if route.forward == ForwardMode::Raw => {
            let payload = Payload::Tree(payload);
            let event = event(route, defaults, verified, payload, &verified.body);
            Ok(Events::one(event))
        }
        Value::Array(elements) => batch(route, defaults, verified, elements),
        _ => Err(MalformedPayload(
            "body is neither a JSON object nor an array of objects".into(),
        )),
    }
}

/// One event per element, each id derived from the element's exact bytes. Any element
/// that is not an object refuses the whole batch before anything is forwarded.
fn batch(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
    elements: Vec<Value>,
) -> Result<Events, MalformedPayload> {
    // The same text parsed again for the elements' spans; it already parsed strictly.
    let spans: Vec<&RawValue> = serde_json::from_slice(&verified.body)
        .map_err(|e| MalformedPayload(format!("body is not valid JSON ({e})")))?;
    let mut events = Vec::with_capacity(elements.len());
    for (i, (element, span)) in elements.into_iter().zip(spans).enumerate() {
        if !element.is_object() {
            return Err(MalformedPayload(format!(
                "batch element {i} is not a JSON object"
            )));
        }
        events.push(event(
            route,
            defaults,
            verified,
            Payload::Tree(element),
            span.get().as_bytes(),
        ));
    }
    Ok(Events {
        events,
        batch: true,
    })
}

/// Builds the event from `payload` by the common rules. `derived_from` is the text whose
/// SHA-256 is the id when neither a signed header nor a pointer gives one.
pub(super) fn event(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
    payload: Payload<'_>,
    derived_from: &[u8],
) -> Event {
    let body = &verified.body;
    let f = &route.fields;
    // A signed id wins, so its pointer is not even looked up.
    let id_pointer =
        f.id.as_deref()
            .or(defaults.id)
            .filter(|_| verified.signed_id.is_none());
    // A route's own type pointer replaces the provider's rule.
    let rule = f.kind.as_deref().map_or(defaults.kind, Kind::At);
    let [first, second] = rule.pointers();
    let at_pointer = f.occurred_at.as_deref().or(defaults.occurred_at);
    let [id, occurred_at, first, second] =
        payload.lookup_all([id_pointer, at_pointer, first, second]);
    let id = match &verified.signed_id {
        Some(signed) => signed.clone(),
        None => EventId::from(
            id.and_then(Found::id)
                .unwrap_or_else(|| derived_id(derived_from)),
        ),
    };
    let kind = match rule {
        Kind::None => None,
        Kind::At(_) => first.and_then(Found::string),
        Kind::FirstOf(..) => first
            .and_then(Found::string)
            .or_else(|| second.and_then(Found::string)),
        Kind::Dotted(..) => {
            first
                .and_then(Found::string)
                .map(|a| match second.and_then(Found::string) {
                    Some(b) => format!("{a}.{b}"),
                    None => a,
                })
        }
        Kind::Hinted(_) => {
            verified
                .kind_hint
                .clone()
                .map(|hint| match first.and_then(Found::string) {
                    Some(b) => format!("{hint}.{b}"),
                    None => hint,
                })
        }
        Kind::Code(_) => first.and_then(Found::id),
    };
    let kind = kind
        .or_else(|| route.default_type.clone())
        .unwrap_or_else(|| "unknown".to_string());
    let occurred_at = occurred_at.map_or(Json::NULL, |found| found.to_json(body));
    // Taken last and by move: the payload is not needed after this.
    let data = payload.into_data(f.data.as_deref().or(defaults.data), body);
    Event {
        id,
        kind,
        occurred_at,
        data,
        raw: (body.clone(), verified.content_type.clone()),
    }
}

/// `sha256:` + lowercase hex SHA-256 of `bytes`.
pub fn derived_id(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    out.push_str(&hex::encode(digest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_prefixed_lowercase_sha256() {
        assert_eq!(
            derived_id(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
