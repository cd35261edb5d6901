//! Prometheus metrics of docs/operations.md on a registry of our own (never the global default).
//! Per-route label handles are resolved once per route, not per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::sync::lock;

/// How one request (or one batch element) ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Delivered,
    Duplicate,
    InFlight,
    NotFound,
    MethodNotAllowed,
    Forbidden,
    RateLimited,
    PayloadTooLarge,
    Unauthorized,
    MissingSignature,
    InvalidTimestamp,
    TimestampOutOfTolerance,
    InvalidSignature,
    MalformedPayload,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamTimeout,
    StoreUnavailable,
    Overloaded,
    Queued,
    QueueUnavailable,
    Handshake,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 22] = [
        Outcome::Delivered,
        Outcome::Duplicate,
        Outcome::InFlight,
        Outcome::NotFound,
        Outcome::MethodNotAllowed,
        Outcome::Forbidden,
        Outcome::RateLimited,
        Outcome::PayloadTooLarge,
        Outcome::Unauthorized,
        Outcome::MissingSignature,
        Outcome::InvalidTimestamp,
        Outcome::TimestampOutOfTolerance,
        Outcome::InvalidSignature,
        Outcome::MalformedPayload,
        Outcome::UpstreamRejected,
        Outcome::UpstreamUnavailable,
        Outcome::UpstreamTimeout,
        Outcome::StoreUnavailable,
        Outcome::Overloaded,
        Outcome::Queued,
        Outcome::QueueUnavailable,
        Outcome::Handshake,
    ];

    pub(crate) fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// The outcomes a route delivering in `mode` can count, exported from the start (at
    /// 0) so that rates over them exist before the first request; any other outcome is
    /// exported once it happens.
    pub(crate) fn possible(mode: Mode) -> &'static [Outcome] {
        use Outcome::*;
        match mode {
            Mode::Unmatched => &[NotFound, MethodNotAllowed],
            Mode::Sync => &[
                Delivered,
                Duplicate,
                InFlight,
                MethodNotAllowed,
                Forbidden,
                RateLimited,
                PayloadTooLarge,
                Unauthorized,
                MissingSignature,
                InvalidTimestamp,
                TimestampOutOfTolerance,
                InvalidSignature,
                MalformedPayload,
                UpstreamRejected,
                UpstreamUnavailable,
                UpstreamTimeout,
                StoreUnavailable,
                Overloaded,
                Handshake,
            ],
            Mode::Queue => &[
                Duplicate,
                MethodNotAllowed,
                Forbidden,
                RateLimited,
                PayloadTooLarge,
                Unauthorized,
                MissingSignature,
                InvalidTimestamp,
                TimestampOutOfTolerance,
                InvalidSignature,
                MalformedPayload,
                Overloaded,
                Queued,
                QueueUnavailable,
                Handshake,
            ],
        }
    }

    /// The request went through, or was answered as a copy of one that did.
    pub(crate) fn is_success(self) -> bool {
        matches!(
            self,
            Outcome::Delivered | Outcome::Duplicate | Outcome::Queued | Outcome::Handshake
        )
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Duplicate => "duplicate",
            Outcome::InFlight => "in_flight",
            Outcome::NotFound => "not_found",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::Forbidden => "forbidden",
            Outcome::RateLimited => "rate_limited",
            Outcome::PayloadTooLarge => "payload_too_large",
            Outcome::Unauthorized => "unauthorized",
            Outcome::MissingSignature => "missing_signature",
            Outcome::InvalidTimestamp => "invalid_timestamp",
            Outcome::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Outcome::InvalidSignature => "invalid_signature",
            Outcome::MalformedPayload => "malformed_payload",
            Outcome::UpstreamRejected => "upstream_rejected",
            Outcome::UpstreamUnavailable => "upstream_unavailable",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::Overloaded => "overloaded",
            Outcome::Queued => "queued",
            Outcome::QueueUnavailable => "queue_unavailable",
            Outcome::Handshake => "handshake",
        }
    }
}

/// Which outcomes a route can have: see [`Outcome::possible`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Unmatched,
    Sync,
    Queue,
}

