//! `queue` delivery's exchange with the app (docs/queue.md "Delivery"): what the queue's
//! workers call for each attempt. It reads the configuration in force when the attempt
//! starts (so a reload's upstream, `forward_path` and headers apply to pending events),
//! sends the request of docs/upstream.md with `X-Hookwarden-Attempt`, and counts what the
//! app said in the route's metrics.

use std::sync::Arc;
use std::time::Instant as StdInstant;

use http::header::HeaderValue;
use tokio::time::Instant;

use crate::app::App;
use crate::forward::{ForwardError, Message, Pieces};
use crate::metrics::{Failure, Outcome};
use crate::queue::{kept_response, Backoff, BoxFuture, Deliver, Pending, Plan, Policy, Sent};
use crate::route::{DeliveryMode, Route};

/// Attempts in flight for a route whose mode is now `sync` but that still holds events.
const LEFTOVER_CONCURRENCY: usize = 8;

/// The queue's way to the app, over the gateway's configuration and connections.
pub(crate) struct Attempts {
    app: Arc<App>,
}

impl Attempts {
    pub(crate) fn new(app: Arc<App>) -> Self {
        Attempts { app }
    }
}

fn plan(route: &Route) -> Plan {
    let (concurrency, queued) = match route.delivery {
        DeliveryMode::Queue { concurrency } => (concurrency, true),
        DeliveryMode::Sync => (LEFTOVER_CONCURRENCY, false),
    };
    Plan {
        concurrency,
        queued,
        dedup_ttl: route.dedup_ttl,
    }
}

impl Deliver for Attempts {
    fn plan(&self, route: &str) -> Option<Plan> {
        self.app
            .runtime()
            .route_named(route)
            .map(|state| plan(&state.route))
    }

    fn routes(&self) -> Vec<(String, Plan)> {
        let rt = self.app.runtime();
        rt.config
            .routes
            .iter()
            .map(|route| (route.name.clone(), plan(route)))
            .collect()
    }

    fn policy(&self) -> Policy {
        let rt = self.app.runtime();
        let queue = &rt.config.queue;
        Policy {
            max_attempts: queue.max_attempts,
            backoff: Backoff {
                initial: queue.backoff_initial,
                max: queue.backoff_max,
            },
            retention: queue.retention,
            dedup_ttl: rt.config.dedup.ttl,
        }
    }

    fn send(&self, event: &Pending, attempt: u32) -> BoxFuture<'static, Sent> {
        let app = Arc::clone(&self.app);
        let event = event.clone();
        Box::pin(async move { send(&app, &event, attempt).await })
    }
}

/// One attempt: the request with `X-Hookwarden-Attempt`, and the route's metrics.
async fn send(app: &App, event: &Pending, attempt: u32) -> Sent {
    let rt = app.runtime();
    let Some(state) = rt.route_named(&event.route) else {
        // Removed by a reload between the claim and now: attempted again once it returns.
        return Sent {
            error: Some("the route is no longer configured".into()),
            ..Sent::default()
        };
    };
    let message = Message {
        id: &event.id,
        shown_id: &event.shown_id,
        kind: &event.kind,
        body: Pieces::whole(event.body.clone()),
        content_type: event.content_type.as_deref().and_then(|ct| match ct {
            // What every normalized envelope carries: no need to check it again.
            "application/json" => Some(HeaderValue::from_static("application/json")),
            other => HeaderValue::from_str(other).ok(),
        }),
        attempt: Some(attempt),
    };
    let started = StdInstant::now();
    let deadline = Instant::now() + rt.config.upstream.timeout;
    let answer = rt
        .forwarder
        .send(&state.upstream, &state.forward_headers, &message, deadline)
        .await;
    state
        .metrics
        .upstream_duration
        .observe(started.elapsed().as_secs_f64());
    let at_ms = app.clock.unix_millis();
    let sent = match &answer {
        Ok(answer) => Sent {
            delivered: answer.delivered(),
            status: Some(answer.status.as_u16()),
            error: None,
            retry_after: answer.retry_after,
            response: kept_response(&answer.body),
        },
        Err(ForwardError::Failing {
            status,
            retry_after,
            body,
        }) => Sent {
            delivered: false,
            status: Some(status.as_u16()),
            error: None,
            retry_after: *retry_after,
            response: kept_response(body),
        },
        Err(e) => Sent {
            error: Some(e.to_string()),
            ..Sent::default()
        },
    };
    if sent.delivered {
        state.metrics.forwarded(&event.kind);
        state.metrics.delivered_at(at_ms);
    } else {
        let outcome = match &answer {
            Ok(_) => Outcome::UpstreamRejected,
            Err(ForwardError::Timeout) => Outcome::UpstreamTimeout,
            Err(ForwardError::Failing { .. } | ForwardError::Unavailable(_)) => {
                Outcome::UpstreamUnavailable
            }
        };
        state.metrics.failed(Failure {
            at_ms,
            outcome,
            status: sent.status,
        });
    }
    sent
}
