//! `sync` delivery (docs/request-handling.md checks 11–14): each event is forwarded while the provider
//! waits, and the app's answer is the provider's.
//!
//! Each event is claimed in `dedup` (and then in the shared store, when replicas share
//! ids): the first copy forwards, later copies answer `duplicate` or wait for the first
//! and answer as it did. The app's 2xx marks the id delivered; anything else releases it
//! so the provider's retry is forwarded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant as StdInstant, SystemTime};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use super::Delivered;
use crate::app::{App, Failure, RouteState, Runtime};
use crate::dedup::{Claim, Settled, SharedClaim, Ticket};
use crate::envelope;
use crate::error::{GatewayError, Reply};
use crate::forward::{Answer, Message, Pieces};
use crate::metrics::Outcome;
use crate::providers::{Event, EventId};
use crate::route::ForwardMode;

/// Forwards `events` in order, stopping at the first the app does not take (the provider
/// retries the whole request; elements already delivered are then duplicates).
pub(super) async fn deliver(
    app: &App,
    rt: &Runtime,
    state: &RouteState,
    events: Vec<Event>,
    batch: bool,
    received: SystemTime,
    deadline: Instant,
) -> Delivered {
    let delivery = Delivery {
        app,
        rt,
        state,
        received_at: envelope::timestamp(received),
        deadline,
        token_taken: AtomicBool::new(false),
    };
    let mut outcomes = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    for event in &events {
        let (reply, outcome) = delivery.deliver(event).await;
        outcomes.push(outcome);
        match outcome {
            Outcome::Delivered | Outcome::Duplicate if batch => ids.push(event.id.as_str()),
            _ => return Delivered::of(reply, outcomes, events),
        }
    }
    let reply = Reply::json(
        StatusCode::OK,
        &serde_json::json!({ "status": "delivered", "ids": ids }),
    );
    Delivered::of(reply, outcomes, events)
}

/// What delivering a request's events needs, shared by its events.
struct Delivery<'a> {
    app: &'a App,
    rt: &'a Runtime,
    state: &'a RouteState,
    received_at: String,
    deadline: Instant,
    /// The request's one rate-limit token has been taken (by its first forwarded event).
    token_taken: AtomicBool,
}

