//! Reading a verified JSON payload once, without building a tree (SPEC §3 check 10, §4).
//!
//! [`check`] walks the document with serde_json's own parser, so it refuses exactly what
//! parsing into a `Value` refuses (bad syntax, `NaN`, lone surrogates, invalid UTF-8,
//! nesting past 128), and notes whether any object repeats a key. When none does, the
//! envelope's `occurred_at` and `data` are the payload's own text, found where the walk
//! noted each top-level value ([`Doc::lookup_all`]) and copied as sent: no tree, no
//! re-serialization, every digit and escape kept. A document that repeats a key goes
//! through a `Value` instead, so that the app sees the last value, as SPEC §3 reads it,
//! and never the copy its own parser might prefer.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::MalformedPayload;

mod tree;

pub use tree::parse as parse_tree;

/// A JSON value for the envelope: a span of the verified body, or a tree built when the
/// payload had to be transformed or re-read.
#[derive(Clone, PartialEq)]
pub enum Json {
    Text(Bytes),
    Tree(Value),
}

impl Json {
    pub const NULL: Json = Json::Text(Bytes::from_static(b"null"));

    /// Appends the value's JSON text.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Json::Text(text) => out.extend_from_slice(text),
            // Writing a `Value` into a Vec cannot fail.
            Json::Tree(value) => {
                let _ = serde_json::to_writer(out, value);
            }
        }
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payload content stays out of Debug output, as bodies stay out of logs.
        match self {
            Json::Text(text) => write!(f, "Json::Text({} bytes)", text.len()),
            Json::Tree(_) => f.write_str("Json::Tree(..)"),
        }
    }
}

/// What [`check`] learned of a valid document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<'a> {
    /// The top level is an object.
    pub object: bool,
    /// Some object, at any depth, repeats a key.
    pub repeats_a_key: bool,
    pub doc: Doc<'a>,
}

/// A checked document's text, with where its top-level members' values lie when the
/// walk could tell, so that looking them up reads nothing again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc<'a> {
    pub text: &'a str,
    /// (key, value text) of each top-level member in order; `None` when the top level
    /// is not an object or a key holds escapes (it is then not where the text has it).
    members: Option<Vec<(&'a str, &'a str)>>,
}

impl<'a> Doc<'a> {
    /// Several [`lookup`]s, answered from the members' spans where the walk noted them,
    /// so the payload is not read again. Only for a document that repeats no key: the
    /// first member of a name is the only one.
    pub fn lookup_all<const N: usize>(&self, pointers: [Option<&str>; N]) -> [Option<&'a str>; N] {
        let Some(members) = &self.members else {
            // An array, or a key with escapes: rare enough to read for each pointer.
            return pointers.map(|pointer| lookup(self.text, pointer?));
        };
        pointers.map(|pointer| {
            let pointer = pointer?;
            if pointer.is_empty() {
                return Some(trim(self.text));
            }
            let (token, rest) = split_first(pointer)?;
            let (_, value) = members.iter().find(|(key, _)| *key == token)?;
            if rest.is_empty() {
                Some(value)
            } else {
                lookup(value, rest)
            }
        })
    }
}

/// Strict RFC 8259 check of `bytes` (the rules of [`super::parse_json`]), without
/// building anything.
pub fn check(bytes: &[u8]) -> Result<Checked<'_>, MalformedPayload> {
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

/// The whitespace JSON allows between tokens.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
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

/// The text of the value `pointer` (RFC 6901) names in `doc`, a document that passed
/// [`check`] without repeating a key: so the first member of a name is the only one, and
/// reading stops there instead of going through the rest (the data, often).
pub fn lookup<'a>(doc: &'a str, pointer: &str) -> Option<&'a str> {
    let mut target = trim(doc);
    for token in super::fields::tokens(pointer)? {
        // Checked first: with `arbitrary_precision`, serde_json shows a number as a map,
        // which must not answer for a key.
        let step = match first_byte(target.as_bytes())? {
            b'{' => Step::Key(&token),
            b'[' => Step::Index(super::fields::index(&token)?),
            _ => return None,
        };
        let mut found = None;
        let mut de = serde_json::Deserializer::from_str(target);
        // Ends in an error when it stops early; `found` tells.
        let _ = Member {
            step,
            found: &mut found,
        }
        .deserialize(&mut de);
        target = found?;
    }
    Some(target)
}

/// A pointer's first reference token, unescaped, and the pointer after it.
fn split_first(pointer: &str) -> Option<(Cow<'_, str>, &str)> {
    let rest = pointer.strip_prefix('/')?;
    let (token, after) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    Some((super::fields::unescape(token), after))
}

