//! The presets of docs/providers.md end to end: `hookwarden sign` and `send` for every preset
//! against the real gateway, handshakes counted and never forwarded, and Mailgun's
//! one-time tokens (the vectors themselves run in `vectors.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use p256::pkcs8::{EncodePublicKey as _, LineEnding};

use crate::support::{header_lines, Gateway, Reply, Upstream};

const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");
const URL: &str = "https://hooks.example.com/in";

/// Discord's and SendGrid's private keys as PEM files, and the config's public keys.
struct Keys {
    ed25519_pem: PathBuf,
    p256_pem: PathBuf,
    ed25519_hex: String,
    ed25519_b64: String,
    p256_der_b64: String,
}

fn keys(dir: &Path) -> Keys {
    let b64 = base64::engine::general_purpose::STANDARD;
    let ed = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let ec = p256::ecdsa::SigningKey::from_bytes(&[43u8; 32].into()).expect("scalar");
    let ed25519_pem = dir.join("discord.pem");
    let p256_pem = dir.join("sendgrid.pem");
    std::fs::write(
        &ed25519_pem,
        ed.to_pkcs8_pem(LineEnding::LF).expect("pem").as_bytes(),
    )
    .expect("write");
    std::fs::write(
        &p256_pem,
        ec.to_pkcs8_pem(LineEnding::LF).expect("pem").as_bytes(),
    )
    .expect("write");
    Keys {
        ed25519_pem,
        p256_pem,
        ed25519_hex: hex::encode(ed.verifying_key().as_bytes()),
        ed25519_b64: b64.encode(ed.verifying_key().as_bytes()),
        p256_der_b64: b64.encode(
            ec.verifying_key()
                .to_public_key_der()
                .expect("der")
                .as_bytes(),
        ),
    }
}

/// The secret a preset's route and its signer share: Standard Webhooks' `whsec_` form for
/// the presets that sign that way, base64 for Airtable's, plain otherwise.
fn secret_for(preset: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    match preset {
        "clerk" | "resend" | "openai" | "replicate" => {
            format!("whsec_{}", b64.encode(format!("{preset}-secret")))
        }
        "airtable" => b64.encode("airtable-secret"),
        _ => format!("{preset}-secret"),
    }
}

/// The presets that sign their public URL.
fn signs_url(preset: &str) -> bool {
    matches!(preset, "twilio" | "square" | "hubspot" | "mandrill")
}

/// One route per preset, named after it, at `/<name>`.
fn config(upstream: &str, keys: &Keys) -> String {
    let mut text = format!("[upstream]\nurl = \"{upstream}\"\n");
    for preset in PRESETS {
        let credential = match *preset {
            "discord" => format!("public_key = [\"{}\"]", keys.ed25519_hex),
            "sendgrid" => format!("public_key = [\"{}\"]", keys.p256_der_b64),
            "telnyx" => format!("public_key = [\"{}\"]", keys.ed25519_b64),
            "meta" => format!(
                "secrets = [\"{}\"]\nverify_token = \"vt\"",
                secret_for(preset)
            ),
            _ => format!("secrets = [\"{}\"]", secret_for(preset)),
        };
        let url = if signs_url(preset) {
            format!("public_url = \"{URL}\"\n")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "\n[[routes]]\nname = \"{preset}\"\npath = \"/{preset}\"\nprovider = \"{preset}\"\n{credential}\n{url}"
        ));
    }
    text.push_str(&format!(
        "\n[[routes]]\nname = \"sw-ed25519\"\npath = \"/sw-ed25519\"\nprovider = \"standard-webhooks\"\nsecrets = [\"whpk_{}\"]\n",
        keys.ed25519_b64
    ));
    text
}

