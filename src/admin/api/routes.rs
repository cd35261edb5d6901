//! `/api/routes`: every configured route with what it served, its queue and whether it
//! is paused; and the route levers: retry now, pause, resume.

use http::StatusCode;
use serde_json::{json, Value};

use super::{error, ok, rfc3339, unavailable, Answer};
use crate::app::App;
use crate::route::DeliveryMode;

/// `GET /api/routes`
pub(super) async fn list(app: &App) -> Answer {
    let rt = app.runtime();
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
        let queued = matches!(route.delivery, DeliveryMode::Queue { .. });
        let last_failure = metrics.last_failure().map(|f| {
            json!({ "at": rfc3339(f.at_ms), "outcome": f.outcome.as_str(), "status": f.status })
        });
        let mut entry = json!({
            "name": route.name,
            "path": route.path,
            "provider": route.provider.name(),
            "delivery": if queued { "queue" } else { "sync" },
            "requests": requests,
            "last_delivered_at": metrics.last_delivered().map(rfc3339),
            "last_failure": last_failure,
        });
        if let (true, Some(queue)) = (queued, &app.queue) {
            let counts = match queue.counts(&route.name).await {
                Ok(c) => c,
                Err(e) => return unavailable(&e),
            };
            let oldest = match counts.pending {
                0 => 0.0,
                _ => queue
                    .oldest_pending_seconds(&route.name)
                    .await
                    .unwrap_or(0.0),
            };
            let [delivered, failed, dead_lettered] = app.metrics.queue.attempt_counts(&route.name);
            entry["queue"] = json!({
                "pending": counts.pending,
                "dead": counts.dead,
                "oldest_pending_seconds": oldest,
                "paused": queue.is_paused(&route.name),
                "attempts": {
                    "delivered": delivered,
                    "failed": failed,
                    "dead_lettered": dead_lettered,
                },
            });
        }
        out.push(entry);
    }
    ok(StatusCode::OK, &json!({ "routes": out }))
}

/// `POST /api/routes/{route}/retry-now`, `…/pause`, `…/resume`
pub(super) async fn lever(app: &App, route: &[u8], lever: &[u8]) -> Answer {
    let rt = app.runtime();
    let name = std::str::from_utf8(route).unwrap_or_default();
    let Some(state) = rt.route_named(name) else {
        return error(StatusCode::NOT_FOUND, "not_found", &rt.no_route_named(name));
    };
    let (DeliveryMode::Queue { .. }, Some(queue)) = (&state.route.delivery, &app.queue) else {
        return error(
            StatusCode::CONFLICT,
            "not_a_queue_route",
            "this route delivers while the provider waits (delivery = \"sync\"); it has no queue",
        );
    };
    match lever {
        b"retry-now" => match queue.retry_now(name).await {
            Ok(n) => ok(StatusCode::ACCEPTED, &json!({ "rescheduled": n })),
            Err(e) => unavailable(&e),
        },
        _ => {
            let paused = lever == b"pause";
            match queue.pause(name, paused).await {
                Ok(()) => {
                    let verb = if paused { "paused" } else { "resumed" };
                    tracing::info!(route = name, "queue: deliveries {verb} by an operator");
                    ok(StatusCode::OK, &json!({ "route": name, "paused": paused }))
                }
                Err(e) => unavailable(&e),
            }
        }
    }
}

/// Sets the queue gauges from what the queue holds now (at each scrape), for the
/// configured queue routes only.
pub(in crate::admin) async fn queue_gauges(app: &App) {
    let Some(queue) = &app.queue else {
        return;
    };
    let routes: Vec<String> = app
        .runtime()
        .config
        .routes
        .iter()
        .filter(|r| matches!(r.delivery, DeliveryMode::Queue { .. }))
        .map(|r| r.name.clone())
        .collect();
    queue.gauges(&routes).await;
}
