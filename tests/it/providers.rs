//! HrFlow, JobAffinity, Standard Webhooks and generic HMAC over real HTTP: accepted
//! deliveries and their envelopes, refusals that forward nothing, and batches.

use base64::Engine;
use serde_json::json;

use crate::support::{hmac_hex, now, Gateway, Reply, Upstream};

const HF: &str = "wsk_hf";
const SW_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn config(upstream: &str) -> String {
    let whsec = base64::engine::general_purpose::STANDARD.encode(SW_KEY);
    format!(
        r#"
[upstream]
url = "{upstream}"

[[routes]]
name = "hrflow"
path = "/hrflow"
provider = "hrflow"
secrets = ["{HF}"]

[[routes]]
name = "hrflow_raw"
path = "/hrflow-raw"
provider = "hrflow"
secrets = ["{HF}"]
forward = "raw"

[[routes]]
name = "ja"
path = "/ja"
provider = "jobaffinity"
[routes.auth]
header = {{ name = "X-Api-Key", value = "ja-key" }}

[[routes]]
name = "ja_both"
path = "/ja-both"
provider = "jobaffinity"
secrets = ["ja_hmac"]
[routes.auth]
bearer = "ja-token"
[routes.hmac]
header = "X-Signature"

[[routes]]
name = "sw"
path = "/sw"
provider = "standard-webhooks"
secrets = ["whsec_b2xkIGtleQ==", "whsec_{whsec}"]

[[routes]]
name = "generic"
path = "/generic"
provider = "hmac"
secrets = ["g"]
[routes.hmac]
header = "X-Sig"
prefix = "v0="
message = "v0:{{id}}:{{timestamp}}:{{body}}"
timestamp_header = "X-Ts"
id_header = "X-Event"
"#
    )
}

async fn setup() -> (Gateway, Upstream) {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url())).await;
    (gw, upstream)
}

fn hf_sig(body: &str) -> String {
    hmac_hex(HF, &[body.as_bytes()])
}

const BATCH: &str = r#"[ {"type":"a.success","n":1} ,{"type":"b.success","n":2},
 {"type":"c.success","n":3}]"#;

#[tokio::test]
async fn an_hrflow_batch_is_forwarded_element_by_element_in_order() {
    let (gw, upstream) = setup().await;
    let answer = gw
        .post(
            "/hrflow",
            &[("http-hrflow-signature", &hf_sig(BATCH))],
            BATCH,
        )
        .await;
    assert_eq!(answer.status, 200);
    let ids: Vec<String> = [
        "{\"type\":\"a.success\",\"n\":1}",
        "{\"type\":\"b.success\",\"n\":2}",
        "{\"type\":\"c.success\",\"n\":3}",
    ]
    .iter()
    .map(|e| hookwarden::derived_id(e.as_bytes()))
    .collect();
    assert_eq!(answer.json(), json!({"status": "delivered", "ids": ids}));
    let types: Vec<_> = upstream
        .received()
        .iter()
        .map(|r| r.json()["type"].clone())
        .collect();
    assert_eq!(
        types,
        [json!("a.success"), json!("b.success"), json!("c.success")]
    );
    assert_eq!(
        upstream.received()[1].json()["data"],
        json!({"type": "b.success", "n": 2})
    );
}

