//! Finding the value an RFC 6901 pointer names: in a checked document's text (read only
//! as far as the value, answered from the scan's notes where it can) and in a tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::value::RawValue;
use serde_json::Value;

use super::pointer::{index, split_first, tokens};
use super::scan::Doc;
use super::{first_byte, trim};

impl<'a> Doc<'a> {
    /// Several [`lookup`]s, answered from the members' spans where the scan noted them,
    /// so the payload is not read again. Only for a document that repeats no key: the
    /// first member of a name is the only one.
    pub(crate) fn lookup_all<const N: usize>(
        &self,
        pointers: [Option<&str>; N],
    ) -> [Option<&'a str>; N] {
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

/// The text of the value `pointer` (RFC 6901) names in `doc`, a document that passed
/// [`check`] without repeating a key: so the first member of a name is the only one, and
/// reading stops there instead of going through the rest (the data, often).
pub(crate) fn lookup<'a>(doc: &'a str, pointer: &str) -> Option<&'a str> {
    let mut target = trim(doc);
    for token in tokens(pointer)? {
        // Checked first: with `arbitrary_precision`, serde_json shows a number as a map,
        // which must not answer for a key.
        let step = match first_byte(target.as_bytes())? {
            b'{' => Step::Key(&token),
            b'[' => Step::Index(index(&token)?),
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

/// In a tree, as `Value::pointer`, without allocating a string per token (only a token
/// holding an escape, `~0` or `~1`, is copied).
pub(super) fn in_tree<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
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

pub(super) fn in_tree_mut<'a>(value: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
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

/// An object key, borrowed from the document unless it holds escapes.
pub(super) struct Key<'de>(pub(super) Cow<'de, str>);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::json::check;
    use proptest::prelude::*;

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
    fn tree_lookups_agree_with_serde_json_pointers() {
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
            assert_eq!(in_tree(&v, p), v.pointer(p), "{p:?}");
            let mut copy = v.clone();
            let expected = v.clone().pointer_mut(p).map(|x| x.take());
            assert_eq!(
                in_tree_mut(&mut copy, p).map(|x| x.take()),
                expected,
                "{p:?}"
            );
        }
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
