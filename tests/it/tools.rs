//! `hookwarden sign` and `send` against the real gateway, and re-signed forwarding
//! checked with an independent Standard Webhooks verification.

use std::process::Command;

use base64::Engine;
use bytes::Bytes;

use crate::support::{header_lines, hmac_raw_key, send, Gateway, Reply, Upstream};

const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"id":"evt_9","type":"resume.created","data":{"n":1}}"#;

fn routes(upstream: &str) -> String {
    format!(
        r#"
[upstream]
url = "{upstream}"

[[routes]]
name = "smartcv"
path = "/smartcv"
provider = "smartcv"
secrets = ["sc-secret"]

[[routes]]
name = "semantikmatch"
path = "/semantikmatch"
provider = "semantikmatch"
secrets = ["sm-secret"]

[[routes]]
name = "hrflow"
path = "/hrflow"
provider = "hrflow"
secrets = ["hf-secret"]

[[routes]]
name = "svix"
path = "/svix"
provider = "standard-webhooks"
secrets = ["{WHSEC}"]

[[routes]]
name = "jobaffinity"
path = "/jobaffinity"
provider = "jobaffinity"
secrets = ["ja-hmac"]
[routes.auth]
basic = {{ username = "ja", password = "pw" }}
[routes.hmac]
header = "X-Signature"
encoding = "base64"

[[routes]]
name = "generic"
path = "/generic"
provider = "hmac"
secrets = ["g-secret"]
[routes.hmac]
header = "X-Sig"
prefix = "v1="
algorithm = "sha512"
message = "{{id}}|{{timestamp}}|{{body}}"
timestamp_header = "X-Ts"
id_header = "X-Id"

[[routes]]
name = "bearer"
path = "/bearer"
provider = "smartcv"
secrets = ["b-secret"]
[routes.auth]
bearer = "tok"
"#
    )
}

fn body_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("body.json");
    std::fs::write(&path, BODY).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_headers_from_sign_are_accepted_for_every_provider() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&routes(&upstream.url())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = body_file(&dir);
    let cases = [
        ("smartcv", "sc-secret", "/smartcv"),
        ("semantikmatch", "sm-secret", "/semantikmatch"),
        ("hrflow", "hf-secret", "/hrflow"),
        ("standard-webhooks", WHSEC, "/svix"),
    ];
    for (provider, secret, path) in cases {
        let out = Command::new(BIN)
            .args([
                "sign",
                "--provider",
                provider,
                "--secret",
                secret,
                "--id",
                "msg_1",
            ])
            .arg(&body)
            .output()
            .expect("sign");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let headers = header_lines(&text);
        assert!(headers.len() >= 2, "{text}");
        let answer = send(
            gw.addr,
            "POST",
            path,
            &headers,
            Bytes::from_static(BODY.as_bytes()),
        )
        .await;
        assert_eq!(answer.status, 200, "{provider}: {:?}", answer.body);
    }
    assert_eq!(upstream.received().len(), 4);
}

