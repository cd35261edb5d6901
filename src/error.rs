//! The one error a request can end in, its status, outcome and JSON body (docs/request-handling.md), and
//! [`Reply`], the answer every path renders into.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

use crate::dedup::StoreError;
use crate::forward::ForwardError;
use crate::learned_secrets::LearnError;
use crate::metrics::Outcome;
use crate::providers::{MalformedPayload, VerifyError};

/// Why a request was not delivered. Each boundary's error rolls up into this one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    #[error("no route for this path")]
    NotFound,
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("source address not allowed on this route")]
    Forbidden,
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("ambiguous message framing (Content-Length with Transfer-Encoding, or repeated)")]
    AmbiguousFraming,
    #[error("an HTTP/1.1 request needs exactly one Host header")]
    BadHost,
    #[error("too many request bodies are being read at once; retry shortly")]
    Overloaded,
    #[error("the request body could not be read")]
    BadBody,
    #[error("the request took longer than the request timeout")]
    RequestTimeout,
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{0}")]
    Malformed(#[from] MalformedPayload),
    #[error("rate limit of this route exceeded")]
    RateLimited { retry_after: u64 },
    #[error("this event is being forwarded by another request; retry shortly")]
    InFlight,
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// Not forwarded: without the shared store, another replica might forward it too.
    #[error(transparent)]
    DedupStore(#[from] StoreError),
    /// An Asana route's secret could not be read or kept: the provider must retry.
    #[error(transparent)]
    SecretStore(#[from] LearnError),
    /// Not stored (queue full, store failing): the provider must retry.
    #[error("the event could not be queued; retry later")]
    QueueUnavailable(String),
    /// The request's own task failed (a bug): nothing was forwarded by it.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// The status of docs/request-handling.md. No catch-all arm: a new variant must choose its status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Forbidden => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::AmbiguousFraming | GatewayError::BadHost | GatewayError::BadBody => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Verify(
                VerifyError::Unauthorized
                | VerifyError::MissingSignature
                | VerifyError::InvalidTimestamp
                | VerifyError::TimestampTooOld
                | VerifyError::TimestampTooNew
                | VerifyError::InvalidSignature,
            ) => StatusCode::UNAUTHORIZED,
            GatewayError::Malformed(_) => StatusCode::BAD_REQUEST,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::InFlight => StatusCode::CONFLICT,
            GatewayError::Forward(ForwardError::Unavailable(_) | ForwardError::Failing { .. }) => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::Forward(ForwardError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::DedupStore(_) | GatewayError::SecretStore(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::QueueUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The metrics outcome; `None` for failures of the HTTP exchange itself, which are
    /// not counted per route (docs/request-handling.md).
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            GatewayError::NotFound => Outcome::NotFound,
            GatewayError::MethodNotAllowed => Outcome::MethodNotAllowed,
            GatewayError::Forbidden => Outcome::Forbidden,
            GatewayError::PayloadTooLarge { .. } => Outcome::PayloadTooLarge,
            GatewayError::AmbiguousFraming
            | GatewayError::BadHost
            | GatewayError::BadBody
            | GatewayError::RequestTimeout
            | GatewayError::Internal => return None,
            GatewayError::Overloaded => Outcome::Overloaded,
            GatewayError::Verify(VerifyError::Unauthorized) => Outcome::Unauthorized,
            GatewayError::Verify(VerifyError::MissingSignature) => Outcome::MissingSignature,
            GatewayError::Verify(VerifyError::InvalidTimestamp) => Outcome::InvalidTimestamp,
            GatewayError::Verify(VerifyError::TimestampTooOld | VerifyError::TimestampTooNew) => {
                Outcome::TimestampOutOfTolerance
            }
            GatewayError::Verify(VerifyError::InvalidSignature) => Outcome::InvalidSignature,
            GatewayError::Malformed(_) => Outcome::MalformedPayload,
            GatewayError::RateLimited { .. } => Outcome::RateLimited,
            GatewayError::InFlight => Outcome::InFlight,
            GatewayError::Forward(ForwardError::Unavailable(_) | ForwardError::Failing { .. }) => {
                Outcome::UpstreamUnavailable
            }
            GatewayError::Forward(ForwardError::Timeout) => Outcome::UpstreamTimeout,
            // Not the app's failure: counted apart, and the provider retries.
            GatewayError::DedupStore(_) | GatewayError::SecretStore(_) => Outcome::StoreUnavailable,
            GatewayError::QueueUnavailable(_) => Outcome::QueueUnavailable,
        })
    }

    /// The `error` code of the JSON body.
    pub(crate) fn code(&self) -> &'static str {
        match self.outcome() {
            Some(outcome) => outcome.as_str(),
            None => match self {
                GatewayError::RequestTimeout => "request_timeout",
                GatewayError::Internal => "internal_error",
                _ => "bad_request",
            },
        }
    }

    /// The message shown to the client. Upstream failure details stay in the logs: they
    /// describe our network, not the caller's request.
    fn public_message(&self) -> String {
        match self {
            GatewayError::Forward(ForwardError::Unavailable(_) | ForwardError::Failing { .. }) => {
                "the application did not accept the event; retry later".into()
            }
            GatewayError::DedupStore(_) => {
                "the event could not be checked for duplicates; retry later".into()
            }
            GatewayError::SecretStore(_) => {
                "the route's handshake secret could not be read or kept; retry later".into()
            }
            GatewayError::QueueUnavailable(_) => {
                "the event could not be queued; retry later".into()
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn into_reply(self) -> Reply {
        let mut reply = Reply::json(
            self.status(),
            &serde_json::json!({ "error": self.code(), "message": self.public_message() }),
        );
        match self {
            GatewayError::MethodNotAllowed => {
                reply
                    .headers
                    .insert(ALLOW, HeaderValue::from_static("POST"));
            }
            GatewayError::RateLimited { retry_after } => {
                reply
                    .headers
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after));
            }
            GatewayError::InFlight
            | GatewayError::Overloaded
            | GatewayError::DedupStore(_)
            | GatewayError::SecretStore(_) => {
                reply
                    .headers
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // A full or failing store does not recover within a second.
            GatewayError::QueueUnavailable(_) => {
                reply
                    .headers
                    .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            }
            // The rest of the connection cannot be trusted to be framed the way we read it.
            GatewayError::AmbiguousFraming => {
                reply
                    .headers
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        reply
    }
}

/// A complete answer: cheap to clone, so the copies that waited on an event's first
/// delivery can answer exactly as it did.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A JSON answer with the right Content-Type.
    pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        Self::serialized(status, body)
    }

    /// `body` written as JSON straight from its type (no `Value` built on the way).
    pub(crate) fn serialized(status: StatusCode, body: &impl serde::Serialize) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Reply {
            status,
            headers,
            // Our own answer types and string maps always serialize.
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    /// A plain-text answer, never sniffed as anything else (a handshake's echoed
    /// challenge).
    pub(crate) fn text(status: StatusCode, body: String) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Reply {
            status,
            headers,
            body: Bytes::from(body),
        }
    }

    /// A status with no body at all (Discord's webhook-event PING wants a bare 204).
    pub(crate) fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_the_documented_status_and_code() {
        let cases: Vec<(GatewayError, u16, &str)> = vec![
            (GatewayError::NotFound, 404, "not_found"),
            (GatewayError::MethodNotAllowed, 405, "method_not_allowed"),
            (GatewayError::Forbidden, 403, "forbidden"),
            (
                GatewayError::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (GatewayError::AmbiguousFraming, 400, "bad_request"),
            (GatewayError::BadHost, 400, "bad_request"),
            (GatewayError::Overloaded, 503, "overloaded"),
            (GatewayError::Internal, 500, "internal_error"),
            (
                GatewayError::QueueUnavailable("full".into()),
                503,
                "queue_unavailable",
            ),
            (
                StoreError::unreachable_for_tests().into(),
                503,
                "store_unavailable",
            ),
            (GatewayError::BadBody, 400, "bad_request"),
            (GatewayError::RequestTimeout, 408, "request_timeout"),
            (VerifyError::Unauthorized.into(), 401, "unauthorized"),
            (
                VerifyError::MissingSignature.into(),
                401,
                "missing_signature",
            ),
            (
                VerifyError::InvalidTimestamp.into(),
                401,
                "invalid_timestamp",
            ),
            (
                VerifyError::TimestampTooOld.into(),
                401,
                "timestamp_out_of_tolerance",
            ),
            (
                VerifyError::TimestampTooNew.into(),
                401,
                "timestamp_out_of_tolerance",
            ),
            (
                VerifyError::InvalidSignature.into(),
                401,
                "invalid_signature",
            ),
            (
                MalformedPayload("x".into()).into(),
                400,
                "malformed_payload",
            ),
            (
                GatewayError::RateLimited { retry_after: 3 },
                429,
                "rate_limited",
            ),
            (GatewayError::InFlight, 409, "in_flight"),
            (
                ForwardError::Unavailable("x".into()).into(),
                502,
                "upstream_unavailable",
            ),
            (ForwardError::Timeout.into(), 504, "upstream_timeout"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
        }
    }

    #[test]
    fn refusals_carry_the_headers_that_say_what_to_do() {
        let r = GatewayError::MethodNotAllowed.into_reply();
        assert_eq!(r.headers[ALLOW], "POST");
        assert_eq!(r.headers[CONTENT_TYPE], "application/json");
        assert_eq!(
            GatewayError::RateLimited { retry_after: 3 }
                .into_reply()
                .headers[RETRY_AFTER],
            "3"
        );
        for retry_shortly in [GatewayError::InFlight, GatewayError::Overloaded] {
            assert_eq!(retry_shortly.into_reply().headers[RETRY_AFTER], "1");
        }
        assert_eq!(
            GatewayError::AmbiguousFraming.into_reply().headers[CONNECTION],
            "close"
        );
    }
}
