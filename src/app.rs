//! The state every request shares, handed down as one `Arc<App>` (no globals).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, Route};
use crate::forward::Forwarder;

/// Where "now" comes from. Injected so tests judge requests at a fixed time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(SystemTime::now))
    }

    pub fn fixed(at: SystemTime) -> Self {
        Clock(Arc::new(move || at))
    }

    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

/// Unix seconds, floored (negative before 1970).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub struct App {
    pub config: Config,
    routes: HashMap<String, Arc<Route>>,
    pub forwarder: Forwarder,
    pub clock: Clock,
}

impl App {
    pub fn new(config: Config, clock: Clock) -> Self {
        let routes = config
            .routes
            .iter()
            .map(|r| (r.path.clone(), Arc::clone(r)))
            .collect();
        let forwarder = Forwarder::new(config.upstream.timeout, config.upstream.headers.clone());
        App {
            config,
            routes,
            forwarder,
            clock,
        }
    }

    /// The route serving exactly `path`.
    pub fn route(&self, path: &str) -> Option<&Arc<Route>> {
        self.routes.get(path)
    }
}
