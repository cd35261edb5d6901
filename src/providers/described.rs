//! The presets that are data (`route::catalog`), and `[routes.hmac]`: one check per kind
//! of description, and one normalization that reads the entry's pointers.
//!
//! An HMAC description says which headers may carry a signature, how their values hold
//! it (one, a list, `k=v` entries), how it is encoded, what message is signed (body,
//! timestamp, id, method, public URL, literals), how the timestamp is written, and how
//! a secret becomes the key. Check 6 is "some signature header is present", 7–8 the
//! timestamp (when signed), 9 any signature made by any secret.

use super::checks::{self, Header, Tag};
use super::fields::{self, Kind, Pointers};
use super::{
    form, keys, standard_webhooks, EventId, Events, MalformedPayload, Normalized, Request, Scheme,
    Verified, VerifyError,
};
use crate::route::catalog::{Check, Described, TypeFrom};
use crate::route::{HmacScheme, MessagePart, Route, SigEncoding, SigList, TimeUnit};

pub(super) const SCHEME: Scheme = Scheme { verify, normalize };

fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    let d = route
        .provider
        .described()
        .ok_or(VerifyError::InvalidSignature)?;
    let id = match &d.check {
        Check::Hmac(scheme) => hmac(route, scheme, req)?,
        Check::StandardWebhooks => Some(standard_webhooks::check(route, req)?),
        Check::Token { header, basic } => {
            // Okta sends its secret in the header the route names, if it names one.
            let header = route.token_header.as_deref().unwrap_or(header);
            token(route, req, header, *basic)?;
            None
        }
        // A request signed the Standard Webhooks way says so with its signature header;
        // any other carries the secret token.
        Check::TokenOrStandardWebhooks { header } => {
            if standard_webhooks::signed(req.headers) {
                Some(standard_webhooks::check(route, req)?)
            } else {
                token(route, req, header, false)?;
                None
            }
        }
        Check::Ed25519 {
            signature,
            timestamp,
            joiner,
        } => {
            ed25519(route, req, signature, timestamp, joiner)?;
            None
        }
    };
    let mut verified = Verified::new(req, id);
    verified.kind_hint = d
        .type_header
        .and_then(|name| checks::text(checks::header(req.headers, name)));
    Ok(verified)
}

