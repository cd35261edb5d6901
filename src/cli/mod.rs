//! The `hookwarden` command line (docs/cli.md): `run` and `check` ([`serve`]), `sign` and
//! `send` ([`sign`], [`send`]), `events` and `requests` ([`admin`], through
//! [`admin_client`]), and `completions` and `man`, which clap writes from these
//! definitions. The binary's `main` only calls [`main`].

mod admin;
mod admin_client;
mod send;
mod serve;
mod sign;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, Loaded};

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
    /// Every provider name a route takes: how it verifies, its key, its evidence.
    Providers,
    /// The queued events of the running gateway, and its queue's levers (its admin API).
    Events(EventsArgs),
    /// The most recent requests the running gateway answered, one JSON object per line.
    Requests(RequestsArgs),
    /// Print a completion script for a shell on stdout (e.g. `hookwarden completions bash
    /// > /etc/bash_completion.d/hookwarden`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout (e.g. `hookwarden man > hookwarden.1`).
    Man,
}

#[derive(Args)]
struct RequestsArgs {
    /// Only this route's requests (its name; `_unmatched` for unknown paths).
    #[arg(long)]
    route: Option<String>,
    /// Only this outcome, as the metrics name them (invalid_signature, delivered, ...).
    #[arg(long)]
    outcome: Option<String>,
    /// How many, newest first (at most 1000; default 100).
    #[arg(long)]
    limit: Option<u32>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// The help section of the flags that reach a running gateway.
const GATEWAY: &str = "Reaching the gateway";

#[derive(Args)]
struct AdminArgs {
    /// Configuration file (for admin.listen and admin.token).
    #[arg(
        long,
        env = "HOOKWARDEN_CONFIG",
        default_value = "hookwarden.toml",
        global = true,
        help_heading = GATEWAY
    )]
    config: PathBuf,
    /// The admin API's URL (default: from admin.listen); with --token, no file is read.
    #[arg(long, global = true, help_heading = GATEWAY)]
    admin: Option<String>,
    /// The admin token (default: $HOOKWARDEN_ADMIN_TOKEN, else admin.token).
    #[arg(
        long,
        env = "HOOKWARDEN_ADMIN_TOKEN",
        hide_env_values = true,
        global = true,
        help_heading = GATEWAY
    )]
    token: Option<String>,
}

#[derive(Args)]
struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Stored events, newest first, one JSON object per line.
    List(ListArgs),
    /// One event: what the app is sent, and every attempt with the app's answer.
    Show {
        /// The route (its name) the event came in on.
        route: String,
        /// The event id, as lists show it.
        id: String,
    },
    /// Puts events back in the queue: dead or delivered ones go back to pending with
    /// their attempts reset; a pending one waiting for its next attempt is attempted now.
    Redeliver(RedeliverArgs),
    /// Attempts now every pending event of a queue route that waits for its backoff
    /// ("the app is back").
    RetryNow {
        /// The queue route.
        route: String,
    },
    /// Stops starting attempts for a queue route (it keeps accepting and storing
    /// events); holds across restarts until resumed.
    Pause {
        /// The queue route.
        route: String,
    },
    /// Starts attempts again for a paused queue route.
    Resume {
        /// The queue route.
        route: String,
    },
}

/// What a list or a bulk redelivery matches.
#[derive(Args)]
struct EventFilter {
    /// Only this route's events.
    #[arg(long)]
    route: Option<String>,
    /// Only events of this exact type.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Only events received at or after this time (RFC 3339, or Unix seconds).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events received before this time (RFC 3339, or Unix seconds).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    filter: EventFilter,
    /// Only events in this state: pending, delivered or dead.
    #[arg(long)]
    state: Option<String>,
    /// Events per page (at most 1000; default 100).
    #[arg(long)]
    limit: Option<u32>,
    /// Continue a listing where the previous page stopped (the cursor it printed).
    #[arg(long, conflicts_with = "all")]
    cursor: Option<String>,
    /// Every matching event, page after page.
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
struct RedeliverArgs {
    /// Every dead letter (of --route, or of all routes).
    #[arg(long, conflicts_with_all = ["ids", "state"])]
    dead: bool,
    /// Every event in this state, dead or delivered, matching the filters.
    #[arg(long, conflicts_with = "ids")]
    state: Option<String>,
    #[command(flatten)]
    filter: EventFilter,
    /// The route, then the ids of its events to put back.
    #[arg(
        required_unless_present_any = ["dead", "state"],
        conflicts_with_all = ["route", "kind", "since", "until"],
        num_args = 2..,
        value_names = ["ROUTE", "ID"]
    )]
    ids: Vec<String>,
}

#[derive(Args)]
struct SignArgs {
    /// Any scheme but hmac, jobaffinity and mailgun: smartcv, semantikmatch, hrflow,
    /// standard-webhooks, stripe, github, slack, shopify, paddle, zoom, linear, typeform,
    /// intercom, twilio, square, discord, sendgrid.
    #[arg(long)]
    provider: String,
    /// The provider's shared secret (standard-webhooks: whsec_...).
    #[arg(long, conflicts_with = "private_key")]
    secret: Option<String>,
    /// PEM private key of the public-key schemes (discord and standard-webhooks v1a:
    /// Ed25519; sendgrid: P-256).
    #[arg(long)]
    private_key: Option<PathBuf>,
    /// The public URL the provider posts to (twilio, square).
    #[arg(long)]
    url: Option<String>,
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
    /// PEM private key for routes that verify with public_key (discord, sendgrid).
    #[arg(long)]
    private_key: Option<PathBuf>,
    /// PEM certificates to trust besides the web PKI's, for an https gateway whose
    /// certificate a private CA signed.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// The body to send.
    body: PathBuf,
}

#[derive(Args)]
struct ConfigArg {
    /// Configuration file.
    #[arg(long, env = "HOOKWARDEN_CONFIG", default_value = "hookwarden.toml")]
    config: PathBuf,
}

/// Reads a PEM private key file; the error is printed and exits 2.
fn read_private_key(
    path: Option<&std::path::Path>,
) -> Result<Option<crate::signing::Key>, ExitCode> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("cannot read {}: {e}", path.display());
        ExitCode::from(EXIT_CONFIG)
    })?;
    crate::signing::Key::from_pem(&text).map(Some).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Bad configuration or usage (clap exits 2 for usage errors too).
pub(crate) const EXIT_CONFIG: u8 = 2;
/// Runtime failure.
pub(crate) const EXIT_RUNTIME: u8 = 1;

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(arg) => serve::check(&arg.config),
        Command::Run(arg) => serve::run(&arg.config),
        Command::Sign(args) => sign::sign(&args),
        Command::Send(args) => send::send_command(&args),
        Command::Events(args) => admin::events(args),
        Command::Requests(args) => admin::requests(&args),
        Command::Providers => {
            let rows = crate::providers::listing();
            let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
            let key_width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
            println!(
                "{:width$}  {:key_width$}  scheme; evidence",
                "provider", "key"
            );
            for r in rows {
                println!(
                    "{:width$}  {:key_width$}  {}; {}",
                    r.name, r.key, r.scheme, r.evidence
                );
            }
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "hookwarden", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // Read only in part (`| head`): not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cannot write the manual page: {e}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
    }
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
    crate::clock::unix_seconds(std::time::SystemTime::now())
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command and every argument says what it is in `--help` (and so in the
    /// manual page and the completions).
    #[test]
    fn every_command_and_argument_has_help() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        Cli::command().debug_assert();
        check(&Cli::command(), "hookwarden", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
}
