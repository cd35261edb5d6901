//! Valid SmartCV and Semantikmatch deliveries, and every refusal before forwarding.

use serde_json::json;

use crate::support::{hmac_hex, now, pairs, smartcv_headers, Answer, Gateway, Upstream};

pub const SECRET: &str = "sc_secret";
pub const SM_SECRET: &str = "sm_secret";

pub fn config(upstream: &str, extra_route: &str) -> String {
    format!(
        r#"
[upstream]
url = "{upstream}"
[upstream.headers]
"X-Api-Key" = "app-key-1"

[[routes]]
name = "smartcv"
path = "/webhooks/smartcv"
provider = "smartcv"
secrets = ["old_secret", "{SECRET}"]
forward_path = "/hooks/smartcv"
{extra_route}

[[routes]]
name = "semantikmatch"
path = "/webhooks/semantikmatch"
provider = "semantikmatch"
secrets = ["{SM_SECRET}"]
default_type = "evaluation.completed"
"#
    )
}

pub const SC_BODY: &str = r#"{"id":"evt_1","type":"resume.created","created":"2024-12-30T10:00:00Z","data":{"resume":{"id":"r_1","score":12345678901234567890.10}},"api_version":"2024-12-30"}"#;

#[tokio::test]
async fn a_valid_smartcv_delivery_arrives_once_as_an_envelope_with_its_headers() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let mut headers = smartcv_headers(SECRET, now(), SC_BODY);
    headers.push(("x-forwarded-for".into(), "198.51.100.1".into()));
    let answer = gw
        .post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"ok": true}),
        "the app's answer is passed back"
    );

    let received = upstream.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.uri, "/hooks/smartcv");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-hookwarden-event-id"), Some("evt_1"));
    assert_eq!(got.header("idempotency-key"), Some("evt_1"));
    assert_eq!(got.header("x-hookwarden-provider"), Some("smartcv"));
    assert_eq!(got.header("x-hookwarden-route"), Some("smartcv"));
    assert_eq!(
        got.header("x-hookwarden-event-type"),
        Some("resume.created")
    );
    assert_eq!(got.header("x-api-key"), Some("app-key-1"));
    assert_eq!(got.header("host"), Some(upstream.addr.to_string().as_str()));
    for provider_header in [
        "x-smartcv-signature",
        "x-smartcv-timestamp",
        "x-forwarded-for",
    ] {
        assert!(
            got.header(provider_header).is_none(),
            "{provider_header} was forwarded"
        );
    }
    let env = got.json();
    assert_eq!(env["id"], "evt_1");
    assert_eq!(env["provider"], "smartcv");
    assert_eq!(env["route"], "smartcv");
    assert_eq!(env["type"], "resume.created");
    assert_eq!(env["occurred_at"], "2024-12-30T10:00:00Z");
    let received_at = env["received_at"].as_str().expect("received_at");
    assert_eq!(
        received_at.len(),
        "2026-11-23T10:00:00.123Z".len(),
        "{received_at}"
    );
    assert!(
        received_at.ends_with('Z') && received_at.as_bytes()[19] == b'.',
        "{received_at}"
    );
    // Digits survive exactly: the envelope's text holds the number as sent.
    let text = got.text();
    assert!(
        text.contains(r#""data":{"resume":{"id":"r_1","score":12345678901234567890.10}}"#),
        "{text}"
    );
}