/// Checks 6–9 for an HMAC description; returns the signed id header, if any.
pub(super) fn hmac(
    route: &Route,
    scheme: &HmacScheme,
    req: &Request<'_>,
) -> Result<Option<EventId>, VerifyError> {
    let mut values = Vec::with_capacity(1);
    for name in scheme.headers.iter() {
        match checks::header(req.headers, name.as_ref()) {
            Header::Absent => {}
            found => values.push(found),
        }
    }
    if values.is_empty() {
        return Err(VerifyError::MissingSignature);
    }
    let values = values
        .into_iter()
        .map(Header::single)
        .collect::<Result<Vec<_>, _>>()?;
    let timestamp = match &scheme.timestamp {
        None => None,
        Some(stamp) => {
            let text = match (&stamp.header, &scheme.list) {
                (Some(name), _) => match checks::header(req.headers, name.as_ref()) {
                    Header::One(text) => text,
                    _ => return Err(VerifyError::InvalidTimestamp),
                },
                (
                    None,
                    SigList::Keyed {
                        separator,
                        timestamp,
                        ..
                    },
                ) => checks::list_timestamp(values[0], *separator, timestamp.as_bytes())?.0,
                (None, _) => return Err(VerifyError::InvalidTimestamp),
            };
            within_window(text, stamp.unit, req, route)?;
            Some(text)
        }
    };
    // A signed id that is absent or repeated cannot be trusted: check 9.
    let id = match &scheme.id_header {
        Some(name) => Some(checks::header(req.headers, name.as_ref()).single()?),
        None => None,
    };
    let prefix = scheme.prefix.as_deref().unwrap_or_default().as_bytes();
    let mut candidates: Vec<Tag> = Vec::with_capacity(values.len());
    for value in &values {
        match &scheme.list {
            SigList::One => candidates.extend(decode(scheme.encoding, value, prefix)),
            SigList::Each(separator) => {
                for entry in value.split(|b| b == separator) {
                    if let Some(sig) = entry.trim_ascii().strip_prefix(prefix) {
                        candidates.extend(decode(scheme.encoding, sig, b""));
                    }
                }
            }
            SigList::Keyed {
                separator,
                signature,
                ..
            } => {
                for sig in checks::list_values(value, *separator, signature.as_bytes()) {
                    candidates.extend(decode(scheme.encoding, sig, b""));
                }
            }
        }
    }
    let url = scheme
        .message
        .contains(&MessagePart::Url)
        .then(|| checks::signed_url(route.public_url.as_deref(), req.query))
        .flatten();
    let form = scheme
        .message
        .contains(&MessagePart::SortedForm)
        .then(|| form::sorted_fields(req.body));
    let message: Vec<&[u8]> = scheme
        .message
        .iter()
        .map(|part| match part {
            MessagePart::Literal(text) => text.as_bytes(),
            MessagePart::Body => req.body,
            MessagePart::Timestamp => timestamp.unwrap_or_default(),
            MessagePart::Id => id.unwrap_or_default(),
            MessagePart::Method => req.method.as_str().as_bytes(),
            MessagePart::Url => url.as_deref().unwrap_or_default().as_bytes(),
            MessagePart::SortedForm => form.as_deref().unwrap_or_default().as_bytes(),
        })
        .collect();
    let candidates: Vec<&[u8]> = candidates.iter().map(|tag| &tag[..]).collect();
    if !checks::any_secret_signs(scheme.algorithm, &route.secrets, &message, &candidates) {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(id.map(EventId::from_header))
}

/// A signature that cannot be decoded is no candidate (another may still verify).
fn decode(encoding: SigEncoding, raw: &[u8], prefix: &[u8]) -> Option<Tag> {
    match encoding {
        SigEncoding::Hex => checks::decode_hex(raw, prefix).ok(),
        SigEncoding::Base64 => {
            let raw = raw.strip_prefix(prefix).unwrap_or(raw);
            checks::decode_base64(raw).and_then(|bytes| Tag::from_slice(&bytes))
        }
    }
}

/// Check 8 for a timestamp written in `unit`.
fn within_window(
    text: &[u8],
    unit: TimeUnit,
    req: &Request<'_>,
    route: &Route,
) -> Result<(), VerifyError> {
    match unit {
        TimeUnit::Seconds => {
            checks::within_window(checks::integer(text)?, req.now, route.tolerance)
        }
        TimeUnit::Millis => {
            checks::within_window_ms(checks::integer(text)?, req.now_ms, route.tolerance)
        }
        TimeUnit::Rfc3339 => {
            checks::within_window(checks::rfc3339(text)?, req.now, route.tolerance)
        }
    }
}

/// A header holding a secret itself (or, with `basic`, `Basic` credentials whose
/// `user:password` is one), compared in constant time.
fn token(route: &Route, req: &Request<'_>, name: &str, basic: bool) -> Result<(), VerifyError> {
    let value = match checks::header(req.headers, name) {
        Header::Absent => return Err(VerifyError::MissingSignature),
        found => found.single()?,
    };
    let given = if basic {
        let credentials = value
            .strip_prefix(b"Basic ")
            .or_else(|| value.strip_prefix(b"basic "))
            .ok_or(VerifyError::InvalidSignature)?;
        checks::decode_base64(credentials.trim_ascii()).ok_or(VerifyError::InvalidSignature)?
    } else {
        value.to_vec()
    };
    if route.secrets.iter().any(|secret| secret.equals(&given)) {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

/// Ed25519 over `<timestamp><joiner><body>`, the timestamp in the window.
fn ed25519(
    route: &Route,
    req: &Request<'_>,
    signature: &str,
    timestamp: &str,
    joiner: &str,
) -> Result<(), VerifyError> {
    let signature = checks::signature(req.headers, signature)?.single()?;
    let (ts_text, ts) = checks::timestamp(req.headers, timestamp)?;
    checks::within_window(ts, req.now, route.tolerance)?;
    let signature = checks::decode_base64(signature).ok_or(VerifyError::InvalidSignature)?;
    let message = [ts_text, joiner.as_bytes(), req.body.as_ref()].concat();
    if keys::ed25519_signs(&route.public_keys, &message, &signature) {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

fn normalize(route: &Route, verified: Verified) -> Result<Normalized, MalformedPayload> {
    let Some(d) = route.provider.described() else {
        return Err(MalformedPayload("not a preset of the table".into()));
    };
    let verified = match d.fields.form_field {
        Some(name) => in_form_field(verified, name)?,
        None => verified,
    };
    if let Some(handshake) = d.handshake {
        if let Some(answer) = super::handshakes::after_verifying(handshake, &verified)? {
            return Ok(Normalized::Handshake(answer));
        }
    }
    let pointers = pointers(d);
    if d.fields.batch {
        return fields::object_or_batch(route, &pointers, &verified).map(Normalized::from);
    }
    let event = fields::event_from_json(route, &pointers, &verified, false)?;
    Ok(Events::one(event).into())
}

/// The JSON a form body carries in its field `name` (Mandrill's `mandrill_events`), as
/// the payload: it was signed with the form.
fn in_form_field(verified: Verified, name: &str) -> Result<Verified, MalformedPayload> {
    if !verified.is_form() {
        return Err(MalformedPayload(format!(
            "expected a form body with a `{name}` field"
        )));
    }
    let json = form_urlencoded::parse(&verified.body)
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| MalformedPayload(format!("the form has no `{name}` field")))?;
    Ok(Verified::other_payload(
        bytes::Bytes::from(json),
        http::HeaderValue::from_static("application/json"),
    ))
}

/// The entry's fields as the common rules read them.
fn pointers(d: &Described) -> Pointers {
    let f = &d.fields;
    Pointers {
        id: f.id,
        kind: match f.kind {
            TypeFrom::None => Kind::None,
            TypeFrom::At(p) => Kind::At(p),
            TypeFrom::FirstOf(a, b) => Kind::FirstOf(a, b),
            TypeFrom::Dotted(a, b) => Kind::Dotted(a, b),
            TypeFrom::Header(p) => Kind::Hinted(p),
        },
        occurred_at: f.occurred_at,
        data: f.data,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_preset_of_the_table_passes_its_vectors() {
        for d in crate::route::catalog::CATALOG {
            super::super::tests::table_preset_passes(d.name);
        }
    }
}
