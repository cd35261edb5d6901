//! The rules common to all providers (SPEC §4): where id, type, occurred_at and data come
//! from, and how ids are written into headers.

use sha2::{Digest, Sha256};

use super::json::{Found, Json, Payload};
use super::{Event, EventId, MalformedPayload, Verified};
use crate::route::Route;

/// A provider's own pointers; a route's `fields` override each one.
pub(super) struct Pointers {
    pub id: Option<&'static str>,
    pub kind: Option<&'static str>,
    pub occurred_at: Option<&'static str>,
    pub data: Option<&'static str>,
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
    let kind_pointer = f.kind.as_deref().or(defaults.kind);
    let at_pointer = f.occurred_at.as_deref().or(defaults.occurred_at);
    let [id, kind, occurred_at] = payload.lookup_all([id_pointer, kind_pointer, at_pointer]);
    let id = match &verified.signed_id {
        Some(signed) => signed.clone(),
        None => EventId::from(
            id.and_then(Found::id)
                .unwrap_or_else(|| derived_id(derived_from)),
        ),
    };
    let kind = kind
        .and_then(Found::string)
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
