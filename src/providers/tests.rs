//! Properties every scheme must have, whatever the body: a correct signature verifies,
//! and the same signature over a body changed in one byte never does.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use proptest::prelude::*;
use sha2::Sha512;

use super::checks::hmac_sha256;
use super::{form, verify, Normalized, Request, VerifyError};
use std::borrow::Cow;

use crate::route::{
    DeliveryMode, Fields, ForwardMode, HmacAlgorithm, HmacScheme, KeyEncoding, MessagePart,
    Provider, Route, Secret, SigEncoding, SigList, TimeUnit, Timestamp,
};

const NOW: i64 = 1_764_000_000;

/// A route of `provider` with one secret, `key`, and the defaults of the file.
fn route(provider: Provider, key: &[u8], hmac: Option<HmacScheme>) -> Arc<Route> {
    Arc::new(Route {
        name: "r".into(),
        path: "/r".into(),
        provider,
        secrets: vec![Secret::new(key)],
        public_keys: Vec::new(),
        public_url: None,
        tolerance: Duration::from_secs(300),
        forward_uri: Uri::from_static("http://127.0.0.1:3000/r"),
        forward: ForwardMode::Normalized,
        delivery: DeliveryMode::Sync,
        rate_limit: None,
        dedup_ttl: Duration::from_secs(86_400),
        allow_ips: Vec::new(),
        default_type: None,
        fields: Fields::default(),
        auth: None,
        hmac,
        verify_token: None,
        token_header: None,
    })
}

fn hmac_scheme(header: &'static str, prefix: Option<&str>) -> HmacScheme {
    HmacScheme {
        headers: Cow::Owned(vec![Cow::Borrowed(header)]),
        prefix: prefix.map(|p| Cow::Owned(p.to_string())),
        list: SigList::One,
        encoding: SigEncoding::Hex,
        algorithm: HmacAlgorithm::Sha256,
        key: KeyEncoding::Raw,
        message: Cow::Owned(vec![MessagePart::Body]),
        timestamp: None,
        id_header: None,
    }
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).expect("header value"));
    }
    map
}

fn check(route: &Route, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let body = Bytes::copy_from_slice(body);
    verify(
        route,
        &Request {
            method: &http::Method::POST,
            headers,
            query: None,
            body: &body,
            now: NOW,
            now_ms: NOW * 1000,
        },
    )
    .map(|_| ())
}

/// Every vector of `tests/fixtures/presets.json` (signed with the providers' own SDKs)
/// for `provider`, through verification and normalization with the clock at the
/// vector's `now`: the status class, the error, the events' id and type, and the
/// handshake's answer. The integration test runs the same vectors through the gateway.
pub(super) fn presets_pass(provider: &str) {
    let ran = vectors_pass(include_str!("../../tests/fixtures/presets.json"), provider);
    assert!(ran > 0, "no vector for {provider}");
}

/// A preset of the table: its vectors in `tests/fixtures/catalog.json`, and for those
/// that moved into the table (Stripe, Paddle…) their SDK-signed ones in `presets.json`.
pub(super) fn table_preset_passes(provider: &str) {
    let ran = vectors_pass(include_str!("../../tests/fixtures/catalog.json"), provider)
        + vectors_pass(include_str!("../../tests/fixtures/presets.json"), provider);
    assert!(ran > 0, "no vector for {provider}");
}

