//! Pieces every scheme shares, written once: header lookups that refuse smuggled copies,
//! timestamp parsing and the replay window, signature decoding, and the constant-time
//! comparison against every configured secret.

use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::header::AsHeaderName;
use http::{HeaderMap, HeaderName};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::VerifyError;
use crate::route::{HmacAlgorithm, Secret};

/// A security header: present once, or a refusal. A second copy could let a proxy and
/// this gateway read different values, so it never verifies.
pub(crate) enum Header<'a> {
    Absent,
    One(&'a [u8]),
    Repeated,
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: impl AsHeaderName) -> Header<'a> {
    let mut values = headers.get_all(name).into_iter();
    match (values.next(), values.next()) {
        (None, _) => Header::Absent,
        (Some(v), None) => Header::One(v.as_bytes()),
        (Some(_), Some(_)) => Header::Repeated,
    }
}

/// Check 6: the signature header is present (repeats are refused later, at check 9).
pub(crate) fn signature<'a>(
    headers: &'a HeaderMap,
    name: impl AsHeaderName,
) -> Result<Header<'a>, VerifyError> {
    match header(headers, name) {
        Header::Absent => Err(VerifyError::MissingSignature),
        found => Ok(found),
    }
}

/// An unsigned header's text, for what it may only describe (an event type): one copy,
/// UTF-8, not empty.
pub(crate) fn text(found: Header<'_>) -> Option<String> {
    match found {
        Header::One(v) if !v.is_empty() => std::str::from_utf8(v).ok().map(str::to_string),
        _ => None,
    }
}

impl<'a> Header<'a> {
    /// Check 9's view of a signature header: exactly one copy.
    pub(crate) fn single(self) -> Result<&'a [u8], VerifyError> {
        match self {
            Header::One(v) => Ok(v),
            Header::Absent | Header::Repeated => Err(VerifyError::InvalidSignature),
        }
    }
}

/// Check 7: one timestamp header holding `-?[0-9]+` within i64. Returns its exact text
/// (which is what gets signed) and its value.
pub(crate) fn timestamp(
    headers: &HeaderMap,
    name: impl AsHeaderName,
) -> Result<(&[u8], i64), VerifyError> {
    let Header::One(raw) = header(headers, name) else {
        return Err(VerifyError::InvalidTimestamp);
    };
    Ok((raw, integer(raw)?))
}

/// An RFC 3339 date as unix seconds: `2021-09-24T17:29:16Z`, with a fraction
/// (`…16.634234626Z`, Twitch) or an offset (`…16-08:00`, Box). Dates before 1970 and
/// anything else are check 7.
pub(crate) fn rfc3339(raw: &[u8]) -> Result<i64, VerifyError> {
    let text = std::str::from_utf8(raw).map_err(|_| VerifyError::InvalidTimestamp)?;
    let (utc, offset) = match text.len().checked_sub(6).map(|at| text.split_at(at)) {
        Some((base, tail)) if matches!(tail.as_bytes()[0], b'+' | b'-') => {
            let b = tail.as_bytes();
            let digits = |i: usize| -> Option<i64> {
                let (h, l) = (b.get(i)?, b.get(i + 1)?);
                (h.is_ascii_digit() && l.is_ascii_digit())
                    .then(|| i64::from(h - b'0') * 10 + i64::from(l - b'0'))
            };
            let (Some(hours), b':', Some(minutes)) = (digits(1), b[3], digits(4)) else {
                return Err(VerifyError::InvalidTimestamp);
            };
            let sign = if b[0] == b'-' { -1 } else { 1 };
            (format!("{base}Z"), sign * (hours * 3600 + minutes * 60))
        }
        _ => (text.to_string(), 0),
    };
    let at = humantime::parse_rfc3339(&utc).map_err(|_| VerifyError::InvalidTimestamp)?;
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| VerifyError::InvalidTimestamp)?
        .as_secs();
    i64::try_from(secs)
        .map(|s| s - offset)
        .map_err(|_| VerifyError::InvalidTimestamp)
}

/// `-?[0-9]+` within i64, from a header or a signature list (Stripe's `t=`).
pub(crate) fn integer(raw: &[u8]) -> Result<i64, VerifyError> {
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(VerifyError::InvalidTimestamp);
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(VerifyError::InvalidTimestamp)
}

/// The values of `key` in a `k=v<sep>k=v…` signature list (Stripe's `t=…,v1=…`, Paddle's
/// `ts=…;h1=…`), in order; entries without `=` are skipped, spaces around entries
/// ignored.
pub(crate) fn list_values<'a>(
    raw: &'a [u8],
    separator: u8,
    key: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    raw.split(move |&b| b == separator)
        .filter_map(move |entry| {
            let entry = entry.trim_ascii();
            let eq = entry.iter().position(|&b| b == b'=')?;
            (&entry[..eq] == key).then_some(&entry[eq + 1..])
        })
}

