//! The properties the fuzz targets in `fuzz/` check, one function per parser that meets
//! untrusted bytes. Each panics when its property fails, so `cargo fuzz` reports the
//! input, and the unit test below replays every input kept in `fuzz/regressions/`
//! through the same function on stable Rust, in CI.
//!
//! Compiled only for tests and for fuzzing builds (cargo-fuzz sets `--cfg fuzzing`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::config::load_str;
use crate::providers::{self, form, json, VerifyError};
use crate::route::Provider;
use crate::route::Route;

/// A target's property: panics when `data` breaks it.
pub type Property = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/` and `fuzz/regressions/` name them.
pub const TARGETS: [(&str, Property); 5] = [
    ("json", self::json),
    ("form", self::form),
    ("signatures", self::signatures),
    ("framing", self::framing),
    ("config", self::config),
];

/// The strict JSON scan refuses exactly what serde_json refuses and agrees with
/// serde_json's own walk on repeated keys and members, the tree it stands beside is
/// serde_json's own (where serde_json's `Value` can hold it), and every pointer looked
/// up in the text finds what the tree holds there.
pub fn json(data: &[u8]) {
    let checked = json::check(data);
    // The scan and serde_json's own walk: the same verdict, repeats and members.
    let walked = json::check_by_walk(data);
    assert_eq!(
        checked.as_ref().ok(),
        walked.as_ref().ok(),
        "the scan and the walk disagree"
    );
    assert_eq!(
        checked.is_ok(),
        walked.is_ok(),
        "the scan and the walk disagree"
    );
    let tree = json::parse_tree(data);
    assert_eq!(
        checked.is_ok(),
        tree.is_ok(),
        "the walk and the tree disagree"
    );
    let reference = serde_json::from_slice::<Value>(data);
    // serde_json's `Value` reads an object holding its private number key as a number;
    // ours keeps it an object (docs/request-handling.md: any key is a key). Elsewhere they agree exactly.
    let private_key = tree.as_ref().is_ok_and(has_private_key);
    if !private_key {
        assert_eq!(tree.is_ok(), reference.is_ok(), "serde_json disagrees");
        if let (Ok(ours), Ok(theirs)) = (&tree, &reference) {
            assert_eq!(ours, theirs, "a different tree");
        }
    }
    let (Ok(checked), Ok(tree)) = (checked, tree) else {
        return;
    };
    assert_eq!(checked.object, tree.is_object());
    if checked.repeats_a_key {
        return;
    }
    for pointer in pointers(&tree, 64) {
        let found = json::lookup(checked.doc.text, &pointer)
            .map(|text| json::parse_tree(text.as_bytes()).expect("a looked-up value parses"));
        assert_eq!(
            found.as_ref(),
            tree.pointer(&pointer),
            "lookup of {pointer:?}"
        );
        let [all] = checked.doc.lookup_all([Some(pointer.as_str())]);
        assert_eq!(
            all,
            json::lookup(checked.doc.text, &pointer),
            "lookup_all of {pointer:?}"
        );
    }
}

fn has_private_key(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.starts_with("$serde_json::private") || has_private_key(v)),
        Value::Array(items) => items.iter().any(has_private_key),
        _ => false,
    }
}

/// Up to `max` pointers into `tree`, each member and element, and one that misses.
fn pointers(tree: &Value, max: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut i = 0;
    while i < out.len() && out.len() < max {
        let at = out[i].clone();
        match tree.pointer(&at) {
            Some(Value::Object(map)) => out.extend(
                map.keys()
                    .map(|k| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"))),
            ),
            Some(Value::Array(items)) => {
                out.extend((0..=items.len()).map(|j| format!("{at}/{j}")));
            }
            _ => {}
        }
        out.push(format!("{at}/missing"));
        i += 1;
    }
    out.truncate(max);
    out
}

/// HrFlow's form canonicaliser writes byte for byte what CPython's `parse_qs` and
/// `json.dumps` write for the same body (docs/providers.md), CPython itself being the reference.
pub fn form(data: &[u8]) {
    let ours = form::canonical_json(&form::fields(data));
    let theirs = python().canonical(data);
    assert_eq!(ours, theirs, "CPython canonicalises differently");
}

/// One CPython process for every input: it reads base64 bodies a line each and answers
/// with the canonical JSON a line each.
struct Python {
    _child: Child,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

const PYTHON: &str = "import sys, json, base64, urllib.parse\n\
    for line in sys.stdin:\n\
    \x20   body = base64.b64decode(line).decode('utf-8', 'replace')\n\
    \x20   d = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}\n\
    \x20   print(json.dumps(d, separators=(',', ':')), flush=True)\n";

impl Python {
    fn canonical(&self, body: &[u8]) -> String {
        let mut io = crate::sync::lock(&self.io);
        let line = base64::engine::general_purpose::STANDARD.encode(body);
        writeln!(io.0, "{line}").expect("write to python3");
        io.0.flush().expect("flush to python3");
        let mut answer = String::new();
        io.1.read_line(&mut answer).expect("read from python3");
        answer.trim_end_matches('\n').to_string()
    }
}

fn python() -> &'static Python {
    static PYTHON_PROCESS: OnceLock<Python> = OnceLock::new();
    PYTHON_PROCESS.get_or_init(|| {
        let mut child = Command::new("python3")
            .args(["-c", PYTHON])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is the form target's reference");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Python {
            _child: child,
            io: Mutex::new((stdin, stdout)),
        }
    })
}

/// The header names the schemes read, which the signature target's bytes pick from.
const HEADER_NAMES: [&str; 66] = [
    "x-smartcv-signature",
    "x-smartcv-timestamp",
    "x-semantikmatch-signature",
    "http-hrflow-signature",
    "content-type",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-sig",
    "x-ts",
    "x-event",
    "authorization",
    "x-api-key",
    "svix-signature",
    "svix-id",
    "svix-timestamp",
    "stripe-signature",
    "x-hub-signature-256",
    "x-github-event",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-shopify-hmac-sha256",
    "shopify-hmac-sha256",
    "paddle-signature",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "linear-signature",
    "typeform-signature",
    "x-hub-signature",
    "x-twilio-signature",
    "x-twilio-webhooks-signature-settings",
    "x-square-hmacsha256-signature",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "x-shopify-topic",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-docusign-signature-1",
    "calendly-webhook-signature",
    "x-event-key",
    "x-vercel-signature",
    "sentry-hook-signature",
    "x-pagerduty-signature",
    "x-dropbox-signature",
    "x-notion-signature",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-xero-signature",
    "twitch-eventsub-message-signature",
    "twitch-eventsub-message-id",
    "twitch-eventsub-message-timestamp",
    "x-webflow-signature",
    "x-webflow-timestamp",
    "x-wc-webhook-signature",
    "x-cc-webhook-signature",
    "x-airtable-content-mac",
    "box-signature-primary",
    "box-signature-secondary",
    "box-delivery-timestamp",
    "x-gitlab-token",
    "telnyx-signature-ed25519",
    "telnyx-timestamp",
    "x-twitter-webhooks-signature",
    "x-mandrill-signature",
];

/// When the signature target's requests are judged: a fixed time, so that the fuzzer
/// can find timestamps inside the window.
const NOW: i64 = 1_764_000_000;

/// Nothing verifies without the secret: whatever headers and body, no route of any
/// scheme accepts the request (the fuzzer never learns the secrets), timestamps are
/// read exactly as `-?[0-9]+` within i64, and nothing panics.
///
/// Bytes: a header is a name index byte, then its value up to a 0 byte; a 0xff byte
/// ends the headers and the rest is the body.
pub fn signatures(data: &[u8]) {
    let (headers, body) = request(data);
    let body = Bytes::copy_from_slice(body);
    let req = providers::Request {
        method: &http::Method::POST,
        headers: &headers,
        query: None,
        body: &body,
        now: NOW,
        now_ms: NOW * 1000,
    };
    for route in routes() {
        let verified = providers::verify(route, &req);
        assert!(
            verified.is_err(),
            "route {:?} verified without its secret",
            route.name
        );
    }
    for name in ["x-smartcv-timestamp", "webhook-timestamp", "x-ts"] {
        let values: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
        let parsed = providers::checks::timestamp(&headers, name).map(|(_, n)| n);
        let reference = match values.as_slice() {
            [one] => reference_timestamp(one.as_bytes()),
            _ => Err(VerifyError::InvalidTimestamp),
        };
        assert_eq!(parsed, reference, "timestamp {values:?}");
    }
}

/// `-?[0-9]+` within i64, read the plain way.
fn reference_timestamp(raw: &[u8]) -> Result<i64, VerifyError> {
    let text = std::str::from_utf8(raw).map_err(|_| VerifyError::InvalidTimestamp)?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    text.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = data;
    while let Some((&pick, after)) = rest.split_first() {
        if pick == 0xff {
            return (headers, after);
        }
        let end = after.iter().position(|&b| b == 0).unwrap_or(after.len());
        let name = HEADER_NAMES[usize::from(pick) % HEADER_NAMES.len()];
        if let Ok(value) = HeaderValue::from_bytes(&after[..end]) {
            headers.append(HeaderName::from_static(name), value);
        }
        rest = after.get(end + 1..).unwrap_or_default();
    }
    (headers, rest)
}

/// A route of every scheme, some with several secrets, none the fuzzer knows.
fn routes() -> &'static [Arc<Route>] {
    static ROUTES: OnceLock<Vec<Arc<Route>>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let text = r#"
[upstream]
url = "http://127.0.0.1:3000"
[[routes]]
name = "smartcv"
path = "/smartcv"
provider = "smartcv"
secrets = ["the smartcv secret", "another"]
[[routes]]
name = "semantikmatch"
path = "/semantikmatch"
provider = "semantikmatch"
secrets = ["the semantikmatch secret"]
[[routes]]
name = "hrflow"
path = "/hrflow"
provider = "hrflow"
secrets = ["the hrflow secret"]
[[routes]]
name = "sw"
path = "/sw"
provider = "standard-webhooks"
secrets = ["whsec_dGhlIHN0YW5kYXJkIHdlYmhvb2tzIGtleQ=="]
[[routes]]
name = "hmac"
path = "/hmac"
provider = "hmac"
secrets = ["the hmac secret"]
[routes.hmac]
header = "X-Sig"
prefix = "v0="
encoding = "base64"
algorithm = "sha512"
message = "v0:{id}:{timestamp}:{body}"
timestamp_header = "X-Ts"
id_header = "X-Event"
[[routes]]
name = "jobaffinity"
path = "/jobaffinity"
provider = "jobaffinity"
secrets = ["the jobaffinity secret"]
[routes.auth]
bearer = "the jobaffinity token"
[routes.hmac]
header = "X-Sig"
[[routes]]
name = "sw-ed25519"
path = "/sw-ed25519"
provider = "standard-webhooks"
secrets = ["whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="]
"#;
        let mut text = text.to_string();
        let own = [
            "github", "slack", "shopify", "zoom", "linear", "mailgun", "twilio", "square",
        ];
        let table = crate::route::catalog::CATALOG.iter().map(|d| d.name);
        for preset in own.into_iter().chain(table) {
            let provider = Provider::from_name(preset).expect("a preset");
            let url = if provider.signs_url() {
                "public_url = \"https://hooks.example.com/in\"\n"
            } else {
                ""
            };
            let key = if provider.uses_public_key() {
                "public_key = [\"ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=\"]".to_string()
            } else if preset == "airtable" {
                "secrets = [\"dGhlIGFpcnRhYmxlIHNlY3JldA==\"]".to_string()
            } else if matches!(preset, "clerk" | "resend" | "openai" | "replicate") {
                "secrets = [\"whsec_dGhlIHN0YW5kYXJkIHdlYmhvb2tzIGtleQ==\"]".to_string()
            } else {
                format!("secrets = [\"the {preset} secret\"]")
            };
            let token = if preset == "meta" { "verify_token = \"vt\"\n" } else { "" };
            text.push_str(&format!(
                "[[routes]]\nname = \"{preset}\"\npath = \"/{preset}\"\nprovider = \"{preset}\"\n{key}\n{url}{token}"
            ));
        }
        text.push_str(concat!(
            "[[routes]]\nname = \"discord\"\npath = \"/discord\"\nprovider = \"discord\"\n",
            "public_key = [\"e61056bf3415bd91a3dd8ef9974feb545fe4274dd440fa6abda2b7545dc5458d\"]\n",
            "[[routes]]\nname = \"sendgrid\"\npath = \"/sendgrid\"\nprovider = \"sendgrid\"\n",
            "public_key = [\"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8LU4jHXUYFpPzRYzvtPaJLjuQ2xMIc7dY5hdRtr4ZV7NQc2JPpI57bj93/HIIjuNFZpUWxMfOOGDzjzAFtepiA==\"]\n",
        ));
        let loaded = load_str(&text, Path::new("."), &|_| None).expect("the fuzz routes load");
        loaded.config.routes
    })
}

/// The framing observer's verdicts never depend on where reads split the stream: read
/// whole, a byte at a time, or cut where the input says, the same verdicts come out.
///
/// Bytes: the first byte is how many cut points follow (mod 8), each two bytes; the rest
/// is the stream.
pub fn framing(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8).min(rest.len() / 2);
    let (cut_bytes, stream) = rest.split_at(count * 2);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let whole = crate::framing::verdicts([stream]);
    let bytewise = crate::framing::verdicts(stream.chunks(1));
    assert_eq!(whole, bytewise, "read a byte at a time");
    let mut pieces = Vec::new();
    let mut at = 0;
    for cut in cuts.into_iter().chain([stream.len()]) {
        pieces.push(&stream[at..cut]);
        at = cut;
    }
    assert_eq!(whole, crate::framing::verdicts(pieces), "read cut");
}

/// Loading a configuration never panics, whatever the text. Inputs that would read
/// files (`${file:…}`, TLS paths) are skipped: the fuzzer is not to read this machine.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if text.contains("file") {
        return;
    }
    let _ = load_str(&text, Path::new("/nonexistent"), &|name| {
        (name == "SET").then(|| "value".to_string())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input kept in `fuzz/regressions/<target>/` still passes its target: the
    /// crashes the fuzzers found stay fixed, replayed on stable.
    #[test]
    fn every_kept_fuzz_input_passes_its_target() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let Ok(dir) = std::fs::read_dir(root.join(name)) else {
                continue;
            };
            for entry in dir {
                let path = entry.expect("entry").path();
                let data = std::fs::read(&path).expect("read");
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{} fails again", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no kept inputs under {}", root.display());
    }
}
