//! The admin API (docs/admin-api.md): the routes and what they served, the recent
//! requests, the queued events, and the queue's levers. JSON in and out; errors as the
//! public port's, `{"error", "message"}`. `{route}` and `{id}` are percent-encoded path
//! segments.
//!
//! [`routes`] answers for routes (and their levers: retry now, pause, resume),
//! [`events`] for stored events (list, show, redeliver one or many). Every change goes
//! through the queue's own operations, which keep its workers informed.

mod events;
mod routes;

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::from_unix_millis;
use crate::metrics::Outcome;
use crate::request_log::{Entry, Events};

pub(super) use routes::queue_gauges;

/// Items a list gives when not asked, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

type Answer = Response<Full<Bytes>>;

pub(super) async fn handle<B>(app: &App, req: Request<B>) -> Answer {
    let path = req.uri().path();
    let segments: Vec<Cow<'_, [u8]>> = path
        .trim_start_matches("/api")
        .trim_start_matches('/')
        .split('/')
        .map(|s| Cow::from(percent_encoding::percent_decode_str(s)))
        .collect();
    let segments: Vec<&[u8]> = segments.iter().map(AsRef::as_ref).collect();
    let query = req.uri().query().unwrap_or_default();
    let get = *req.method() == Method::GET;
    let post = *req.method() == Method::POST;
    match segments.as_slice() {
        [b"routes"] if get => routes::list(app).await,
        [b"routes", route, lever @ (b"retry-now" | b"pause" | b"resume")] if post => {
            routes::lever(app, route, lever).await
        }
        [b"requests"] if get => requests(app, query),
        [b"events"] if get => events::list(app, query).await,
        [b"events", b"redeliver"] if post => events::redeliver_matching(app, query).await,
        [b"events", route, id] if get => events::show(app, route, id).await,
        [b"events", route, id, b"redeliver"] if post => events::redeliver(app, route, id).await,
        [b"dead-letters", b"redeliver"] if post => events::redeliver_dead(app, query).await,
        [b"routes"] | [b"requests"] | [b"events"] | [b"events", _, _] => not_allowed("GET"),
        [b"routes", _, b"retry-now" | b"pause" | b"resume"]
        | [b"events", b"redeliver"]
        | [b"events", _, _, b"redeliver"]
        | [b"dead-letters", b"redeliver"] => not_allowed("POST"),
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such API path"),
    }
}

/// `GET /api/requests?route=&outcome=&limit=`: the most recent requests, newest first.
fn requests(app: &App, query: &str) -> Answer {
    let mut route = None;
    let mut outcome = None;
    let mut wanted = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "route" => route = Some(value.into_owned()),
            "outcome" => match Outcome::from_name(&value) {
                Some(o) => outcome = Some(o),
                None => return bad_request(format!("unknown outcome {value:?}")),
            },
            "limit" => match limit(&value) {
                Some(n) => wanted = n,
                None => return bad_request(format!("limit {value:?} is not an integer >= 1")),
            },
            _ => {}
        }
    }
    let entries = app.requests.recent(route.as_deref(), outcome, wanted);
    let requests: Vec<Value> = entries.iter().map(request_json).collect();
    ok(StatusCode::OK, &json!({ "requests": requests }))
}

fn request_json(e: &Entry) -> Value {
    let mut out = json!({
        "at": rfc3339(e.at_ms),
        "route": &*e.route,
        "outcome": e.outcome.as_str(),
        "status": e.status,
        "event_id": null,
        "type": e.kind,
        "duration_ms": e.duration_ms,
        "peer": e.peer.to_string(),
    });
    match &e.events {
        Events::None => {}
        Events::One(id) => out["event_id"] = json!(id.as_str()),
        Events::Batch(ids) => {
            out["event_ids"] = json!(ids.iter().map(|id| id.as_str()).collect::<Vec<_>>())
        }
    }
    out
}

/// `limit`: an integer >= 1, read as at most [`MAX_LIMIT`].
fn limit(value: &str) -> Option<usize> {
    match value.parse::<u128>() {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
    }
}

/// A time bound: RFC 3339 (UTC) or Unix seconds, as Unix milliseconds.
fn instant(value: &str) -> Option<i64> {
    if let Ok(seconds) = value.parse::<i64>() {
        return seconds.checked_mul(1000);
    }
    humantime::parse_rfc3339_weak(value)
        .ok()
        .map(crate::clock::unix_millis)
}

/// Unix milliseconds as RFC 3339 UTC.
fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(from_unix_millis(ms)).to_string()
}

fn ok(status: StatusCode, body: &Value) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error answer: `{"error": code, "message": message}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    ok(status, &json!({ "error": code, "message": message }))
}

fn bad_request(message: String) -> Answer {
    error(StatusCode::BAD_REQUEST, "bad_request", &message)
}

fn not_allowed(allow: &'static str) -> Answer {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("only {allow} here"),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn unavailable(e: &crate::queue::QueueError) -> Answer {
    tracing::warn!(error = %e, "admin API: the queue store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        "the queue store could not be read or written",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_times_are_read_as_documented() {
        assert_eq!(limit("1"), Some(1));
        assert_eq!(limit("999999999999999999999999"), Some(MAX_LIMIT));
        assert_eq!(limit("0"), None);
        assert_eq!(limit("-3"), None);
        assert_eq!(instant("1700000000"), Some(1_700_000_000_000));
        assert_eq!(instant("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(instant("2023-11-14T22:13:20.5Z"), Some(1_700_000_000_500));
        assert_eq!(instant("yesterday"), None);
    }
}
