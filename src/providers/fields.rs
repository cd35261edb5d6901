//! The rules common to all providers (SPEC §4): where id, type, occurred_at and data come
//! from, and how ids are written into headers.

use std::borrow::Cow;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::json::{self, Doc, Json};
use super::{Event, EventId, MalformedPayload, Verified};
use crate::route::Route;

/// A provider's own pointers; a route's `fields` override each one.
pub struct Pointers {
    pub id: Option<&'static str>,
    pub kind: Option<&'static str>,
    pub occurred_at: Option<&'static str>,
    pub data: Option<&'static str>,
}

/// Builds the event from a verified JSON body by the common rules, reading the body once
/// and forwarding its own text (see `json`); `object` refuses a top level that is not
/// an object. The id, when derived, is over the body.
pub fn event_from_json(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
    object: bool,
) -> Result<Event, MalformedPayload> {
    Ok(match json_text(verified, object)? {
        Some(doc) => event_from_text(route, defaults, verified, &doc),
        // A repeated key: the tree keeps its last value, which is what the app must see.
        None => event(
            route,
            defaults,
            verified,
            super::parse_json(&verified.body)?,
            &verified.body,
        ),
    })
}

/// The verified body as checked JSON, or `None` when it repeats a key (then only a tree
/// says which value counts). `object` refuses a top level that is not an object.
pub fn json_text(verified: &Verified, object: bool) -> Result<Option<Doc<'_>>, MalformedPayload> {
    let checked = json::check(&verified.body)?;
    if object && !checked.object {
        return Err(MalformedPayload("body is JSON but not an object".into()));
    }
    Ok((!checked.repeats_a_key).then_some(checked.doc))
}

/// The common rules over `doc`, the verified body as [`json_text`] gave it.
pub fn event_from_text(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
    doc: &Doc<'_>,
) -> Event {
    let body = &verified.body;
    let [id_ptr, kind_ptr, at_ptr, data_ptr] = pointers(route, defaults);
    // A signed id wins, so its pointer is not even looked up.
    let id_ptr = id_ptr.filter(|_| verified.signed_id.is_none());
    let [id_text, kind_text, at_text, data_text] =
        doc.lookup_all([id_ptr, kind_ptr, at_ptr, data_ptr]);
    let id = id_or_derived(verified, || id_text.and_then(id_from_text), body);
    let kind = kind_or_default(
        route,
        kind_text
            .filter(|t| t.starts_with('"'))
            .and_then(|t| serde_json::from_str::<String>(t).ok()),
    );
    let occurred_at = at_text.map_or(Json::NULL, |t| Json::Text(json::span(body, t)));
    let data = data_text.unwrap_or_else(|| json::trim(doc.text));
    Event {
        id,
        kind,
        occurred_at,
        data: Json::Text(json::span(body, data)),
        raw: (body.clone(), verified.content_type.clone()),
    }
}

/// Builds the event from `payload` by the common rules. `derived_from` is the text whose
/// SHA-256 is the id when neither a signed header nor a pointer gives one.
pub fn event(
    route: &Route,
    defaults: &Pointers,
    verified: &Verified,
    mut payload: Value,
    derived_from: &[u8],
) -> Event {
    let [id_ptr, kind_ptr, at_ptr, data_ptr] = pointers(route, defaults);
    let id = id_or_derived(
        verified,
        || id_ptr.and_then(|p| lookup(&payload, p)).and_then(id_text),
        derived_from,
    );
    let kind = kind_or_default(
        route,
        kind_ptr
            .and_then(|p| lookup(&payload, p))
            .and_then(Value::as_str)
            .map(str::to_string),
    );
    let occurred_at = at_ptr
        .and_then(|p| lookup(&payload, p))
        .map_or(Json::NULL, |v| Json::Tree(v.clone()));
    // Taken last and by move: the payload is not needed after this.
    let data = match data_ptr.and_then(|p| lookup_mut(&mut payload, p)) {
        Some(found) => found.take(),
        None => payload,
    };
    Event {
        id,
        kind,
        occurred_at,
        data: Json::Tree(data),
        raw: (verified.body.clone(), verified.content_type.clone()),
    }
}

/// The id: a signed header's, else the one `found` in the payload, else derived from
/// `derived_from`.
fn id_or_derived(
    verified: &Verified,
    found: impl FnOnce() -> Option<String>,
    derived_from: &[u8],
) -> EventId {
    match &verified.signed_id {
        Some(id) => id.clone(),
        None => EventId::from(found().unwrap_or_else(|| derived_id(derived_from))),
    }
}