/// The `route` label of requests that matched no route.
pub(crate) const UNMATCHED: &str = "_unmatched";
/// Distinct `type` label values kept per route; the rest count as `_other`.
const MAX_TYPES: usize = 100;

/// Latencies from well under a millisecond (a rejected signature) to the 30 s providers
/// wait at most.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_duration: HistogramVec,
    forwarded: IntCounterVec,
    pub dedup_entries: IntGauge,
    pub dedup_evictions: IntCounter,
    pub dedup_store_errors: IntCounter,
    pub inflight: IntGauge,
    reloads: IntCounterVec,
    /// The queue's families, handed to the queue.
    pub queue: QueueMetrics,
}

/// The queue's families (queue routes only).
#[derive(Clone)]
pub(crate) struct QueueMetrics {
    events: IntGaugeVec,
    oldest_pending: GaugeVec,
    paused: IntGaugeVec,
    attempts: IntCounterVec,
    /// Per route, its three `result` counters, resolved once.
    attempt_handles: Arc<Mutex<HashMap<String, [IntCounter; 3]>>>,
    pub store_errors: IntCounter,
}

/// The `result` label of `hookwarden_delivery_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptResult {
    Delivered,
    Failed,
    DeadLettered,
}

impl AttemptResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Delivered => "delivered",
            AttemptResult::Failed => "failed",
            AttemptResult::DeadLettered => "dead_lettered",
        }
    }
}

impl QueueMetrics {
    /// One delivery attempt of `route`.
    pub(crate) fn attempted(&self, route: &str, result: AttemptResult) {
        let mut handles = lock(&self.attempt_handles);
        if !handles.contains_key(route) {
            let counters = [
                AttemptResult::Delivered,
                AttemptResult::Failed,
                AttemptResult::DeadLettered,
            ]
            .map(|r| self.attempts.with_label_values(&[route, r.as_str()]));
            handles.insert(route.to_string(), counters);
        }
        if let Some(counters) = handles.get(route) {
            counters[result as usize].inc();
        }
    }

    /// This replica's attempts of `route` since it started, by result (delivered,
    /// failed, dead lettered), for the console.
    pub(crate) fn attempt_counts(&self, route: &str) -> [u64; 3] {
        lock(&self.attempt_handles)
            .get(route)
            .map_or([0; 3], |counters| counters.each_ref().map(IntCounter::get))
    }

