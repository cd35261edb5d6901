//! Checks 11–14 of SPEC §3: what becomes of a request's verified events.
//!
//! Two strategies side by side, chosen by the route's `delivery`: [`sync`] forwards each
//! event while the provider waits, and the app's answer is the provider's.

mod sync;

pub use sync::Failure;

use std::time::SystemTime;

use tokio::time::Instant;

use crate::app::{App, RouteState, Runtime};
use crate::error::Reply;
use crate::metrics::Outcome;
use crate::providers::{Event, EventId};

/// What became of a request's events: the provider's answer, one outcome per event
/// attempted, and the last event's id (for the request's log line).
pub struct Delivered {
    pub reply: Reply,
    pub outcomes: Vec<Outcome>,
    pub last_id: Option<EventId>,
}

/// Delivers `events`, received at `received`, in the route's mode.
pub async fn deliver(
    app: &App,
    rt: &Runtime,
    state: &RouteState,
    events: Vec<Event>,
    batch: bool,
    received: SystemTime,
    deadline: Instant,
) -> Delivered {
    sync::deliver(app, rt, state, events, batch, received, deadline).await
}
