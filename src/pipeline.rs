//! One request, top to bottom, in the order of SPEC §3. `handle` logs once and renders
//! errors once; `handle_inner` is the pipeline and returns at the first failed check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use tokio::time::Instant;

use crate::app::{unix_seconds, App};
use crate::config::{ForwardMode, Route};
use crate::error::{json_response, GatewayError};
use crate::forward::Answer;
use crate::providers::{self, Event, Events};
use crate::{auth, envelope};

/// What the log line of a request names, filled in as the pipeline learns it.
#[derive(Default)]
struct Trace {
    route: Option<Arc<Route>>,
    event_id: Option<String>,
}

/// A request that got through to the app, with the outcome it counts as.
struct Done {
    response: Response<Full<Bytes>>,
    outcome: &'static str,
}

/// Serves one request; never fails (every error becomes its JSON answer).
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let started = StdInstant::now();
    let mut trace = Trace::default();
    let (response, outcome) = match handle_inner(&app, req, peer, &mut trace).await {
        Ok(done) => (done.response, done.outcome),
        Err(err) => {
            if let GatewayError::Forward(cause) = &err {
                tracing::warn!(route = trace.route.as_ref().map(|r| r.name.as_str()), error = %cause, "forward failed");
            }
            let code = err.code();
            (err.into_response(), code)
        }
    };
    tracing::info!(
        route = trace
            .route
            .as_ref()
            .map_or("_unmatched", |r| r.name.as_str()),
        outcome,
        status = response.status().as_u16(),
        event_id = trace
            .event_id
            .as_deref()
            .map(|id| id.escape_debug().to_string()),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn handle_inner(
    app: &App,
    req: Request<Incoming>,
    peer: SocketAddr,
    trace: &mut Trace,
) -> Result<Done, GatewayError> {
    let deadline = Instant::now() + app.config.server.request_timeout;

    // 1. Exact path match: the route decides every later check, and unknown paths learn
    //    nothing about which checks exist.
    let route = Arc::clone(app.route(req.uri().path()).ok_or(GatewayError::NotFound)?);
    trace.route = Some(Arc::clone(&route));

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
    let (parts, body) = req.into_parts();
    let body = read_body(body, app.config.server.max_body_bytes, deadline).await?;

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
    let verified = providers::verify(&route, &request)?;

    // 10. Only now is the payload parsed: nothing unverified is ever interpreted.
    let Events { events, batch } = verified.normalize(&route)?;

    // 11–13. Rate limit and dedup slot in here (they need the verified event ids).

    // 14. Forward in order, stopping at the first event the app does not take: the
    //     provider retries the whole request.
    let received_at = envelope::timestamp(received);
    let mut delivered = Vec::with_capacity(events.len());
    let mut last = None;
    for event in &events {
        trace.event_id = Some(event.id.clone());
        let answer = forward(app, &route, event, &received_at, deadline).await?;
        if !answer.delivered() {
            return Ok(Done {
                response: passthrough(answer),
                outcome: "upstream_rejected",
            });
        }
        delivered.push(event.id.as_str());
        last = Some(answer);
    }
    let response = match last {
        Some(answer) if !batch => passthrough(answer),
        _ => json_response(
            StatusCode::OK,
            &serde_json::json!({ "status": "delivered", "ids": delivered }),
        ),
    };
    Ok(Done {
        response,
        outcome: "delivered",
    })
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

async fn forward(
    app: &App,
    route: &Route,
    event: &Event,
    received_at: &str,
    deadline: Instant,
) -> Result<Answer, GatewayError> {
    let (body, content_type) = match route.forward {
        ForwardMode::Normalized => (
            envelope::render(route, event, received_at),
            Some(HeaderValue::from_static("application/json")),
        ),
        ForwardMode::Raw => (event.raw_body().clone(), event.raw_content_type().cloned()),
    };
    Ok(app
        .forwarder
        .send(route, event, body, content_type, deadline)
        .await?)
}

/// The app's status, body and Content-Type, as the provider should see them.
fn passthrough(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    let mut headers = HeaderMap::new();
    if let Some(ct) = answer.content_type {
        headers.insert(CONTENT_TYPE, ct);
    }
    *response.headers_mut() = headers;
    response
}
