//! Reading a verified JSON payload once, without building a tree (docs/request-handling.md check 10, docs/providers.md).
//!
//! [`check`] scans the document once, refusing exactly what parsing into a `Value`
//! refuses (bad syntax, `NaN`, lone surrogates, invalid UTF-8, nesting past 127), and
//! notes whether any object repeats a key. When none does, the
//! envelope's `occurred_at` and `data` are the payload's own text, found where the scan
//! noted each top-level value ([`Doc::lookup_all`], in [`lookup`]) and copied as sent: no tree, no
//! re-serialization, every digit and escape kept. A document that repeats a key goes
//! through a `Value` instead, so that the app sees the last value, as docs/request-handling.md reads it,
//! and never the copy its own parser might prefer.

//!
//! [`scan`] checks a document and notes its members (`walk`, serde_json's own reading,
//! is the oracle it is tested against), [`lookup`] finds a pointer's value
//! in text or in a tree, [`tree`] builds a tree when one is needed, and [`Payload`] puts
//! the two representations behind one lookup, so the rules of docs/providers.md are written once.

use std::fmt;

use bytes::Bytes;
use serde_json::Value;

mod lookup;
mod payload;
mod pointer;
mod scan;
mod tree;
#[cfg(any(test, fuzzing))]
mod walk;

#[cfg(any(test, fuzzing))]
pub(crate) use lookup::lookup;
pub(crate) use payload::{Found, Payload};
pub(crate) use tree::parse as parse_tree;
#[cfg(any(test, fuzzing))]
pub(crate) use {scan::check, walk::check as check_by_walk};

/// A JSON value for the envelope: a span of the verified body, or a tree built when the
/// payload had to be transformed or re-read.
#[derive(Clone, PartialEq)]
pub(crate) enum Json {
    Text(Bytes),
    Tree(Value),
}

impl Json {
    pub(crate) const NULL: Json = Json::Text(Bytes::from_static(b"null"));

    /// Appends the value's JSON text.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
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

/// The part of `body` that `text` (borrowed from it) covers, without a copy.
pub(crate) fn span(body: &Bytes, text: &str) -> Bytes {
    let start = (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize);
    match start {
        Some(start) if start + text.len() <= body.len() => body.slice(start..start + text.len()),
        // Not reached: every text handed here was borrowed from `body`.
        _ => Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// The document without the whitespace JSON allows around it.
pub(crate) fn trim(doc: &str) -> &str {
    doc.trim_matches(|c: char| u8::try_from(c).is_ok_and(is_ws))
}

/// The first byte after leading whitespace.
pub(crate) fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|&b| !is_ws(b))
}

/// The whitespace JSON allows between tokens.
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_a_slice_of_the_body() {
        let body = Bytes::from_static(br#"{"data":{"k":1}}"#);
        let doc = std::str::from_utf8(&body).unwrap();
        let found = span(&body, lookup(doc, "/data").unwrap());
        assert_eq!(&found[..], br#"{"k":1}"#);
        assert_eq!(found.as_ptr(), body[8..].as_ptr());
    }
}
