//! The reference walk: serde_json's own parser visits every value, so exactly what a
//! `Value` parse refuses is refused, while nothing is built; on the way it notes repeated
//! keys and where the top-level members' values lie. The gateway reads payloads with
//! the faster [`super::scan`]; this walk is the oracle the tests and the `json` fuzz
//! target hold it to. [`Key`] is also how pointer lookups read keys.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::lookup::Key;
use super::scan::{repeats, Checked, Doc};
use super::{first_byte, is_ws};
use crate::providers::MalformedPayload;

/// Strict RFC 8259 check of `bytes`, the way serde_json reads it.
pub(crate) fn check(bytes: &[u8]) -> Result<Checked<'_>, MalformedPayload> {
    // UTF-8 first, in one pass over the whole body, so the walk need not check each string.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| MalformedPayload(format!("body is not valid JSON (not UTF-8: {e})")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut repeats_a_key = false;
    let mut top_keys = None;
    Walk {
        repeats_a_key: &mut repeats_a_key,
        top_keys: Some(&mut top_keys),
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| MalformedPayload(format!("body is not valid JSON ({e})")))?;
    Ok(Checked {
        object: first_byte(bytes) == Some(b'{'),
        repeats_a_key,
        doc: Doc {
            text,
            members: top_keys.and_then(|keys| members(text, &keys)),
        },
    })
}

/// Each top-level member's (key, value text), from where its key lies in `doc`, a valid
/// document: between a key and the next one stand only `": value ,` and whitespace, and
/// after the last one `value }`. `None` when a key was unescaped into a copy.
fn members<'a>(doc: &'a str, keys: &[Cow<'a, str>]) -> Option<Vec<(&'a str, &'a str)>> {
    let bytes = doc.as_bytes();
    let base = doc.as_ptr() as usize;
    // (key, where its opening quote is, where its value starts)
    let mut starts = Vec::with_capacity(keys.len());
    for key in keys {
        let Cow::Borrowed(key) = key else {
            return None;
        };
        // A key lies inside the text unless serde_json made it (its number token).
        let at = (key.as_ptr() as usize).checked_sub(base)?;
        let after = at.checked_add(key.len()).filter(|&e| e <= bytes.len())?;
        let quote = at.checked_sub(1)?;
        let colon = skip_ws(bytes, expect(bytes, after, b'"')?);
        let i = expect(bytes, colon, b':')?;
        starts.push((*key, quote, skip_ws(bytes, i)));
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &(key, _, start)) in starts.iter().enumerate() {
        // Back from the next key's quote over `,`, or from the end over `}`.
        let (end, closer) = match starts.get(n + 1) {
            Some(&(_, next_quote, _)) => (next_quote, b','),
            None => (bytes.len(), b'}'),
        };
        let end = back_ws(bytes, end).checked_sub(1)?;
        if bytes.get(end) != Some(&closer) {
            return None;
        }
        out.push((key, doc.get(start..back_ws(bytes, end))?));
    }
    Some(out)
}

/// The index after `byte` at `i`.
fn expect(bytes: &[u8], i: usize, byte: u8) -> Option<usize> {
    (bytes.get(i) == Some(&byte)).then_some(i + 1)
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// The end of `bytes[..end]` without its trailing whitespace.
fn back_ws(bytes: &[u8], mut end: usize) -> usize {
    while end > 0 && bytes.get(end - 1).copied().is_some_and(is_ws) {
        end -= 1;
    }
    end
}

/// Visits every value of a document, noting repeated keys.
struct Walk<'r, 'de> {
    repeats_a_key: &'r mut bool,
    /// Set at the top level only: receives the top object's keys, in order.
    top_keys: Option<&'r mut Option<Vec<Cow<'de, str>>>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(()) = seq.next_element_seed(Walk {
            repeats_a_key: &mut *self.repeats_a_key,
            top_keys: None,
        })? {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            keys.push(key);
            map.next_value_seed(Walk {
                repeats_a_key: &mut *self.repeats_a_key,
                top_keys: None,
            })?;
        }
        if !*self.repeats_a_key && repeats(&keys) {
            *self.repeats_a_key = true;
        }
        if let Some(top) = self.top_keys {
            *top = Some(keys);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::json::trim;
    use serde_json::Value;

    #[test]
    fn check_refuses_what_a_value_parse_refuses() {
        let deep_ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let cases: Vec<&[u8]> = vec![
            br#"{"a":1}"#,
            b" [1, 2.5e3, -0, true, null] ",
            br#"{"a":NaN}"#,
            br#"{"a":Infinity}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":"\udc00x"}"#,
            br#"{"a":"\ud83d\ude00"}"#,
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\x01\"}",
            br#"{"a":1,}"#,
            br#"{"a":1} x"#,
            b"",
            b"123456789012345678901234567890",
            deep_ok.as_bytes(),
            too_deep.as_bytes(),
        ];
        for case in cases {
            let expected = serde_json::from_slice::<Value>(case).is_ok();
            assert_eq!(
                check(case).is_ok(),
                expected,
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn repeated_keys_are_noticed_at_any_depth_and_with_escapes() {
        let repeats = |s: &str| check(s.as_bytes()).unwrap().repeats_a_key;
        assert!(!repeats(r#"{"a":1,"b":{"a":2}}"#));
        assert!(repeats(r#"{"a":1,"a":2}"#));
        assert!(repeats(r#"{"x":[{"k":1,"k":1}]}"#));
        assert!(repeats(r#"{"\u0061":1,"a":2}"#));
        let many: Vec<String> = (0..20).map(|i| format!("\"k{i}\":{i}")).collect();
        assert!(!repeats(&format!("{{{}}}", many.join(","))));
        assert!(repeats(&format!("{{{},\"k7\":0}}", many.join(","))));
    }

    #[test]
    fn the_walk_notes_where_each_top_level_value_lies() {
        let text = " {\n \"id\" : \"e1\" ,\"n\":1.50,\t\"data\" : { \"k\" : [ 1 , 2 ] } \r\n} ";
        let checked = check(text.as_bytes()).unwrap();
        assert_eq!(
            checked.doc.members,
            Some(vec![
                ("id", r#""e1""#),
                ("n", "1.50"),
                ("data", r#"{ "k" : [ 1 , 2 ] }"#)
            ])
        );
        assert_eq!(
            checked
                .doc
                .lookup_all([Some("/data/k/1"), Some("/n"), Some(""), Some("/x")]),
            [Some("2"), Some("1.50"), Some(trim(text)), None]
        );
        assert_eq!(check(b"{}").unwrap().doc.members, Some(vec![]));
        // An escaped key is a copy, not where the text has it; arrays and numbers (a map
        // to serde_json with arbitrary_precision) have no members.
        for text in [r#"{"a":1,"\u0062":2}"#, "[1,2]", "12.5"] {
            let doc = check(text.as_bytes()).unwrap().doc;
            assert_eq!(doc.members, None, "{text}");
        }
        let escaped = check(br#"{"a":1,"\u0062":{"c":2}}"#).unwrap().doc;
        assert_eq!(escaped.lookup_all([Some("/b/c")]), [Some("2")]);
    }
}
