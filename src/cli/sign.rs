//! `hookwarden sign`: the headers a provider would send for a body file.

use std::process::ExitCode;

use super::{now, read_body, read_private_key, SignArgs, EXIT_CONFIG};
use crate::signing::{self, SignInput};

pub(super) fn sign(args: &SignArgs) -> ExitCode {
    let body = match read_body(&args.file) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let private_key = match read_private_key(args.private_key.as_deref()) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let id = args.id.clone().unwrap_or_else(signing::random_id);
    let input = SignInput {
        provider: &args.provider,
        secret: args.secret.as_deref(),
        private_key: private_key.as_ref(),
        url: args.url.as_deref(),
        timestamp: args.timestamp.unwrap_or_else(now),
        id: &id,
    };
    match signing::for_provider(&input, &body) {
        Ok(signed) => {
            for (name, value) in signed.headers {
                println!("{}: {}", name, String::from_utf8_lossy(value.as_bytes()));
            }
            if let (Some(query), Some(url)) = (signed.query, &args.url) {
                let sep = if url.contains('?') { '&' } else { '?' };
                eprintln!("post the body to {url}{sep}{query} (the signature covers this query)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