/// Every preset: those with their own file, then the table's (`hookwarden providers`).
const PRESETS: &[&str] = &[
    "stripe",
    "github",
    "slack",
    "shopify",
    "paddle",
    "zoom",
    "linear",
    "typeform",
    "intercom",
    "mailgun",
    "twilio",
    "square",
    "discord",
    "sendgrid",
    "meta",
    "hubspot",
    "docusign",
    "calendly",
    "bitbucket",
    "jira",
    "vercel",
    "sentry",
    "pagerduty",
    "dropbox",
    "notion",
    "zendesk",
    "xero",
    "twitch",
    "webflow",
    "woocommerce",
    "coinbase",
    "airtable",
    "box",
    "clerk",
    "resend",
    "openai",
    "replicate",
    "gitlab",
    "okta",
    "postmark",
    "telnyx",
    "asana",
    "mandrill",
    "x",
];

/// A body each preset accepts: Linear wants its `webhookTimestamp` (ms) in the window,
/// SendGrid an array, Twilio a form, Mandrill its events in a form field.
fn body_for(preset: &str, n: usize) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    match preset {
        "sendgrid" => format!(r#"[{{"sg_event_id":"sg{n}","event":"delivered","timestamp":1}}]"#),
        "twilio" => format!("MessageSid=SM{n}&MessageStatus=delivered&Body="),
        "mandrill" => format!(
            "mandrill_events=%5B%7B%22_id%22%3A%22m{n}%22%2C%22event%22%3A%22send%22%2C%22ts%22%3A1%7D%5D"
        ),
        _ => format!(
            r#"{{"id":"evt{n}","event_id":"evt{n}","type":"t","webhookTimestamp":{now_ms},"n":{n}}}"#
        ),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_produces_what_every_preset_route_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = keys(dir.path());
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), &keys)).await;
    let mut expected = 0;
    for (n, preset) in PRESETS.iter().chain(&["standard-webhooks"]).enumerate() {
        if *preset == "mailgun" {
            // Signs inside the body: `sign` refuses it, `send` covers it below.
            let out = Command::new(BIN)
                .args(["sign", "--provider", "mailgun", "--secret", "k"])
                .arg(write(dir.path(), "m.json", "{}"))
                .output()
                .expect("sign");
            assert_eq!(out.status.code(), Some(2));
            continue;
        }
        let body = body_for(preset, n);
        let file = write(dir.path(), &format!("{preset}.body"), &body);
        let mut cmd = Command::new(BIN);
        cmd.args(["sign", "--provider", preset]);
        match *preset {
            "discord" | "standard-webhooks" | "telnyx" => {
                cmd.arg("--private-key").arg(&keys.ed25519_pem)
            }
            "sendgrid" => cmd.arg("--private-key").arg(&keys.p256_pem),
            _ => cmd.args(["--secret", &secret_for(preset)]),
        };
        if signs_url(preset) {
            cmd.args(["--url", URL]);
        }
        let out = cmd.arg(&file).output().expect("sign");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{preset}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let headers = header_lines(&text);
        let path = match *preset {
            "standard-webhooks" => "/sw-ed25519".to_string(),
            other => format!("/{other}"),
        };
        let answer = gw.post(&path, &headers, body.clone()).await;
        assert_eq!(answer.status, 200, "{preset}: {:?}", answer.body);
        expected += 1;
        assert_eq!(upstream.received().len(), expected, "{preset} forwarded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_for_every_preset_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = keys(dir.path());
    let upstream = Upstream::start().await;
    let text = config(&upstream.url(), &keys);
    let gw = Gateway::start(&text).await;
    let config = write(dir.path(), "hookwarden.toml", &text);
    let to = format!("http://{}", gw.addr);
    for (n, preset) in PRESETS.iter().enumerate() {
        let file = write(dir.path(), &format!("{preset}.body"), &body_for(preset, n));
        let mut cmd = Command::new(BIN);
        cmd.args(["send", "--config"])
            .arg(&config)
            .args(["--route", preset, "--to", &to]);
        match *preset {
            "discord" | "telnyx" => cmd.arg("--private-key").arg(&keys.ed25519_pem),
            "sendgrid" => cmd.arg("--private-key").arg(&keys.p256_pem),
            _ => &mut cmd,
        };
        let out = cmd.arg(&file).output().expect("send");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{preset}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A public-key route without the private key is a usage error.
    let file = write(dir.path(), "ping.json", r#"{"type":1}"#);
    let out = Command::new(BIN)
        .args(["send", "--config"])
        .arg(&config)
        .args(["--route", "discord", "--to", &to])
        .arg(&file)
        .output()
        .expect("send");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--private-key"));
    let received = upstream.received();
    assert_eq!(received.len(), PRESETS.len());
    let providers: Vec<String> = received
        .iter()
        .map(|r| {
            r.json()["provider"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(providers, PRESETS);
    // A JSON Twilio body goes out with its hash in the signed query.
    let file = write(dir.path(), "t.json", r#"{"EventType":"x"}"#);
    let out = Command::new(BIN)
        .args(["send", "--config"])
        .arg(&config)
        .args(["--route", "twilio", "--to", &to])
        .arg(&file)
        .output()
        .expect("send");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("?bodySHA256="), "{stdout}");
    assert_eq!(upstream.received().last().expect("one").json()["type"], "x");
}

/// A gateway with every preset's route, and the folder of its keys.
async fn gateway() -> (tempfile::TempDir, Upstream, Gateway) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = keys(dir.path());
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), &keys)).await;
    (dir, upstream, gw)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Slack's `url_verification`, signed as Slack signs it.
fn slack_challenge(secret: &str, now: i64) -> (Vec<(String, String)>, String) {
    let body = r#"{"token":"t","challenge":"c-123","type":"url_verification"}"#.to_string();
    let ts = now.to_string();
    let tag = crate::support::hmac_raw_key(
        secret.as_bytes(),
        &[b"v0:", ts.as_bytes(), b":", body.as_bytes()],
    );
    let headers = vec![
        ("x-slack-request-timestamp".to_string(), ts),
        (
            "x-slack-signature".to_string(),
            format!("v0={}", hex::encode(tag)),
        ),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    (headers, body)
}

#[tokio::test]
async fn handshakes_are_answered_counted_and_never_forwarded() {
    let (_dir, upstream, gw) = gateway().await;
    let now = unix_now();
    let (headers, body) = slack_challenge("slack-secret", now);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for _ in 0..2 {
        let answer = gw.post("/slack", &headers, body.clone()).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, r#"{"challenge":"c-123"}"#.as_bytes());
    }
    let (wrong, _) = slack_challenge("another", now);
    let wrong: Vec<(&str, &str)> = wrong
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(gw.post("/slack", &wrong, body.clone()).await.status, 401);
    assert!(upstream.received().is_empty());
    let metrics = gw.metrics().await;
    assert_eq!(
        metrics[r#"hookwarden_requests_total{outcome="handshake",route="slack"}"#],
        2.0
    );
}

/// The GET handshakes (Meta, Dropbox, Okta, X) on the real gateway: answered only on a
/// route of that provider and only as that provider asks, counted, never forwarded;
/// any other GET is still 405.
#[tokio::test]
async fn get_handshakes_are_answered_on_their_routes_only_and_counted() {
    let upstream = Upstream::start().await;
    let config = format!(
        r#"[upstream]
url = "{}"
[[routes]]
name = "meta"
path = "/meta"
provider = "meta"
secrets = ["meta-app-secret"]
verify_token = "vt-1"
[[routes]]
name = "dropbox"
path = "/dropbox"
provider = "dropbox"
secrets = ["dropbox-app-secret"]
[[routes]]
name = "stripe"
path = "/stripe"
provider = "stripe"
secrets = ["whsec_x"]
"#,
        upstream.url()
    );
    let gw = Gateway::start(&config).await;
    let get = |path: &'static str| crate::support::send(gw.addr, "GET", path, &[], "".into());
    let answer = get("/meta?hub.mode=subscribe&hub.verify_token=vt-1&hub.challenge=42").await;
    assert_eq!((answer.status, &answer.body[..]), (200, &b"42"[..]));
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    let wrong = get("/meta?hub.mode=subscribe&hub.verify_token=vt-2&hub.challenge=42").await;
    assert_eq!(
        (wrong.status, wrong.error().as_str()),
        (401, "unauthorized")
    );
    let answer = get("/dropbox?challenge=abc").await;
    assert_eq!((answer.status, &answer.body[..]), (200, &b"abc"[..]));
    // A challenge longer than any provider sends is not echoed.
    let long = format!("/dropbox?challenge={}", "a".repeat(600));
    let answer = crate::support::send(gw.addr, "GET", &long, &[], "".into()).await;
    assert_eq!(answer.status, 405);
    // Another provider's route, or a GET that is no handshake, stays 405.
    assert_eq!(get("/stripe?challenge=abc").await.status, 405);
    assert_eq!(get("/meta").await.status, 405);
    assert!(upstream.received().is_empty());
    let metrics = gw.metrics().await;
    for route in ["meta", "dropbox"] {
        assert_eq!(
            metrics
                [&format!(r#"hookwarden_requests_total{{outcome="handshake",route="{route}"}}"#)],
            1.0,
            "{route}"
        );
    }
}

/// Mailgun's body with its signature object, for `event-data` `event`.
fn mailgun(secret: &str, token: &str, now: i64, event: &str) -> String {
    let ts = now.to_string();
    let tag = crate::support::hmac_raw_key(secret.as_bytes(), &[ts.as_bytes(), token.as_bytes()]);
    format!(
        r#"{{"signature":{{"timestamp":"{ts}","token":"{token}","signature":"{}"}},"event-data":{event}}}"#,
        hex::encode(tag)
    )
}

#[tokio::test]
async fn a_mailgun_token_vouches_for_one_request_only() {
    let (_dir, upstream, gw) = gateway().await;
    let now = unix_now();
    let json = [("content-type", "application/json")];
    let event = r#"{"id":"e1","event":"delivered"}"#;
    // The app fails the first time; the same request again is refused (Mailgun signs its
    // retries afresh), and a fresh signature is served.
    upstream.script([Reply::status(500)]);
    let first = mailgun("mailgun-secret", "tok-1", now, event);
    assert_eq!(gw.post("/mailgun", &json, first.clone()).await.status, 502);
    let again = gw.post("/mailgun", &json, first).await;
    assert_eq!(
        (again.status, again.error()),
        (401, "invalid_signature".into())
    );
    let retry = mailgun("mailgun-secret", "tok-2", now, event);
    assert_eq!(gw.post("/mailgun", &json, retry).await.status, 200);
    // A captured signature with another event is refused.
    let forged = mailgun(
        "mailgun-secret",
        "tok-2",
        now,
        r#"{"id":"e2","event":"failed"}"#,
    );
    let answer = gw.post("/mailgun", &json, forged).await;
    assert_eq!(
        (answer.status, answer.error()),
        (401, "invalid_signature".into())
    );
    let ids: Vec<String> = upstream
        .received()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids, ["e1", "e1"], "the failed attempt and the fresh retry");
}

/// An Asana event signed with `secret`.
async fn asana_event(gw: &Gateway, secret: &str, n: u32) -> crate::support::Answer {
    let body = format!(
        r#"{{"events":[{{"action":"changed","resource":{{"gid":"{n}","resource_type":"task"}}}}]}}"#
    );
    let sig = crate::support::hmac_hex(secret, &[body.as_bytes()]);
    gw.post("/asana", &[("X-Hook-Signature", sig.as_str())], body)
        .await
}

fn asana_config(upstream: &str, state: &str) -> String {
    format!(
        "[upstream]\nurl = \"{upstream}\"\n{state}\n[[routes]]\nname = \"asana\"\npath = \"/asana\"\nprovider = \"asana\"\n"
    )
}

/// Asana hands its secret over once, in a handshake: the first `X-Hook-Secret` becomes
/// the route's (echoed back, counted as a handshake, never forwarded), events signed with
/// it verify, also after a restart, and a handshake with another secret is refused.
#[tokio::test]
async fn asana_learns_its_secret_at_the_handshake_and_keeps_it_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let state = format!("[queue]\ndir = \"{}\"", dir.path().display());
    let config = asana_config(&upstream.url(), &state);
    let gw = Gateway::start(&config).await;
    let before = asana_event(&gw, "s-1", 1).await;
    assert_eq!(
        (before.status, before.error().as_str()),
        (401, "invalid_signature")
    );

    let hello = gw.post("/asana", &[("X-Hook-Secret", "s-1")], "").await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.headers["x-hook-secret"], "s-1");
    assert_eq!(asana_event(&gw, "s-1", 2).await.status, 200);
    let usurper = gw.post("/asana", &[("X-Hook-Secret", "s-2")], "").await;
    assert_eq!(
        (usurper.status, usurper.error().as_str()),
        (401, "unauthorized")
    );
    assert_eq!(asana_event(&gw, "s-2", 3).await.status, 401);
    assert_eq!(
        gw.post("/asana", &[("X-Hook-Secret", "s-1")], "")
            .await
            .status,
        200
    );
    let metrics = gw.metrics().await;
    assert_eq!(
        metrics[r#"hookwarden_requests_total{outcome="handshake",route="asana"}"#],
        2.0
    );
    drop(gw);

    let again = Gateway::start(&config).await;
    assert_eq!(asana_event(&again, "s-1", 4).await.status, 200);
    let received = upstream.received();
    assert_eq!(received.len(), 2, "two events forwarded, no handshake");
    assert!(received.iter().all(|r| r.json()["type"] == "task.changed"));
}

/// With the dedup ids in Redis, the secret one replica learnt verifies at the other.
#[tokio::test]
async fn an_asana_secret_learnt_by_one_replica_verifies_at_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = crate::store::RedisServer::start(dir.path());
    let upstream = Upstream::start().await;
    let state = format!(
        "[dedup]\nbackend = \"redis\"\nredis_url = \"{}\"",
        redis.url()
    );
    let config = asana_config(&upstream.url(), &state);
    let (a, b) = (Gateway::start(&config).await, Gateway::start(&config).await);
    assert_eq!(
        a.post("/asana", &[("X-Hook-Secret", "shared")], "")
            .await
            .status,
        200
    );
    assert_eq!(asana_event(&b, "shared", 1).await.status, 200);
    let usurper = b.post("/asana", &[("X-Hook-Secret", "other")], "").await;
    assert_eq!(usurper.status, 401);
    assert_eq!(upstream.received().len(), 1);
}

/// An Okta route's `header` names where Okta sends its secret: that header verifies, and
/// the default `Authorization` no longer does; `send` signs the same way.
#[tokio::test]
async fn an_okta_route_reads_its_secret_from_the_header_it_names() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[upstream]\nurl = \"{}\"\n[[routes]]\nname = \"okta\"\npath = \"/okta\"\nprovider = \"okta\"\nsecrets = [\"okta-shared\"]\nheader = \"X-Okta-Secret\"\n",
        upstream.url()
    );
    let gw = Gateway::start(&config).await;
    let body = r#"{"eventId":"e1","eventType":"com.okta.event_hook"}"#;
    let named = gw
        .post("/okta", &[("X-Okta-Secret", "okta-shared")], body)
        .await;
    assert_eq!(named.status, 200);
    let default = gw
        .post("/okta", &[("Authorization", "okta-shared")], body)
        .await;
    assert_eq!(
        (default.status, default.error().as_str()),
        (401, "missing_signature")
    );
    assert_eq!(upstream.received().len(), 1);
}
