//! `[routes.hmac]`: the generic HMAC scheme, its message template parsed once.

use super::checker::Checker;
use super::file::HmacSection;
use std::borrow::Cow;

use crate::route::{
    HmacAlgorithm, HmacScheme, KeyEncoding, MessagePart, SigEncoding, SigList, TimeUnit, Timestamp,
};

pub(super) fn hmac(c: &mut Checker<'_>, at: &str, h: &HmacSection) -> Option<HmacScheme> {
    let header = match &h.header {
        None => c.fail(format!("{at}.header"), "missing"),
        Some(n) => c.header_name(&format!("{at}.header"), n),
    };
    let encoding = match h.encoding.as_deref() {
        None | Some("hex") => Some(SigEncoding::Hex),
        Some("base64") => Some(SigEncoding::Base64),
        Some(o) => c.fail(
            format!("{at}.encoding"),
            format!("unknown encoding {o:?} (expected \"hex\" or \"base64\")"),
        ),
    };
    let algorithm = match h.algorithm.as_deref() {
        None | Some("sha256") => Some(HmacAlgorithm::Sha256),
        Some("sha512") => Some(HmacAlgorithm::Sha512),
        Some("sha1") => Some(HmacAlgorithm::Sha1),
        Some(o) => c.fail(
            format!("{at}.algorithm"),
            format!("unknown algorithm {o:?} (expected \"sha256\", \"sha512\" or \"sha1\")"),
        ),
    };
    let unit = match h.timestamp_unit.as_deref() {
        None | Some("seconds") => Some(TimeUnit::Seconds),
        Some("milliseconds") => Some(TimeUnit::Millis),
        Some("rfc3339") => Some(TimeUnit::Rfc3339),
        Some(o) => c.fail(
            format!("{at}.timestamp_unit"),
            format!("unknown unit {o:?} (expected \"seconds\", \"milliseconds\" or \"rfc3339\")"),
        ),
    };
    let key = match h.key_encoding.as_deref() {
        None | Some("raw") => Some(KeyEncoding::Raw),
        Some("base64") => Some(KeyEncoding::Base64),
        Some(o) => c.fail(
            format!("{at}.key_encoding"),
            format!("unknown key encoding {o:?} (expected \"raw\" or \"base64\")"),
        ),
    };
    let list = list(c, at, h);
    let template = h.message.as_deref().unwrap_or("{body}");
    let message = parse_template(template);
    let uses = |p: &MessagePart| message.contains(p);
    if !uses(&MessagePart::Body) {
        c.fail::<()>(
            format!("{at}.message"),
            format!(
                "{template:?} does not contain {{body}}: it would verify nothing about the payload"
            ),
        );
    }
    let in_list = h.timestamp_key.is_some();
    let timestamp_header = match (&h.timestamp_header, uses(&MessagePart::Timestamp)) {
        (Some(n), true) if !in_list => c.header_name(&format!("{at}.timestamp_header"), n),
        (Some(_), true) => c.fail(format!("{at}.timestamp_header"), "not with timestamp_key: the timestamp is in the signature header"),
        (None, false) if in_list => c.fail(format!("{at}.timestamp_key"), "the message template does not sign {timestamp}: an unsigned timestamp protects nothing"),
        (None, _) if in_list => None,
        (None, false) => None,
        (Some(_), false) => c.fail(format!("{at}.timestamp_header"), "the message template does not sign {timestamp}: an unsigned timestamp protects nothing"),
        (None, true) => c.fail(format!("{at}.timestamp_header"), "required because the message template uses {timestamp}"),
    };
    let id_header = match (&h.id_header, uses(&MessagePart::Id)) {
        (Some(n), true) => c.header_name(&format!("{at}.id_header"), n),
        (None, false) => None,
        (Some(_), false) => c.fail(format!("{at}.id_header"), "the message template does not sign {id}: an unsigned id would let a replay with a fresh id slip past dedup"),
        (None, true) => c.fail(format!("{at}.id_header"), "required because the message template uses {id}"),
    };
    let ok = uses(&MessagePart::Body)
        && (h.timestamp_header.is_some() == timestamp_header.is_some())
        && (!in_list || uses(&MessagePart::Timestamp))
        && (h.id_header.is_some() == id_header.is_some());
    let scheme = HmacScheme {
        headers: Cow::Owned(vec![name(header?)]),
        prefix: h.prefix.clone().filter(|p| !p.is_empty()).map(Cow::Owned),
        list: list?,
        encoding: encoding?,
        algorithm: algorithm?,
        key: key?,
        message: Cow::Owned(message),
        timestamp: match (timestamp_header, in_list) {
            (Some(header), _) => Some(Timestamp {
                header: Some(name(header)),
                unit: unit?,
            }),
            (None, true) => Some(Timestamp {
                header: None,
                unit: unit?,
            }),
            (None, false) => None,
        },
        id_header: id_header.map(name),
    };
    ok.then_some(scheme)
}

