//! Signature schemes (docs/providers.md): one file per provider, one enum matched in one place
//! ([`Provider::scheme`]).
//!
//! Verification is pure: it takes the route, the headers, the body and `now`, and is the
//! only code that can construct a [`Verified`]. Only a `Verified` can be normalized into
//! [`Event`]s, and only `Event`s can be forwarded, so nothing unverified reaches the app.

pub(crate) mod checks;
mod described;
mod discord;
mod event_id;
mod fields;
pub(crate) mod form;
mod generic_hmac;
mod github;
mod handshakes;
mod hrflow;
mod jobaffinity;
pub(crate) mod json;
mod keys;
mod linear;
mod listing;
mod mailgun;
mod semantikmatch;
mod sendgrid;
mod shopify;
mod slack;
mod smartcv;
mod square;
mod standard_webhooks;
mod twilio;
mod zoom;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use crate::route::{Provider, Route, Secret};

pub(crate) use checks::{header, tag as hmac_tag, Header};
pub use event_id::header_safe;
pub(crate) use event_id::EventId;
pub use fields::derived_id;
pub(crate) use json::Json;
pub(crate) use listing::listing;

/// What a provider's scheme is made of. Each provider file exports one `SCHEME`.
pub(crate) struct Scheme {
    /// Checks 6–9 of docs/request-handling.md.
    pub verify: fn(&Route, &Request<'_>) -> Result<Verified, VerifyError>,
    /// Check 10: turns the verified payload into the events to forward, or into the
    /// answer to a handshake.
    pub normalize: fn(&Route, Verified) -> Result<Normalized, MalformedPayload>,
}

/// The one place a provider is matched to its implementation.
fn scheme(provider: Provider) -> &'static Scheme {
    match provider {
        Provider::SmartCv => &smartcv::SCHEME,
        Provider::Semantikmatch => &semantikmatch::SCHEME,
        Provider::Hrflow => &hrflow::SCHEME,
        Provider::JobAffinity => &jobaffinity::SCHEME,
        Provider::StandardWebhooks => &standard_webhooks::SCHEME,
        Provider::Hmac => &generic_hmac::SCHEME,
        Provider::Github => &github::SCHEME,
        Provider::Slack => &slack::SCHEME,
        Provider::Shopify => &shopify::SCHEME,
        Provider::Zoom => &zoom::SCHEME,
        Provider::Linear => &linear::SCHEME,
        Provider::Mailgun => &mailgun::SCHEME,
        Provider::Twilio => &twilio::SCHEME,
        Provider::Square => &square::SCHEME,
        Provider::Discord => &discord::SCHEME,
        Provider::Sendgrid => &sendgrid::SCHEME,
        Provider::Described(_) => &described::SCHEME,
    }
}

/// What verification looks at.
pub(crate) struct Request<'a> {
    /// Signed by HubSpot.
    pub method: &'a http::Method,
    pub headers: &'a HeaderMap,
    /// The raw query string, which Twilio signs (it never selects a route).
    pub query: Option<&'a str>,
    pub body: &'a Bytes,
    /// Unix seconds at which the request is judged (injected, so tests never wait).
    pub now: i64,
    /// The same instant in milliseconds, for schemes that sign milliseconds (Linear).
    pub now_ms: i64,
}

/// The media type of form bodies, which several schemes read field by field.
const FORM: &str = "application/x-www-form-urlencoded";

/// Why a request failed checks 5–9. One variant per failure, in check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VerifyError {
    #[error("credentials are missing or wrong")]
    Unauthorized,
    #[error("the signature header is missing")]
    MissingSignature,
    #[error("the timestamp header is missing, repeated or not an integer")]
    InvalidTimestamp,
    #[error("the timestamp is older than the replay window")]
    TimestampTooOld,
    #[error("the timestamp is further in the future than the replay window")]
    TimestampTooNew,
    #[error("no configured secret produces this signature")]
    InvalidSignature,
}

/// Check 10: the signed payload is not what the provider sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct MalformedPayload(pub String);

/// A payload whose signature checked out. Only this module tree can make one.
pub(crate) struct Verified {
    body: Bytes,
    content_type: Option<HeaderValue>,
    /// The id from a signed header, which wins over any pointer.
    signed_id: Option<EventId>,
    /// An event type from a header the provider does not sign (GitHub, Shopify): it may
    /// name the type, never the id.
    kind_hint: Option<String>,
    /// The secret that verified, for handshakes answered with it (Zoom).
    secret: Option<Secret>,
    /// A signed one-time token the pipeline must not accept twice (Mailgun), with the
    /// unix second it stops mattering.
    replay_token: Option<(Vec<u8>, i64)>,
}