/// A signature list's one timestamp: absent, repeated or not an integer is check 7.
pub(crate) fn list_timestamp<'a>(
    raw: &'a [u8],
    separator: u8,
    key: &'a [u8],
) -> Result<(&'a [u8], i64), VerifyError> {
    let mut values = list_values(raw, separator, key);
    match (values.next(), values.next()) {
        (Some(text), None) => Ok((text, integer(text)?)),
        _ => Err(VerifyError::InvalidTimestamp),
    }
}

/// Slack's and Zoom's scheme (the same one under other header names): `v0=<hex>` =
/// HMAC-SHA256 of `v0:<ts>:<body>`, the timestamp in the window. Returns the secret that
/// verified (Zoom answers its handshake with it).
pub(crate) fn v0_signature<'s>(
    headers: &HeaderMap,
    body: &[u8],
    [signature, timestamp]: [&HeaderName; 2],
    secrets: &'s [Secret],
    now: i64,
    tolerance: Duration,
) -> Result<&'s Secret, VerifyError> {
    let signature = self::signature(headers, signature)?;
    let (ts_text, ts) = self::timestamp(headers, timestamp)?;
    within_window(ts, now, tolerance)?;
    let expected = decode_hex(signature.single()?, b"v0=")?;
    let message: [&[u8]; 4] = [b"v0:", ts_text, b":", body];
    which_secret_signs(HmacAlgorithm::Sha256, secrets, &message, &[&expected])
        .ok_or(VerifyError::InvalidSignature)
}

/// The common shape of a preset: one HMAC over `message` that must equal the decoded
/// signature, by any configured secret.
pub(crate) fn hmac_matches(
    algorithm: HmacAlgorithm,
    secrets: &[Secret],
    message: &[&[u8]],
    expected: &[u8],
) -> Result<(), VerifyError> {
    if any_secret_signs(algorithm, secrets, message, &[expected]) {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

/// The URL a provider signs (Twilio, HubSpot, Mandrill): the route's `public_url`,
/// then `?` and the request's raw query when it has one; `None` without a public URL.
pub(crate) fn signed_url(public_url: Option<&str>, query: Option<&str>) -> Option<String> {
    let base = public_url?;
    Some(match query {
        Some(query) => format!("{base}?{query}"),
        None => base.to_string(),
    })
}

/// Check 8: `|now - timestamp| <= tolerance`, in whole seconds, both directions.
pub(crate) fn within_window(
    timestamp: i64,
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    judge_skew(
        i128::from(now) - i128::from(timestamp),
        i128::from(tolerance.as_secs()),
    )
}

/// The same in milliseconds, for the schemes that sign milliseconds (Linear).
pub(crate) fn within_window_ms(
    timestamp_ms: i64,
    now_ms: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    judge_skew(
        i128::from(now_ms) - i128::from(timestamp_ms),
        i128::try_from(tolerance.as_millis()).unwrap_or(i128::MAX),
    )
}

fn judge_skew(skew: i128, limit: i128) -> Result<(), VerifyError> {
    if skew > limit {
        Err(VerifyError::TimestampTooOld)
    } else if -skew > limit {
        Err(VerifyError::TimestampTooNew)
    } else {
        Ok(())
    }
}

/// Hex in either case after an optional prefix; anything else (empty included) cannot be
/// a signature.
pub(crate) fn decode_hex(raw: &[u8], prefix: &[u8]) -> Result<Tag, VerifyError> {
    let text = raw.strip_prefix(prefix).unwrap_or(raw);
    if text.is_empty() || !text.len().is_multiple_of(2) || text.len() / 2 > Tag::MAX {
        // Longer than any tag or signature checked here: it cannot match.
        return Err(VerifyError::InvalidSignature);
    }
    // By table, a pair of digits at a time: `hex::decode_to_slice` took 30 instructions
    // a byte, more than the rest of the check.
    let mut tag = Tag::zeroed(text.len() / 2);
    for (out, pair) in tag.bytes.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        if (high | low) == NOT_HEX {
            return Err(VerifyError::InvalidSignature);
        }
        *out = high << 4 | low;
    }
    Ok(tag)
}

/// Marks a byte that is not a hex digit: or'd with any digit (0–15) it stays itself.
const NOT_HEX: u8 = 0xff;
/// Each byte's value as a hex digit (either case), or [`NOT_HEX`].
const HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Up to 64 bytes, kept on the stack: an HMAC tag (SHA-512's is the longest) or a
/// signature decoded from a header, one of each per request.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    bytes: [u8; Tag::MAX],
    len: usize,
}

impl Tag {
    const MAX: usize = 64;

    fn zeroed(len: usize) -> Tag {
        Tag {
            bytes: [0; Tag::MAX],
            len,
        }
    }

    /// A decoded signature, if it fits (none longer can match a tag).
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Tag> {
        (bytes.len() <= Tag::MAX).then(|| Tag::of(bytes))
    }

    fn of(bytes: &[u8]) -> Tag {
        let mut tag = Tag::zeroed(bytes.len().min(Tag::MAX));
        tag.bytes[..tag.len].copy_from_slice(&bytes[..tag.len]);
        tag
    }
}

impl std::ops::Deref for Tag {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl AsRef<[u8]> for Tag {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Signatures stay out of Debug output.
        write!(f, "Tag({} bytes)", self.len)
    }
}

/// Base64 signatures, standard alphabet, padding optional (senders differ).
pub(crate) fn decode_base64(raw: &[u8]) -> Option<Vec<u8>> {
    decode_with(&B64_STANDARD, raw)
}

/// Base64url (RFC 4648 §5), padding optional.
pub(crate) fn decode_base64url(raw: &[u8]) -> Option<Vec<u8>> {
    decode_with(&B64_URL, raw)
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const B64_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

fn decode_with(engine: &GeneralPurpose, raw: &[u8]) -> Option<Vec<u8>> {
    engine.decode(raw).ok().filter(|bytes| !bytes.is_empty())
}

/// Whether any secret's HMAC over the concatenated `message` parts equals any of the
/// `candidates`. Each secret's MAC is computed once; each comparison checks the length
/// and is constant-time in the content.
pub(crate) fn any_secret_signs(
    algorithm: HmacAlgorithm,
    secrets: &[Secret],
    message: &[&[u8]],
    candidates: &[&[u8]],
) -> bool {
    which_secret_signs(algorithm, secrets, message, candidates).is_some()
}

/// The first secret whose HMAC equals one of the `candidates` (Zoom answers its
/// handshake with the secret that verified).
pub(crate) fn which_secret_signs<'s>(
    algorithm: HmacAlgorithm,
    secrets: &'s [Secret],
    message: &[&[u8]],
    candidates: &[&[u8]],
) -> Option<&'s Secret> {
    secrets.iter().find(|secret| {
        let tag = tag(algorithm, secret.expose(), message);
        candidates
            .iter()
            .any(|c| c.len() == tag.len() && bool::from(tag.ct_eq(c)))
    })
}

