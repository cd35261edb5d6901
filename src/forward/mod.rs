//! Forwarding to the app (docs/upstream.md and its forwarding rules): the `X-Hookwarden-*`
//! headers, the exchange over a pooled connection ([`pool`]), and the mapping of what
//! the app answered.

mod pieces;
mod pool;

pub(crate) use pieces::Pieces;
pub use pool::Pool;
pub(crate) use pool::Target;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

use crate::config::UpstreamConfig;
use crate::providers::{header_safe, Event};
use crate::route::{Route, Secret};
use crate::signing;

/// The app's answer is passed back to the provider; past this size it is dropped, since
/// providers only look at the status.
const RESPONSE_CAP: usize = 1024 * 1024;
/// A 3xx/5xx answer's body is read (and dropped) up to this size and for this long to
/// keep its connection; past either, the connection is closed instead.
const DRAIN_CAP: usize = 64 * 1024;
const DRAIN_WAIT: Duration = Duration::from_millis(250);
/// Of a failing answer's body, what is kept for the caller to show.
const FAILURE_KEPT: usize = 1024;

const EVENT_ID: HeaderName = HeaderName::from_static("x-hookwarden-event-id");
const PROVIDER: HeaderName = HeaderName::from_static("x-hookwarden-provider");
const ROUTE: HeaderName = HeaderName::from_static("x-hookwarden-route");
const EVENT_TYPE: HeaderName = HeaderName::from_static("x-hookwarden-event-type");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const ATTEMPT: HeaderName = HeaderName::from_static("x-hookwarden-attempt");

/// Why an event was not handed to the app. The event is not recorded as delivered, so
/// the provider's retry goes through again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// Refused connection or a broken exchange. The text is for logs only.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// The app answered 3xx or 5xx (or only 1xx): it is struggling, not refusing.
    #[error("upstream answered {status}")]
    Failing {
        status: StatusCode,
        /// Its `Retry-After`, on a 503.
        retry_after: Option<Duration>,
        /// The start of its answer body, when it came in time (queue delivery keeps it
        /// in the event's history, so an operator sees why the app refused).
        body: Bytes,
    },
    #[error("upstream did not answer within the timeout")]
    Timeout,
}

/// What the app answered with a 2xx or 4xx status: passed back as it is.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
    /// Its `Retry-After`, on a 429.
    pub retry_after: Option<Duration>,
}

/// One event as the app is sent it.
pub(crate) struct Message<'a> {
    /// The id, byte for byte (written into headers escaped).
    pub id: &'a [u8],
    /// The id as answers show it.
    pub shown_id: &'a str,
    pub kind: &'a str,
    pub body: Pieces,
    pub content_type: Option<HeaderValue>,
    /// Queue delivery's attempt number (`X-Hookwarden-Attempt`), from 1.
    pub attempt: Option<u32>,
}

impl<'a> Message<'a> {
    /// `event` with `body` (its envelope or its raw bytes).
    pub(crate) fn of(event: &'a Event, body: Pieces, content_type: Option<HeaderValue>) -> Self {
        Message {
            id: event.id.as_bytes(),
            shown_id: event.id.as_str(),
            kind: &event.kind,
            body,
            content_type,
            attempt: None,
        }
    }
}

impl Answer {
    pub(crate) fn delivered(&self) -> bool {
        self.status.is_success()
    }
}

/// The upstream settings of one configuration over the shared pool.
pub(crate) struct Forwarder {
    pool: Arc<Pool>,
    timeout: Duration,
    extra_headers: HeaderMap,
    /// `upstream.signing_secret`: Standard Webhooks headers over what is sent.
    signing_key: Option<Secret>,
}

impl Forwarder {
    pub(crate) fn new(pool: Arc<Pool>, upstream: &UpstreamConfig) -> Self {
        Forwarder {
            pool,
            timeout: upstream.timeout,
            extra_headers: upstream.headers.clone(),
            signing_key: upstream.signing_secret.clone(),
        }
    }

    /// Where `route`'s events go. Resolved once per configuration.
    pub(crate) fn target(&self, route: &Route) -> Target {
        self.pool.target(&route.forward_uri)
    }

