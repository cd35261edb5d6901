//! Form bodies the way HrFlow's Python reference reads them (docs/providers.md):
//! `json.dumps({k: v[0] for k, v in urllib.parse.parse_qs(body).items()},
//! separators=(',', ':'))`.
//!
//! Splitting and percent-decoding are `form_urlencoded`'s, which follows the same rules
//! as `parse_qs` (`&` only, `+` is a space, UTF-8 with U+FFFD for invalid bytes); what
//! no crate does is Python's `ensure_ascii` JSON string encoding, written here.

use std::collections::HashSet;
use std::fmt::Write;

/// The fields `parse_qs` keeps, first value of each key at the key's first position.
pub(crate) fn fields(body: &[u8]) -> Vec<(String, String)> {
    // The reference decodes the body as text first, so raw invalid bytes become U+FFFD
    // before percent-decoding and can never join an escaped sequence.
    let text = String::from_utf8_lossy(body);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (key, value) in form_urlencoded::parse(text.as_bytes()) {
        // `parse_qs` drops fields without "=" and fields with an empty value; both come
        // out of form_urlencoded with an empty value (a non-empty raw value never
        // decodes to an empty one).
        if value.is_empty() || !seen.insert(key.clone()) {
            continue;
        }
        out.push((key.into_owned(), value.into_owned()));
    }
    out
}

/// `json.dumps(fields, separators=(',', ':'))` with Python's default `ensure_ascii=True`.
/// Each field's decoded name and value, sorted by name then value, a repeated pair once,
/// concatenated: what Twilio's `RequestValidator.compute_signature` and Mandrill's
/// documented signer append to the URL.
pub(crate) fn sorted_fields(body: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs.into_iter().map(|(k, v)| k + &v).collect()
}

pub(crate) fn canonical_json(fields: &[(String, String)]) -> String {
    let mut out = String::with_capacity(
        2 + fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>(),
    );
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_ascii_string(&mut out, key);
        out.push(':');
        push_ascii_string(&mut out, value);
    }
    out.push('}');
    out
}