/// `separator` and `timestamp_key`: one signature (default), several each marked by
/// `prefix`, or `k=v` entries whose timestamp is under `timestamp_key` and whose
/// signatures are under the key `prefix` names (`v1=` → `v1`).
fn list(c: &mut Checker<'_>, at: &str, h: &HmacSection) -> Option<SigList> {
    let separator = match h.separator.as_deref() {
        None => None,
        Some(s) if s.len() == 1 && s.as_bytes()[0].is_ascii_punctuation() => Some(s.as_bytes()[0]),
        Some(s) => {
            return c.fail(
                format!("{at}.separator"),
                format!("{s:?} is not one punctuation character, such as \",\" or \";\""),
            )
        }
    };
    let prefix = h.prefix.as_deref().unwrap_or_default();
    match (separator, &h.timestamp_key) {
        (None, None) => Some(SigList::One),
        (Some(separator), None) if !prefix.is_empty() => Some(SigList::Each(separator)),
        (Some(_), None) => c.fail(
            format!("{at}.prefix"),
            "required with separator: it marks the signatures among the entries",
        ),
        (Some(separator), Some(key)) => match prefix.strip_suffix('=') {
            Some(signature) if !signature.is_empty() && !key.is_empty() => Some(SigList::Keyed {
                separator,
                timestamp: Cow::Owned(key.clone()),
                signature: Cow::Owned(signature.to_string()),
            }),
            _ => c.fail(
                format!("{at}.prefix"),
                "with timestamp_key, the signatures' key and \"=\", e.g. \"v1=\"",
            ),
        },
        (None, Some(_)) => c.fail(
            format!("{at}.timestamp_key"),
            "needs separator: the entries of the signature header are split on it",
        ),
    }
}

/// A validated header name as the scheme keeps it (lowercase text).
fn name(header: http::HeaderName) -> crate::route::Name {
    Cow::Owned(header.as_str().to_string())
}

/// Splits a template into literals and the `{body}`, `{timestamp}`, `{id}` placeholders;
/// any other brace is literal text.
fn parse_template(t: &str) -> Vec<MessagePart> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = t;
    while !rest.is_empty() {
        let found = [
            ("{body}", MessagePart::Body),
            ("{timestamp}", MessagePart::Timestamp),
            ("{id}", MessagePart::Id),
        ]
        .into_iter()
        .find(|(tag, _)| rest.starts_with(tag));
        match found {
            Some((tag, part)) => {
                if !literal.is_empty() {
                    parts.push(MessagePart::Literal(Cow::Owned(std::mem::take(
                        &mut literal,
                    ))));
                }
                parts.push(part);
                rest = &rest[tag.len()..];
            }
            None => {
                let ch = rest.chars().next().unwrap_or_default();
                literal.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
    }
    if !literal.is_empty() {
        parts.push(MessagePart::Literal(Cow::Owned(literal)));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_placeholders_and_literals() {
        assert_eq!(
            parse_template("v0:{timestamp}:{body}{x}"),
            vec![
                MessagePart::Literal(Cow::Borrowed("v0:")),
                MessagePart::Timestamp,
                MessagePart::Literal(Cow::Borrowed(":")),
                MessagePart::Body,
                MessagePart::Literal(Cow::Borrowed("{x}")),
            ]
        );
    }
}