    /// Sends one event's body to the route's upstream. Ends at `deadline` (the request's
    /// own timeout) or after `upstream.timeout`, whichever comes first.
    pub(crate) async fn send(
        &self,
        target: &Target,
        route_headers: &HeaderMap,
        message: &Message<'_>,
        deadline: Instant,
    ) -> Result<Answer, ForwardError> {
        let request = || self.request(route_headers, message);
        let deadline = deadline.min(Instant::now() + self.timeout);
        let (response, lease) = tokio::time::timeout_at(deadline, target.send(request))
            .await
            .unwrap_or(Err(ForwardError::Timeout))?;
        let status = response.status();
        let retry_after = retry_after(&response);
        if !(status.is_success() || status.is_client_error()) {
            // Read to its end, so that its connection carries the provider's retry: an
            // app answering 5xx is struggling, and a reconnect for each retry adds to it.
            // Briefly, and with the answer already decided: the provider gets 502 either
            // way, never a 504 for a body that was slow to come.
            let drain = Limited::new(response.into_body(), DRAIN_CAP).collect();
            let until = deadline.min(Instant::now() + DRAIN_WAIT);
            let mut body = Bytes::new();
            if let Ok(Ok(collected)) = tokio::time::timeout_at(until, drain).await {
                lease.release();
                let all = collected.to_bytes();
                body = all.slice(..all.len().min(FAILURE_KEPT));
            }
            return Err(ForwardError::Failing {
                status,
                retry_after,
                body,
            });
        }
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let read = Limited::new(response.into_body(), RESPONSE_CAP).collect();
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(collected)) => {
                lease.release();
                Ok(Answer {
                    status,
                    content_type,
                    body: collected.to_bytes(),
                    retry_after,
                })
            }
            // The status line is the app's decision (docs/request-handling.md): a body that stalls past
            // the timeout, or breaks, does not undo it. A 2xx stays a delivery (else the
            // provider's retry would reach the app a second time) and a 4xx a refusal;
            // the unread rest is replaced by our own word, and the connection closed.
            Err(_) | Ok(Err(_)) => Ok(Answer {
                status,
                content_type: Some(HeaderValue::from_static("application/json")),
                body: unread_body(status, message.shown_id),
                retry_after,
            }),
        }
    }

    /// What every event of `route` carries: where it came from (the route name escaped
    /// like an id), and `upstream.headers`. Built once per configuration.
    pub(crate) fn route_headers(&self, route: &Route) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(8 + self.extra_headers.len());
        headers.insert(PROVIDER, HeaderValue::from_static(route.provider.name()));
        if let Ok(name) = header_value(route.name.as_bytes()) {
            headers.insert(ROUTE, name);
        }
        for (name, value) in &self.extra_headers {
            headers.append(name, value.clone());
        }
        headers
    }

    fn request(
        &self,
        route_headers: &HeaderMap,
        message: &Message<'_>,
    ) -> Result<Request<Pieces>, ForwardError> {
        let id = header_value(message.id)?;
        let body = message.body.clone();
        // Sized once for the route's headers and the ones added here: a clone keeps only
        // the route's length, and each append past it would grow the map again.
        let mut headers = HeaderMap::with_capacity(route_headers.len() + 8);
        for (name, value) in route_headers {
            headers.append(name, value.clone());
        }
        // Appended, as `upstream.headers` are: a name configured there is not replaced.
        if let Some(ct) = &message.content_type {
            headers.append(CONTENT_TYPE, ct.clone());
        }
        headers.append(EVENT_ID, id.clone());
        headers.append(IDEMPOTENCY_KEY, id.clone());
        headers.append(EVENT_TYPE, header_value(message.kind.as_bytes())?);
        if let Some(n) = message.attempt {
            headers.append(ATTEMPT, HeaderValue::from(n));
        }
        if let Some(key) = &self.signing_key {
            // The id is signed as it stands in its header, so the app verifies what it got.
            let id = id.to_str().unwrap_or_default();
            let now = crate::clock::unix_seconds(std::time::SystemTime::now());
            let parts: Vec<&[u8]> = body.parts().collect();
            for (name, value) in signing::standard_webhooks(key, id, now, &parts) {
                // Already header-safe: the escaped id, digits, and base64.
                let value = HeaderValue::try_from(value).map_err(|_| {
                    ForwardError::Unavailable("unencodable signature header".into())
                })?;
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// `Retry-After` in seconds or as an HTTP date, on the answers that carry it for us.
fn retry_after<B>(response: &http::Response<B>) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// What the provider gets in place of an answer body the app never finished.
fn unread_body(status: StatusCode, shown_id: &str) -> Bytes {
    let body = if status.is_success() {
        serde_json::json!({ "status": "delivered", "id": shown_id })
    } else {
        serde_json::json!({ "error": "upstream_rejected", "message": "the application refused the event" })
    };
    Bytes::from(body.to_string())
}

fn header_value(text: &[u8]) -> Result<HeaderValue, ForwardError> {
    // `header_safe` leaves only %x21–7E, which is always a valid header value.
    HeaderValue::try_from(header_safe(text))
        .map_err(|_| ForwardError::Unavailable("unencodable header value".into()))
}

/// The error and its causes in one line ("error reading a body from connection:
/// Connection reset by peer (os error 104)"), since hyper's top-level message alone
/// says little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
