//! The admin API (SPEC §9): the routes and what they served, the recent requests, the
//! queued events, one event with its body and attempts, and redelivery. JSON in and out; errors as the public port's, `{"error", "message"}`.
//! `{route}` and `{id}` are percent-encoded path segments.

use std::borrow::Cow;
use std::collections::BTreeSet;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::from_unix_millis;
use crate::metrics::Outcome;
use crate::providers::json::parse_tree;
use crate::request_log::{Entry, Events};
use crate::route::DeliveryMode;
use crate::spool::{Detail, Filter, Redelivered, State, Summary};

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
    let method = req.method();
    match segments.as_slice() {
        [b"routes"] => match *method {
            Method::GET => routes(app).await,
            _ => not_allowed("GET"),
        },
        [b"requests"] => match *method {
            Method::GET => requests(app, query),
            _ => not_allowed("GET"),
        },
        [b"events"] => match *method {
            Method::GET => list(app, query).await,
            _ => not_allowed("GET"),
        },
        [b"events", route, id] => match *method {
            Method::GET => show(app, route, id).await,
            _ => not_allowed("GET"),
        },
        [b"events", route, id, b"redeliver"] => match *method {
            Method::POST => redeliver(app, route, id).await,
            _ => not_allowed("POST"),
        },
        [b"dead-letters", b"redeliver"] => match *method {
            Method::POST => redeliver_dead(app, query).await,
            _ => not_allowed("POST"),
        },
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such API path"),
    }
}

/// `GET /api/routes`: every configured route, what it served since start, and its queue.
async fn routes(app: &App) -> Answer {
    let rt = app.runtime();
    let counts = app
        .queue
        .as_ref()
        .map(|q| q.spool.counts())
        .unwrap_or_default();
    let now = app.clock.unix_millis();
    let mut out = Vec::with_capacity(rt.config.routes.len());
    for route in &rt.config.routes {
        let Some(state) = rt.route_named(&route.name) else {
            continue;
        };
        let metrics = &state.metrics;
        let requests: serde_json::Map<String, Value> = metrics
            .counts()
            .map(|(outcome, n)| (outcome.as_str().to_string(), json!(n)))
            .collect();
        let (delivery, queued) = match route.delivery {
            DeliveryMode::Sync => ("sync", false),
            DeliveryMode::Queue { .. } => ("queue", true),
        };
        let queue = match (queued, &app.queue) {
            (true, Some(queue)) => {
                let (pending, dead) = counts.get(&route.name).copied().unwrap_or_default();
                let oldest = match pending {
                    0 => None,
                    _ => queue.spool.oldest_pending(&route.name).await.ok().flatten(),
                };
                let age = oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
                json!({ "pending": pending, "dead": dead, "oldest_pending_seconds": age })
            }
            _ => Value::Null,
        };
        let last_failure = metrics.last_failure().map(|f| {
            json!({ "at": rfc3339(f.at_ms), "outcome": f.outcome.as_str(), "status": f.status })
        });
        let mut entry = json!({
            "name": route.name,
            "path": route.path,
            "provider": route.provider.name(),
            "delivery": delivery,
            "requests": requests,
            "last_delivered_at": metrics.last_delivered().map(rfc3339),
            "last_failure": last_failure,
        });
        if queued {
            entry["queue"] = queue;
        }
        out.push(entry);
    }
    ok(StatusCode::OK, &json!({ "routes": out }))
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

/// `GET /api/events?route=&state=&limit=&cursor=`
async fn list(app: &App, query: &str) -> Answer {
    let mut filter = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "route" => filter.route = Some(value.into_owned()),
            "state" => match State::from_name(&value) {
                Some(state) => filter.state = Some(state),
                None => {
                    return bad_request(format!(
                        "unknown state {value:?} (expected pending, delivered or dead)"
                    ))
                }
            },
            "limit" => match limit(&value) {
                Some(n) => filter.limit = n,
                None => return bad_request(format!("limit {value:?} is not an integer >= 1")),
            },
            "cursor" => match value.parse::<i64>() {
                Ok(seq) if seq > 0 => filter.before = Some(seq),
                _ => return bad_request(format!("invalid cursor {value:?}")),
            },
            _ => {}
        }
    }
    let Some(queue) = &app.queue else {
        return ok(StatusCode::OK, &json!({ "events": [], "next": null }));
    };
    match queue.spool.list(filter).await {
        Ok(page) => {
            let events: Vec<Value> = page.events.iter().map(summary).collect();
            let next = page.next.map(|seq| seq.to_string());
            ok(StatusCode::OK, &json!({ "events": events, "next": next }))
        }
        Err(e) => unavailable(&e),
    }
}

/// `limit`: an integer >= 1, read as at most [`MAX_LIMIT`].
pub(super) fn limit(value: &str) -> Option<usize> {
    match value.parse::<u128>() {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
    }
}