/// The part of `body` that `text` (borrowed from it) covers, without a copy.
pub fn span(body: &Bytes, text: &str) -> Bytes {
    let start = (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize);
    match start {
        Some(start) if start + text.len() <= body.len() => body.slice(start..start + text.len()),
        // Not reached: every text handed here was borrowed from `body`.
        _ => Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// The document without the whitespace JSON allows around it.
pub fn trim(doc: &str) -> &str {
    doc.trim_matches(|c: char| u8::try_from(c).is_ok_and(is_ws))
}

/// The first byte after leading whitespace.
pub fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|&b| !is_ws(b))
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

fn repeats(keys: &[Cow<'_, str>]) -> bool {
    if keys.len() <= 8 {
        return keys
            .iter()
            .enumerate()
            .any(|(i, k)| keys[i + 1..].contains(k));
    }
    // Sorted aside: the top object's keys stay in document order for `members`.
    let mut sorted: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// An object key, borrowed from the document unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

/// One step of a pointer: an object's member or an array's element.
enum Step<'t> {
    Key(&'t str),
    Index(usize),
}

/// Finds one step's text, then stops reading with an error.
struct Member<'t, 'f, 'de> {
    step: Step<'t>,
    found: &'f mut Option<&'de str>,
}

impl<'de> DeserializeSeed<'de> for Member<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Step::Key(wanted) = self.step else {
            return Ok(());
        };
        while let Some(Key(key)) = map.next_key()? {
            if key == wanted {
                *self.found = Some(map.next_value::<&'de RawValue>()?.get());
                return Err(A::Error::custom(STOP));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Step::Index(wanted) = self.step else {
            return Ok(());
        };
        for _ in 0..wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        *self.found = seq.next_element::<&'de RawValue>()?.map(RawValue::get);
        Err(A::Error::custom(STOP))
    }
}

/// The "error" that ends a lookup once its member is found.
const STOP: &str = "found";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn lookups_give_the_text_as_sent() {
        let doc = r#" { "a" : { "b/c" : [ 10 , { "d~e" : "x" } ] , "" : 1 } ,
            "n" : 1.50 , "big" : 123456789012345678901234567890 , "s" : "\u00e9" } "#;
        assert_eq!(lookup(doc, ""), Some(trim(doc)));
        assert_eq!(lookup(doc, "/a/b~1c/0"), Some("10"));
        assert_eq!(lookup(doc, "/a/b~1c/1/d~0e"), Some(r#""x""#));
        assert_eq!(lookup(doc, "/a/"), Some("1"));
        assert_eq!(lookup(doc, "/n"), Some("1.50"));
        assert_eq!(lookup(doc, "/big"), Some("123456789012345678901234567890"));
        assert_eq!(lookup(doc, "/s"), Some(r#""\u00e9""#));
        for missing in ["/zz", "/a/b~1c/2", "/a/b~1c/01", "/n/x", "a", "/s/0"] {
            assert_eq!(lookup(doc, missing), None, "{missing}");
        }
        assert_eq!(
            lookup(r#"{"n":5}"#, "/n/$serde_json::private::Number"),
            None
        );
    }

    #[test]
    fn a_span_is_a_slice_of_the_body() {
        let body = Bytes::from_static(br#"{"data":{"k":1}}"#);
        let doc = std::str::from_utf8(&body).unwrap();
        let found = span(&body, lookup(doc, "/data").unwrap());
        assert_eq!(&found[..], br#"{"k":1}"#);
        assert_eq!(found.as_ptr(), body[8..].as_ptr());
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-c\"\\\\é\u{1F600}]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::vec(("[a-c~/\"]{0,2}", inner), 0..5)
                    .prop_map(|members| { Value::Object(members.into_iter().collect()) }),
            ]
        })
    }

    proptest! {
        /// Every pointer into a document finds the same value as `Value::pointer`.
        #[test]
        fn lookups_agree_with_value_pointers(doc in json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&doc).unwrap()
            } else {
                serde_json::to_string(&doc).unwrap()
            };
            prop_assert!(!check(text.as_bytes()).unwrap().repeats_a_key);
            let mut pointers = vec![String::new()];
            let mut i = 0;
            while i < pointers.len() && pointers.len() < 64 {
                let p = pointers[i].clone();
                match doc.pointer(&p) {
                    Some(Value::Object(m)) => pointers.extend(m.keys().map(|k| {
                        format!("{p}/{}", k.replace('~', "~0").replace('/', "~1"))
                    })),
                    Some(Value::Array(a)) => pointers.extend((0..=a.len()).map(|j| format!("{p}/{j}"))),
                    _ => {}
                }
                pointers.push(format!("{p}/nope"));
                i += 1;
            }
            for p in &pointers {
                let found = lookup(&text, p).map(|t| serde_json::from_str::<Value>(t).unwrap());
                prop_assert_eq!(found.as_ref(), doc.pointer(p), "{}", p);
            }
            for four in pointers.chunks(4) {
                let asked: Vec<Option<&str>> = four.iter().map(|p| Some(p.as_str())).collect();
                let mut asked4 = [None; 4];
                asked4[..asked.len()].copy_from_slice(&asked);
                let all = check(text.as_bytes()).unwrap().doc.lookup_all(asked4);
                for (p, got) in four.iter().zip(all) {
                    prop_assert_eq!(got, lookup(&text, p), "{}", p);
                }
            }
        }
    }
}
