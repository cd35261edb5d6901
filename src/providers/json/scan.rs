//! The validating scan of a verified payload: RFC 8259 as strictly as parsing into a
//! `serde_json::Value` reads it (the same documents refused: bad syntax, `NaN`, lone
//! surrogates, control characters in strings, invalid UTF-8, nesting past 127), without
//! building anything; on the way it notes repeated keys and where the top-level members'
//! values lie.
//!
//! Why by hand: serde_json's parser, driven through a visitor that keeps nothing, still
//! decodes every string and number as it goes and cost about 7 instructions a byte here,
//! the largest part of a verified request after the HTTP plumbing; crates that scan
//! faster either build a tape (simd-json) or skip what they do not return without
//! checking it (sonic-rs's lazy lookups). Strings, the bulk of a payload, are crossed
//! with `memchr`'s vectorised search for `"` and `\`. The rare cases stay with serde_json
//! itself: a key holding an escape is decoded by it, so keys compare exactly as a
//! `Value`'s map keys do. The reference walk over serde_json (`walk`) stays as the
//! oracle: a property test and the `json` fuzz target hold the two to the same verdict,
//! the same repeated-key finding and the same members on every input.

use std::borrow::Cow;

use crate::providers::MalformedPayload;

/// serde_json refuses a document whose containers nest this deep.
const DEPTH_LIMIT: usize = 128;

/// What [`check`] learned of a valid document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked<'a> {
    /// The top level is an object.
    pub object: bool,
    /// Some object, at any depth, repeats a key.
    pub repeats_a_key: bool,
    pub doc: Doc<'a>,
}

/// A checked document's text, with where its top-level members' values lie when the
/// scan could tell, so that looking them up reads nothing again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doc<'a> {
    pub text: &'a str,
    /// (key, value text) of each top-level member in order; `None` when the top level
    /// is not an object or a key holds escapes (it is then not where the text has it).
    pub(super) members: Option<Vec<(&'a str, &'a str)>>,
}

/// Strict RFC 8259 check of `bytes` (docs/request-handling.md check 10), without
/// building anything.
pub(crate) fn check(bytes: &[u8]) -> Result<Checked<'_>, MalformedPayload> {
    // UTF-8 first, in one pass over the whole body, so the scan need not check strings.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| MalformedPayload(format!("body is not valid JSON (not UTF-8: {e})")))?;
    let mut scan = Scan {
        text,
        bytes,
        at: 0,
        depth: 0,
        repeats_a_key: false,
        // Room for the keys of a usual payload's nested objects, and its top level.
        keys: Vec::with_capacity(32),
        members: None,
    };
    scan.document().map_err(|Fault(what, at)| {
        MalformedPayload(format!("body is not valid JSON ({what} at byte {at})"))
    })?;
    let object = super::first_byte(bytes) == Some(b'{');
    Ok(Checked {
        object,
        repeats_a_key: scan.repeats_a_key,
        doc: Doc {
            text,
            members: scan.members,
        },
    })
}

/// What was wrong, and where.
struct Fault(&'static str, usize);

type Step = Result<(), Fault>;

struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    repeats_a_key: bool,
    /// The keys of the objects being read, innermost last (one buffer for all of them).
    keys: Vec<Cow<'a, str>>,
    /// The top-level object's members, once read.
    members: Option<Vec<(&'a str, &'a str)>>,
}

impl<'a> Scan<'a> {
    fn document(&mut self) -> Step {
        self.skip_ws();
        self.value(true)?;
        self.skip_ws();
        if self.at < self.bytes.len() {
            return Err(self.fault("trailing characters"));
        }
        Ok(())
    }

    fn fault(&self, what: &'static str) -> Fault {
        Fault(what, self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(super::is_ws) {
            self.at += 1;
        }
    }

    fn value(&mut self, top: bool) -> Step {
        match self.peek() {
            Some(b'{') => self.object(top),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fault("expected value")),
            None => Err(self.fault("EOF while parsing a value")),
        }
    }

    fn nest(&mut self) -> Step {
        self.depth += 1;
        if self.depth >= DEPTH_LIMIT {
            return Err(self.fault("recursion limit exceeded"));
        }
        Ok(())
    }