#[test]
fn sign_takes_a_fixed_timestamp_and_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = body_file(&dir);
    let out = Command::new(BIN)
        .args([
            "sign",
            "--provider",
            "standard-webhooks",
            "--secret",
            WHSEC,
            "--timestamp",
            "1614265330",
            "--id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
        ])
        .arg(&body)
        .output()
        .expect("sign");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let key = base64::engine::general_purpose::STANDARD
        .decode(&WHSEC[6..])
        .expect("key");
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac_raw_key(
        &key,
        &[b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.", BODY.as_bytes()],
    ));
    assert!(text.contains("webhook-timestamp: 1614265330\n"), "{text}");
    assert!(
        text.contains(&format!("webhook-signature: v1,{expected}\n")),
        "{text}"
    );
    let bad = Command::new(BIN)
        .args(["sign", "--provider", "hmac", "--secret", "k"])
        .arg(&body)
        .output()
        .expect("sign");
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_like_each_route_and_reports_the_answer() {
    let upstream = Upstream::start().await;
    let text = routes(&upstream.url());
    let gw = Gateway::start(&text).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hookwarden.toml");
    std::fs::write(&config, &text).expect("write");
    let body = body_file(&dir);
    let to = format!("http://{}", gw.addr);
    for (i, route) in [
        "smartcv",
        "semantikmatch",
        "hrflow",
        "svix",
        "jobaffinity",
        "generic",
        "bearer",
    ]
    .into_iter()
    .enumerate()
    {
        // A fresh event each time, or the gateway would answer "duplicate".
        let fresh = dir.path().join(format!("b{i}.json"));
        std::fs::write(&fresh, BODY.replace("evt_9", &format!("evt_{i}"))).expect("write");
        let out = Command::new(BIN)
            .args(["send", "--config"])
            .arg(&config)
            .args(["--route", route, "--to", &to])
            .arg(&fresh)
            .output()
            .expect("send");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{route}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("200 OK"), "{stdout}");
    }
    assert_eq!(upstream.received().len(), 7);
    let generic = &upstream.received()[5];
    assert_eq!(generic.header("x-hookwarden-route"), Some("generic"));
    assert!(
        generic
            .header("x-hookwarden-event-id")
            .is_some_and(|id| id.starts_with("msg_")),
        "the signed id header is the event id"
    );

    upstream.script([Reply::status(422)]);
    let out = Command::new(BIN)
        .args(["send", "--config"])
        .arg(&config)
        .args(["--route", "smartcv", "--to", &to])
        .arg(&body)
        .output()
        .expect("send");
    assert_eq!(out.status.code(), Some(1), "a non-2xx answer exits 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("422"));
    let out = Command::new(BIN)
        .args(["send", "--config"])
        .arg(&config)
        .args(["--route", "nope"])
        .arg(&body)
        .output()
        .expect("send");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "no route named \"nope\" in the configuration; its routes: smartcv, semantikmatch,"
        ),
        "the routes that exist are listed: {stderr}"
    );

    // Nothing listens on the port of a stopped gateway.
    let stopped = format!("http://127.0.0.1:{}", crate::support::free_port());
    let out = Command::new(BIN)
        .args(["send", "--config"])
        .arg(&config)
        .args(["--route", "smartcv", "--to", &stopped])
        .arg(&body)
        .output()
        .expect("send");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "cannot reach the gateway at {stopped}/smartcv: tcp connect to"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("upstream"),
        "the gateway is not an upstream: {stderr}"
    );
}

#[tokio::test]
async fn re_signed_forwards_verify_with_standard_webhooks() {
    let upstream = Upstream::start().await;
    let text = routes(&upstream.url()).replace(
        "[upstream]\n",
        &format!("[upstream]\nsigning_secret = \"{WHSEC}\"\n"),
    );
    let gw = Gateway::start(&text).await;
    let body = r#"{"id":"evt 1%","type":"t","payload":{}}"#;
    let sig = hex::encode(hmac_raw_key(b"sm-secret", &[body.as_bytes()]));
    let answer = gw
        .post(
            "/semantikmatch",
            &[("x-semantikmatch-signature", sig.as_str())],
            body,
        )
        .await;
    assert_eq!(answer.status, 200);
    let got = &upstream.received()[0];
    let (id, ts, signature) = (
        got.header("webhook-id").expect("webhook-id"),
        got.header("webhook-timestamp").expect("webhook-timestamp"),
        got.header("webhook-signature").expect("webhook-signature"),
    );
    assert_eq!(id, "evt%201%25", "the id as it stands in its header");
    assert_eq!(Some(id), got.header("idempotency-key"));
    let sent: i64 = ts.parse().expect("timestamp");
    assert!((sent - crate::support::now()).abs() <= 5);
    // Independent verification, as an app would do it.
    let key = base64::engine::general_purpose::STANDARD
        .decode(&WHSEC[6..])
        .expect("key");
    let expected = hmac_raw_key(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", &got.body]);
    let given = signature.strip_prefix("v1,").expect("v1");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(given)
            .expect("b64"),
        expected
    );
}