#[tokio::test]
async fn data_travels_as_the_text_sent_unless_a_key_repeats() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let data = "{\n  \"name\": \"Ren\\u00e9e\",\n  \"n\": 1.50e2\n}";
    let sent = format!(r#"{{"id":"evt_text","type":"t","data":{data}}}"#);
    let repeated = r#"{"id":"evt_rep","type":"t","data":{"k":"first","k":"last"}}"#;
    for body in [sent.as_str(), repeated] {
        let headers = smartcv_headers(SECRET, now(), body);
        let answer = gw
            .post("/webhooks/smartcv", &pairs(&headers), body.to_string())
            .await;
        assert_eq!(answer.status, 200, "{body}");
    }
    let received = upstream.received();
    assert_eq!(received.len(), 2);

    // As sent: same whitespace, same escapes, same digits.
    let text = received[0].text();
    assert!(text.ends_with(&format!(r#","data":{data}}}"#)), "{text}");
    assert_eq!(received[0].json()["data"]["name"], "Renée");

    // A repeated key is resolved before the app sees it: the last value, once.
    let text = received[1].text();
    assert!(text.ends_with(r#","data":{"k":"last"}}"#), "{text}");

    // Semantikmatch's envelope shape too; its flat shape is decoded, so rewritten.
    let payload = "{ \"applicationId\" : \"a-9\" }";
    let body = format!(r#"{{"id":"sm-1","type":"evaluation.completed","payload":{payload}}}"#);
    let answer = post_semantikmatch(&gw, body).await;
    assert_eq!(answer.status, 200);
    let text = upstream.received()[2].text();
    assert!(text.ends_with(&format!(r#","data":{payload}}}"#)), "{text}");
}

#[tokio::test]
async fn a_key_named_like_serde_jsons_number_token_is_an_ordinary_key() {
    // With a repeated key the payload is read as a tree: that key once made it a number
    // ("42" → 42) or a refusal ("hi").
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    for (id, value) in [("m1", r#""42""#), ("m2", r#""hi""#), ("m3", "[1]")] {
        for repeat in ["", r#""id":"x","#] {
            let body = format!(
                r#"{{{repeat}"id":"{id}{}","type":"t","data":{{"$serde_json::private::Number":{value}}}}}"#,
                repeat.len()
            );
            let headers = smartcv_headers(SECRET, now(), &body);
            let answer = gw
                .post("/webhooks/smartcv", &pairs(&headers), body.clone())
                .await;
            assert_eq!(answer.status, 200, "{body}");
            let got = upstream.received().pop().expect("forwarded").text();
            assert!(
                got.ends_with(&format!(
                    r#","data":{{"$serde_json::private::Number":{value}}}}}"#
                )),
                "{body} was forwarded as {got}"
            );
        }
    }
}

/// Posts `body` to the Semantikmatch route, signed as Semantikmatch signs it.
async fn post_semantikmatch(gw: &Gateway, body: impl Into<String>) -> Answer {
    let body = body.into();
    let sig = hmac_hex(SM_SECRET, &[body.as_bytes()]);
    gw.post(
        "/webhooks/semantikmatch",
        &[("x-semantikmatch-signature", &sig)],
        body,
    )
    .await
}

#[tokio::test]
async fn a_flat_semantikmatch_delivery_gets_a_derived_id_and_decoded_client_data() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "")).await;
    let body =
        r#"{"applicationId":"a-1","totalScore":85.5,"client_data":"{\"candidate_id\":\"CRM-1\"}"}"#;
    let answer = post_semantikmatch(&gw, body).await;
    assert_eq!(answer.status, 200);
    let env = upstream.received()[0].json();
    assert_eq!(env["id"], hookwarden::derived_id(body.as_bytes()));
    assert_eq!(env["type"], "evaluation.completed");
    assert_eq!(env["occurred_at"], serde_json::Value::Null);
    assert_eq!(env["data"]["client_data"], json!({"candidate_id": "CRM-1"}));
    assert_eq!(env["data"]["totalScore"].to_string(), "85.5");
}

/// Sends `headers`/`body` to the smartcv route and expects `status`/`code`, with nothing
/// forwarded.
async fn refused(
    extra_route: &str,
    peer_headers: Vec<(String, String)>,
    body: &str,
    status: u16,
    code: &str,
) {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), extra_route)).await;
    let answer = gw
        .post("/webhooks/smartcv", &pairs(&peer_headers), body.to_string())
        .await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (status, code),
        "{:?}",
        answer.body
    );
    assert_eq!(answer.headers["content-type"], "application/json");
    assert!(answer.json()["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(
        upstream.received().is_empty(),
        "{code}: something reached the upstream"
    );
}

fn without(mut headers: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    headers.retain(|(k, _)| k != name);
    headers
}

fn replaced(mut headers: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    for (k, v) in headers.iter_mut() {
        if k == name {
            *v = value.to_string();
        }
    }
    headers
}

fn repeated(mut headers: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    let copy = headers
        .iter()
        .find(|(k, _)| k == name)
        .cloned()
        .expect("header");
    headers.push(copy);
    headers
}

#[tokio::test]
async fn each_failed_check_answers_its_code_and_forwards_nothing() {
    let good = || smartcv_headers(SECRET, now(), SC_BODY);
    refused(
        "",
        without(good(), "x-smartcv-signature"),
        SC_BODY,
        401,
        "missing_signature",
    )
    .await;
    refused(
        "",
        without(good(), "x-smartcv-timestamp"),
        SC_BODY,
        401,
        "invalid_timestamp",
    )
    .await;
    refused(
        "",
        replaced(good(), "x-smartcv-timestamp", "soon"),
        SC_BODY,
        401,
        "invalid_timestamp",
    )
    .await;
    refused(
        "",
        repeated(good(), "x-smartcv-timestamp"),
        SC_BODY,
        401,
        "invalid_timestamp",
    )
    .await;
    // A minute outside the window either way: the exact edges are unit-tested on an
    // injected clock, and here a second ticking over between signing and checking must
    // not bring a timestamp back in.
    refused(
        "",
        smartcv_headers(SECRET, now() - 360, SC_BODY),
        SC_BODY,
        401,
        "timestamp_out_of_tolerance",
    )
    .await;
    refused(
        "",
        smartcv_headers(SECRET, now() + 360, SC_BODY),
        SC_BODY,
        401,
        "timestamp_out_of_tolerance",
    )
    .await;
    refused(
        "",
        smartcv_headers("wrong", now(), SC_BODY),
        SC_BODY,
        401,
        "invalid_signature",
    )
    .await;
    refused(
        "",
        repeated(good(), "x-smartcv-signature"),
        SC_BODY,
        401,
        "invalid_signature",
    )
    .await;
    refused(
        "",
        replaced(good(), "x-smartcv-signature", ""),
        SC_BODY,
        401,
        "invalid_signature",
    )
    .await;
    refused(
        "",
        good(),
        &SC_BODY.replace("r_1", "r_2"),
        401,
        "invalid_signature",
    )
    .await;
    refused(
        "",
        smartcv_headers(SECRET, now(), "[1,2]"),
        "[1,2]",
        400,
        "malformed_payload",
    )
    .await;
    refused(
        "",
        smartcv_headers(SECRET, now(), r#"{"a":NaN}"#),
        r#"{"a":NaN}"#,
        400,
        "malformed_payload",
    )
    .await;
    refused(
        "",
        smartcv_headers(SECRET, now(), r#"{"a":"\udc00"}"#),
        r#"{"a":"\udc00"}"#,
        400,
        "malformed_payload",
    )
    .await;
    let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
    let deep = format!(r#"{{"a":{deep}}}"#);
    refused(
        "",
        smartcv_headers(SECRET, now(), &deep),
        &deep,
        400,
        "malformed_payload",
    )
    .await;
    refused(
        "allow_ips = [\"203.0.113.0/24\"]",
        good(),
        SC_BODY,
        403,
        "forbidden",
    )
    .await;
    refused(
        "[routes.auth]\nbearer = \"tok\"",
        good(),
        SC_BODY,
        401,
        "unauthorized",
    )
    .await;
    let mut wrong = good();
    wrong.push(("authorization".into(), "Bearer nope".into()));
    refused(
        "[routes.auth]\nbearer = \"tok\"",
        wrong,
        SC_BODY,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn credentials_and_signature_together_deliver() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), "[routes.auth]\nbearer = \"tok\"")).await;
    let mut headers = smartcv_headers(SECRET, now(), SC_BODY);
    headers.push(("authorization".into(), "Bearer tok".into()));
    assert_eq!(
        gw.post("/webhooks/smartcv", &pairs(&headers), SC_BODY)
            .await
            .status,
        200
    );
    assert_eq!(upstream.received().len(), 1);
}
