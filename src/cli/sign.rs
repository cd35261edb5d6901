//! `hookwarden sign`: the headers a provider would send for a body file.

use std::process::ExitCode;

use super::{now, read_body, SignArgs, EXIT_CONFIG};
use crate::signing;

pub(super) fn sign(args: &SignArgs) -> ExitCode {
    let body = match read_body(&args.file) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let id = args.id.clone().unwrap_or_else(signing::random_id);
    let timestamp = args.timestamp.unwrap_or_else(now);
    match signing::for_provider(&args.provider, &args.secret, &body, timestamp, &id) {
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
