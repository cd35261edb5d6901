//! `hookwarden events` and `hookwarden requests`: the admin API's answers, one JSON
//! object per line.

use std::process::ExitCode;

use http::Method;

use super::admin_client::{query, segment, AdminClient};
use super::{client_runtime, load, AdminArgs, EventsArgs, EventsCommand, RequestsArgs};
use super::{EXIT_CONFIG, EXIT_RUNTIME};

pub(super) fn requests(args: &RequestsArgs) -> ExitCode {
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
fn admin_client(args: &AdminArgs) -> Result<AdminClient, ExitCode> {
    let path = &args.config;
    // With --admin the file is only a fallback for the token, and may be absent.
    let config = if args.admin.is_some() && !path.exists() {
        None
    } else {
        Some(load(path)?.config)
    };
    AdminClient::new(config.as_ref(), args.admin.as_deref(), args.token.clone()).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

pub(super) fn events(args: EventsArgs) -> ExitCode {
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
