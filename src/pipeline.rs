//! One request, top to bottom, in the order of docs/request-handling.md. `handle` counts, logs and renders
//! once; `handle_inner` is the pipeline and returns at the first failed check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::{Bytes, BytesMut};
use http::header::HOST;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use tokio::time::Instant;

use crate::app::{App, RouteState, Runtime};
use crate::clock::{unix_millis, unix_seconds};
use crate::error::{GatewayError, Reply};
use crate::learned_secrets::Learned;
use crate::metrics::{Failure, Outcome};
use crate::providers::{self, EventId, Events, HandshakeBody, Normalized, VerifyError};
use crate::replay_tokens::Refused;
use crate::route::Route;
use crate::{auth, delivery, request_log};

/// What the request's log line and metrics need, filled in as the pipeline learns it.
#[derive(Default)]
struct RequestRecord {
    route: Option<Arc<RouteState>>,
    /// The events' ids once verified, a batch's in order.
    ids: Vec<EventId>,
    batch: bool,
    /// The last event's type.
    kind: Option<String>,
    /// One per request, or one per batch element attempted.
    outcomes: Vec<Outcome>,
}

/// Serves one request; never fails (every error becomes its JSON answer).
/// `ambiguous` is the connection observer's verdict on this request's framing.
pub(crate) async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    ambiguous: bool,
) -> Response<Full<Bytes>> {
    let started = StdInstant::now();
    app.metrics.inflight.inc();
    let runtime = app.runtime();
    let mut trace = RequestRecord::default();
    let inner = handle_inner(&app, &runtime, req, peer, ambiguous, &mut trace);
    let (reply, counted) = match inner.await {
        Ok(reply) => (reply, true),
        Err(err) => {
            let outcome = err.outcome();
            trace.outcomes.extend(outcome);
            (err.into_reply(), outcome.is_some())
        }
    };
    let metrics = Arc::clone(trace.route.as_ref().map_or(&app.unmatched, |r| &r.metrics));
    let elapsed = started.elapsed();
    if counted {
        for outcome in &trace.outcomes {
            metrics.count(*outcome);
        }
        metrics.request_duration.observe(elapsed.as_secs_f64());
    }
    app.metrics.inflight.dec();
    let status = reply.status.as_u16();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    tracing::info!(
        route = trace
            .route
            .as_ref()
            .map_or(crate::metrics::UNMATCHED, |r| r.route.name.as_str()),
        outcome = trace.outcomes.last().map_or("none", |o| o.as_str()),
        status,
        event_id = trace
            .ids
            .last()
            .map(|id| id.as_str().escape_debug().to_string()),
        duration_ms,
        "request"
    );
    if let Some(outcome) = request_outcome(&trace.outcomes).filter(|_| counted) {
        let at_ms = app.clock.unix_millis();
        if trace.outcomes.contains(&Outcome::Delivered) {
            metrics.delivered_at(at_ms);
        }
        if !outcome.is_success() {
            metrics.failed(Failure {
                at_ms,
                outcome,
                status: Some(status),
            });
        }
        let events = match (trace.batch, trace.ids.pop()) {
            (_, None) => request_log::Events::None,
            (false, Some(id)) => request_log::Events::One(id),
            (true, Some(last)) => {
                trace.ids.push(last);
                request_log::Events::Batch(trace.ids)
            }
        };
        app.requests.record(request_log::Entry {
            at_ms,
            route: Arc::clone(metrics.name()),
            outcome,
            status,
            events,
            kind: trace.kind,
            duration_ms,
            peer: peer.ip().to_canonical(),
        });
    }
    reply.into_response()
}

/// A request's own outcome: a batch's is its last element's, past the duplicates (a
/// batch delivered but for copies is `delivered`; one that failed is its failure).
fn request_outcome(outcomes: &[Outcome]) -> Option<Outcome> {
    outcomes
        .iter()
        .rev()
        .find(|o| **o != Outcome::Duplicate)
        .or(outcomes.last())
        .copied()
}

/// The answer when a request's own task failed: nothing of it was forwarded.
pub(crate) fn internal_error() -> Response<Full<Bytes>> {
    GatewayError::Internal.into_reply().into_response()
}

