//! The admin API's client, for `hookwarden events` and `hookwarden requests` (docs/cli.md):
//! where the gateway's admin port is, with which token, and errors an operator can act
//! on (the gateway is not running there; the token is wrong).

use http::header::{HeaderValue, AUTHORIZATION};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::config::Config;
use crate::forward;

#[derive(Debug, thiserror::Error)]
pub(super) enum ClientError {
    #[error("invalid admin URL {0:?}: use a full URL such as http://127.0.0.1:9090")]
    BadUrl(String),
    #[error("cannot reach the gateway's admin API at {url}: {reason} (is the gateway running, and is admin.listen this address?)")]
    Unreachable { url: String, reason: String },
    #[error("the gateway at {url} refused the token (401): give the admin.token with --token or $HOOKWARDEN_ADMIN_TOKEN")]
    Unauthorized { url: String },
    #[error("the gateway at {url} has no admin API there (404): without admin.token it is served on a loopback address only")]
    NoApi { url: String },
    #[error("{status}: {message}")]
    Refused { status: StatusCode, message: String },
}

/// Where and how to call the admin API.
pub(super) struct AdminClient {
    base: String,
    token: Option<String>,
    pool: forward::Pool,
}

impl AdminClient {
    /// `url` (`--admin`), else `admin.listen` of `config` (a wildcard address means this
    /// machine); `token` (`--token`, else `$HOOKWARDEN_ADMIN_TOKEN`), else `admin.token`.
    pub(super) fn new(
        config: Option<&Config>,
        url: Option<&str>,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        let base = match (url, config) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(config)) => {
                let mut addr = config.admin.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(if addr.is_ipv4() {
                        [127, 0, 0, 1].into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                format!("http://{addr}")
            }
            (None, None) => "http://127.0.0.1:9090".to_string(),
        };
        let uri: Uri = base
            .parse()
            .map_err(|_| ClientError::BadUrl(base.clone()))?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            return Err(ClientError::BadUrl(base));
        }
        let token = token.or_else(|| {
            config
                .and_then(|c| c.admin.token.as_ref())
                .map(|t| String::from_utf8_lossy(t.expose()).into_owned())
        });
        let pool = forward::Pool::new(crate::clock::Clock::system()).map_err(|e| {
            ClientError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(AdminClient { base, token, pool })
    }

    /// `method path` (path and query, already encoded); the JSON answer of a 2xx.
    pub(super) async fn call(&self, method: Method, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url.parse().map_err(|_| ClientError::BadUrl(url.clone()))?;
        let bearer = match &self.token {
            Some(t) => Some(
                HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| ClientError::Unauthorized { url: url.clone() })?,
            ),
            None => None,
        };
        let request = || {
            let mut request = Request::new(forward::Pieces::default());
            *request.method_mut() = method.clone();
            if let Some(bearer) = &bearer {
                request.headers_mut().insert(AUTHORIZATION, bearer.clone());
            }
            Ok(request)
        };
        let unreachable = |reason: String| ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let (response, _connection) = self
            .pool
            .target(&uri)
            .send(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match status {
            s if s.is_success() => Ok(json),
            StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized {
                url: self.base.clone(),
            }),
            // The API's own "no such event" or "no route named …"; without the API at all
            // (no token on a public address) every path is "no such path".
            StatusCode::NOT_FOUND if json["message"] != "no such path" && json.is_object() => {
                Err(ClientError::Refused {
                    status,
                    message: message(&json, "not found"),
                })
            }
            StatusCode::NOT_FOUND => Err(ClientError::NoApi {
                url: self.base.clone(),
            }),
            _ => Err(ClientError::Refused {
                status,
                message: message(&json, "refused"),
            }),
        }
    }
}

fn message(json: &Value, fallback: &str) -> String {
    json["message"]
        .as_str()
        .or(json["error"].as_str())
        .unwrap_or(fallback)
        .to_string()
}

/// One path segment, percent-encoded.
pub(super) fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// A query string of the pairs that are set.
pub(super) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value {
            out.append_pair(key, value);
        }
    }
    let text = out.finish();
    if text.is_empty() {
        text
    } else {
        format!("?{text}")
    }
}
