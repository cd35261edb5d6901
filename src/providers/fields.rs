//! The rules common to all providers (SPEC §4): where id, type, occurred_at and data come
//! from, and how ids are written into headers.

use std::fmt::Write;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Event, Verified};
use crate::config::Route;

/// A provider's own pointers; a route's `fields` override each one.
pub struct Pointers {
    pub id: Option<&'static str>,
    pub kind: Option<&'static str>,
    pub occurred_at: Option<&'static str>,
    pub data: Option<&'static str>,
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
    let f = &route.fields;
    let pick = |over: &Option<String>, default: Option<&'static str>| -> Option<String> {
        over.clone().or_else(|| default.map(str::to_string))
    };
    let id_ptr = pick(&f.id, defaults.id);
    let kind_ptr = pick(&f.kind, defaults.kind);
    let at_ptr = pick(&f.occurred_at, defaults.occurred_at);
    let data_ptr = pick(&f.data, defaults.data);

    let id = verified
        .signed_id
        .clone()
        .or_else(|| id_ptr.and_then(|p| payload.pointer(&p).and_then(id_text)))
        .unwrap_or_else(|| derived_id(derived_from));
    let kind = kind_ptr
        .and_then(|p| {
            payload
                .pointer(&p)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| route.default_type.clone())
        .unwrap_or_else(|| "unknown".to_string());
    let occurred_at = at_ptr
        .and_then(|p| payload.pointer(&p).cloned())
        .unwrap_or(Value::Null);
    // Taken last and by move: the payload is not needed after this.
    let data = match data_ptr.and_then(|p| payload.pointer_mut(&p).map(Value::take)) {
        Some(found) => found,
        None => payload,
    };
    Event {
        id,
        kind,
        occurred_at,
        data,
        raw: (verified.body.clone(), verified.content_type.clone()),
    }
}

/// An id as found in the payload: a non-empty string, or an integer's digits as received.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => {
            let digits = n.to_string();
            let unsigned = digits.strip_prefix('-').unwrap_or(&digits);
            (!unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
        }
        _ => None,
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

/// An id or type as it may stand in a header: `%` and every byte outside %x21–7E of its
/// UTF-8 written `%XX`.
pub fn header_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
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
    fn header_safe_escapes_percent_space_controls_and_utf8() {
        assert_eq!(header_safe("evt_1.A-b"), "evt_1.A-b");
        assert_eq!(header_safe("a b%c\r\nd"), "a%20b%25c%0D%0Ad");
        assert_eq!(header_safe("é"), "%C3%A9");
    }

    #[test]
    fn derived_ids_are_prefixed_lowercase_sha256() {
        assert_eq!(
            derived_id(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
