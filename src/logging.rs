//! Log set-up: `[log] format` and `level`, with `RUST_LOG` taking precedence. The level
//! can change on reload; the format needs a restart.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter};

use crate::app::LogLevelHook;
use crate::config::{LogConfig, LogFormat};

/// Installs the process-wide subscriber (the one global tracing needs; called once by
/// `main`) and returns the hook a reload calls with the new level.
pub(crate) fn init(log: &LogConfig) -> LogLevelHook {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = from_env
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(&log.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let json = (log.format == LogFormat::Json).then(|| {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
    });
    let text = (log.format == LogFormat::Text).then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .try_init();
    Box::new(move |level: &str| {
        if from_env.is_some() {
            return;
        }
        if let Ok(filter) = EnvFilter::try_new(level) {
            let _ = handle.reload(filter);
        }
    })
}
