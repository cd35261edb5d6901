//! `hookwarden events` and `hookwarden requests`: the admin API's answers, one JSON
//! object per line, and its levers.

use std::process::ExitCode;

use http::Method;
use serde_json::Value;

use super::admin_client::{query, segment, AdminClient};
use super::{client_runtime, load, AdminArgs, EventFilter, EventsArgs, EventsCommand};
use super::{ListArgs, RedeliverArgs, RequestsArgs, EXIT_CONFIG, EXIT_RUNTIME};

pub(super) fn requests(args: &RequestsArgs) -> ExitCode {
    let path = format!(
        "/api/requests{}",
        query(&[
            ("route", args.route.clone()),
            ("outcome", args.outcome.clone()),
            ("limit", args.limit.map(|l| l.to_string())),
        ])
    );
    call(&args.admin, |client, runtime| {
        let answer = runtime.block_on(client.call(Method::GET, &path))?;
        for request in answer["requests"].as_array().into_iter().flatten() {
            println!("{request}");
        }
        Ok(())
    })
}

pub(super) fn events(args: EventsArgs) -> ExitCode {
    call(&args.admin, |client, runtime| match &args.command {
        EventsCommand::List(list) => {
            let mut cursor = list.cursor.clone();
            loop {
                let path = format!("/api/events{}", list_query(list, cursor.clone()));
                let answer = runtime.block_on(client.call(Method::GET, &path))?;
                for event in answer["events"].as_array().into_iter().flatten() {
                    println!("{event}");
                }
                match (answer["next"].as_str(), list.all) {
                    (Some(next), true) => cursor = Some(next.to_string()),
                    (Some(next), false) => {
                        eprintln!("more events match: continue with --cursor {next} (or list them all with --all)");
                        return Ok(());
                    }
                    (None, _) => return Ok(()),
                }
            }
        }
        EventsCommand::Show { route, id } => {
            let path = format!("/api/events/{}/{}", segment(route), segment(id));
            let answer = runtime.block_on(client.call(Method::GET, &path))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            );
            Ok(())
        }
        EventsCommand::Redeliver(redeliver) => {
            let mut redelivered = 0;
            for path in redeliver_calls(redeliver) {
                let answer = runtime.block_on(client.call(Method::POST, &path))?;
                redelivered += answer["redelivered"].as_u64().unwrap_or(0);
            }
            println!("redelivered {redelivered}");
            Ok(())
        }
        EventsCommand::RetryNow { route } => {
            let path = format!("/api/routes/{}/retry-now", segment(route));
            let answer = runtime.block_on(client.call(Method::POST, &path))?;
            let n = answer["rescheduled"].as_u64().unwrap_or(0);
            println!("rescheduled {n}");
            Ok(())
        }
        EventsCommand::Pause { route } | EventsCommand::Resume { route } => {
            let lever = match args.command {
                EventsCommand::Pause { .. } => "pause",
                _ => "resume",
            };
            let path = format!("/api/routes/{}/{lever}", segment(route));
            let answer = runtime.block_on(client.call(Method::POST, &path))?;
            let state = if answer["paused"] == Value::Bool(true) {
                "paused"
            } else {
                "delivering"
            };
            println!("{route}: {state}");
            Ok(())
        }
    })
}

/// The query of one page of `events list`.
fn list_query(list: &ListArgs, cursor: Option<String>) -> String {
    let mut pairs = filter_pairs(&list.filter);
    pairs.push(("state", list.state.clone()));
    pairs.push(("limit", list.limit.map(|l| l.to_string())));
    pairs.push(("cursor", cursor));
    query(&pairs)
}

fn filter_pairs(filter: &EventFilter) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("route", filter.route.clone()),
        ("type", filter.kind.clone()),
        ("since", filter.since.clone()),
        ("until", filter.until.clone()),
    ]
}

/// The API calls of `events redeliver`: one per id, or one bulk call.
fn redeliver_calls(args: &RedeliverArgs) -> Vec<String> {
    let state = match (&args.state, args.dead) {
        (Some(state), _) => Some(state.clone()),
        (None, true) => Some("dead".to_string()),
        (None, false) => None,
    };
    if let Some(state) = state {
        let mut pairs = vec![("state", Some(state))];
        pairs.extend(filter_pairs(&args.filter));
        return vec![format!("/api/events/redeliver{}", query(&pairs))];
    }
    // clap asks for ROUTE and at least one id.
    let Some((route, ids)) = args.ids.split_first() else {
        return Vec::new();
    };
    ids.iter()
        .map(|id| format!("/api/events/{}/{}/redeliver", segment(route), segment(id)))
        .collect()
}

/// Runs `work` with a client of the admin API and a runtime; its error is printed and
/// exits 1.
fn call(
    admin: &AdminArgs,
    work: impl FnOnce(
        &AdminClient,
        &tokio::runtime::Runtime,
    ) -> Result<(), super::admin_client::ClientError>,
) -> ExitCode {
    let client = match admin_client(admin) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match client_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match work(&client, &runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// A client of the gateway's admin API, from `--admin`, `--token` and the config.
fn admin_client(args: &AdminArgs) -> Result<AdminClient, ExitCode> {
    let path = &args.config;
    // With --admin the file is only a fallback for the token: not read when the token
    // is given too, and not needed when absent.
    let config = if args.admin.is_some() && (args.token.is_some() || !path.exists()) {
        None
    } else {
        Some(load(path)?.config)
    };
    AdminClient::new(config.as_ref(), args.admin.as_deref(), args.token.clone()).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}
