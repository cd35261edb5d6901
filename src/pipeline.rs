//! One request, top to bottom, in the order of SPEC §3. `handle` counts, logs and renders
//! once; `handle_inner` is the pipeline and returns at the first failed check.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use tokio::time::Instant;

use crate::app::{unix_seconds, App, RouteState, Runtime};
use crate::config::ForwardMode;
use crate::dedup::{Claim, Settled, SharedClaim, Ticket};
use crate::error::{GatewayError, Reply};
use crate::forward::Answer;
use crate::metrics::Outcome;
use crate::providers::{self, Event, EventId, Events};
use crate::{auth, envelope};

/// What the request's log line and metrics need, filled in as the pipeline learns it.
#[derive(Default)]
struct Trace {
    route: Option<Arc<RouteState>>,
    event_id: Option<EventId>,
    /// One per request, or one per batch element attempted.
    outcomes: Vec<Outcome>,
}

/// Serves one request; never fails (every error becomes its JSON answer).
/// `ambiguous` is the connection observer's verdict on this request's framing.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    ambiguous: bool,
) -> Response<Full<Bytes>> {
    let started = StdInstant::now();
    app.metrics.inflight.inc();
    let runtime = app.runtime();
    let mut trace = Trace::default();
    let inner = handle_inner(&app, &runtime, req, peer, ambiguous, &mut trace);
    let (reply, counted) = match inner.await {
        Ok(reply) => (reply, true),
        Err(err) => {
            let outcome = err.outcome();
            trace.outcomes.extend(outcome);
            (err.into_reply(), outcome.is_some())
        }
    };
    let metrics = trace.route.as_ref().map_or(&app.unmatched, |r| &r.metrics);
    let elapsed = started.elapsed();
    if counted {
        for outcome in &trace.outcomes {
            metrics.count(*outcome);
        }
        metrics.request_duration.observe(elapsed.as_secs_f64());
    }
    app.metrics.inflight.dec();
    tracing::info!(
        route = trace
            .route
            .as_ref()
            .map_or(crate::metrics::UNMATCHED, |r| r.route.name.as_str()),
        outcome = trace.outcomes.last().map_or("none", |o| o.as_str()),
        status = reply.status.as_u16(),
        event_id = trace
            .event_id
            .as_ref()
            .map(|id| id.as_str().escape_debug().to_string()),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    reply.into_response()
}

/// The answer when a request's own task failed: nothing of it was forwarded.
pub fn internal_error() -> Response<Full<Bytes>> {
    GatewayError::Internal.into_reply().into_response()
}

async fn handle_inner(
    app: &App,
    rt: &Runtime,
    req: Request<Incoming>,
    peer: SocketAddr,
    ambiguous: bool,
    trace: &mut Trace,
) -> Result<Reply, GatewayError> {
    let deadline = Instant::now() + rt.config.server.request_timeout;

    // 0. A request whose length two parsers could read differently is never served
    //    (see `framing`: hyper hides these shapes, the connection observer does not).
    if ambiguous {
        return Err(GatewayError::AmbiguousFraming);
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is refused, as nginx
    // does; two front ends could each pick a different one.
    if req.version() == Version::HTTP_11 && req.headers().get_all(HOST).iter().count() != 1 {
        return Err(GatewayError::BadHost);
    }

    // 1. Exact path match: the route decides every later check, and unknown paths learn
    //    nothing about which checks exist.
    let state = Arc::clone(rt.route(req.uri().path()).ok_or(GatewayError::NotFound)?);
    trace.route = Some(Arc::clone(&state));
    let route = &state.route;

    // 2. Providers only POST; anything else is a probe or a mistake.
    if req.method() != Method::POST {
        return Err(GatewayError::MethodNotAllowed);
    }

    // 3. Source allowlist, before a byte of the body is read. Mapped IPv4 peers of a
    //    dual-stack listener are compared as IPv4.
    let ip = peer.ip().to_canonical();
    if !route.allow_ips.is_empty() && !route.allow_ips.iter().any(|net| net.contains(&ip)) {
        return Err(GatewayError::Forbidden);
    }

    // 4. Size cap: a declared oversize length is refused unread; a streamed one is cut off.
    //    Room for the body is reserved first, so slow senders together cannot hold more
    //    memory than `max_buffered_bytes`; the room is held until the request ends.
    let (parts, body) = req.into_parts();
    let limit = rt.config.server.max_body_bytes;
    let declared = body.size_hint().exact().unwrap_or(limit).min(limit);
    let mut _room = app
        .budget
        .reserve(declared)
        .ok_or(GatewayError::Overloaded)?;
    let body = read_body(body, limit, deadline).await?;
    _room.shrink_to(body.len() as u64);

    // 5. Static credentials, when the route has them.
    if let Some(credentials) = &route.auth {
        auth::check(credentials, &parts.headers)?;
    }

    // 6–9. Signature and replay window, judged at the injected clock.
    let received = app.clock.now();
    let request = providers::Request {
        headers: &parts.headers,
        body: &body,
        now: unix_seconds(received),
    };
    let verified = providers::verify(route, &request)?;

    // 10. Only now is the payload parsed: nothing unverified is ever interpreted.
    let Events { events, batch } = verified.normalize(route)?;

    // 11–14. Each event once: a duplicate is answered first, so that replaying a captured
    //        request never spends the route's rate budget; the first event that will go
    //        to the app takes the request's one token; then forward, in order, stopping at
    //        the first the app does not take (the provider retries the whole request).
    let delivery = Delivery {
        app,
        rt,
        state: &state,
        received_at: envelope::timestamp(received),
        deadline,
        token_taken: AtomicBool::new(false),
    };
    let mut ids = Vec::with_capacity(events.len());
    for event in &events {
        trace.event_id = Some(event.id.clone());
        let (reply, outcome) = delivery.deliver(event).await;
        trace.outcomes.push(outcome);
        match outcome {
            Outcome::Delivered | Outcome::Duplicate if batch => ids.push(event.id.as_str()),
            _ => return Ok(reply),
        }
    }
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({ "status": "delivered", "ids": ids }),
    ))
}

