//! What becomes of a request's verified events (docs/request-handling.md, checks 11–14).
//!
//! Two strategies side by side, chosen by the route's `delivery`: [`sync`] forwards each
//! event while the provider waits, and the app's answer is the provider's; `queue`
//! stores them through the [`Queue`](crate::queue::Queue) and answers at once
//! ([`enqueue`]), and the queue's workers deliver them later through [`attempt`].

mod attempt;
mod enqueue;
mod sync;

pub(crate) use attempt::Attempts;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::app::{App, RouteState, Runtime};
use crate::error::Reply;
use crate::metrics::Outcome;
use crate::providers::{Event, EventId};
use crate::route::DeliveryMode;

/// What became of a request's events: the provider's answer, one outcome per event
/// attempted, and what the request's log line and the request log show of them.
pub(crate) struct Delivered {
    pub reply: Reply,
    pub outcomes: Vec<Outcome>,
    /// Every event's id, in order.
    pub ids: Vec<EventId>,
    /// The last event's type.
    pub kind: Option<String>,
}

impl Delivered {
    /// `reply` and `outcomes` for `events`, whose ids and type it keeps.
    fn of(reply: Reply, outcomes: Vec<Outcome>, mut events: Vec<Event>) -> Self {
        // Taken, not copied: the events end here.
        let kind = events.last_mut().map(|e| std::mem::take(&mut e.kind));
        Delivered {
            reply,
            outcomes,
            ids: events.into_iter().map(|e| e.id).collect(),
            kind,
        }
    }
}

/// Delivers `events`, received at `received`, in the route's mode.
pub(crate) async fn deliver(
    app: &App,
    rt: &Runtime,
    state: &Arc<RouteState>,
    events: Vec<Event>,
    batch: bool,
    received: SystemTime,
    deadline: Instant,
) -> Delivered {
    match state.route.delivery {
        DeliveryMode::Sync => {
            sync::deliver(app, rt, state, events, batch, received, deadline).await
        }
        DeliveryMode::Queue { .. } => {
            enqueue::accept(app, state, events, batch, received, deadline).await
        }
    }
}
