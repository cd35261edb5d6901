//! `queue` delivery, accepting (SPEC §8): each verified event is stored durably in the
//! spool, as it will be sent, and the provider is answered once the store has it. The
//! workers ([`super::worker`]) deliver it afterwards.
//!
//! Dedup at ingest happens in the same write as the event (the spool's): a copy of a
//! pending event, or of one settled within the route's dedup ttl, is a duplicate; copies
//! arriving together are stored once. The rate limit is asked by that write too, only
//! when something new is to be stored, so duplicates never spend it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::HeaderValue;
use http::StatusCode;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Delivered;
use crate::app::{App, RouteState};
use crate::clock::unix_millis;
use crate::config::ForwardMode;
use crate::envelope;
use crate::error::{GatewayError, Reply};
use crate::metrics::Outcome;
use crate::providers::Event;
use crate::spool::{Enqueued, NewEvent, Spool};
use crate::sync::lock;

/// The spool and the wake-up of each route's worker.
pub struct Queue {
    pub spool: Spool,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Tells the workers' supervisor that routes or stored events changed.
    pub changed: Notify,
}

impl Queue {
    pub fn new(spool: Spool) -> Self {
        Queue {
            spool,
            wakers: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// What wakes `route`'s worker.
    pub fn waker(&self, route: &str) -> Arc<Notify> {
        Arc::clone(lock(&self.wakers).entry(route.to_string()).or_default())
    }

    /// Wakes `route`'s worker: it has something new to look at.
    pub fn wake(&self, route: &str) {
        // A stored permit: a worker busy elsewhere looks again once it waits.
        self.waker(route).notify_one();
        self.changed.notify_one();
    }
}

/// Stores `events` (all of a batch in one write) and answers `queued`.
pub async fn accept(
    app: &App,
    state: &Arc<RouteState>,
    events: Vec<Event>,
    batch: bool,
    received: SystemTime,
    deadline: Instant,
) -> Delivered {
    let last_id = events.last().map(|e| e.id.clone());
    let refused = |err: GatewayError| {
        let outcome = err.outcome().into_iter().collect();
        Delivered {
            reply: err.into_reply(),
            outcomes: outcome,
            last_id: last_id.clone(),
        }
    };
    let Some(queue) = &app.queue else {
        // Not reached: a queue route makes the gateway open its spool at start.
        return refused(GatewayError::QueueUnavailable(
            "no queue store is open".into(),
        ));
    };
    let route = &state.route;
    let received_at = envelope::timestamp(received);
    let stored: Vec<NewEvent> = events
        .iter()
        .map(|event| {
            let (body, content_type) = match route.forward {
                ForwardMode::Normalized => (
                    envelope::render(route, event, &received_at).to_vec(),
                    Some("application/json".to_string()),
                ),
                ForwardMode::Raw => (
                    event.raw_body().to_vec(),
                    event
                        .raw_content_type()
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                ),
            };
            NewEvent {
                id: event.id.as_bytes().to_vec(),
                shown_id: event.id.as_str().to_string(),
                kind: event.kind.clone(),
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
    let ttl = (!route.dedup_ttl.is_zero()).then_some(route.dedup_ttl);
    let write = queue
        .spool
        .enqueue(&route.name, ttl, stored, unix_millis(received), admit);
    // A write that outlives the request may still be stored: the provider's retry is then
    // a duplicate. What is never possible is a 200 for an event not stored.
    let stored = match tokio::time::timeout_at(deadline, write).await {
        Err(_) => {
            return refused(GatewayError::QueueUnavailable(
                "the queue store did not answer in time".into(),
            ))
        }
        Ok(Err(e)) => {
            tracing::warn!(route = %route.name, error = %e, "not queued");
            return refused(GatewayError::QueueUnavailable(e.to_string()));
        }
        Ok(Ok(Enqueued::Refused(wait))) => {
            return refused(GatewayError::RateLimited {
                retry_after: wait.as_secs().max(1),
            })
        }
        Ok(Ok(Enqueued::Stored(new))) => new,
    };
    if stored.iter().any(|&new| new) {
        queue.wake(&route.name);
    }
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
    let body = match (batch, events.first()) {
        (false, Some(event)) => {
            let status = if stored.first() == Some(&true) {
                "queued"
            } else {
                "duplicate"
            };
            serde_json::json!({ "status": status, "id": event.id.as_str() })
        }
        _ => {
            let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
            serde_json::json!({ "status": "queued", "ids": ids })
        }
    };
    Delivered {
        reply: Reply::json(StatusCode::OK, &body),
        outcomes,
        last_id,
    }
}

/// The content type a stored event is sent with.
pub fn content_type(stored: Option<&str>) -> Option<HeaderValue> {
    stored.and_then(|ct| HeaderValue::from_str(ct).ok())
}
