//! The console (docs/admin-api.md `/ui`): one page, its script and its style, compiled into the
//! binary, so it works without internet and needs no build step.
//!
//! Why a small static page over plain JavaScript rather than server-rendered HTML: a
//! browser cannot send the bearer token when it navigates, so a server-rendered page
//! could hold no data without a second login scheme (cookies, CSRF); a page that fetches
//! the JSON API with the token the person typed needs none, reads the same API as
//! `hookwarden events` and `requests`, and refreshes itself by calling it again. No
//! framework, no bundler: three files, read as they are.
//!
//! A strict Content-Security-Policy allows only these files and calls to this origin, so
//! even a payload that got into the page as markup could not run.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `/ui` and its files. `signed_in`: the request carries the token, or none is needed.
pub(super) fn serve(path: &str, method: &Method, signed_in: bool) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut refused = file(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        refused
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return refused;
    }
    match path {
        // Without the token the same page answers 401: it holds no data, and asks.
        "/ui" | "/ui/" => {
            let status = if signed_in {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            file(status, "text/html; charset=utf-8", PAGE)
        }
        "/ui/app.js" => file(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        "/ui/app.css" => file(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        _ => file(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// `/` on the admin port: what it serves, with links, so that whoever opens the
/// address in a browser finds the console.
pub(super) fn index(console: bool) -> Response<Full<Bytes>> {
    let page = if console { INDEX } else { INDEX_NO_CONSOLE };
    file(StatusCode::OK, "text/html; charset=utf-8", page)
}

/// The page of `/`, with `$items` at the top of its list.
macro_rules! index_page {
    ($items:literal) => {
        concat!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">",
            "<title>hookwarden admin</title></head>\n<body>\n<h1>hookwarden admin</h1>\n<ul>\n",
            $items,
            "<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\n",
            "<li><a href=\"/healthz\">/healthz</a> and <a href=\"/readyz\">/readyz</a>: the probes</li>\n",
            "</ul>\n</body>\n</html>\n"
        )
    };
}

const INDEX: &str = index_page!(
    "<li><a href=\"/ui\">/ui</a>: the console</li>\n<li><a href=\"/api/routes\">/api</a>: the admin API</li>\n"
);
const INDEX_NO_CONSOLE: &str = index_page!(
    "<li>/ui and /api are off: this address is not loopback and admin.token is not set</li>\n"
);

fn file(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