    /// What `route`'s part of the queue holds now.
    pub(crate) fn route(
        &self,
        route: &str,
        (pending, dead): (u64, u64),
        oldest_pending: f64,
        paused: bool,
    ) {
        let set = |state: &str, n: u64| {
            self.events
                .with_label_values(&[route, state])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set("pending", pending);
        set("dead", dead);
        self.oldest_pending
            .with_label_values(&[route])
            .set(oldest_pending);
        self.paused
            .with_label_values(&[route])
            .set(i64::from(paused));
    }

    /// `route` no longer queues: its gauges go (its attempt counters stay, as counters
    /// do).
    pub(crate) fn forget(&self, route: &str) {
        for state in ["pending", "dead"] {
            let _ = self.events.remove_label_values(&[route, state]);
        }
        let _ = self.oldest_pending.remove_label_values(&[route]);
        let _ = self.paused.remove_label_values(&[route]);
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "hookwarden_requests_total",
                    "Requests by route and outcome (batch elements count one each)",
                ),
                &["route", "outcome"],
            ),
        );
        let request_duration = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "hookwarden_request_duration_seconds",
                    "Time from request to answer",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            ),
        );
        let upstream_duration = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "hookwarden_upstream_duration_seconds",
                    "Time the app took to answer a forwarded event",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            ),
        );
        let forwarded = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "hookwarden_events_forwarded_total",
                    "Events the app accepted (2xx), by type",
                ),
                &["route", "type"],
            ),
        );
        let dedup_entries = registered(
            &registry,
            IntGauge::new("hookwarden_dedup_entries", "Event ids in the dedup cache"),
        );
        let dedup_evictions = registered(
            &registry,
            IntCounter::new(
                "hookwarden_dedup_evictions_total",
                "Event ids dropped from the dedup cache for max_entries (not ttl expiries)",
            ),
        );
        let dedup_store_errors = registered(
            &registry,
            IntCounter::new(
                "hookwarden_dedup_store_errors_total",
                "Commands to the shared dedup store (Redis) that failed or timed out",
            ),
        );
        let inflight = registered(
            &registry,
            IntGauge::new("hookwarden_inflight_requests", "Requests being served"),
        );
        let reloads = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "hookwarden_config_reloads_total",
                    "Configuration reload attempts",
                ),
                &["result"],
            ),
        );
        let queue_paused = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "hookwarden_queue_paused",
                    "1 while an operator has paused a queue route's deliveries",
                ),
                &["route"],
            ),
        );
        let queue_events = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "hookwarden_queue_events",
                    "Events stored by queue routes, pending or dead",
                ),
                &["route", "state"],
            ),
        );
        let queue_oldest_pending = registered(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "hookwarden_queue_oldest_pending_seconds",
                    "Age of the oldest pending event of a route (0 when none is pending)",
                ),
                &["route"],
            ),
        );
        let delivery_attempts = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "hookwarden_delivery_attempts_total",
                    "Queue delivery attempts by result (delivered, failed, dead_lettered)",
                ),
                &["route", "result"],
            ),
        );
        let queue_store_errors = registered(
            &registry,
            IntCounter::new(
                "hookwarden_queue_store_errors_total",
                "Reads and writes of the queue store that failed",
            ),
        );
        let build_info = registered(
            &registry,
            IntGaugeVec::new(Opts::new("hookwarden_build_info", "Always 1"), &["version"]),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for result in ["ok", "error"] {
            reloads.with_label_values(&[result]);
        }
        Metrics {
            registry,
            requests,
            request_duration,
            upstream_duration,
            forwarded,
            queue: QueueMetrics {
                events: queue_events,
                oldest_pending: queue_oldest_pending,
                paused: queue_paused,
                attempts: delivery_attempts,
                attempt_handles: Arc::default(),
                store_errors: queue_store_errors,
            },
            dedup_entries,
            dedup_evictions,
            dedup_store_errors,
            inflight,
            reloads,
        }
    }

    /// The handles of one route (or of `_unmatched`), with the outcomes `mode` can have
    /// exported from the start.
    pub(crate) fn route(&self, name: &str, mode: Mode) -> RouteMetrics {
        let metrics = RouteMetrics {
            name: Arc::from(name),
            last_delivered_ms: AtomicI64::new(0),
            last_failure: Mutex::new(None),
            requests: self.requests.clone(),
            outcomes: Default::default(),
            request_duration: self.request_duration.with_label_values(&[name]),
            upstream_duration: self.upstream_duration.with_label_values(&[name]),
            forwarded: self.forwarded.clone(),
            types: Mutex::new(HashMap::new()),
        };
        metrics.expect(mode);
        metrics
    }

    pub(crate) fn reloaded(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding our own families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Defines and registers one family. Names and labels are literals, so a failure is a
/// programming error that the first test building an `App` catches.
fn registered<C: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<C>,
) -> C {
    let metric = metric.expect("metric definitions are valid literals");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One route's label handles, resolved when the route is loaded.
pub(crate) struct RouteMetrics {
    name: Arc<str>,
    /// When an event of the route last reached the app (Unix ms; 0: never).
    last_delivered_ms: AtomicI64,
    last_failure: Mutex<Option<Failure>>,
    requests: IntCounterVec,
    /// Per outcome, once it is possible or happened: no series for what cannot happen.
    outcomes: [OnceLock<IntCounter>; Outcome::ALL.len()],
    pub request_duration: Histogram,
    pub upstream_duration: Histogram,
    forwarded: IntCounterVec,
    types: Mutex<HashMap<String, IntCounter>>,
}

/// A refused request or a failed delivery attempt, as `/api/routes` shows the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub at_ms: i64,
    pub outcome: Outcome,
    pub status: Option<u16>,
}

