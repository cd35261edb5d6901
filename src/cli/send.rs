//! `hookwarden send`: sign a body the way a route verifies it and POST it to the
//! gateway, so an integrator can test a route end to end from the command line.

use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;

use crate::forward::Pieces;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{load, now, read_body, read_private_key, SendArgs, EXIT_CONFIG, EXIT_RUNTIME};
use crate::config::Config;
use crate::route::Route;
use crate::{forward, signing};

#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("no route named {name:?} in the configuration; its routes: {known}")]
    NoRoute { name: String, known: String },
    #[error("invalid --to URL {0:?}: use a full URL such as http://127.0.0.1:8080")]
    BadTarget(String),
    #[error(transparent)]
    Sign(#[from] signing::SignError),
    #[error("cannot reach the gateway at {url}: {reason} ({hint})")]
    Unreachable {
        url: String,
        reason: String,
        hint: &'static str,
    },
    #[error("cannot read the CA certificates in {path}: {reason}")]
    CaCert { path: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("request to {url} failed: {reason}")]
    Failed { url: String, reason: String },
}

pub(super) fn route<'a>(config: &'a Config, name: &str) -> Result<&'a Route, SendError> {
    config
        .routes
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.as_ref())
        .ok_or_else(|| SendError::NoRoute {
            name: name.to_string(),
            known: config
                .routes
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Where to send: `--to` (a URL without a path gets the route's path), else the
/// configured listen address (a wildcard address means this machine) and the route path.
pub(super) fn target(config: &Config, route: &Route, to: Option<&str>) -> Result<Uri, SendError> {
    let base = match to {
        Some(url) => url.to_string(),
        None => {
            let scheme = if config.server.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let mut addr = config.server.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("{scheme}://{addr}")
        }
    };
    let uri: Uri = base
        .parse()
        .map_err(|_| SendError::BadTarget(base.clone()))?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(SendError::BadTarget(base));
    }
    let has_path = uri.path_and_query().is_some_and(|p| p.as_str() != "/");
    if has_path {
        return Ok(uri);
    }
    let mut parts = uri.into_parts();
    parts.path_and_query = Some(
        route
            .path
            .parse()
            .map_err(|_| SendError::BadTarget(base.clone()))?,
    );
    Uri::from_parts(parts).map_err(|_| SendError::BadTarget(base))
}

/// The client that reaches the gateway: the web PKI's roots, plus the certificates of
/// `cacert` for a gateway whose certificate a private CA signed.
pub(super) fn client(cacert: Option<&Path>) -> Result<forward::Pool, SendError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = cacert {
        let failed = |reason: String| SendError::CaCert {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| failed(e.to_string()))?;
        if certs.is_empty() {
            return Err(failed("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| failed(e.to_string()))?;
        }
    }
    Ok(forward::Pool::with_roots(
        roots,
        crate::clock::Clock::system(),
    )?)
}

/// Signs `body` for `route` at `timestamp` and POSTs it; returns the gateway's answer.
pub(super) async fn send(
    pool: &forward::Pool,
    route: &Route,
    private_key: Option<&signing::Key>,
    target: Uri,
    body: Bytes,
    timestamp: i64,
) -> Result<(Uri, StatusCode, Bytes), SendError> {
    let signed =
        signing::route_request(route, private_key, &body, timestamp, &signing::random_id())?;
    let headers = signed.headers;
    let body = signed.body.map_or(body, Bytes::from);
    let target = match signed.query {
        Some(query) => with_query(&target, &query)?,
        None => target,
    };
    let request = || {
        let mut request = Request::new(Pieces::whole(body.clone()));
        *request.method_mut() = Method::POST;
        for (name, value) in &headers {
            request.headers_mut().append(name, value.clone());
        }
        Ok(request)
    };
    let failed = |reason: String| SendError::Failed {
        url: target.to_string(),
        reason,
    };
    let (response, _connection) =
        pool.target(&target)
            .send(request)
            .await
            .map_err(|e| match e {
                forward::ForwardError::Unavailable(reason) => SendError::Unreachable {
                    url: target.to_string(),
                    hint: if reason.contains("certificate") {
                        "for a gateway whose certificate a private CA signed, give --cacert FILE"
                    } else {
                        "is it running and listening there?"
                    },
                    reason,
                },
                other => failed(other.to_string()),
            })?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?
        .to_bytes();
    Ok((target, status, body))
}

/// `target` with `query` appended (Twilio signs `bodySHA256` in the URL).
fn with_query(target: &Uri, query: &str) -> Result<Uri, SendError> {
    let text = target.to_string();
    let sep = if target.query().is_some() { '&' } else { '?' };
    let joined = format!("{text}{sep}{query}");
    joined.parse().map_err(|_| SendError::BadTarget(joined))
}

/// The command: sign `args.body` for the route and POST it.
pub(super) fn send_command(args: &SendArgs) -> ExitCode {
    let loaded = match load(&args.config.config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let body = match read_body(&args.body) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let private_key = match read_private_key(args.private_key.as_deref()) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let config = &loaded.config;
    let prepared = route(config, &args.route)
        .and_then(|route| Ok((route, target(config, route, args.to.as_deref())?)));
    let (route, target) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if route.provider.uses_public_key() && private_key.is_none() {
        eprintln!(
            "route {:?} verifies {} signatures with public keys: give --private-key FILE (PEM)",
            route.name,
            route.provider.name()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
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
    let pool = match client(args.cacert.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match runtime.block_on(send(
        &pool,
        route,
        private_key.as_ref(),
        target,
        body.into(),
        now(),
    )) {
        Ok((target, status, body)) => {
            println!("POST {target}");
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
