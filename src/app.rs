//! The state every request shares, handed down as one `Arc<App>` (no globals).
//!
//! What a reload replaces (routes, secrets, limits, upstreams) sits in one [`Runtime`]
//! behind an atomic pointer; a request takes one snapshot and uses it throughout. What
//! must survive a reload (the dedup cache, metrics, the connection pool) sits beside it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::HeaderMap;

use crate::budget::BodyBudget;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, DedupBackend, Loaded};
use crate::dedup::{Dedup, SharedIds, StoreError};
use crate::error::Reply;
use crate::forward::{Forwarder, Pool, Target};
use crate::learned_secrets::{LearnError, LearnedSecrets};
use crate::metrics::{Metrics, Mode, Outcome, RouteMetrics, UNMATCHED};
use crate::queue::{Queue, QueueError};
use crate::ratelimit::Limiter;
use crate::replay_tokens::ReplayTokens;
use crate::request_log::RequestLog;
use crate::route::{DeliveryMode, Route};
use crate::sync::lock;

/// One configuration, ready to serve.
pub(crate) struct Runtime {
    pub config: Config,
    /// By path.
    routes: HashMap<String, Arc<RouteState>>,
    /// By name.
    names: HashMap<String, Arc<RouteState>>,
    pub forwarder: Forwarder,
}

/// A route with what serving it needs, resolved once per configuration.
pub(crate) struct RouteState {
    pub route: Arc<Route>,
    pub limiter: Option<Limiter>,
    pub metrics: Arc<RouteMetrics>,
    /// The headers every event of the route carries to the app, built once.
    pub forward_headers: HeaderMap,
    /// Where its events go, with that origin's pooled connections.
    pub upstream: Target,
}

impl Runtime {
    /// The route serving exactly `path`.
    pub(crate) fn route(&self, path: &str) -> Option<&Arc<RouteState>> {
        self.routes.get(path)
    }

    /// The route called `name`.
    pub(crate) fn route_named(&self, name: &str) -> Option<&Arc<RouteState>> {
        self.names.get(name)
    }