#[tokio::test]
async fn a_batch_stops_at_the_first_element_the_app_does_not_take() {
    let (gw, upstream) = setup().await;
    upstream.script([Reply::status(200), Reply::status(503)]);
    let answer = gw
        .post(
            "/hrflow",
            &[("http-hrflow-signature", &hf_sig(BATCH))],
            BATCH,
        )
        .await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (502, "upstream_unavailable")
    );
    assert_eq!(
        upstream.received().len(),
        2,
        "the third element is never sent"
    );

    let (gw, upstream) = setup().await;
    upstream.script([Reply::status(409).with_body("text/plain", "conflict")]);
    let answer = gw
        .post(
            "/hrflow",
            &[("http-hrflow-signature", &hf_sig(BATCH))],
            BATCH,
        )
        .await;
    assert_eq!(answer.status, 409, "the failing element's own answer");
    assert_eq!(&answer.body[..], b"conflict");
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn a_batch_with_a_non_object_element_forwards_nothing_and_an_empty_one_succeeds() {
    let (gw, upstream) = setup().await;
    let bad = r#"[{"type":"a"}, 7]"#;
    let answer = gw
        .post("/hrflow", &[("http-hrflow-signature", &hf_sig(bad))], bad)
        .await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "malformed_payload")
    );
    let empty = "[]";
    let answer = gw
        .post(
            "/hrflow",
            &[("http-hrflow-signature", &hf_sig(empty))],
            empty,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"status": "delivered", "ids": []}));
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn with_raw_forwarding_an_array_is_one_event() {
    let (gw, upstream) = setup().await;
    let answer = gw
        .post(
            "/hrflow-raw",
            &[
                ("http-hrflow-signature", &hf_sig(BATCH)),
                ("content-type", "application/json"),
            ],
            BATCH,
        )
        .await;
    assert_eq!(answer.status, 200);
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(&received[0].body[..], BATCH.as_bytes());
    assert_eq!(
        received[0].header("x-hookwarden-event-id"),
        Some(hookwarden::derived_id(BATCH.as_bytes()).as_str())
    );
}

#[tokio::test]
async fn an_hrflow_form_decodes_profile_and_a_signed_request_forwards_its_own_json() {
    let (gw, upstream) = setup().await;
    let form = "type=profile.parsing.success&profile=%7B%22key%22%3A+%22p1%22%7D&origin=api";
    let canonical =
        r#"{"type":"profile.parsing.success","profile":"{\"key\": \"p1\"}","origin":"api"}"#;
    let sig = hmac_hex(HF, &[canonical.as_bytes()]);
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("http-hrflow-signature", sig.as_str()),
    ];
    assert_eq!(gw.post("/hrflow", &headers, form).await.status, 200);
    let env = upstream.received()[0].json();
    assert_eq!(env["type"], "profile.parsing.success");
    assert_eq!(
        env["data"],
        json!({"type": "profile.parsing.success", "profile": {"key": "p1"}, "origin": "api"})
    );
    assert_eq!(env["id"], hookwarden::derived_id(canonical.as_bytes()));

    let event = r#"{"type":"job.storing.success","job":{"key":"j9"}}"#;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let b = url.encode(event);
    let a = url.encode(crate::support::hmac_raw(HF, &[b.as_bytes()]));
    let signed = format!("{a}.{b}");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("http-hrflow-signature", signed.as_str()),
    ];
    assert_eq!(
        gw.post("/hrflow-raw", &headers, "ignored=1").await.status,
        200
    );
    let raw = &upstream.received()[1];
    assert_eq!(
        &raw.body[..],
        event.as_bytes(),
        "the verified event, not the unverified body"
    );
    assert_eq!(raw.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn hrflow_refuses_wrong_secret_and_missing_header() {
    let (gw, upstream) = setup().await;
    let body = r#"{"type":"x"}"#;
    let wrong = hmac_hex("other", &[body.as_bytes()]);
    let answer = gw
        .post("/hrflow", &[("http-hrflow-signature", &wrong)], body)
        .await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (401, "invalid_signature")
    );
    let answer = gw.post("/hrflow", &[], body).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (401, "missing_signature")
    );
    assert!(upstream.received().is_empty());
}

const JA_BODY: &str = r#"{"event":"ProcessStepChange","datetime":"2021-04-01 12:13:14","application":{"_self":"/restapi/v1/application/42"}}"#;