    fn object(&mut self, top: bool) -> Step {
        self.nest()?;
        self.at += 1;
        let first_key = self.keys.len();
        let mut spans = if top {
            Vec::with_capacity(16)
        } else {
            Vec::new()
        };
        let mut escaped = false;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(self.fault("expected a key"));
                }
                let key = self.key()?;
                escaped |= matches!(key, Cow::Owned(_));
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(self.fault("expected `:`"));
                }
                self.at += 1;
                self.skip_ws();
                let start = self.at;
                self.value(false)?;
                if top {
                    if let Cow::Borrowed(key) = key {
                        spans.push((key, &self.text[start..self.at]));
                    }
                }
                self.keys.push(key);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.skip_ws();
                    }
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    Some(_) => return Err(self.fault("expected `,` or `}`")),
                    None => return Err(self.fault("EOF while parsing an object")),
                }
            }
        }
        if !self.repeats_a_key && repeats(&self.keys[first_key..]) {
            self.repeats_a_key = true;
        }
        self.keys.truncate(first_key);
        if top && !escaped {
            self.members = Some(spans);
        }
        self.depth -= 1;
        Ok(())
    }

    fn array(&mut self) -> Step {
        self.nest()?;
        self.at += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                self.value(false)?;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.skip_ws();
                    }
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    Some(_) => return Err(self.fault("expected `,` or `]`")),
                    None => return Err(self.fault("EOF while parsing a list")),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// A key: borrowed from the text, or decoded by serde_json when it holds escapes.
    fn key(&mut self) -> Result<Cow<'a, str>, Fault> {
        let start = self.at;
        let escaped = self.string()?;
        let quoted = &self.text[start..self.at];
        if !escaped {
            return Ok(Cow::Borrowed(&quoted[1..quoted.len() - 1]));
        }
        serde_json::from_str::<String>(quoted)
            .map(Cow::Owned)
            .map_err(|_| Fault("invalid escape in a key", start))
    }

    /// A string, from its opening quote to after its closing one; whether it holds
    /// escapes.
    fn string(&mut self) -> Result<bool, Fault> {
        self.at += 1;
        let mut escaped = false;
        loop {
            let rest = &self.bytes[self.at..];
            let Some(stop) = memchr::memchr2(b'"', b'\\', rest) else {
                return Err(Fault("EOF while parsing a string", self.bytes.len()));
            };
            if has_control(&rest[..stop]) {
                return Err(self.fault("control character in a string"));
            }
            self.at += stop + 1;
            if rest[stop] == b'"' {
                return Ok(escaped);
            }
            escaped = true;
            self.escape()?;
        }
    }

    /// After a backslash.
    fn escape(&mut self) -> Step {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.at += 1;
                Ok(())
            }
            Some(b'u') => {
                self.at += 1;
                let unit = self.hex4()?;
                match unit {
                    0xDC00..=0xDFFF => Err(self.fault("lone trailing surrogate")),
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                            return Err(self.fault("lone leading surrogate"));
                        }
                        self.at += 2;
                        match self.hex4()? {
                            0xDC00..=0xDFFF => Ok(()),
                            _ => Err(self.fault("lone leading surrogate")),
                        }
                    }
                    _ => Ok(()),
                }
            }
            Some(_) => Err(self.fault("invalid escape")),
            None => Err(self.fault("EOF while parsing a string")),
        }
    }

    fn hex4(&mut self) -> Result<u16, Fault> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or(Fault("EOF while parsing a string", self.bytes.len()))?;
        let mut unit = 0u16;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.fault("invalid escape"))?;
            unit = unit << 4 | v as u16;
        }
        self.at += 4;
        Ok(unit)
    }

    fn literal(&mut self, word: &'static [u8]) -> Step {
        if self.bytes.get(self.at..self.at + word.len()) != Some(word) {
            return Err(self.fault("expected value"));
        }
        self.at += word.len();
        Ok(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; any magnitude (numbers
    /// are kept as their text, never rounded).
    fn number(&mut self) -> Step {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.fault("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Step {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.fault("invalid number"));
        }
        self.digits();
        Ok(())
    }
}

/// Whether `bytes` hold a control character (which a string must escape). The smallest
/// byte, without an early exit, so that it compiles to a vector loop.
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().fold(u8::MAX, |least, &b| least.min(b)) < 0x20
}

/// Whether an object's keys (as decoded) name one member twice.
pub(super) fn repeats(keys: &[Cow<'_, str>]) -> bool {
    if keys.len() <= 8 {
        return keys
            .iter()
            .enumerate()
            .any(|(i, k)| keys[i + 1..].contains(k));
    }
    let mut sorted: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::json::check_by_walk;
    use proptest::prelude::*;

    /// The scan's finding and serde_json's walk's, side by side.
    fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
        let scanned = check(bytes);
        let walked = check_by_walk(bytes);
        prop_assert_eq!(
            scanned.as_ref().ok(),
            walked.as_ref().ok(),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        prop_assert_eq!(scanned.is_ok(), walked.is_ok());
        Ok(())
    }

    #[test]
    fn the_edges_of_the_grammar_read_as_serde_json_reads_them() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep_objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        let cases: Vec<String> = vec![
            deep(127),
            deep(128),
            deep_objects(127),
            deep_objects(128),
            r#"{"a":"\ud83d\ude00","b":"\uD83D\uDE00"}"#.into(),
            r#"["\ud800"]"#.into(),
            r#"["\ud800\n"]"#.into(),
            r#"["\ud800\u0041"]"#.into(),
            r#"["\udc00"]"#.into(),
            r#"["\u00e9\u0000\/\b\f\n\r\t\"\\"]"#.into(),
            r#"["\x"]"#.into(),
            r#"["\u12G4"]"#.into(),
            r#"["\u12"]"#.into(),
            "[\"a\u{7f}\u{e9}\"]".into(),
            "[\"a\tb\"]".into(),
            "[-0, 0.5, 1e400, -1E-400, 1.5e+3, 123456789012345678901234567890]".into(),
            "[01]".into(),
            "[-]".into(),
            "[1.]".into(),
            "[.5]".into(),
            "[1e]".into(),
            "[1e+]".into(),
            "[+1]".into(),
            "[tru]".into(),
            "[true false]".into(),
            "[nul]".into(),
            "{\"a\" 1}".into(),
            "{\"a\":1,}".into(),
            "{,}".into(),
            "[1,]".into(),
            "[,1]".into(),
            "{1:1}".into(),
            "\u{feff}{}".into(),
            " \t\r\n{} \n".into(),
            "{} {}".into(),
            "".into(),
            "   ".into(),
            "\"text\"".into(),
            r#"{"a":1,"\u0061":2}"#.into(),
            r#"{"k\"ey":1,"n":{"x":1,"x":2}}"#.into(),
        ];
        for case in cases {
            agree(case.as_bytes())
                .map_err(|e| format!("{case:?}: {e}"))
                .unwrap();
        }
        assert!(check(deep(127).as_bytes()).is_ok());
        assert!(check(deep(128).as_bytes()).is_err());
    }

    /// Text from JSON's own alphabet, so that most inputs are near-JSON and every branch
    /// of the grammar is reached, valid and broken.
    fn near_json() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"", "\"k\"", "\"a\"", "\"a\":", "\\", "\\u", "\\ud83d",
            "\\ude00", "\\n", "0", "1", "-", ".", "e", "E", "+", "12.5e-3", "true", "false",
            "null", " ", "\n", "\t", "\u{1}", "é", "x", "\"v\"",
        ]);
        prop::collection::vec(token, 0..40).prop_map(|t| t.concat().into_bytes())
    }

    /// Valid documents, shaped the way payloads are, that the scan must read exactly.
    fn document() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "[a-z\\\\\"é\n\u{1}]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..6).prop_map(|m| {
                    let members: Vec<String> = m
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{ {} }}", members.join(" ,\n"))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_scan_agrees_with_serde_json_on_near_json(bytes in near_json()) {
            agree(&bytes)?;
        }

        #[test]
        fn the_scan_agrees_with_serde_json_on_documents(doc in document(), cut in any::<prop::sample::Index>()) {
            agree(doc.as_bytes())?;
            // And on every document cut short.
            let end = cut.index(doc.len() + 1);
            if doc.is_char_boundary(end) {
                agree(&doc.as_bytes()[..end])?;
            }
        }
    }
}