/// `GET /api/events/{route}/{id}`
async fn show(app: &App, route: &[u8], id: &[u8]) -> Answer {
    let Some((queue, route)) = spool_and_route(app, route) else {
        return unknown_event();
    };
    match queue.spool.detail(&route, id).await {
        Ok(Some(detail)) => ok(StatusCode::OK, &detail_json(&detail)),
        Ok(None) => unknown_event(),
        Err(e) => unavailable(&e),
    }
}

/// `POST /api/events/{route}/{id}/redeliver`
async fn redeliver(app: &App, route: &[u8], id: &[u8]) -> Answer {
    let Some((queue, route)) = spool_and_route(app, route) else {
        return unknown_event();
    };
    // The id as stored: the one the lists show is escaped for ids that are not UTF-8.
    let stored_id = match queue.spool.detail(&route, id).await {
        Ok(Some(detail)) => detail.id,
        Ok(None) => return unknown_event(),
        Err(e) => return unavailable(&e),
    };
    match queue
        .spool
        .redeliver(&route, &stored_id, app.clock.unix_millis())
        .await
    {
        Ok(Redelivered::Count(n)) => {
            queue.wake(&route);
            ok(StatusCode::ACCEPTED, &json!({ "redelivered": n }))
        }
        Ok(Redelivered::NotFound) => unknown_event(),
        Ok(Redelivered::Pending) => error(
            StatusCode::CONFLICT,
            "in_flight",
            "the event is pending: it is being delivered already",
        ),
        Err(e) => unavailable(&e),
    }
}

/// `POST /api/dead-letters/redeliver?route=`
async fn redeliver_dead(app: &App, query: &str) -> Answer {
    let route = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "route")
        .map(|(_, v)| v.into_owned());
    let Some(queue) = &app.queue else {
        return ok(StatusCode::ACCEPTED, &json!({ "redelivered": 0 }));
    };
    match queue
        .spool
        .redeliver_dead(route.as_deref(), app.clock.unix_millis())
        .await
    {
        Ok(Redelivered::Count(n)) => {
            for (name, _) in queue.spool.counts() {
                if route.as_ref().is_none_or(|r| *r == name) {
                    queue.wake(&name);
                }
            }
            ok(StatusCode::ACCEPTED, &json!({ "redelivered": n }))
        }
        Ok(_) => ok(StatusCode::ACCEPTED, &json!({ "redelivered": 0 })),
        Err(e) => unavailable(&e),
    }
}

/// Sets the queue gauges from what the spool holds now (at each scrape): every route
/// that holds events or queues.
pub(super) async fn queue_gauges(app: &App) {
    let Some(queue) = &app.queue else {
        return;
    };
    let counts = queue.spool.counts();
    let mut routes: BTreeSet<String> = counts.keys().cloned().collect();
    for route in &app.runtime().config.routes {
        if matches!(route.delivery, DeliveryMode::Queue { .. }) {
            routes.insert(route.name.clone());
        }
    }
    let now = app.clock.unix_millis();
    for route in routes {
        let (pending, dead) = counts.get(&route).copied().unwrap_or_default();
        let oldest = match pending {
            0 => None,
            _ => queue.spool.oldest_pending(&route).await.ok().flatten(),
        };
        let age = oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
        app.metrics.queue(&route, pending, dead, age);
    }
}

fn spool_and_route<'a>(app: &'a App, route: &[u8]) -> Option<(&'a crate::queue::Queue, String)> {
    let queue = app.queue.as_ref()?;
    let route = std::str::from_utf8(route).ok()?.to_string();
    Some((queue, route))
}

fn summary(e: &Summary) -> Value {
    json!({
        "id": e.id,
        "route": e.route,
        "type": e.kind,
        "state": e.state.name(),
        "attempts": e.attempts,
        "received_at": rfc3339(e.received_at),
        "next_attempt_at": e.next_attempt_at.map(rfc3339),
        "last_status": e.last_status,
        "last_error": e.last_error,
    })
}

fn detail_json(d: &Detail) -> Value {
    let mut out = summary(&d.summary);
    let json_body = d
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    let body = match json_body.then(|| parse_tree(&d.body).ok()).flatten() {
        Some(value) => value,
        None => Value::String(String::from_utf8_lossy(&d.body).into_owned()),
    };
    let history: Vec<Value> = d
        .history
        .iter()
        .map(|a| {
            json!({
                "at": rfc3339(a.at),
                "status": a.status,
                "error": a.error,
                "duration_ms": a.duration_ms,
            })
        })
        .collect();
    if let Value::Object(map) = &mut out {
        map.insert("body".into(), body);
        map.insert("history".into(), Value::Array(history));
    }
    out
}

/// Unix milliseconds as RFC 3339 UTC.
pub(super) fn rfc3339(ms: i64) -> String {
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

fn unknown_event() -> Answer {
    error(StatusCode::NOT_FOUND, "not_found", "no such event")
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

fn unavailable(e: &crate::spool::SpoolError) -> Answer {
    tracing::warn!(error = %e, "admin API: the queue store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        "the queue store could not be read",
    )
}
