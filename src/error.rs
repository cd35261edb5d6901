//! The one error a request can end in, its status and its JSON body (SPEC §3).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::forward::ForwardError;
use crate::providers::{MalformedPayload, VerifyError};

/// Why a request was not delivered. Each boundary's error rolls up into this one.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no route for this path")]
    NotFound,
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("source address not allowed on this route")]
    Forbidden,
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("the request body could not be read")]
    BadBody,
    #[error("the request took longer than the request timeout")]
    RequestTimeout,
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{0}")]
    Malformed(#[from] MalformedPayload),
    #[error(transparent)]
    Forward(#[from] ForwardError),
}

impl GatewayError {
    /// The status of SPEC §3. No catch-all arm: a new variant must choose its status.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Forbidden => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BadBody => StatusCode::BAD_REQUEST,
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
            GatewayError::Forward(ForwardError::Unavailable(_)) => StatusCode::BAD_GATEWAY,
            GatewayError::Forward(ForwardError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `error` code of the JSON body, which is also the metrics outcome.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::NotFound => "not_found",
            GatewayError::MethodNotAllowed => "method_not_allowed",
            GatewayError::Forbidden => "forbidden",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::BadBody => "bad_request",
            GatewayError::RequestTimeout => "request_timeout",
            GatewayError::Verify(VerifyError::Unauthorized) => "unauthorized",
            GatewayError::Verify(VerifyError::MissingSignature) => "missing_signature",
            GatewayError::Verify(VerifyError::InvalidTimestamp) => "invalid_timestamp",
            GatewayError::Verify(VerifyError::TimestampTooOld | VerifyError::TimestampTooNew) => {
                "timestamp_out_of_tolerance"
            }
            GatewayError::Verify(VerifyError::InvalidSignature) => "invalid_signature",
            GatewayError::Malformed(_) => "malformed_payload",
            GatewayError::Forward(ForwardError::Unavailable(_)) => "upstream_unavailable",
            GatewayError::Forward(ForwardError::Timeout) => "upstream_timeout",
        }
    }

    /// The message shown to the client. Upstream failure details stay in the logs: they
    /// describe our network, not the caller's request.
    fn public_message(&self) -> String {
        match self {
            GatewayError::Forward(ForwardError::Unavailable(_)) => {
                "the application did not accept the event; retry later".into()
            }
            other => other.to_string(),
        }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = json_response(
            self.status(),
            &serde_json::json!({ "error": self.code(), "message": self.public_message() }),
        );
        if let GatewayError::MethodNotAllowed = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// A JSON response with the right Content-Type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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
    fn method_not_allowed_says_what_is() {
        let r = GatewayError::MethodNotAllowed.into_response();
        assert_eq!(r.headers()[header::ALLOW], "POST");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
