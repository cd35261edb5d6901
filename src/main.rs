//! The `hookwarden` command: parse arguments, set up logging, call the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// mimalloc instead of the system allocator: a request allocates many small, short-lived
/// buffers, and glibc's malloc/free cost about a sixth of the gateway's own instructions
/// per request (bench/run.sh, README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use hookwarden::config::{self, ConfigError, Loaded};

#[derive(Parser)]
#[command(
    version,
    about = "Webhook gateway: verifies, deduplicates and forwards provider webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run(ConfigArg),
    /// Validate the configuration and print the routes it would serve.
    Check(ConfigArg),
    /// Print the headers a provider would send for a body file.
    Sign(SignArgs),
    /// Sign a body file the way a route verifies it and POST it to the gateway.
    Send(SendArgs),
    /// The queued events of the running gateway (its admin API).
    Events(EventsArgs),
    /// The most recent requests the running gateway answered, one JSON object per line.
    Requests(RequestsArgs),
}

#[derive(Args)]
struct RequestsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[arg(long)]
    route: Option<String>,
    /// One of the outcomes of the metrics (invalid_signature, delivered, ...).
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    limit: Option<u32>,
}

#[derive(Args)]
struct AdminArgs {
    /// Configuration file (for admin.listen and admin.token).
    #[arg(
        long,
        env = "HOOKWARDEN_CONFIG",
        default_value = "hookwarden.toml",
        global = true
    )]
    config: PathBuf,
    /// The admin API's URL (default: from admin.listen).
    #[arg(long, global = true)]
    admin: Option<String>,
    /// The admin token (default: $HOOKWARDEN_ADMIN_TOKEN, else admin.token).
    #[arg(
        long,
        env = "HOOKWARDEN_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
}

#[derive(Args)]
struct EventsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Stored events, newest first, one JSON object per line.
    List {
        #[arg(long)]
        route: Option<String>,
        /// pending | delivered | dead
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One event: its envelope and its attempts.
    Show { route: String, id: String },
    /// Puts events (dead letters, or delivered events) back in the queue.
    Redeliver {
        /// Every dead letter (of --route, or of all routes).
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
        /// With --dead: only this route's.
        #[arg(long, requires = "dead")]
        route: Option<String>,
        /// The route, then the ids of its events to put back.
        #[arg(
            required_unless_present = "dead",
            num_args = 2..,
            value_names = ["ROUTE", "ID"]
        )]
        ids: Vec<String>,
    },
}

#[derive(Args)]
struct SignArgs {
    /// smartcv | semantikmatch | hrflow | standard-webhooks
    #[arg(long)]
    provider: String,
    /// The provider's secret (standard-webhooks: whsec_...).
    #[arg(long)]
    secret: String,
    /// Unix seconds to sign at (default: now).
    #[arg(long, allow_hyphen_values = true)]
    timestamp: Option<i64>,
    /// Event id, for schemes that carry one (default: random).
    #[arg(long)]
    id: Option<String>,
    /// The body to sign.
    file: PathBuf,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The route (its `name`) whose scheme signs the body.
    #[arg(long)]
    route: String,
    /// Gateway URL; one without a path gets the route's path (default: the listen address).
    #[arg(long)]
    to: Option<String>,
    /// The body to send.
    body: PathBuf,
}

#[derive(Args)]
struct ConfigArg {
    /// Configuration file.
    #[arg(long, env = "HOOKWARDEN_CONFIG", default_value = "hookwarden.toml")]
    config: PathBuf,
}

/// Bad configuration or usage (clap exits 2 for usage errors too).
const EXIT_CONFIG: u8 = 2;
/// Runtime failure.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(arg) => check(&arg.config),
        Command::Run(arg) => run(&arg.config),
        Command::Sign(args) => sign(&args),
        Command::Send(args) => send(&args),
        Command::Events(args) => events(args),
        Command::Requests(args) => requests(&args),
    }
}