/// Runs `file`'s vectors of `provider`; how many there were.
fn vectors_pass(file: &str, provider: &str) -> usize {
    let doc: serde_json::Value = serde_json::from_str(file).expect("json");
    let mut ran = 0;
    for v in doc["vectors"].as_array().expect("vectors") {
        if v["route"]["provider"] != provider {
            continue;
        }
        ran += 1;
        let name = v["name"].as_str().expect("name");
        let route = preset_route(&v["route"]);
        let req = &v["request"];
        let mut headers = HeaderMap::new();
        for pair in req["headers"].as_array().expect("headers") {
            headers.append(
                HeaderName::from_bytes(pair[0].as_str().expect("name").as_bytes()).expect("name"),
                HeaderValue::from_str(pair[1].as_str().expect("value")).expect("value"),
            );
        }
        let uri: Uri = req["path"].as_str().expect("path").parse().expect("path");
        let body = Bytes::copy_from_slice(req["body"].as_str().expect("body").as_bytes());
        let now = v["now"].as_i64().expect("now");
        let expect = &v["expect"];
        let method: http::Method = req["method"]
            .as_str()
            .unwrap_or("POST")
            .parse()
            .expect("method");
        if method == http::Method::GET || method == http::Method::HEAD {
            // A GET (or HEAD) handshake, answered before any body or signature (the
            // pipeline's step 2).
            let answer = super::get_handshake(&route, &method, uri.query(), &headers);
            match (expect["error"].as_str(), answer) {
                (None, Some(Ok(h))) => {
                    assert_eq!(h.status.as_u16(), expect["status"], "{name}");
                    assert_eq!(
                        h.body.as_value().unwrap_or(serde_json::Value::Null),
                        expect["response"],
                        "{name}"
                    );
                }
                (Some("method_not_allowed"), None) => {}
                (Some("unauthorized"), Some(Err(VerifyError::Unauthorized))) => {}
                (want, _) => panic!("{name}: expected {want:?}"),
            }
            continue;
        }
        let request = Request {
            method: &method,
            headers: &headers,
            query: uri.query(),
            body: &body,
            now,
            now_ms: now * 1000,
        };
        let outcome = verify(&route, &request);
        let error = |e: &VerifyError| match e {
            VerifyError::Unauthorized => "unauthorized",
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::InvalidTimestamp => "invalid_timestamp",
            VerifyError::TimestampTooOld | VerifyError::TimestampTooNew => {
                "timestamp_out_of_tolerance"
            }
            VerifyError::InvalidSignature => "invalid_signature",
        };
        match (expect["error"].as_str(), outcome) {
            (Some(code), Err(e)) => assert_eq!(error(&e), code, "{name}"),
            (Some(code), Ok(verified)) => {
                let normalized = verified.normalize(&route);
                assert!(
                    code == "malformed_payload" && normalized.is_err(),
                    "{name}: verified, expected {code}"
                );
            }
            (None, Err(e)) => panic!("{name}: refused {}", error(&e)),
            (None, Ok(verified)) => match verified.normalize(&route).expect(name) {
                Normalized::Handshake(h) => {
                    assert_eq!(h.status.as_u16(), expect["status"], "{name}");
                    let want = &expect["response"];
                    assert_eq!(
                        &h.body.as_value().unwrap_or(serde_json::Value::Null),
                        want,
                        "{name}"
                    );
                }
                Normalized::Events(events) => {
                    let want = expect["events"].as_array().expect(name);
                    assert_eq!(events.events.len(), want.len(), "{name}");
                    for (got, want) in events.events.iter().zip(want) {
                        assert_eq!(got.id.as_str(), want["id"], "{name}");
                        assert_eq!(got.kind, want["type"], "{name}");
                    }
                }
            },
        }
    }
    ran
}

