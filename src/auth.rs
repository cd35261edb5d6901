//! Check 5: static credentials of `[routes.auth]`, compared in constant time.

use base64::Engine;
use http::{header, HeaderMap};

use crate::providers::{self, VerifyError};
use crate::route::Auth;

pub(crate) fn check(auth: &Auth, headers: &HeaderMap) -> Result<(), VerifyError> {
    let ok = match auth {
        Auth::Basic(pair) => credentials(headers, "basic")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|given| pair.equals(&given)),
        Auth::Bearer(token) => {
            credentials(headers, "bearer").is_some_and(|given| token.equals(given))
        }
        Auth::Header { name, value } => {
            single(headers, name).is_some_and(|given| value.equals(given))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Unauthorized)
    }
}

/// The credentials of a single `Authorization: <scheme> <credentials>` header; the
/// scheme name is case-insensitive (RFC 9110 §11.1).
fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a [u8]> {
    let value = single(headers, &header::AUTHORIZATION)?;
    let space = value.iter().position(|&b| b == b' ')?;
    let (name, rest) = value.split_at(space);
    name.eq_ignore_ascii_case(scheme.as_bytes())
        .then(|| rest.trim_ascii_start())
}

/// Exactly one copy of the header, as every security header is read.
fn single<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a [u8]> {
    match providers::header(headers, name) {
        providers::Header::One(value) => Some(value),
        providers::Header::Absent | providers::Header::Repeated => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Secret;
    use http::HeaderValue;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_accepts_the_pair_with_any_scheme_case() {
        let auth = Auth::Basic(Secret::new(&b"jobaffinity:s3cr3t-pw"[..]));
        let good = base64::engine::general_purpose::STANDARD.encode("jobaffinity:s3cr3t-pw");
        assert_eq!(
            check(&auth, &with("authorization", &format!("Basic {good}"))),
            Ok(())
        );
        assert_eq!(
            check(&auth, &with("authorization", &format!("basic {good}"))),
            Ok(())
        );
        let bad = base64::engine::general_purpose::STANDARD.encode("jobaffinity:nope");
        assert!(check(&auth, &with("authorization", &format!("Basic {bad}"))).is_err());
        assert!(check(&auth, &with("authorization", "Basic !!!")).is_err());
        assert!(check(&auth, &with("authorization", &format!("Bearer {good}"))).is_err());
        assert!(check(&auth, &HeaderMap::new()).is_err());
    }

    #[test]
    fn bearer_and_header_compare_exactly_and_refuse_repeats() {
        let bearer = Auth::Bearer(Secret::new(&b"tok"[..]));
        assert_eq!(check(&bearer, &with("authorization", "Bearer tok")), Ok(()));
        assert!(check(&bearer, &with("authorization", "Bearer tok2")).is_err());
        let key = Auth::Header {
            name: http::HeaderName::from_static("x-api-key"),
            value: Secret::new(&b"k"[..]),
        };
        assert_eq!(check(&key, &with("x-api-key", "k")), Ok(()));
        let mut twice = with("x-api-key", "k");
        twice.append("x-api-key", HeaderValue::from_static("k"));
        assert!(check(&key, &twice).is_err());
    }
}