impl Verified {
    /// The request's own body verified.
    fn new(req: &Request<'_>, signed_id: Option<EventId>) -> Self {
        Verified {
            body: req.body.clone(),
            content_type: req.headers.get(http::header::CONTENT_TYPE).cloned(),
            signed_id,
            kind_hint: None,
            secret: None,
            replay_token: None,
        }
    }

    /// A payload that arrived elsewhere than the body (HrFlow's signed-request header).
    fn other_payload(body: Bytes, content_type: HeaderValue) -> Self {
        Verified {
            body,
            content_type: Some(content_type),
            signed_id: None,
            kind_hint: None,
            secret: None,
            replay_token: None,
        }
    }

    /// Check 10: the events this payload carries, in order, or a handshake's answer.
    pub(crate) fn normalize(self, route: &Route) -> Result<Normalized, MalformedPayload> {
        (scheme(route.provider).normalize)(route, self)
    }

    /// The signed one-time token to remember, and until when (Mailgun).
    pub(crate) fn replay_token(&self) -> Option<(&[u8], i64)> {
        self.replay_token
            .as_ref()
            .map(|(t, until)| (t.as_slice(), *until))
    }

    fn is_form(&self) -> bool {
        is_form(self.content_type.as_ref())
    }
}

/// Whether a Content-Type names a form body, whatever its parameters.
fn is_form(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(FORM))
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("body_len", &self.body.len())
            .field("signed_id", &self.signed_id)
            .field("kind_hint", &self.kind_hint)
            .finish_non_exhaustive()
    }
}

/// Checks 6–9 for `route`.
pub(crate) fn verify(route: &Route, req: &Request<'_>) -> Result<Verified, VerifyError> {
    (scheme(route.provider).verify)(route, req)
}

/// What a verified request turns into.
pub(crate) enum Normalized {
    Events(Events),
    /// A provider checking the endpoint (docs/providers.md): answered by the gateway, never
    /// forwarded.
    Handshake(Handshake),
}

/// The gateway's own answer to a handshake.
pub(crate) struct Handshake {
    pub status: StatusCode,
    pub body: HandshakeBody,
}

pub(crate) enum HandshakeBody {
    /// No body at all (Discord's webhook-event PING wants a bare 204).
    None,
    Json(Value),
    /// A challenge echoed as `text/plain` (Twitch, Meta, Dropbox).
    Text(String),
}

#[cfg(test)]
impl HandshakeBody {
    /// The answer as a JSON value (text as a string), for tests to compare.
    pub(crate) fn as_value(&self) -> Option<Value> {
        match self {
            HandshakeBody::None => None,
            HandshakeBody::Json(v) => Some(v.clone()),
            HandshakeBody::Text(t) => Some(Value::String(t.clone())),
        }
    }
}

pub(crate) use handshakes::{handed_over_secret, on_get as get_handshake, HOOK_SECRET};

impl From<Events> for Normalized {
    fn from(events: Events) -> Self {
        Normalized::Events(events)
    }
}

/// What one request carries: one event, or a batch (HrFlow arrays) whose answer lists
/// every id.
pub(crate) struct Events {
    pub events: Vec<Event>,
    pub batch: bool,
}

impl Events {
    fn one(event: Event) -> Self {
        Events {
            events: vec![event],
            batch: false,
        }
    }
}

/// One event to forward, as docs/upstream.md describes it.
pub(crate) struct Event {
    pub id: EventId,
    pub kind: String,
    pub occurred_at: Json,
    pub data: Json,
    /// What `forward = "raw"` sends: the verified bytes and their Content-Type.
    raw: (Bytes, Option<HeaderValue>),
}

impl Event {
    pub(crate) fn raw_body(&self) -> &Bytes {
        &self.raw.0
    }

    pub(crate) fn raw_content_type(&self) -> Option<&HeaderValue> {
        self.raw.1.as_ref()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Strict RFC 8259 parse: serde_json refuses NaN, lone surrogates, invalid UTF-8 and
/// nesting deeper than 128; `arbitrary_precision` keeps every digit of numbers, and
/// every key is an ordinary key (see `json::tree`).
fn parse_json(bytes: &[u8]) -> Result<Value, MalformedPayload> {
    json::parse_tree(bytes)
}
