//! Every signed vector of `tests/fixtures/vectors.json` (a copy of the shared vectors,
//! built with the providers' reference algorithms) and of `tests/fixtures/presets.json`
//! (the presets' vectors, signed and checked with the providers' own SDKs) through the
//! real gateway over HTTP, with the clock fixed at the vector's `now`.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use hookwarden::Clock;
use hookwarden::Provider;
use serde_json::Value;

use crate::support::{Gateway, Upstream};

fn vectors(text: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(text).expect("vectors");
    doc["vectors"].as_array().expect("vectors").clone()
}

fn config(route: &Value, upstream: &str) -> String {
    let mut doc = toml::Table::new();
    let mut up = toml::Table::new();
    up.insert("url".into(), upstream.into());
    doc.insert("upstream".into(), up.into());
    let route = toml::Value::try_from(route).expect("route as TOML");
    doc.insert("routes".into(), toml::Value::Array(vec![route]));
    toml::to_string(&doc).expect("TOML")
}

fn body(request: &Value) -> Bytes {
    match (request["body"].as_str(), request["body_b64"].as_str()) {
        (Some(text), _) => Bytes::copy_from_slice(text.as_bytes()),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("b64")
            .into(),
        (None, None) => Bytes::new(),
    }
}

#[tokio::test]
async fn every_vector_passes() {
    let ran = run_all(include_str!("../fixtures/vectors.json")).await;
    assert_eq!(ran, 46, "every vector of the fixture ran");
}

#[tokio::test]
async fn every_preset_vector_passes() {
    let ran = run_all(include_str!("../fixtures/presets.json")).await;
    assert_eq!(ran, 91, "every vector of the fixture ran");
}

#[tokio::test]
async fn every_vector_of_the_table_of_presets_passes() {
    let ran = run_all(include_str!("../fixtures/catalog.json")).await;
    assert_eq!(ran, 140, "every vector of the fixture ran");
}

async fn run_all(fixture: &str) -> usize {
    let mut failures = Vec::new();
    let mut ran = 0;
    for v in vectors(fixture) {
        let name = v["name"].as_str().expect("name");
        let provider = v["route"]["provider"].as_str().expect("provider");
        assert!(
            Provider::from_name(provider).is_some(),
            "{name}: unknown provider {provider}"
        );
        ran += 1;
        if let Err(why) = run(&v).await {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    ran
}

async fn run(v: &Value) -> Result<(), String> {
    let upstream = Upstream::start().await;
    let now = UNIX_EPOCH + Duration::from_secs(v["now"].as_u64().expect("now"));
    let gateway =
        Gateway::start_at(&config(&v["route"], &upstream.url()), Clock::manual(now)).await;
    let request = &v["request"];
    let headers: Vec<(&str, &str)> = request["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| (h[0].as_str().expect("name"), h[1].as_str().expect("value")))
        .collect();
    let path = request["path"].as_str().expect("path");
    let answer = match request["method"].as_str().unwrap_or("POST") {
        "POST" => gateway.post(path, &headers, body(request)).await,
        method => crate::support::send(gateway.addr, method, path, &headers, body(request)).await,
    };
    let expect = &v["expect"];
    let status = expect["status"].as_u64().expect("status") as u16;
    if answer.status != status {
        return Err(format!(
            "status {} (body {:?}), expected {status}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    let received = upstream.received();
    if let Some(code) = expect["error"].as_str() {
        if answer.error() != code {
            return Err(format!("error {:?}, expected {code:?}", answer.error()));
        }
        if !received.is_empty() {
            return Err(format!(
                "{} request(s) reached the upstream",
                received.len()
            ));
        }
        return Ok(());
    }
    if expect["forwarded"] == false {
        // A handshake: answered by the gateway with exactly this body, nothing forwarded.
        let want = &expect["response"];
        let text = answer
            .headers
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/plain"));
        let got: Value = if answer.body.is_empty() {
            Value::Null
        } else if text {
            // An echoed challenge (Twitch, Meta, Dropbox), never sniffed as HTML.
            if answer
                .headers
                .get("x-content-type-options")
                .map(|v| v.as_bytes())
                != Some(b"nosniff")
            {
                return Err("a text answer without X-Content-Type-Options: nosniff".into());
            }
            Value::String(String::from_utf8_lossy(&answer.body).into_owned())
        } else {
            serde_json::from_slice(&answer.body).map_err(|e| format!("answer not JSON: {e}"))?
        };
        if &got != want {
            return Err(format!("answered {got}, expected {want}"));
        }
        if !received.is_empty() {
            return Err("a handshake reached the upstream".into());
        }
        return Ok(());
    }
    let events = expect["events"].as_array().expect("events");
    if received.len() != events.len() {
        return Err(format!(
            "upstream received {} requests, expected {}",
            received.len(),
            events.len()
        ));
    }
    for (got, want) in received.iter().zip(events) {
        let env = got.json();
        for key in ["id", "type", "occurred_at"] {
            if env[key] != want[key] {
                return Err(format!("{key} = {}, expected {}", env[key], want[key]));
            }
        }
        match want.get("data_json").and_then(Value::as_str) {
            Some(exact) => {
                let text = serde_json::to_string(&env["data"]).expect("data");
                if text != exact {
                    return Err(format!("data = {text}, expected exactly {exact}"));
                }
            }
            None if env["data"] != want["data"] => {
                return Err(format!("data = {}, expected {}", env["data"], want["data"]));
            }
            None => {}
        }
        if env["route"] != v["route"]["name"] || env["provider"] != v["route"]["provider"] {
            return Err(format!(
                "route/provider = {}/{}",
                env["route"], env["provider"]
            ));
        }
        if got.header("idempotency-key")
            != env["id"]
                .as_str()
                .map(|id| hookwarden::header_safe(id.as_bytes()))
                .as_deref()
        {
            return Err("Idempotency-Key differs from the id".into());
        }
    }
    Ok(())
}