#[tokio::test]
async fn jobaffinity_checks_credentials_and_when_both_are_set_the_signature_too() {
    let (gw, upstream) = setup().await;
    let ok = gw.post("/ja", &[("x-api-key", "ja-key")], JA_BODY).await;
    assert_eq!(ok.status, 200);
    let env = upstream.received()[0].json();
    assert_eq!(
        (env["type"].as_str(), env["occurred_at"].as_str()),
        (Some("ProcessStepChange"), Some("2021-04-01 12:13:14"))
    );
    for headers in [
        vec![],
        vec![("x-api-key", "nope")],
        vec![("x-api-key", "ja-key"), ("x-api-key", "ja-key")],
    ] {
        let answer = gw.post("/ja", &headers, JA_BODY).await;
        assert_eq!(
            (answer.status, answer.error().as_str()),
            (401, "unauthorized"),
            "{headers:?}"
        );
    }

    let sig = hmac_hex("ja_hmac", &[JA_BODY.as_bytes()]);
    let both = gw
        .post(
            "/ja-both",
            &[("authorization", "Bearer ja-token"), ("x-signature", &sig)],
            JA_BODY,
        )
        .await;
    assert_eq!(both.status, 200);
    let no_sig = gw
        .post("/ja-both", &[("authorization", "Bearer ja-token")], JA_BODY)
        .await;
    assert_eq!(
        (no_sig.status, no_sig.error().as_str()),
        (401, "missing_signature")
    );
    let no_auth = gw.post("/ja-both", &[("x-signature", &sig)], JA_BODY).await;
    assert_eq!(
        (no_auth.status, no_auth.error().as_str()),
        (401, "unauthorized")
    );
    assert_eq!(upstream.received().len(), 2);
}

fn sw_headers(id: &str, ts: i64, body: &str, key: &[u8]) -> Vec<(String, String)> {
    let tag = crate::support::hmac_raw_key(
        key,
        &[
            id.as_bytes(),
            b".",
            ts.to_string().as_bytes(),
            b".",
            body.as_bytes(),
        ],
    );
    let sig = base64::engine::general_purpose::STANDARD.encode(tag);
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), format!("v1a,xyz v1,{sig}")),
    ]
}