/// A vector's route through the real configuration loader, so keys are parsed as
/// `check` parses them.
fn preset_route(route: &serde_json::Value) -> Route {
    let mut doc = toml::Table::new();
    let mut up = toml::Table::new();
    up.insert("url".into(), "http://127.0.0.1:1".into());
    doc.insert("upstream".into(), up.into());
    let route = toml::Value::try_from(route).expect("route as TOML");
    doc.insert("routes".into(), toml::Value::Array(vec![route]));
    let text = toml::to_string(&doc).expect("toml");
    let loaded = crate::config::load_str(&text, std::path::Path::new("."), &|_| None)
        .unwrap_or_else(|e| panic!("{}", e.lines().join("; ")));
    loaded.config.routes[0].as_ref().clone()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// How a provider signs a body: the headers it would send.
type Signer = Box<dyn Fn(&[u8]) -> HeaderMap>;

/// Each scheme's route and its signer, computed here independently of the verifiers.
fn schemes() -> Vec<(&'static str, Arc<Route>, Signer)> {
    let ts = NOW.to_string();
    let sw_key = [7u8; 24];
    vec![
        (
            "smartcv",
            route(Provider::SmartCv, b"k", None),
            Box::new({
                let ts = ts.clone();
                move |body| {
                    let tag = hmac_sha256(b"k", &[ts.as_bytes(), b".", body]);
                    headers(&[
                        ("x-smartcv-timestamp", ts.clone()),
                        (
                            "x-smartcv-signature",
                            format!("sha256={}", hex::encode(tag)),
                        ),
                    ])
                }
            }),
        ),
        (
            "semantikmatch",
            route(Provider::Semantikmatch, b"k", None),
            Box::new(|body| {
                headers(&[(
                    "x-semantikmatch-signature",
                    hex::encode(hmac_sha256(b"k", &[body])),
                )])
            }),
        ),
        (
            "hrflow raw body",
            route(Provider::Hrflow, b"k", None),
            Box::new(|body| {
                headers(&[
                    ("content-type", "application/json".into()),
                    (
                        "http-hrflow-signature",
                        hex::encode(hmac_sha256(b"k", &[body])),
                    ),
                ])
            }),
        ),
        (
            "standard-webhooks",
            route(Provider::StandardWebhooks, &sw_key, None),
            Box::new({
                let ts = ts.clone();
                move |body| {
                    let tag = hmac_sha256(&sw_key, &[b"msg_1.", ts.as_bytes(), b".", body]);
                    headers(&[
                        ("webhook-id", "msg_1".into()),
                        ("webhook-timestamp", ts.clone()),
                        ("webhook-signature", format!("v1,{}", b64(&tag))),
                    ])
                }
            }),
        ),
        (
            "hmac sha512 base64 template",
            route(
                Provider::Hmac,
                b"k",
                Some(HmacScheme {
                    encoding: SigEncoding::Base64,
                    algorithm: HmacAlgorithm::Sha512,
                    message: Cow::Owned(vec![
                        MessagePart::Id,
                        MessagePart::Literal(":".into()),
                        MessagePart::Timestamp,
                        MessagePart::Literal(":".into()),
                        MessagePart::Body,
                    ]),
                    timestamp: Some(Timestamp {
                        header: Some(Cow::Borrowed("x-ts")),
                        unit: TimeUnit::Seconds,
                    }),
                    id_header: Some(Cow::Borrowed("x-id")),
                    ..hmac_scheme("x-sig", None)
                }),
            ),
            Box::new({
                let ts = ts.clone();
                move |body| {
                    use hmac::{digest::KeyInit, Mac};
                    let mut mac =
                        <hmac::Hmac<Sha512> as KeyInit>::new_from_slice(b"k").expect("key");
                    for part in [b"e1:".as_slice(), ts.as_bytes(), b":", body] {
                        mac.update(part);
                    }
                    let tag = mac.finalize().into_bytes();
                    headers(&[
                        ("x-ts", ts.clone()),
                        ("x-id", "e1".into()),
                        ("x-sig", b64(&tag)),
                    ])
                }
            }),
        ),
        (
            "jobaffinity hmac",
            route(
                Provider::JobAffinity,
                b"k",
                Some(hmac_scheme("x-sig", Some("sha256="))),
            ),
            Box::new(|body| {
                headers(&[(
                    "x-sig",
                    format!("sha256={}", hex::encode(hmac_sha256(b"k", &[body]))),
                )])
            }),
        ),
    ]
}

proptest! {
    #[test]
    fn a_body_changed_in_one_byte_never_verifies(
        body in prop::collection::vec(any::<u8>(), 1..300),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut tampered = body.clone();
        tampered[at.index(body.len())] ^= flip;
        for (name, route, sign) in schemes() {
            let signed = sign(&body);
            prop_assert_eq!(check(&route, &signed, &body), Ok(()), "{} refused its own signature", name);
            prop_assert_eq!(check(&route, &signed, &tampered), Err(VerifyError::InvalidSignature), "{} accepted a tampered body", name);
        }
    }

    /// HrFlow's form signature covers the canonical JSON, not the bytes: a change
    /// verifies exactly when it leaves the canonical JSON as it was (a dropped field).
    #[test]
    fn a_changed_form_verifies_only_if_its_canonical_json_is_unchanged(
        body in "[a-z=&%+0-9]{1,40}",
        at in any::<prop::sample::Index>(),
        replacement in "[a-z=&%+0-9]",
    ) {
        let route = route(Provider::Hrflow, b"k", None);
        let canonical = |b: &[u8]| form::canonical_json(&form::fields(b));
        let tag = hmac_sha256(b"k", &[canonical(body.as_bytes()).as_bytes()]);
        let signed = headers(&[("content-type", "application/x-www-form-urlencoded".into()), ("http-hrflow-signature", hex::encode(tag))]);
        let mut tampered = body.clone().into_bytes();
        tampered[at.index(body.len())] = replacement.as_bytes()[0];
        prop_assert_eq!(check(&route, &signed, body.as_bytes()), Ok(()));
        let expected = if canonical(&tampered) == canonical(body.as_bytes()) { Ok(()) } else { Err(VerifyError::InvalidSignature) };
        prop_assert_eq!(check(&route, &signed, &tampered), expected);
    }

    /// In a signed request the event travels in the header: one changed character of its
    /// payload part never verifies.
    #[test]
    fn a_changed_signed_request_never_verifies(
        event in prop::collection::vec(any::<u8>(), 1..200),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let route = route(Provider::Hrflow, b"k", None);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let b = url.encode(&event);
        let documented = format!("{}.{b}", url.encode(hmac_sha256(b"k", &[b.as_bytes()])));
        let sdk = format!("{}.{b}", url.encode(hex::encode(hmac_sha256(b"k", &[&event]))));
        let mut changed = event.clone();
        changed[at.index(event.len())] ^= flip;
        let b2 = url.encode(&changed);
        for signature in [documented, sdk] {
            let (a, _) = signature.split_once('.').expect("dot");
            prop_assert_eq!(check(&route, &headers(&[("http-hrflow-signature", signature.clone())]), b""), Ok(()));
            let forged = headers(&[("http-hrflow-signature", format!("{a}.{b2}"))]);
            prop_assert_eq!(check(&route, &forged, b""), Err(VerifyError::InvalidSignature));
        }
    }
}

/// `[routes.hmac]` is the table's description written in the file: a route describing
/// Calendly, Webflow, Zendesk, PagerDuty or Airtable by hand verifies what that preset's
/// vector sends, and refuses it once the body changed.
#[test]
fn a_hand_written_hmac_route_verifies_what_the_preset_it_describes_verifies() {
    let described = [
        (
            "calendly",
            "calendly-signing-key",
            r#"header = "Calendly-Webhook-Signature"
prefix = "v1="
separator = ","
timestamp_key = "t"
message = "{timestamp}.{body}""#,
        ),
        (
            "webflow",
            "webflow-webhook-secret",
            r#"header = "x-webflow-signature"
message = "{timestamp}:{body}"
timestamp_header = "x-webflow-timestamp"
timestamp_unit = "milliseconds""#,
        ),
        (
            "zendesk",
            "zendesk-signing-secret",
            r#"header = "X-Zendesk-Webhook-Signature"
encoding = "base64"
message = "{timestamp}{body}"
timestamp_header = "X-Zendesk-Webhook-Signature-Timestamp"
timestamp_unit = "rfc3339""#,
        ),
        (
            "pagerduty",
            "pagerduty-secret",
            r#"header = "X-PagerDuty-Signature"
prefix = "v1="
separator = ",""#,
        ),
        (
            "airtable",
            "YWlydGFibGUtbWFjLXNlY3JldC1ieXRlcw==",
            r#"header = "X-Airtable-Content-MAC"
prefix = "hmac-sha256="
key_encoding = "base64""#,
        ),
    ];
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/catalog.json")).expect("json");
    for (preset, secret, hmac) in described {
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:1\"\n[[routes]]\nname = \"r\"\npath = \"/r\"\nprovider = \"hmac\"\nsecrets = [\"{secret}\"]\n[routes.hmac]\n{hmac}\n"
        );
        let loaded = crate::config::load_str(&text, std::path::Path::new("."), &|_| None)
            .unwrap_or_else(|e| panic!("{preset}: {}", e.lines().join("; ")));
        let route = loaded.config.routes[0].as_ref().clone();
        let v = doc["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .find(|v| v["name"] == format!("{preset}/valid"))
            .expect("the preset's valid vector");
        let mut headers = HeaderMap::new();
        for pair in v["request"]["headers"].as_array().expect("headers") {
            headers.append(
                HeaderName::from_bytes(pair[0].as_str().expect("name").as_bytes()).expect("name"),
                HeaderValue::from_str(pair[1].as_str().expect("value")).expect("value"),
            );
        }
        let body = v["request"]["body"].as_str().expect("body");
        let now = v["now"].as_i64().expect("now");
        let at = |body: &str| {
            let body = Bytes::copy_from_slice(body.as_bytes());
            verify(
                &route,
                &Request {
                    method: &http::Method::POST,
                    headers: &headers,
                    query: None,
                    body: &body,
                    now,
                    now_ms: now * 1000,
                },
            )
            .map(|_| ())
        };
        assert_eq!(at(body), Ok(()), "{preset}");
        assert_eq!(
            at(&format!("{body} ")),
            Err(VerifyError::InvalidSignature),
            "{preset}"
        );
    }
}