    /// "no route named …" with the names that exist, in the file's order, so that a
    /// typo is seen at once.
    pub(crate) fn no_route_named(&self, name: &str) -> String {
        let known: Vec<&str> = self.config.routes.iter().map(|r| r.name.as_str()).collect();
        format!("no route named {name:?}; its routes: {}", known.join(", "))
    }
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DedupStore(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    LearnedSecrets(#[from] LearnError),
}

/// What a first copy that failed tells the copies that waited on it: its reply and outcome.
pub(crate) type Failure = (Reply, Outcome);

/// Called with the new `[log] level` after a reload.
pub(crate) type LogLevelHook = Box<dyn Fn(&str) + Send + Sync>;

pub struct App {
    runtime: ArcSwap<Runtime>,
    /// `server.max_buffered_bytes`: room for the request bodies held at once.
    pub(crate) budget: BodyBudget,
    pub(crate) dedup: Dedup<Failure>,
    /// The ids shared with other replicas (`dedup.backend = "redis"`), behind `dedup`.
    pub(crate) shared: Option<Arc<SharedIds>>,
    /// The queue of queue routes, when the configuration has one or `queue.dir` holds
    /// events.
    pub(crate) queue: Option<Arc<Queue>>,
    /// The most recent requests, for `/api/requests`.
    pub(crate) requests: RequestLog,
    /// Mailgun's one-time tokens, per route, kept across reloads.
    pub(crate) tokens: ReplayTokens,
    /// Secrets learnt at a handshake (Asana's), kept across reloads and restarts.
    pub(crate) learned: LearnedSecrets,
    pub(crate) metrics: Metrics,
    pub(crate) clock: Clock,
    pool: Arc<Pool>,
    /// Per route name, kept across reloads so label sets stay bounded.
    route_metrics: Mutex<HashMap<String, Arc<RouteMetrics>>>,
    pub(crate) unmatched: Arc<RouteMetrics>,
    draining: AtomicBool,
    log_level: Option<LogLevelHook>,
}

impl App {
    /// `pool` holds the connections to the app (and which roots its TLS trusts). Runs
    /// inside the tokio runtime; a shared dedup store is connected on first use.
    pub fn new(config: Config, clock: Clock, pool: Pool) -> Result<Self, StartError> {
        let metrics = Metrics::new();
        let dedup = Dedup::new(
            config.dedup.max_entries,
            metrics.dedup_evictions.clone(),
            clock.clone(),
        );
        let shared = match (config.dedup.backend, config.dedup.redis_url.as_deref()) {
            (DedupBackend::Redis, Some(url)) => {
                Some(SharedIds::connect(url, metrics.dedup_store_errors.clone())?)
            }
            _ => None,
        };
        let queue = open_queue(&config, &metrics, &clock)?;
        let unmatched = Arc::new(metrics.route(UNMATCHED, Mode::Unmatched));
        let pool = Arc::new(pool);
        let mut app = App {
            budget: BodyBudget::new(config.server.max_buffered_bytes),
            runtime: ArcSwap::from_pointee(Runtime {
                config: config.clone(),
                routes: HashMap::new(),
                names: HashMap::new(),
                forwarder: Forwarder::new(Arc::clone(&pool), &config.upstream),
            }),
            dedup,
            shared,
            queue,
            requests: RequestLog::new(config.admin.request_log),
            tokens: ReplayTokens::default(),
            learned: LearnedSecrets::open(&config)?,
            metrics,
            clock,
            pool,
            route_metrics: Mutex::new(HashMap::new()),
            unmatched,
            draining: AtomicBool::new(false),
            log_level: None,
        };
        let runtime = app.build(config);
        app.runtime = ArcSwap::from_pointee(runtime);
        Ok(app)
    }

    /// Lets a reload change the log level (the subscriber is the binary's).
    pub(crate) fn with_log_level_hook(mut self, hook: LogLevelHook) -> Self {
        self.log_level = Some(hook);
        self
    }

    /// The configuration in force now; hold it for the whole request.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    fn build(&self, config: Config) -> Runtime {
        let forwarder = Forwarder::new(Arc::clone(&self.pool), &config.upstream);
        let states: Vec<Arc<RouteState>> = config
            .routes
            .iter()
            .map(|route| {
                let state = RouteState {
                    route: Arc::clone(route),
                    limiter: route
                        .rate_limit
                        .as_ref()
                        .map(|l| Limiter::new(l, self.clock.clone())),
                    metrics: self.route_metrics(route),
                    forward_headers: forwarder.route_headers(route),
                    upstream: forwarder.target(route),
                };
                Arc::new(state)
            })
            .collect();
        Runtime {
            forwarder,
            config,
            routes: states
                .iter()
                .map(|s| (s.route.path.clone(), Arc::clone(s)))
                .collect(),
            names: states
                .iter()
                .map(|s| (s.route.name.clone(), Arc::clone(s)))
                .collect(),
        }
    }

    fn route_metrics(&self, route: &Route) -> Arc<RouteMetrics> {
        let mode = match route.delivery {
            DeliveryMode::Sync => Mode::Sync,
            DeliveryMode::Queue { .. } => Mode::Queue,
        };
        let mut all = lock(&self.route_metrics);
        let metrics = all
            .entry(route.name.clone())
            .or_insert_with(|| Arc::new(self.metrics.route(&route.name, mode)));
        // A reload may have changed the route's mode.
        metrics.expect(mode);
        Arc::clone(metrics)
    }

    /// Swaps in a newly loaded configuration, or keeps the old one when it is invalid.
    /// Either way the attempt is logged and counted. Returns whether it took effect.
    pub fn reload(&self, loaded: Result<Loaded, ConfigError>) -> bool {
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                for line in e.lines() {
                    tracing::error!(problem = %line, "reload refused; the previous configuration stays in force");
                }
                self.metrics.reloaded(false);
                return false;
            }
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let mut new = loaded.config;
        let old = self.runtime();
        let restart_only = [
            (
                "server.listen",
                old.config.server.listen != new.server.listen,
            ),
            ("admin.listen", old.config.admin.listen != new.admin.listen),
            (
                "server.max_connections",
                old.config.server.max_connections != new.server.max_connections,
            ),
            (
                "server.max_buffered_bytes",
                old.config.server.max_buffered_bytes != new.server.max_buffered_bytes,
            ),
            (
                "server.tls",
                old.config.server.tls.is_some() != new.server.tls.is_some(),
            ),
            (
                "dedup.backend",
                old.config.dedup.backend != new.dedup.backend,
            ),
            (
                "dedup.redis_url",
                old.config.dedup.redis_url != new.dedup.redis_url,
            ),
            (
                "dedup.max_entries",
                old.config.dedup.max_entries != new.dedup.max_entries,
            ),
            ("log.format", old.config.log.format != new.log.format),
            ("queue.dir", old.config.queue.dir != new.queue.dir),
            (
                "queue.backend (or its Redis URL or prefix)",
                old.config.queue.backend != new.queue.backend,
            ),
            (
                "queue.max_bytes",
                old.config.queue.max_bytes != new.queue.max_bytes,
            ),
            (
                "admin.request_log",
                old.config.admin.request_log != new.admin.request_log,
            ),
        ];
        for (key, changed) in restart_only {
            if changed {
                tracing::warn!(
                    key,
                    "changed in the file but applies only after a restart; ignored"
                );
            }
        }
        // Turning TLS on or off would change what the open port speaks; new certificates
        // for a TLS port do apply.
        if old.config.server.tls.is_some() != new.server.tls.is_some() {
            new.server.tls = old.config.server.tls.clone();
        }
        if let Some(hook) = &self.log_level {
            hook(&new.log.level);
        }
        let routes = new.routes.len();
        if self.queue.is_none()
            && new
                .routes
                .iter()
                .any(|r| matches!(r.delivery, DeliveryMode::Queue { .. }))
        {
            tracing::warn!("a queue route was added: its queue opens at the next restart; until then it answers 503 queue_unavailable");
        }
        self.runtime.store(Arc::new(self.build(new)));
        if let Some(queue) = &self.queue {
            // Workers pick up new upstreams at their next attempt; new routes need one.
            queue.reconfigured();
        }
        self.metrics.reloaded(true);
        tracing::info!(routes, "configuration reloaded");
        true
    }