/// A JSON string as Python's encoder writes it with `ensure_ascii`: printable ASCII as
/// is (`/` included), the short escapes, and every other code point as lowercase
/// `\uXXXX`, astral ones as a surrogate pair.
fn push_ascii_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(body: &str) -> String {
        canonical_json(&fields(body.as_bytes()))
    }

    #[test]
    fn follows_parse_qs_on_the_documented_example() {
        assert_eq!(
            canon("team_name=yourteam&type=profile.storing.success"),
            r#"{"team_name":"yourteam","type":"profile.storing.success"}"#
        );
    }

    #[test]
    fn drops_blank_and_bare_fields_and_keeps_first_values_in_first_position() {
        assert_eq!(
            canon("a=1&b=&c&a=2&&d=x+y&=v"),
            r#"{"a":"1","d":"x y","":"v"}"#
        );
        assert_eq!(canon("a=1;b=2"), r#"{"a":"1;b=2"}"#, "only & separates");
        assert_eq!(
            canon("%61=1&a=2"),
            r#"{"a":"1"}"#,
            "keys merge after decoding"
        );
        assert_eq!(canon(""), "{}");
    }

    #[test]
    fn escapes_like_ensure_ascii() {
        assert_eq!(
            canon("m=caf%C3%A9+%F0%9F%9A%80+%22q%22+a%2Fb%5C+%09%0A%0D%08%0C%01%7F"),
            r#"{"m":"caf\u00e9 \ud83d\ude80 \"q\" a/b\\ \t\n\r\b\f\u0001\u007f"}"#
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(canon("bad=%FF%FE"), r#"{"bad":"\ufffd\ufffd"}"#);
        assert_eq!(canon("t=%E2%82"), r#"{"t":"\ufffd"}"#);
        assert_eq!(canonical_json(&fields(b"r=\xff%41")), r#"{"r":"\ufffdA"}"#);
        assert_eq!(
            canon("p=%zz%4"),
            r#"{"p":"%zz%4"}"#,
            "broken escapes stay literal"
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        use std::io::Write as _;
        use std::process::{Command, Stdio};

        /// Keys and values: any Unicode (astral and control characters included), with
        /// a few fixed keys so that repeats are common, and blanks.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                prop::sample::select(vec!["type", "profile", "a", "é", "😀", "\u{0}", ""])
                    .prop_map(String::from),
            ]
        }

        proptest! {
            #[test]
            fn urlencoded_fields_round_trip_with_first_values_and_no_blanks(
                pairs in prop::collection::vec((text(), text()), 0..10)
            ) {
                let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
                let mut expected: Vec<(String, String)> = Vec::new();
                for (k, v) in &pairs {
                    if !v.is_empty() && !expected.iter().any(|(ek, _)| ek == k) {
                        expected.push((k.clone(), v.clone()));
                    }
                }
                let got = fields(body.as_bytes());
                prop_assert_eq!(&got, &expected);
                let json = canonical_json(&got);
                prop_assert!(json.is_ascii());
                let parsed: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&json).expect("canonical JSON parses");
                let parsed: Vec<(String, String)> = parsed
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().expect("string").to_string()))
                    .collect();
                prop_assert_eq!(parsed, expected);
            }
        }

        /// Form bodies biased towards the hard cases: separators, escapes valid and
        /// broken, multi-byte and invalid UTF-8, raw non-UTF-8 bytes.
        fn body() -> impl Strategy<Value = Vec<u8>> {
            let tokens: Vec<&'static [u8]> = vec![
                b"&",
                b"=",
                b"+",
                b"%",
                b"%2",
                b"%41",
                b"%2B",
                b"%26",
                b"%3D",
                b"%C3%A9",
                b"%C3",
                b"%A9",
                b"%F0%9F%98%80",
                b"%F0%9F",
                b"%ED%A0%80",
                b"%FF",
                b"%zz",
                b"%0A",
                b"%00",
                b"%7F",
                b"a",
                b"type",
                b"profile",
                b";",
                b" ",
                "é".as_bytes(),
                "😀".as_bytes(),
                b"\x00",
                b"\x1f",
                b"\x7f",
                "\u{2028}".as_bytes(),
                b"\xff",
                b"\xc3",
                b"\xed\xa0\x80",
                b"\"",
                b"\\",
                b"/",
            ];
            prop_oneof![
                prop::collection::vec(prop::sample::select(tokens), 0..24).prop_map(|t| t.concat()),
                prop::collection::vec(any::<u8>(), 0..48),
            ]
        }

        /// The reference itself: CPython's parse_qs and json.dumps, as HrFlow documents
        /// them, over the body decoded as text the way a Python web framework does.
        const PYTHON: &str = "import sys, json, base64, urllib.parse\n\
            for line in sys.stdin:\n\
            \x20   body = base64.b64decode(line).decode('utf-8', 'replace')\n\
            \x20   d = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}\n\
            \x20   print(json.dumps(d, separators=(',', ':')))\n";

        #[test]
        fn canonical_json_matches_cpython_byte_for_byte() {
            use base64::Engine;
            let mut runner = TestRunner::new_with_rng(
                Config::default(),
                TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
            );
            let strategy = body();
            let bodies: Vec<Vec<u8>> = (0..3000)
                .map(|_| strategy.new_tree(&mut runner).expect("value").current())
                .collect();
            let mut child = Command::new("python3")
                .args(["-c", PYTHON])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 is needed for this test (.ci/run installs it)");
            let mut input = String::new();
            for b in &bodies {
                input.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
                input.push('\n');
            }
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("python3 ran");
            assert!(out.status.success());
            let expected = String::from_utf8(out.stdout).expect("ASCII");
            let expected: Vec<&str> = expected.lines().collect();
            assert_eq!(expected.len(), bodies.len());
            for (body, want) in bodies.iter().zip(expected) {
                assert_eq!(
                    canonical_json(&fields(body)),
                    want,
                    "body {:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
}