/// Reads the whole body, at most `limit` bytes, before `deadline`.
async fn read_body(body: Incoming, limit: u64, deadline: Instant) -> Result<Bytes, GatewayError> {
    // Content-Length (HTTP/1) or content-length (HTTP/2) shows up as the lower size hint.
    if body.size_hint().lower() > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    match tokio::time::timeout_at(deadline, Limited::new(body, cap).collect()).await {
        Err(_) => Err(GatewayError::RequestTimeout),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(GatewayError::PayloadTooLarge { limit }),
        Ok(Err(_)) => Err(GatewayError::BadBody),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
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
                        Settled::Failed { reply, outcome } => return (reply, outcome),
                        // The first copy went away without an answer: claim again.
                        Settled::Abandoned => continue,
                    }
                }
            }
        }
    }

    /// The first copy on this replica: forwarded unless another replica has it (with a
    /// shared store), and its outcome settled here and there.
    async fn first_copy(&self, event: &Event, ticket: Ticket<'_>) -> (Reply, Outcome) {
        let route = &self.state.route;
        let shared = match self.shared_claim(event).await {
            Ok(None) => None,
            Ok(Some(SharedClaim::First(claim))) => Some(claim),
            Ok(Some(SharedClaim::Delivered { remaining })) => {
                ticket.delivered_for(remaining);
                return duplicate(&event.id);
            }
            // Waiting on another replica would mean polling the store; SPEC §3 check 13
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
            _ => ticket.failed(reply.clone(), outcome),
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
                envelope::render(route, event, &self.received_at),
                Some(HeaderValue::from_static("application/json")),
            ),
            ForwardMode::Raw => (event.raw_body().clone(), event.raw_content_type().cloned()),
        };
        let started = StdInstant::now();
        let result = self
            .rt
            .forwarder
            .send(
                &self.state.upstream,
                &self.state.forward_headers,
                event,
                body,
                content_type,
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
fn refuse(ticket: Ticket<'_>, err: GatewayError) -> (Reply, Outcome) {
    let (reply, outcome) = answer(err);
    ticket.failed(reply.clone(), outcome);
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