async fn handle_inner(
    app: &App,
    rt: &Runtime,
    req: Request<Incoming>,
    peer: SocketAddr,
    ambiguous: bool,
    trace: &mut RequestRecord,
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

    // 2. Providers only POST; anything else is a probe or a mistake, but for the GET
    //    (or HEAD) with which some check the endpoint (Meta, Dropbox, Okta, X,
    //    Mandrill), answered here from the query alone and never forwarded.
    if req.method() != Method::POST {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let (method, query, headers) = (req.method(), req.uri().query(), req.headers());
            if let Some(handshake) = providers::get_handshake(route, method, query, headers) {
                let handshake = handshake?;
                trace.outcomes.push(Outcome::Handshake);
                return Ok(handshake_reply(handshake));
            }
        }
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

    // 5b. A route whose provider hands its secret over in a handshake (Asana): the
    //     handshake is answered here (its secret kept, if it is the first), and the
    //     secret learnt verifies the events after it.
    let with_learned;
    let route = if route.provider.learns_secret() {
        if let Some(secret) = providers::handed_over_secret(&parts.headers) {
            return match app.learned.learn(&route.name, secret.as_bytes()).await? {
                Learned::New | Learned::Same => {
                    trace.outcomes.push(Outcome::Handshake);
                    let mut reply = Reply::empty(StatusCode::OK);
                    reply.headers.insert(providers::HOOK_SECRET, secret.clone());
                    Ok(reply)
                }
                Learned::Other => Err(VerifyError::Unauthorized.into()),
            };
        }
        with_learned = learned_route(app, route).await?;
        &with_learned
    } else {
        route
    };

    // 6–9. Signature and replay window, judged at the injected clock.
    let received = app.clock.now();
    let now = unix_seconds(received);
    let request = providers::Request {
        method: &parts.method,
        headers: &parts.headers,
        query: parts.uri.query(),
        body: &body,
        now,
        now_ms: unix_millis(received),
    };
    let verified = providers::verify(route, &request)?;

    // 9b. A scheme that signs a one-time token but not the event (Mailgun) accepts each
    //     token once: otherwise one captured signature would vouch for any event. Its
    //     retries are signed afresh, so a token is spent even when delivery fails.
    if let Some((token, until)) = verified.replay_token() {
        app.tokens
            .claim(&route.name, token, until, now)
            .map_err(|refused| match refused {
                Refused::Seen => GatewayError::from(VerifyError::InvalidSignature),
                Refused::Full => GatewayError::Overloaded,
            })?;
    }

    // 10. Only now is the payload parsed: nothing unverified is ever interpreted. A
    //     handshake (a provider checking the endpoint) is answered here, never forwarded.
    let Events { events, batch } = match verified.normalize(route)? {
        Normalized::Events(events) => events,
        Normalized::Handshake(handshake) => {
            trace.outcomes.push(Outcome::Handshake);
            return Ok(handshake_reply(handshake));
        }
    };

    // 11–14. Each event once, in the route's delivery mode (see `delivery`): a duplicate
    //        is answered first, so that replaying a captured request never spends the
    //        route's rate budget; the first new event takes the request's one token.
    let delivered = delivery::deliver(app, rt, &state, events, batch, received, deadline).await;
    trace.ids = delivered.ids;
    trace.batch = batch;
    trace.kind = delivered.kind;
    trace.outcomes.extend(delivered.outcomes);
    Ok(delivered.reply)
}

/// `route` with the secret it learnt at its handshake among its own.
async fn learned_route(app: &App, route: &Route) -> Result<Route, GatewayError> {
    let mut route = route.clone();
    route.secrets.extend(app.learned.secret(&route.name).await?);
    Ok(route)
}

/// The gateway's own answer to a provider checking the endpoint.
fn handshake_reply(handshake: providers::Handshake) -> Reply {
    match handshake.body {
        HandshakeBody::Json(body) => Reply::json(handshake.status, &body),
        HandshakeBody::None => Reply::empty(handshake.status),
        HandshakeBody::Text(text) => Reply::text(handshake.status, text),
    }
}

/// Reads the whole body, at most `limit` bytes, before `deadline`.
async fn read_body(body: Incoming, limit: u64, deadline: Instant) -> Result<Bytes, GatewayError> {
    // Content-Length (HTTP/1) or content-length (HTTP/2) shows up as the lower size hint.
    if body.size_hint().lower() > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    match tokio::time::timeout_at(deadline, gather(body, limit)).await {
        Err(_) => Err(GatewayError::RequestTimeout),
        Ok(gathered) => gathered,
    }
}

/// The body's data frames in one buffer, refused past `limit` bytes. A body that came
/// in one frame (the usual small webhook) is kept as it is, without a copy; more frames
/// are gathered into one buffer sized from the declared length.
async fn gather(mut body: Incoming, limit: u64) -> Result<Bytes, GatewayError> {
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| GatewayError::BadBody)?.into_data() else {
            // Trailers carry nothing the gateway reads.
            continue;
        };
        total += data.len() as u64;
        if total > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        match (&mut first, &mut more) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                // What is still to come, as declared, bounded by the limit.
                let rest = body.size_hint().lower().min(limit - total);
                let size = total + rest;
                let mut buffer = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
                buffer.extend_from_slice(head);
                buffer.extend_from_slice(&data);
                more = Some(buffer);
            }
            (Some(_), Some(buffer)) => buffer.extend_from_slice(&data),
        }
    }
    Ok(match (first, more) {
        (_, Some(buffer)) => buffer.freeze(),
        (Some(only), None) => only,
        (None, None) => Bytes::new(),
    })
}