    /// Room left for request bodies (tests watch slow senders take it).
    #[doc(hidden)]
    pub fn body_room(&self) -> u64 {
        self.budget.available()
    }

    /// Copies of an event waiting for its first copy's outcome (tests hold the app's
    /// answer until they all wait).
    #[doc(hidden)]
    pub fn copies_waiting(&self) -> usize {
        self.dedup.waiting()
    }

    /// Makes the queue's disk store refuse to grow past `pages` pages, as a full disk
    /// does (tests of a failing store through the real gateway).
    #[doc(hidden)]
    pub async fn limit_queue_pages(&self, pages: u64) -> Result<(), QueueError> {
        match &self.queue {
            Some(queue) => queue.limit_pages(pages).await,
            None => Ok(()),
        }
    }

    /// The queue's database file, when the queue is on disk.
    #[doc(hidden)]
    pub fn queue_database(&self) -> Option<std::path::PathBuf> {
        self.queue.as_ref().and_then(|q| q.database())
    }

    /// From now on `/readyz` answers 503.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The queue, opened (and its folder locked) only when a route queues or `queue.dir`
/// already holds events to deliver (docs/configuration.md `[queue]`).
fn open_queue(
    config: &Config,
    metrics: &Metrics,
    clock: &Clock,
) -> Result<Option<Arc<Queue>>, QueueError> {
    let queued = config
        .routes
        .iter()
        .any(|r| matches!(r.delivery, DeliveryMode::Queue { .. }));
    if !queued && !Queue::exists(&config.queue) {
        return Ok(None);
    }
    // An attempt ends within upstream.timeout; past it and a margin, its replica is gone.
    let lease = config.upstream.timeout + std::time::Duration::from_secs(10);
    let queue = Queue::open(&config.queue, lease, clock.clone(), metrics.queue.clone())?;
    Ok(Some(Arc::new(queue)))
}
