//! A verified payload behind one lookup, read as text when it can be (the usual case:
//! no tree, every digit and escape forwarded as sent) and as a tree when it must be (an
//! object repeats a key, or the provider transformed it). The rules of docs/providers.md (what is
//! an id, a type, the data) are written once, over what a lookup [`Found`].

use bytes::Bytes;
use serde_json::Value;

use super::lookup::{in_tree, in_tree_mut};
use super::scan::{check, Doc};
use super::{parse_tree, span, trim, Json};
use crate::providers::MalformedPayload;

pub(crate) enum Payload<'a> {
    /// A checked document that repeats no key, borrowed from the verified body.
    Text(Doc<'a>),
    /// A document that repeats a key (the tree keeps the last value, which is what the
    /// app must see), or one the provider built.
    Tree(Value),
}

/// A value a pointer named, as its payload holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Found<'p> {
    Text(&'p str),
    Tree(&'p Value),
}

impl<'a> Payload<'a> {
    /// `bytes` checked strictly (docs/request-handling.md check 10); `object` refuses a top level that is
    /// not an object.
    pub(crate) fn read(bytes: &'a [u8], object: bool) -> Result<Self, MalformedPayload> {
        let checked = check(bytes)?;
        if object && !checked.object {
            return Err(MalformedPayload("body is JSON but not an object".into()));
        }
        if checked.repeats_a_key {
            // Only a tree says which of the repeated values counts.
            return parse_tree(bytes).map(Payload::Tree);
        }
        Ok(Payload::Text(checked.doc))
    }

    /// The values `pointers` name, each `None` when absent or not asked.
    pub(crate) fn lookup_all<const N: usize>(
        &self,
        pointers: [Option<&str>; N],
    ) -> [Option<Found<'_>>; N] {
        match self {
            Payload::Text(doc) => doc.lookup_all(pointers).map(|t| t.map(Found::Text)),
            Payload::Tree(value) => pointers.map(|p| in_tree(value, p?).map(Found::Tree)),
        }
    }

    /// The envelope's `data`: the value at `pointer`, else the whole payload; text as a
    /// span of `body` (which the text is borrowed from), a tree taken by move.
    pub(crate) fn into_data(self, pointer: Option<&str>, body: &Bytes) -> Json {
        match self {
            Payload::Text(doc) => {
                let [found] = doc.lookup_all([pointer]);
                Json::Text(span(body, found.unwrap_or_else(|| trim(doc.text))))
            }
            Payload::Tree(mut value) => {
                Json::Tree(match pointer.and_then(|p| in_tree_mut(&mut value, p)) {
                    Some(found) => found.take(),
                    None => value,
                })
            }
        }
    }

    /// The payload as a tree, for a provider that transforms it.
    pub(crate) fn into_tree(self) -> Result<Value, MalformedPayload> {
        match self {
            Payload::Text(doc) => parse_tree(doc.text.as_bytes()),
            Payload::Tree(value) => Ok(value),
        }
    }
}

impl Found<'_> {
    /// An event id: a non-empty string, or an integer's digits as received (no fraction,
    /// no exponent).
    pub(crate) fn id(self) -> Option<String> {
        match self {
            Found::Text(text) if !text.starts_with('"') => integer(text),
            Found::Tree(Value::Number(n)) => integer(&n.to_string()),
            _ => self.string().filter(|s| !s.is_empty()),
        }
    }

    /// A string's value.
    pub(crate) fn string(self) -> Option<String> {
        match self {
            // A string without escapes is its own text (the scan refused control
            // characters); only escapes need decoding.
            Found::Text(text) if text.starts_with('"') && !text.as_bytes().contains(&b'\\') => {
                text.get(1..text.len().saturating_sub(1)).map(str::to_owned)
            }
            Found::Text(text) if text.starts_with('"') => serde_json::from_str(text).ok(),
            Found::Tree(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub(crate) fn is_string(self) -> bool {
        match self {
            Found::Text(text) => text.starts_with('"'),
            Found::Tree(value) => value.is_string(),
        }
    }

    pub(crate) fn is_object(self) -> bool {
        match self {
            Found::Text(text) => text.starts_with('{'),
            Found::Tree(value) => value.is_object(),
        }
    }

    /// As the envelope carries it: text as a span of `body`, a tree copied.
    pub(crate) fn to_json(self, body: &Bytes) -> Json {
        match self {
            Found::Text(text) => Json::Text(span(body, text)),
            Found::Tree(value) => Json::Tree(value.clone()),
        }
    }
}

/// A number's digits as received, when it is an integer.
fn integer(digits: &str) -> Option<String> {
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    (!unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"a":"x","b":123456789012345678901234567890,"c":-7,"d":1.5,"e":1e3,"f":"","g":true,"h":"\u00e9","i":null,"j":{},"k":"-1"}"#;
    const KEYS: [&str; 11] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"];

    /// Each key's value found as text and as a tree.
    fn both(key: &str) -> (Option<String>, Option<String>, bool, bool) {
        let text = Payload::read(DOC.as_bytes(), true).unwrap();
        let tree = Payload::Tree(parse_tree(DOC.as_bytes()).unwrap());
        let pointer = format!("/{key}");
        let [t] = text.lookup_all([Some(pointer.as_str())]);
        let [v] = tree.lookup_all([Some(pointer.as_str())]);
        let (t, v) = (t.unwrap(), v.unwrap());
        assert_eq!(t.is_string(), v.is_string(), "{key}");
        assert_eq!(t.is_object(), v.is_object(), "{key}");
        assert_eq!(t.string(), v.string(), "{key}");
        (t.id(), v.id(), t.is_string(), t.is_object())
    }

    #[test]
    fn ids_are_strings_or_integer_digits_as_received_in_text_and_trees_alike() {
        let ids: Vec<Option<String>> = KEYS
            .iter()
            .map(|k| {
                let (text, tree, _, _) = both(k);
                assert_eq!(text, tree, "{k}");
                text
            })
            .collect();
        let expected = [
            Some("x"),
            Some("123456789012345678901234567890"),
            Some("-7"),
            None,
            None,
            None,
            None,
            Some("é"),
            None,
            None,
            Some("-1"),
        ];
        assert_eq!(ids, expected.map(|e| e.map(str::to_string)));
    }

    #[test]
    fn a_repeated_key_is_read_as_a_tree_keeping_the_last_value() {
        let body = Bytes::from_static(br#"{"id":"a","data":1,"id":"b"}"#);
        let payload = Payload::read(&body, true).unwrap();
        assert!(matches!(payload, Payload::Tree(_)));
        let [id] = payload.lookup_all([Some("/id")]);
        assert_eq!(id.and_then(Found::id).as_deref(), Some("b"));
        assert!(Payload::read(b"[1]", true).is_err());
        assert!(Payload::read(b"[1]", false).is_ok());
    }

    #[test]
    fn data_is_a_span_of_the_body_or_the_value_taken_from_the_tree() {
        let body = Bytes::from_static(br#" {"data" : {"k":1.50}} "#);
        let text = Payload::read(&body, true).unwrap();
        let Json::Text(data) = text.into_data(Some("/data"), &body) else {
            panic!("text stays text")
        };
        assert_eq!(&data[..], br#"{"k":1.50}"#);
        let whole = Payload::read(&body, true).unwrap().into_data(None, &body);
        assert_eq!(
            whole,
            Json::Text(Bytes::from_static(br#"{"data" : {"k":1.50}}"#))
        );
        let tree = Payload::Tree(serde_json::json!({"data": {"k": 1}}));
        assert_eq!(
            tree.into_data(Some("/data"), &body),
            Json::Tree(serde_json::json!({"k": 1}))
        );
    }
}