impl RouteMetrics {
    pub(crate) fn count(&self, outcome: Outcome) {
        self.counter(outcome).inc();
    }

    fn counter(&self, outcome: Outcome) -> &IntCounter {
        // ALL lists the variants in declaration order.
        self.outcomes[outcome as usize].get_or_init(|| {
            self.requests
                .with_label_values(&[&self.name, outcome.as_str()])
        })
    }

    /// Exports the outcomes a route in `mode` can have (a reload may change its mode).
    pub(crate) fn expect(&self, mode: Mode) {
        for &outcome in Outcome::possible(mode) {
            self.counter(outcome);
        }
    }

    /// The route's name, shared (the request log keeps one per entry).
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Requests counted per outcome since start (the outcomes the route can have).
    pub(crate) fn counts(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .iter()
            .zip(&self.outcomes)
            .filter_map(|(o, c)| Some((*o, c.get()?.get())))
    }

    /// An event of the route reached the app at `at_ms`.
    pub(crate) fn delivered_at(&self, at_ms: i64) {
        self.last_delivered_ms.fetch_max(at_ms, Ordering::Relaxed);
    }

    pub(crate) fn last_delivered(&self) -> Option<i64> {
        Some(self.last_delivered_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0)
    }

    pub(crate) fn failed(&self, failure: Failure) {
        *lock(&self.last_failure) = Some(failure);
    }

    pub(crate) fn last_failure(&self) -> Option<Failure> {
        *lock(&self.last_failure)
    }

    /// Counts an event the app accepted, keeping the `type` label set bounded.
    pub(crate) fn forwarded(&self, kind: &str) {
        let counter = {
            let mut types = lock(&self.types);
            match types.get(kind) {
                Some(c) => c.clone(),
                None if types.len() < MAX_TYPES => {
                    let c = self.forwarded.with_label_values(&[&self.name, kind]);
                    types.insert(kind.to_string(), c.clone());
                    c
                }
                None => self.forwarded.with_label_values(&[&self.name, "_other"]),
            }
        };
        counter.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_index_their_own_counter() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{o:?}");
        }
    }

    #[test]
    fn the_type_label_keeps_100_values_per_route() {
        let m = Metrics::new();
        let r = m.route("r", Mode::Sync);
        for i in 0..150 {
            r.forwarded(&format!("t{i}"));
        }
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(r#"hookwarden_events_forwarded_total{route="r",type="t99"} 1"#));
        assert!(!text.contains(r#"type="t100""#));
        assert!(text.contains(r#"hookwarden_events_forwarded_total{route="r",type="_other"} 50"#));
        assert!(text.contains(r#"hookwarden_build_info{version=""#));
    }

    #[test]
    fn a_route_exports_only_the_outcomes_it_can_have() {
        let m = Metrics::new();
        let unmatched = m.route(UNMATCHED, Mode::Unmatched);
        let queue = m.route("q", Mode::Queue);
        let _sync = m.route("s", Mode::Sync);
        let text = String::from_utf8(m.render()).unwrap();
        let series = |route: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("hookwarden_requests_total{"))
                .filter(|l| l.contains(&format!(r#"route="{route}""#)))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(series(UNMATCHED).len(), 2, "{:?}", series(UNMATCHED));
        assert!(series("q")
            .iter()
            .any(|l| l.contains(r#"outcome="queued""#)));
        assert!(!series("q")
            .iter()
            .any(|l| l.contains(r#"outcome="delivered""#)));
        assert!(!series("s")
            .iter()
            .any(|l| l.contains(r#"outcome="queued""#)));
        // What happens anyway is counted.
        unmatched.count(Outcome::Overloaded);
        queue.count(Outcome::Delivered);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text
            .contains(r#"hookwarden_requests_total{outcome="overloaded",route="_unmatched"} 1"#));
        assert_eq!(
            queue.counts().find(|(o, _)| *o == Outcome::Delivered),
            Some((Outcome::Delivered, 1))
        );
    }
}