/// The type `found` in the payload, else the route's `default_type`, else `unknown`.
fn kind_or_default(route: &Route, found: Option<String>) -> String {
    found
        .or_else(|| route.default_type.clone())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The id, type, occurred_at and data pointers: the route's `fields`, else the provider's.
fn pointers<'a>(route: &'a Route, defaults: &Pointers) -> [Option<&'a str>; 4] {
    let f = &route.fields;
    [
        f.id.as_deref().or(defaults.id),
        f.kind.as_deref().or(defaults.kind),
        f.occurred_at.as_deref().or(defaults.occurred_at),
        f.data.as_deref().or(defaults.data),
    ]
}

/// RFC 6901 lookup, as `Value::pointer`, without allocating a string per token (only a
/// token holding an escape, `~0` or `~1`, is copied).
fn lookup<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut target = value;
    for token in tokens(pointer)? {
        target = match target {
            Value::Object(map) => map.get(token.as_ref())?,
            Value::Array(list) => list.get(index(&token)?)?,
            _ => return None,
        };
    }
    Some(target)
}

fn lookup_mut<'a>(value: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    let mut target = value;
    for token in tokens(pointer)? {
        target = match target {
            Value::Object(map) => map.get_mut(token.as_ref())?,
            Value::Array(list) => list.get_mut(index(&token)?)?,
            _ => return None,
        };
    }
    Some(target)
}

/// The reference tokens of a pointer: none for `""`, `None` when it does not start
/// with `/`.
pub(super) fn tokens(pointer: &str) -> Option<impl Iterator<Item = Cow<'_, str>>> {
    let rest = if pointer.is_empty() {
        None
    } else {
        Some(pointer.strip_prefix('/')?)
    };
    Some(rest.into_iter().flat_map(|r| r.split('/')).map(unescape))
}

/// One reference token as written (`~1` for `/`, `~0` for `~`), copied only when escaped.
pub(super) fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
pub(super) fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// An id as found in the payload: a non-empty string, or an integer's digits as received.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => integer(n.to_string()),
        _ => None,
    }
}

/// A number's digits as received, when it is an integer (no fraction, no exponent).
fn integer(digits: String) -> Option<String> {
    let unsigned = digits.strip_prefix('-').unwrap_or(&digits);
    (!unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The same rule over an id's JSON text: a non-empty string, or integer digits.
fn id_from_text(text: &str) -> Option<String> {
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text)
            .ok()
            .filter(|s| !s.is_empty());
    }
    integer(text.to_string())
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
    fn ids_are_strings_or_integer_digits_as_received() {
        let v: Value = serde_json::from_str(
            r#"{"a":"x","b":123456789012345678901234567890,"c":-7,"d":1.5,"e":1e3,"f":"","g":true}"#,
        )
        .unwrap();
        let get = |k: &str| id_text(&v[k]);
        assert_eq!(get("a").as_deref(), Some("x"));
        assert_eq!(get("b").as_deref(), Some("123456789012345678901234567890"));
        assert_eq!(get("c").as_deref(), Some("-7"));
        assert_eq!(get("d"), None);
        assert_eq!(get("e"), None);
        assert_eq!(get("f"), None);
        assert_eq!(get("g"), None);
    }

    #[test]
    fn ids_read_from_text_follow_the_same_rule() {
        let v: Value = serde_json::from_str(
            r#"{"a":"x","b":123456789012345678901234567890,"c":-7,"d":1.5,"e":1e3,"f":"","g":true,"h":"\u00e9","i":null,"j":{}}"#,
        )
        .unwrap();
        let text = serde_json::to_string(&v).unwrap();
        for key in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            let raw = json::lookup(&text, &format!("/{key}")).unwrap();
            assert_eq!(id_from_text(raw), id_text(&v[key]), "{key}");
        }
    }

    #[test]
    fn lookups_agree_with_serde_json_pointers() {
        let v: Value =
            serde_json::from_str(r#"{"a":{"b/c":[10,{"d~e":"x"}],"":1},"n":null,"list":[0,1,2]}"#)
                .unwrap();
        for p in [
            "",
            "/a",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/d~0e",
            "/a/",
            "/n",
            "/list/2",
            "/list/02",
            "/list/+1",
            "/list/3",
            "/missing",
            "a",
            "/a/b~1c/x",
            "/list/-",
        ] {
            assert_eq!(lookup(&v, p), v.pointer(p), "{p:?}");
            let mut copy = v.clone();
            let expected = v.clone().pointer_mut(p).map(|x| x.take());
            assert_eq!(
                lookup_mut(&mut copy, p).map(|x| x.take()),
                expected,
                "{p:?}"
            );
        }
    }

    #[test]
    fn derived_ids_are_prefixed_lowercase_sha256() {
        assert_eq!(
            derived_id(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