fn requests(args: &RequestsArgs) -> ExitCode {
    use hookwarden::client::query;
    let client = match admin_client(&args.admin) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match client_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let path = format!(
        "/api/requests{}",
        query(&[
            ("route", args.route.clone()),
            ("outcome", args.outcome.clone()),
            ("limit", args.limit.map(|l| l.to_string())),
        ])
    );
    match runtime.block_on(client.call(http::Method::GET, &path)) {
        Ok(answer) => {
            for request in answer["requests"].as_array().into_iter().flatten() {
                println!("{request}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// A client of the gateway's admin API, from `--admin`, `--token` and the config.
fn admin_client(args: &AdminArgs) -> Result<hookwarden::client::AdminClient, ExitCode> {
    let path = &args.config;
    // With --admin the file is only a fallback for the token, and may be absent.
    let config = if args.admin.is_some() && !path.exists() {
        None
    } else {
        Some(load(path)?.config)
    };
    hookwarden::client::AdminClient::new(config.as_ref(), args.admin.as_deref(), args.token.clone())
        .map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        })
}

fn events(args: EventsArgs) -> ExitCode {
    use hookwarden::client::{query, segment};
    use http::Method;
    let client = match admin_client(&args.admin) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let calls: Vec<(Method, String)> = match &args.command {
        EventsCommand::List {
            route,
            state,
            limit,
        } => vec![(
            Method::GET,
            format!(
                "/api/events{}",
                query(&[
                    ("route", route.clone()),
                    ("state", state.clone()),
                    ("limit", limit.map(|l| l.to_string())),
                ])
            ),
        )],
        EventsCommand::Show { route, id } => vec![(
            Method::GET,
            format!("/api/events/{}/{}", segment(route), segment(id)),
        )],
        EventsCommand::Redeliver {
            dead: true, route, ..
        } => vec![(
            Method::POST,
            format!(
                "/api/dead-letters/redeliver{}",
                query(&[("route", route.clone())])
            ),
        )],
        EventsCommand::Redeliver { ids, .. } => {
            // clap asks for ROUTE and at least one id.
            let Some((route, ids)) = ids.split_first() else {
                return ExitCode::from(EXIT_CONFIG);
            };
            ids.iter()
                .map(|id| {
                    (
                        Method::POST,
                        format!("/api/events/{}/{}/redeliver", segment(route), segment(id)),
                    )
                })
                .collect()
        }
    };
    let runtime = match client_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut redelivered = 0;
    for (method, path) in calls {
        match runtime.block_on(client.call(method, &path)) {
            Ok(answer) => match &args.command {
                EventsCommand::List { .. } => {
                    for event in answer["events"].as_array().into_iter().flatten() {
                        println!("{event}");
                    }
                }
                EventsCommand::Show { .. } => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&answer).unwrap_or_default()
                    )
                }
                EventsCommand::Redeliver { .. } => {
                    redelivered += answer["redelivered"].as_u64().unwrap_or(0);
                }
            },
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    }
    if matches!(args.command, EventsCommand::Redeliver { .. }) {
        println!("redelivered {redelivered}");
    }
    ExitCode::SUCCESS
}

fn client_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the runtime: {e}");
            ExitCode::from(EXIT_RUNTIME)
        })
}

fn read_body(path: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("cannot read {}: {e}", path.display());
        ExitCode::from(EXIT_CONFIG)
    })
}

fn now() -> i64 {
    hookwarden::clock::unix_seconds(std::time::SystemTime::now())
}

fn sign(args: &SignArgs) -> ExitCode {
    let body = match read_body(&args.file) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let id = args.id.clone().unwrap_or_else(hookwarden::sign::random_id);
    let timestamp = args.timestamp.unwrap_or_else(now);
    match hookwarden::sign::for_provider(&args.provider, &args.secret, &body, timestamp, &id) {
        Ok(headers) => {
            for (name, value) in headers {
                println!("{}: {}", name, String::from_utf8_lossy(value.as_bytes()));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn send(args: &SendArgs) -> ExitCode {
    let loaded = match load(&args.config.config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let body = match read_body(&args.body) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let config = &loaded.config;
    let prepared = hookwarden::send::route(config, &args.route).and_then(|route| {
        Ok((
            route,
            hookwarden::send::target(config, route, args.to.as_deref())?,
        ))
    });
    let (route, target) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    println!("POST {target}");
    match runtime.block_on(hookwarden::send::send(route, target, body.into(), now())) {
        Ok((status, body)) => {
            println!("{status}");
            println!("{}", String::from_utf8_lossy(&body));
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_RUNTIME)
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn load(path: &Path) -> Result<Loaded, ExitCode> {
    config::load_file(path).map_err(|e| {
        report(path, &e);
        ExitCode::from(EXIT_CONFIG)
    })
}

fn report(path: &Path, e: &ConfigError) {
    eprintln!("{}: invalid configuration:", path.display());
    for line in e.lines() {
        eprintln!("  {line}");
    }
}

fn check(path: &Path) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let c = &loaded.config;
    println!("{}: ok", path.display());
    println!("listen {}  admin {}", c.server.listen, c.admin.listen);
    for r in &c.routes {
        println!(
            "route {:<20} POST {:<32} {:<18} -> {} ({} secret{})",
            r.name,
            r.path,
            r.provider.name(),
            r.forward_uri,
            r.secrets.len(),
            if r.secrets.len() == 1 { "" } else { "s" }
        );
    }
    ExitCode::SUCCESS
}

fn run(path: &Path) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let log_level = hookwarden::logging::init(&loaded.config.log);
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
        let (public, admin) = hookwarden::bind(&loaded.config).await?;
        let clock = hookwarden::Clock::system();
        let pool = hookwarden::forward::Pool::new(clock.clone()).map_err(std::io::Error::other)?;
        let app = hookwarden::App::new(loaded.config, clock, pool)
            .map_err(std::io::Error::other)?
            .with_log_level_hook(log_level);
        let app = std::sync::Arc::new(app);
        hookwarden::reload_on_sighup(&app, path.to_path_buf());
        hookwarden::run(app, public, admin, shutdown).await
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
/// first: a 5–8 ms stall, a dozen times in 5 s at 20k req/s (`perf`, README
/// "Performance"). A sidecar's tail matters more than the TLB reach they save. Failure
/// only costs that tail, so it is logged, not fatal.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off");
    }
}

/// The tokio runtime. With one core to run on (a cgroup quota or CPU affinity of one,
/// as for most sidecars) a single-threaded runtime costs less per request and has a
/// shorter tail than worker threads taking turns on that core (README "Performance");
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
