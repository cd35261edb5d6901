//! `/api/events…` and `/api/dead-letters/redeliver`: stored events listed with filters
//! and pages, one shown with its body and attempts, and put back in the queue one at a
//! time or in bulk.

use http::StatusCode;
use serde_json::{json, Value};

use super::{bad_request, error, instant, limit, ok, rfc3339, unavailable, Answer, DEFAULT_LIMIT};
use crate::app::App;
use crate::providers::json::parse_tree;
use crate::queue::{Bulk, Detail, Filter, PageRequest, Queue, Redelivered, State, Summary};

/// A list's or a bulk change's filter from the query: `route`, `state`, `type`, `since`,
/// `until` (and, for lists, `limit` and `cursor`).
struct Query {
    filter: Filter,
    page: PageRequest,
}

/// The query, or why it is a bad request.
fn parse(query: &str) -> Result<Query, String> {
    let mut filter = Filter::default();
    let mut page = PageRequest {
        limit: DEFAULT_LIMIT,
        before: None,
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let bad = |what: &str| format!("{key} {value:?} is not {what}");
        match key.as_ref() {
            "route" => filter.route = Some(value.into_owned()),
            "type" => filter.kind = Some(value.into_owned()),
            "state" => match State::from_name(&value) {
                Some(state) => filter.state = Some(state),
                None => return Err(bad("pending, delivered or dead")),
            },
            "since" => filter.since = Some(instant(&value).ok_or_else(|| bad("a time"))?),
            "until" => filter.until = Some(instant(&value).ok_or_else(|| bad("a time"))?),
            "limit" => page.limit = limit(&value).ok_or_else(|| bad("an integer >= 1"))?,
            "cursor" => match value.parse::<i64>() {
                Ok(seq) if seq > 0 => page.before = Some(seq),
                _ => return Err(bad("a cursor this API gave")),
            },
            _ => {}
        }
    }
    Ok(Query { filter, page })
}

/// `GET /api/events?route=&state=&type=&since=&until=&limit=&cursor=`
pub(super) async fn list(app: &App, query: &str) -> Answer {
    let Query { filter, page } = match parse(query) {
        Ok(q) => q,
        Err(why) => return bad_request(why),
    };
    let Some(queue) = &app.queue else {
        return ok(StatusCode::OK, &json!({ "events": [], "next": null }));
    };
    match queue.list(filter, page).await {
        Ok(page) => {
            let events: Vec<Value> = page.events.iter().map(summary).collect();
            let next = page.next.map(|seq| seq.to_string());
            ok(StatusCode::OK, &json!({ "events": events, "next": next }))
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /api/events/{route}/{id}`
pub(super) async fn show(app: &App, route: &[u8], id: &[u8]) -> Answer {
    match find(app, route, id).await {
        Ok((_, detail)) => ok(StatusCode::OK, &detail_json(&detail)),
        Err(refused) => refused,
    }
}

/// `POST /api/events/{route}/{id}/redeliver`
pub(super) async fn redeliver(app: &App, route: &[u8], id: &[u8]) -> Answer {
    // The id as stored: the one the lists show is escaped for ids that are not UTF-8.
    let (queue, detail) = match find(app, route, id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match queue.redeliver(&detail.summary.route, &detail.id).await {
        Ok(Redelivered::Requeued | Redelivered::Hurried) => {
            ok(StatusCode::ACCEPTED, &json!({ "redelivered": 1 }))
        }
        Ok(Redelivered::NotFound) => unknown_event(),
        Ok(Redelivered::InFlight) => error(
            StatusCode::CONFLICT,
            "in_flight",
            "an attempt of this event is in progress; its outcome decides what comes next",
        ),
        Err(e) => unavailable(&e),
    }
}

/// `POST /api/events/redeliver?state=&route=&type=&since=&until=`: `state` is `dead` or
/// `delivered`, and required (a bulk change names what it changes).
pub(super) async fn redeliver_matching(app: &App, query: &str) -> Answer {
    let Query { mut filter, .. } = match parse(query) {
        Ok(q) => q,
        Err(why) => return bad_request(why),
    };
    let state =
        match filter.state.take() {
            Some(state @ (State::Dead | State::Delivered)) => state,
            Some(State::Pending) => return bad_request(
                "state pending: pending events are in the queue already (retry-now hurries them)"
                    .into(),
            ),
            None => return bad_request("state is required: dead or delivered".into()),
        };
    bulk(app, Bulk { filter, state }).await
}

/// `POST /api/dead-letters/redeliver?route=`
pub(super) async fn redeliver_dead(app: &App, query: &str) -> Answer {
    let route = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "route")
        .map(|(_, v)| v.into_owned());
    let filter = Filter {
        route,
        ..Filter::default()
    };
    bulk(
        app,
        Bulk {
            filter,
            state: State::Dead,
        },
    )
    .await
}

async fn bulk(app: &App, bulk: Bulk) -> Answer {
    let Some(queue) = &app.queue else {
        return ok(StatusCode::ACCEPTED, &json!({ "redelivered": 0 }));
    };
    match queue.redeliver_matching(&bulk).await {
        Ok(n) => ok(StatusCode::ACCEPTED, &json!({ "redelivered": n })),
        Err(e) => unavailable(&e),
    }
}

/// The newest stored event of `id` on `route`, or the answer that it is not there.
async fn find<'a>(app: &'a App, route: &[u8], id: &[u8]) -> Result<(&'a Queue, Detail), Answer> {
    let queue = app.queue.as_deref().ok_or_else(unknown_event)?;
    let route = std::str::from_utf8(route).map_err(|_| unknown_event())?;
    match queue.detail(route, id).await {
        Ok(Some(detail)) => Ok((queue, detail)),
        Ok(None) => Err(unknown_event()),
        Err(e) => Err(unavailable(&e)),
    }
}

fn unknown_event() -> Answer {
    error(StatusCode::NOT_FOUND, "not_found", "no such event")
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
                "at": rfc3339(a.at_ms),
                "status": a.status,
                "error": a.error,
                "duration_ms": a.duration_ms,
                "response": a.response,
            })
        })
        .collect();
    if let Value::Object(map) = &mut out {
        map.insert("body".into(), body);
        map.insert("history".into(), Value::Array(history));
    }
    out
}