impl Delivery<'_> {
    /// Check 12: the route's rate limit, once per request, for an event about to be
    /// forwarded. Duplicates never get here, so they spend nothing.
    fn take_token(&self) -> Result<(), GatewayError> {
        if self.token_taken.load(Ordering::Relaxed) {
            return Ok(());
        }
        if let Some(limiter) = &self.state.limiter {
            limiter
                .check()
                .map_err(|retry_after| GatewayError::RateLimited { retry_after })?;
        }
        self.token_taken.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Checks 12–14 for one event: forwarded by the first copy only; later copies
    /// answer `duplicate`, or wait for the first copy and answer as it did.
    async fn deliver(&self, event: &Event) -> (Reply, Outcome) {
        let route = &self.state.route;
        if route.dedup_ttl.is_zero() {
            if let Err(limited) = self.take_token() {
                return answer(limited);
            }
            return self.forward(event).await;
        }
        loop {
            match self
                .app
                .dedup
                .claim(&route.name, event.id.as_bytes(), route.dedup_ttl)
            {
                Claim::Delivered => return duplicate(&event.id),
                Claim::First(ticket) => return self.first_copy(event, ticket).await,
                Claim::InFlight(first) => {
                    let settled =
                        match tokio::time::timeout_at(self.deadline, first.settled()).await {
                            Err(_) => return answer(GatewayError::InFlight),
                            Ok(settled) => settled,
                        };
                    match settled {
                        Settled::Delivered => return duplicate(&event.id),
                        Settled::Failed((reply, outcome)) => return (reply, outcome),
                        // The first copy went away without an answer: claim again.
                        Settled::Abandoned => continue,
                    }
                }
            }
        }
    }

    /// The first copy on this replica: forwarded unless another replica has it (with a
    /// shared store), and its outcome settled here and there.
    async fn first_copy(&self, event: &Event, ticket: Ticket<'_, Failure>) -> (Reply, Outcome) {
        let route = &self.state.route;
        let shared = match self.shared_claim(event).await {
            Ok(None) => None,
            Ok(Some(SharedClaim::First(claim))) => Some(claim),
            Ok(Some(SharedClaim::Delivered { remaining })) => {
                ticket.delivered_for(remaining);
                return duplicate(&event.id);
            }
            // Waiting on another replica would mean polling the store; docs/request-handling.md check 13
            // lets the provider retry instead.
            Ok(Some(SharedClaim::Elsewhere)) => return refuse(ticket, GatewayError::InFlight),
            Err(e) => {
                tracing::warn!(route = %route.name, error = %e, "dedup store unavailable; not forwarded");
                return refuse(ticket, e.into());
            }
        };
        if let Err(limited) = self.take_token() {
            if let Some(claim) = shared {
                if let Err(e) = claim.release().await {
                    tracing::warn!(route = %route.name, error = %e, "claim kept in the dedup store until its lease ends");
                }
            }
            return refuse(ticket, limited);
        }
        let (reply, outcome) = self.forward(event).await;
        let settled = match (outcome, shared) {
            (_, None) => Ok(()),
            (Outcome::Delivered, Some(claim)) => claim.delivered(route.dedup_ttl).await,
            (_, Some(claim)) => claim.release().await,
        };
        if let Err(e) = settled {
            // The answer stands: the app's verdict is what the provider must hear. Other
            // replicas may forward a retry once the claim's lease ends.
            tracing::warn!(route = %route.name, error = %e, "outcome not recorded in the dedup store");
        }
        match outcome {
            Outcome::Delivered => ticket.delivered(),
            _ => ticket.failed((reply.clone(), outcome)),
        }
        (reply, outcome)
    }

    /// The store's claim, when ids are shared. Its lease lasts as long as the forward
    /// can: a replica that dies mid-forward frees the id by the request deadline.
    async fn shared_claim(
        &self,
        event: &Event,
    ) -> Result<Option<SharedClaim>, crate::dedup::StoreError> {
        let Some(store) = &self.app.shared else {
            return Ok(None);
        };
        let lease = self
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_add(LEASE_MARGIN);
        let route = &self.state.route.name;
        store
            .claim(route, event.id.as_bytes(), lease, self.deadline)
            .await
            .map(Some)
    }

    /// Check 14: one event to the app, and what its answer means for the provider.
    async fn forward(&self, event: &Event) -> (Reply, Outcome) {
        let route = &self.state.route;
        let (body, content_type) = match route.forward {
            ForwardMode::Normalized => (
                envelope::pieces(route, event, &self.received_at),
                Some(HeaderValue::from_static("application/json")),
            ),
            ForwardMode::Raw => (
                Pieces::whole(event.raw_body().clone()),
                event.raw_content_type().cloned(),
            ),
        };
        let started = StdInstant::now();
        let message = Message::of(event, body, content_type);
        let result = self
            .rt
            .forwarder
            .send(
                &self.state.upstream,
                &self.state.forward_headers,
                &message,
                self.deadline,
            )
            .await;
        let metrics = &self.state.metrics;
        metrics
            .upstream_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(answer) if answer.delivered() => {
                metrics.forwarded(&event.kind);
                (passthrough(answer), Outcome::Delivered)
            }
            Ok(answer) => (passthrough(answer), Outcome::UpstreamRejected),
            Err(cause) => {
                tracing::warn!(route = %route.name, error = %cause, "forward failed");
                answer(cause.into())
            }
        }
    }
}

/// `err` as one event's answer. Every error here is past the HTTP layer, so it has an
/// outcome; the fallback only keeps the type honest.
fn answer(err: GatewayError) -> (Reply, Outcome) {
    let outcome = err.outcome().unwrap_or(Outcome::UpstreamUnavailable);
    (err.into_reply(), outcome)
}

/// Answers `err` to this copy and to the copies waiting on it here.
fn refuse(ticket: Ticket<'_, Failure>, err: GatewayError) -> (Reply, Outcome) {
    let (reply, outcome) = answer(err);
    ticket.failed((reply.clone(), outcome));
    (reply, outcome)
}

/// How long a shared claim outlives its request's deadline, for the clocks of the
/// gateway and the store to disagree a little.
const LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

fn duplicate(id: &EventId) -> (Reply, Outcome) {
    let body = serde_json::json!({ "status": "duplicate", "id": id.as_str() });
    (Reply::json(StatusCode::OK, &body), Outcome::Duplicate)
}

/// The app's status, body and Content-Type, as the provider should see them.
fn passthrough(answer: Answer) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(ct) = answer.content_type {
        headers.insert(CONTENT_TYPE, ct);
    }
    Reply {
        status: answer.status,
        headers,
        body: answer.body,
    }
}
