//! `hookwarden run` and `hookwarden check`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{load, EXIT_RUNTIME};
use crate::config::{DedupBackend, QueueBackend};
use crate::forward::Pool;
use crate::{App, Clock};

pub(super) fn check(path: &Path) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let c = &loaded.config;
    for (key, problem) in unreachable_stores(c) {
        eprintln!(
            "warning: {key}: Redis cannot be reached now ({problem}); {}",
            match key {
                "dedup.redis_url" => "every route answers 503 until it can",
                _ => "queue routes answer 503 until it can",
            }
        );
    }
    println!("{}: ok", path.display());
    println!("listen {}  admin {}", c.server.listen, c.admin.listen);
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    for r in &c.routes {
        let keys = match (r.secrets.len(), r.public_keys.len()) {
            (s, 0) => count(s, "secret"),
            (0, k) => count(k, "public key"),
            (s, k) => format!("{}, {}", count(s, "secret"), count(k, "public key")),
        };
        let delivery = match r.delivery {
            crate::route::DeliveryMode::Sync => "sync".to_string(),
            crate::route::DeliveryMode::Queue { concurrency } => {
                format!("queue, {concurrency} at once")
            }
        };
        println!(
            "route {:<20} POST {:<32} {:<18} -> {} ({keys}; {delivery})",
            r.name,
            r.path,
            r.provider.name(),
            r.forward_uri,
        );
    }
    ExitCode::SUCCESS
}

/// The Redis servers the configuration uses that do not answer a `PING` now, each with
/// the key that names it: a warning, since the gateway starts without them and serves
/// once they are up.
fn unreachable_stores(c: &crate::config::Config) -> Vec<(&'static str, String)> {
    let mut stores = Vec::new();
    if let (DedupBackend::Redis, Some(url)) = (c.dedup.backend, c.dedup.redis_url.as_deref()) {
        stores.push(("dedup.redis_url", url));
    }
    if let QueueBackend::Redis { url, .. } = &c.queue.backend {
        stores.push(("queue.redis_url", url.as_str()));
    }
    if stores.is_empty() {
        return Vec::new();
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        let mut problems = Vec::new();
        for (key, url) in stores {
            if let Err(problem) = crate::reachability::ping(url, Duration::from_secs(2)).await {
                problems.push((key, problem));
            }
        }
        problems
    })
}

pub(super) fn run(path: &Path) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let log_level = crate::logging::init(&loaded.config.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    no_huge_pages();
    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let served = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let (public, admin) = crate::bind(&loaded.config).await?;
        let clock = Clock::system();
        let pool = Pool::new(clock.clone()).map_err(std::io::Error::other)?;
        let app = App::new(loaded.config, clock, pool)
            .map_err(std::io::Error::other)?
            .with_log_level_hook(log_level);
        let app = Arc::new(app);
        crate::reload_on_sighup(&app, path.to_path_buf());
        crate::run(app, public, admin, shutdown).await
    });
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "gateway failed");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// No transparent huge pages for the gateway. mimalloc asks for them, and the dedup cache
/// grows by 2 MB pages that the kernel zeroes inside whichever request touches them
/// first: a 5–8 ms stall, a dozen times in 5 s at 20k req/s (`perf`,
/// docs/performance.md). A sidecar's tail matters more than the TLB reach they save. Failure
/// only costs that tail, so it is logged, not fatal.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off");
    }
}

/// The tokio runtime. With one core to run on (a cgroup quota or CPU affinity of one,
/// as for most sidecars) a single-threaded runtime costs less per request and has a
/// shorter tail than worker threads taking turns on that core (docs/performance.md);
/// with more, one worker per core. `HOOKWARDEN_RUNTIME=current_thread|multi_thread`
/// overrides the choice, `TOKIO_WORKER_THREADS` the worker count.
fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let single = match std::env::var("HOOKWARDEN_RUNTIME").as_deref() {
        Ok("current_thread") => true,
        Ok("multi_thread") => false,
        _ => one_core,
    };
    if single {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

/// SIGTERM (orchestrators) or SIGINT (a terminal). The handlers are installed when this
/// is called, before the gateway says it is listening, so a signal sent as soon as it
/// does drains it instead of killing it (the default action).
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