/// The HMAC of the concatenated `message` parts, for verifying and for signing.
pub(crate) fn tag(algorithm: HmacAlgorithm, key: &[u8], message: &[&[u8]]) -> Tag {
    match algorithm {
        HmacAlgorithm::Sha1 => mac::<Hmac<Sha1>>(key, message),
        HmacAlgorithm::Sha256 => mac::<Hmac<Sha256>>(key, message),
        HmacAlgorithm::Sha512 => mac::<Hmac<Sha512>>(key, message),
    }
}

/// HMAC-SHA256 of the concatenated parts.
#[cfg(test)]
pub(crate) fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> Vec<u8> {
    tag(HmacAlgorithm::Sha256, key, message).to_vec()
}

fn mac<M: Mac + KeyInit>(key: &[u8], message: &[&[u8]]) -> Tag {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return Tag::zeroed(0);
    };
    for part in message {
        mac.update(part);
    }
    Tag::of(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn rfc3339_dates_read_with_fractions_and_offsets() {
        let at = |t: &str| rfc3339(t.as_bytes());
        assert_eq!(at("2025-11-24T16:00:00Z"), Ok(1_764_000_000));
        assert_eq!(at("2025-11-24T16:00:00.634234626Z"), Ok(1_764_000_000));
        assert_eq!(at("2025-11-24T08:00:00-08:00"), Ok(1_764_000_000));
        assert_eq!(at("2025-11-24T17:30:00+01:30"), Ok(1_764_000_000));
        for bad in [
            "",
            "1764000000",
            "2025-11-24 16:00:00",
            "2025-11-24T16:00:00+0100",
            "1969-12-31T23:59:59Z",
            "2025-11-24T16:00:00+x1:00",
        ] {
            assert_eq!(at(bad), Err(VerifyError::InvalidTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_must_be_one_integer_in_range() {
        let ok = |v: &'static str| timestamp(&map(&[("t", v)]), "t").map(|(_, n)| n);
        assert_eq!(ok("1764000000"), Ok(1764000000));
        assert_eq!(ok("-5"), Ok(-5));
        assert_eq!(ok("9223372036854775807"), Ok(i64::MAX));
        for bad in [
            "",
            "-",
            "+5",
            "12e8",
            "1.0",
            " 1",
            "9223372036854775808",
            "0x10",
        ] {
            let h = HeaderMap::from_iter([(
                http::HeaderName::from_static("t"),
                HeaderValue::from_str(bad).unwrap(),
            )]);
            assert_eq!(
                timestamp(&h, "t"),
                Err(VerifyError::InvalidTimestamp),
                "{bad:?}"
            );
        }
        assert_eq!(
            timestamp(&map(&[("t", "1"), ("t", "1")]), "t"),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            timestamp(&map(&[]), "t"),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn the_window_is_inclusive_in_both_directions_and_cannot_overflow() {
        let tol = Duration::from_secs(300);
        assert_eq!(within_window(700, 1000, tol), Ok(()));
        assert_eq!(within_window(1300, 1000, tol), Ok(()));
        assert_eq!(
            within_window(699, 1000, tol),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            within_window(1301, 1000, tol),
            Err(VerifyError::TimestampTooNew)
        );
        assert_eq!(
            within_window(i64::MIN, i64::MAX, tol),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            within_window(i64::MAX, i64::MIN, tol),
            Err(VerifyError::TimestampTooNew)
        );
        assert_eq!(within_window_ms(700_000, 1_000_000, tol), Ok(()));
        assert_eq!(
            within_window_ms(699_999, 1_000_000, tol),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            within_window_ms(1_300_001, 1_000_000, tol),
            Err(VerifyError::TimestampTooNew)
        );
    }

    #[test]
    fn hex_signatures_take_either_case_and_an_optional_prefix() {
        assert_eq!(
            decode_hex(b"sha256=ABcd", b"sha256=").as_deref(),
            Ok(&[0xab, 0xcd][..])
        );
        assert_eq!(
            decode_hex(b"abcd", b"sha256=").as_deref(),
            Ok(&[0xab, 0xcd][..])
        );
        assert_eq!(
            decode_hex(&[b'a'; 130], b""),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(decode_hex(&[b'a'; 128], b"").map(|t| t.len()), Ok(64));
        assert_eq!(
            decode_hex(b"", b"sha256="),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            decode_hex(b"sha256=", b"sha256="),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(decode_hex(b"abc", b""), Err(VerifyError::InvalidSignature));
        assert_eq!(decode_hex(b"zz", b""), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn base64_padding_is_optional_and_alphabets_are_kept_apart() {
        assert_eq!(decode_base64(b"+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64(b"+/8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64url(b"-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64url(b"+/8="), None);
        assert_eq!(decode_base64(b""), None);
        assert_eq!(decode_base64(b"!!"), None);
    }

    #[test]
    fn signature_lists_give_each_value_of_a_key_in_order() {
        let raw = b"t=1492774577, v1=aa,v0=bb,v1=cc,junk";
        let v1: Vec<&[u8]> = list_values(raw, b',', b"v1").collect();
        assert_eq!(v1, [&b"aa"[..], &b"cc"[..]]);
        assert_eq!(
            list_timestamp(raw, b',', b"t"),
            Ok((&b"1492774577"[..], 1492774577))
        );
        assert_eq!(
            list_timestamp(b"t=1,t=2", b',', b"t"),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            list_timestamp(b"h1=aa", b';', b"ts"),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            list_timestamp(b"ts=12a;h1=aa", b';', b"ts"),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn comparison_checks_every_secret_and_the_length() {
        let secrets = [Secret::new(&b"old"[..]), Secret::new(&b"new"[..])];
        let sig = hmac_sha256(b"new", &[b"a", b".", b"b"]);
        let signs = |alg, msg: &[u8], candidates: &[&[u8]]| {
            any_secret_signs(alg, &secrets, &[msg], candidates)
        };
        assert!(signs(HmacAlgorithm::Sha256, b"a.b", &[&sig]));
        assert!(signs(HmacAlgorithm::Sha256, b"a.b", &[b"nope", &sig]));
        assert!(!signs(HmacAlgorithm::Sha256, b"a.c", &[&sig]));
        assert!(!signs(HmacAlgorithm::Sha256, b"a.b", &[&sig[..16]]));
        assert!(!signs(HmacAlgorithm::Sha256, b"a.b", &[]));
        assert!(!signs(HmacAlgorithm::Sha512, b"a.b", &[&sig]));
    }

    proptest::proptest! {
        #[test]
        fn hex_reads_as_the_hex_crate_reads_it(text in "[0-9a-fA-FgG ]{0,130}") {
            let ours = decode_hex(text.as_bytes(), b"").ok().map(|t| t.to_vec());
            let theirs = hex::decode(&text).ok().filter(|b| !b.is_empty() && b.len() <= 64);
            proptest::prop_assert_eq!(ours, theirs);
        }
    }
}
