//! A verified payload as a `serde_json::Value`, for the payloads that must be transformed
//! or read as a tree (a repeated key, a form's JSON fields, a batch).
//!
//! Not `serde_json::from_slice`: with `arbitrary_precision` (which keeps every digit of a
//! number), serde_json hands a number to a visitor as a one-member map under the key
//! `$serde_json::private::Number`, and its own `Value` takes *any* object with that key
//! for a number: `{"$serde_json::private::Number":"42"}` became `42`, and with `"hi"` the
//! payload was refused. Here a member counts as a number only when serde_json made the
//! key itself, which a key from the payload never is: those are borrowed from the text,
//! or, when escaped, copied into a buffer of the parser's (docs/request-handling.md: any key is an ordinary
//! key). The parser, and so every strictness rule, is serde_json's own.
//!
//! Numbers keep every digit; serde_json spells an exponent its own way (`1E5` is written
//! back `1e+5`, the same number). Payloads read as text, the usual case, keep even that.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::super::MalformedPayload;

/// Strict RFC 8259 parse of `bytes` into a tree (the rules of [`super::check`]).
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, MalformedPayload> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| MalformedPayload(format!("body is not valid JSON (not UTF-8: {e})")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = address_range(text);
    Tree { doc: &doc }
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|e| MalformedPayload(format!("body is not valid JSON ({e})")))
}

fn address_range(text: &str) -> Range<usize> {
    let start = text.as_ptr() as usize;
    start..start + text.len()
}

/// Builds one value.
struct Tree<'d> {
    /// Where the document lies in memory: keys borrowed from elsewhere are serde_json's.
    doc: &'d Range<usize>,
}

impl<'de> DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a JSON number"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Tree { doc: self.doc })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if first && key.made_by_parser(self.doc) {
                // A number's digits, exactly as the payload has them.
                let digits: String = map.next_value()?;
                let number = Number::from_str(&digits).map_err(A::Error::custom)?;
                return Ok(Value::Number(number));
            }
            first = false;
            let value = map.next_value_seed(Tree { doc: self.doc })?;
            // A repeated key keeps its last value, in its first place, as `Value` does.
            object.insert(key.text, value);
        }
        Ok(Value::Object(object))
    }
}

/// An object key and whether the parser lent it from somewhere else than the document.
struct Key {
    text: String,
    /// Address of a borrowed key; `None` when it was copied (escaped keys are).
    borrowed_at: Option<usize>,
}

impl Key {
    fn made_by_parser(&self, doc: &Range<usize>) -> bool {
        self.borrowed_at.is_some_and(|at| !doc.contains(&at))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Key, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key, E> {
        Ok(Key {
            text: key.to_owned(),
            borrowed_at: Some(key.as_ptr() as usize),
        })
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(Key {
            text: key.to_owned(),
            borrowed_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &str = "$serde_json::private::Number";

    #[test]
    fn a_key_named_like_serde_jsons_number_token_is_an_ordinary_key() {
        for body in [
            format!(r#"{{"{MAGIC}":"42"}}"#),
            format!(r#"{{"{MAGIC}":"hi"}}"#),
            format!(r#"{{"{MAGIC}":1,"b":2}}"#),
            format!(r#"{{"a":{{"{MAGIC}":"42"}},"a":{{"{MAGIC}":[1]}}}}"#),
            // Escaped, so copied by the parser rather than borrowed.
            r#"{"$serde_json::private::Numbe\u0072":"42"}"#.to_string(),
        ] {
            let tree = parse(body.as_bytes()).unwrap();
            assert!(tree.is_object(), "{body} read as {tree:?}");
            // Written back with the key still a key, whatever its value.
            let text = tree.to_string();
            assert!(
                text.contains(&format!("\"{MAGIC}\":")),
                "{body} became {text}"
            );
        }
        let nested = parse(format!(r#"{{"data":{{"{MAGIC}":"42"}}}}"#).as_bytes()).unwrap();
        assert_eq!(nested["data"][MAGIC], "42");
    }

    #[test]
    fn numbers_keep_their_digits_and_repeats_keep_the_last_value_in_the_first_place() {
        let body = r#"{"n":123456789012345678901234567890.50,"a":1,"b":2,"a":-0.0e-7}"#;
        let tree = parse(body.as_bytes()).unwrap();
        assert_eq!(
            tree.to_string(),
            r#"{"n":123456789012345678901234567890.50,"a":-0.0e-7,"b":2}"#
        );
        // serde_json's own spelling of an exponent, digits and value unchanged.
        assert_eq!(parse(b"[1E400,2e5]").unwrap().to_string(), "[1e+400,2e+5]");
    }

    #[test]
    fn it_refuses_what_serde_json_refuses() {
        let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        for bad in [
            &b"{\"a\":NaN}"[..],
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":\"\xff\"}",
            b"[1,]",
            b"1 2",
            b"",
            too_deep.as_bytes(),
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
