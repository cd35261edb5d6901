//! `queue` delivery, accepting (docs/queue.md "Accepting"): each verified event is stored
//! durably through the queue, as it will be sent, and the provider is answered once the
//! store has it. The queue's workers deliver it afterwards.
//!
//! Dedup at ingest happens in the same write as the event: a copy of a pending event, or
//! of one settled within the route's dedup ttl, is a duplicate; copies arriving together
//! are stored once. The rate limit is asked by that write too, only when something new
//! is to be stored, so duplicates never spend it.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::StatusCode;
use tokio::time::Instant;

use super::Delivered;
use crate::app::{App, RouteState};
use crate::clock::unix_millis;
use crate::envelope;
use crate::error::{GatewayError, Reply};
use crate::metrics::Outcome;
use crate::providers::Event;
use crate::queue::{Enqueue, Enqueued, NewEvent, QueueError};
use crate::route::ForwardMode;

/// Stores `events` (all of a batch in one write) and answers `queued`.
pub(super) async fn accept(
    app: &App,
    state: &Arc<RouteState>,
    events: Vec<Event>,
    batch: bool,
    received: SystemTime,
    deadline: Instant,
) -> Delivered {
    let refused = |err: GatewayError, events: Vec<Event>| {
        let outcome = err.outcome().into_iter().collect();
        Delivered::of(err.into_reply(), outcome, events)
    };
    let Some(queue) = &app.queue else {
        // Not reached: a queue route makes the gateway open its queue at start.
        return refused(
            GatewayError::QueueUnavailable("no queue store is open".into()),
            events,
        );
    };
    let route = &state.route;
    let received_at = envelope::timestamp(received);
    let stored: Vec<NewEvent> = events
        .iter()
        .map(|event| {
            let (body, content_type) = match route.forward {
                ForwardMode::Normalized => (
                    envelope::render(route, event, &received_at),
                    Some(Arc::from("application/json")),
                ),
                ForwardMode::Raw => (
                    Bytes::clone(event.raw_body()),
                    event
                        .raw_content_type()
                        .and_then(|v| v.to_str().ok())
                        .map(Arc::from),
                ),
            };
            NewEvent {
                id: Bytes::copy_from_slice(event.id.as_bytes()),
                shown_id: Arc::from(event.id.as_str()),
                kind: Arc::from(event.kind.as_str()),
                body,
                content_type,
            }
        })
        .collect();
    // Check 12, asked by the write itself once it knows something new is to be stored.
    let limited = Arc::clone(state);
    let admit = Box::new(move || match &limited.limiter {
        Some(limiter) => limiter.check().map_err(std::time::Duration::from_secs),
        None => Ok(()),
    });
    let write = queue.accept(Enqueue {
        route: route.name.clone(),
        limited: state.limiter.is_some(),
        dedup_ttl: (!route.dedup_ttl.is_zero()).then_some(route.dedup_ttl),
        events: stored,
        now_ms: unix_millis(received),
        admit,
    });
    // A request that gives up is not written if the store has not taken it yet; one
    // taken may still be stored, and the provider's retry is then a duplicate. What is
    // never possible is a 200 for an event not stored.
    let stored = match tokio::time::timeout_at(deadline, write).await {
        Err(_) => {
            let unanswered = "the queue store did not answer in time".into();
            return refused(GatewayError::QueueUnavailable(unanswered), events);
        }
        Ok(Err(QueueError::Busy)) => {
            tracing::warn!(route = %route.name, "not queued: too many writes are waiting for the store");
            return refused(GatewayError::Overloaded, events);
        }
        Ok(Err(e)) => {
            tracing::warn!(route = %route.name, error = %e, "not queued");
            return refused(GatewayError::QueueUnavailable(e.to_string()), events);
        }
        Ok(Ok(Enqueued::Refused(wait))) => {
            let retry_after = wait.as_secs().max(1);
            return refused(GatewayError::RateLimited { retry_after }, events);
        }
        Ok(Ok(Enqueued::Stored(new))) => new,
    };
    let outcomes: Vec<Outcome> = stored
        .iter()
        .map(|&new| {
            if new {
                Outcome::Queued
            } else {
                Outcome::Duplicate
            }
        })
        .collect();
    let reply = match (batch, events.first()) {
        (false, Some(event)) => {
            let status = if stored.first() == Some(&true) {
                "queued"
            } else {
                "duplicate"
            };
            let id = event.id.as_str();
            Reply::serialized(StatusCode::OK, &Answer { status, id })
        }
        _ => {
            let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
            Reply::serialized(
                StatusCode::OK,
                &BatchAnswer {
                    status: "queued",
                    ids,
                },
            )
        }
    };
    Delivered::of(reply, outcomes, events)
}

/// `{"status": "queued" | "duplicate", "id": ...}`
#[derive(serde::Serialize)]
struct Answer<'a> {
    status: &'static str,
    id: &'a str,
}

/// `{"status": "queued", "ids": [...]}`
#[derive(serde::Serialize)]
struct BatchAnswer<'a> {
    status: &'static str,
    ids: Vec<&'a str>,
}