#[tokio::test]
async fn standard_webhooks_accepts_any_configured_key_and_refuses_the_rest() {
    let (gw, upstream) = setup().await;
    let body =
        r#"{"type":"invoice.paid","timestamp":"2022-11-03T20:26:10Z","data":{"amount":1200}}"#;
    let good = sw_headers("msg_1", now(), body, SW_KEY);
    let answer = gw.post("/sw", &crate::support::pairs(&good), body).await;
    assert_eq!(answer.status, 200);
    let env = upstream.received()[0].json();
    assert_eq!(
        (env["id"].as_str(), env["type"].as_str()),
        (Some("msg_1"), Some("invoice.paid"))
    );
    assert_eq!(env["data"], json!({"amount": 1200}));

    let cases = [
        (
            sw_headers("msg_1", now(), body, b"wrong key"),
            401,
            "invalid_signature",
        ),
        (
            sw_headers("msg_1", now() - 600, body, SW_KEY),
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            good.iter()
                .filter(|(k, _)| k != "webhook-signature")
                .cloned()
                .collect(),
            401,
            "missing_signature",
        ),
        (
            good.iter()
                .filter(|(k, _)| k != "webhook-id")
                .cloned()
                .collect(),
            401,
            "invalid_signature",
        ),
        (
            good.iter()
                .filter(|(k, _)| k != "webhook-timestamp")
                .cloned()
                .collect(),
            401,
            "invalid_timestamp",
        ),
    ];
    for (headers, status, code) in cases {
        let answer = gw.post("/sw", &crate::support::pairs(&headers), body).await;
        assert_eq!(
            (answer.status, answer.error().as_str()),
            (status, code),
            "{headers:?}"
        );
    }
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn generic_hmac_signs_its_template_and_takes_the_id_from_the_signed_header() {
    let (gw, upstream) = setup().await;
    let body = r#"{"id":"ignored","type":"candidate.hired"}"#;
    let sign = |id: &str, ts: i64| {
        let sig = hmac_hex(
            "g",
            &[
                b"v0:",
                id.as_bytes(),
                b":",
                ts.to_string().as_bytes(),
                b":",
                body.as_bytes(),
            ],
        );
        vec![
            ("x-event".to_string(), id.to_string()),
            ("x-ts".into(), ts.to_string()),
            ("x-sig".into(), format!("v0={sig}")),
        ]
    };
    let answer = gw
        .post(
            "/generic",
            &crate::support::pairs(&sign("ev 1%", now())),
            body,
        )
        .await;
    assert_eq!(answer.status, 200);
    let got = &upstream.received()[0];
    assert_eq!(got.json()["id"], "ev 1%", "the JSON keeps the id as it is");
    assert_eq!(
        got.header("x-hookwarden-event-id"),
        Some("ev%201%25"),
        "headers escape it"
    );

    let mut fresh_id = sign("ev-1", now());
    fresh_id[0].1 = "ev-2".into();
    let stale = sign("ev-1", now() - 3600);
    let no_id: Vec<_> = sign("ev-1", now())
        .into_iter()
        .filter(|(k, _)| k != "x-event")
        .collect();
    for (headers, code) in [
        (fresh_id, "invalid_signature"),
        (stale, "timestamp_out_of_tolerance"),
        (no_id, "invalid_signature"),
    ] {
        let answer = gw
            .post("/generic", &crate::support::pairs(&headers), body)
            .await;
        assert_eq!((answer.status, answer.error().as_str()), (401, code));
    }
    assert_eq!(upstream.received().len(), 1);
}

/// `headers` and `body` as HTTP/1.1 bytes to `path`, header values as raw bytes.
fn raw_request(path: &str, headers: &[(&str, &[u8])], body: &str) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

#[tokio::test]
async fn signed_ids_that_are_not_utf8_keep_every_byte() {
    let (gw, upstream) = setup().await;
    let body = r#"{"type":"invoice.paid","data":{}}"#;
    let ts = now().to_string();
    let sw = |id: &[u8]| {
        let tag =
            crate::support::hmac_raw_key(SW_KEY, &[id, b".", ts.as_bytes(), b".", body.as_bytes()]);
        let sig = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag)
        );
        raw_request(
            "/sw",
            &[
                ("webhook-id", id),
                ("webhook-timestamp", ts.as_bytes()),
                ("webhook-signature", sig.as_bytes()),
            ],
            body,
        )
    };
    let generic = |id: &[u8]| {
        let sig = hmac_hex(
            "g",
            &[b"v0:", id, b":", ts.as_bytes(), b":", body.as_bytes()],
        );
        let sig = format!("v0={sig}");
        raw_request(
            "/generic",
            &[
                ("x-event", id),
                ("x-ts", ts.as_bytes()),
                ("x-sig", sig.as_bytes()),
            ],
            body,
        )
    };
    // Two ids a lossy conversion made one, and the text their escaped form spells.
    let ids: [&[u8]; 3] = [b"evt-\xff", b"evt-\xfe", b"evt-%FF"];
    for request in [&sw as &dyn Fn(&[u8]) -> Vec<u8>, &generic] {
        for id in ids {
            let answer = crate::support::raw(gw.addr, &request(id)).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(
                !answer.contains("duplicate"),
                "{:?} was taken for another id: {answer}",
                String::from_utf8_lossy(id)
            );
        }
        let again = crate::support::raw(gw.addr, &request(ids[0])).await;
        assert!(
            again.contains(r#""status":"duplicate","id":"evt-%FF""#),
            "{again}"
        );
    }
    let received = upstream.received();
    assert_eq!(received.len(), 6, "every distinct id reached the app");
    let shown: Vec<_> = received
        .iter()
        .map(|r| r.json()["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        shown[..3],
        [
            Some("evt-%FF".into()),
            Some("evt-%FE".into()),
            Some("evt-%FF".into())
        ]
    );
    let headers: Vec<_> = received
        .iter()
        .map(|r| r.header("x-hookwarden-event-id").map(str::to_string))
        .collect();
    assert_eq!(
        headers[..3],
        [
            Some("evt-%FF".into()),
            Some("evt-%FE".into()),
            Some("evt-%25FF".into())
        ]
    );
}
