//! Whole-file tests: the example config, and error reporting across sections.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::route::{Auth, DeliveryMode, ForwardMode, RateLimit};

fn vars(name: &str) -> Option<String> {
    match name {
        "SMARTCV_SECRET" => Some("s3cret-of-the-test-env".into()),
        "APP_KEY" => Some("k-123".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Loaded, ConfigError> {
    load_str(text, Path::new("."), &vars)
}

fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected the config to be refused"),
        Err(e) => e.lines(),
    }
}

const MINIMAL: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
[[routes]]
name = "smartcv"
path = "/webhooks/smartcv"
provider = "smartcv"
secrets = ["${SMARTCV_SECRET}"]
"#;

#[test]
fn the_example_config_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .expect("config.example.toml");
    let loaded = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = loaded
        .config
        .routes
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["smartcv", "semantikmatch"]);
    assert_eq!(
        loaded.config.routes[0].forward_uri.to_string(),
        "http://127.0.0.1:3000/hooks/smartcv"
    );
}

#[test]
fn the_commented_provider_routes_of_the_example_are_valid_too() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .expect("config.example.toml");
    let (head, more) = text
        .split_once("# ---- More providers")
        .expect("the section marker");
    let uncommented: String = more
        .lines()
        .filter_map(|l| l.strip_prefix("# ").or_else(|| (l == "#").then_some("")))
        .filter(|l| l.starts_with('[') || l.contains('=') || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let env = |name: &str| match name {
        "SVIX_SECRET" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()),
        "DISCORD_PUBLIC_KEY" => {
            Some("e61056bf3415bd91a3dd8ef9974feb545fe4274dd440fa6abda2b7545dc5458d".to_string())
        }
        _ => Some(format!("{name}-value")),
    };
    let loaded = load_str(&format!("{head}{uncommented}"), Path::new("."), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let providers: Vec<_> = loaded
        .config
        .routes
        .iter()
        .map(|r| r.provider.name())
        .collect();
    assert_eq!(
        providers,
        [
            "smartcv",
            "semantikmatch",
            "hrflow",
            "jobaffinity",
            "standard-webhooks",
            "stripe",
            "twilio",
            "discord",
            "meta",
            "okta",
            "hmac",
            "smartcv"
        ]
    );
    let queued = loaded.config.routes.last().expect("the queued route");
    assert_eq!(queued.delivery, DeliveryMode::Queue { concurrency: 8 });
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let c = load(MINIMAL).expect("valid").config;
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.server.max_body_bytes, 1024 * 1024);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.request_timeout, Duration::from_secs(30));
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(c.upstream.timeout, Duration::from_secs(10));
    assert_eq!(c.dedup.ttl, Duration::from_secs(86400));
    assert_eq!(c.dedup.max_entries, 1_000_000);
    assert_eq!(c.log.format, LogFormat::Json);
    let r = &c.routes[0];
    assert_eq!(r.secrets, vec![Secret::new(&b"s3cret-of-the-test-env"[..])]);
    assert_eq!(r.tolerance, Duration::from_secs(300));
    assert_eq!(r.forward, ForwardMode::Normalized);
    assert_eq!(
        r.forward_uri.to_string(),
        "http://127.0.0.1:3000/webhooks/smartcv"
    );
    assert_eq!(r.dedup_ttl, Duration::from_secs(86400));
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let text = r#"
[server]
listen = "nowhere"
header_read_timeout = "ten seconds"
[upstream]
url = "ftp://example.com"
[log]
format = "xml"
[[routes]]
name = "ok"
path = "/a"
provider = "smartcv"
secrets = ["x"]
[[routes]]
name = "Bad Name"
path = "/b"
provider = "nosuch"
[[routes]]
name = "ok"
path = "a"
provider = "smartcv"
secrets = [""]
"#;
    let p = problems(text);
    let expect = [
        "server.listen: invalid address \"nowhere\"",
        "server.header_read_timeout: invalid duration \"ten seconds\"",
        "upstream.url: invalid upstream URL \"ftp://example.com\"",
        "log.format: unknown format \"xml\"",
        "routes[1].name: invalid name \"Bad Name\"",
        "routes[1].provider: unknown provider \"nosuch\"",
        "routes[2].name: duplicate route name \"ok\"",
        "routes[2].path: invalid path \"a\"",
        "routes[2].secrets[0]: must not be empty",
    ];
    for e in expect {
        assert!(
            p.iter().any(|line| line.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
}

#[test]
fn unknown_keys_and_wrong_types_name_their_path() {
    let p = problems(
        r#"
colour = "blue"
[server]
max_body_byte = 10
[[routes]]
name = "a"
path = "/a"
provider = "smartcv"
secrets = "not-a-list"
"#,
    );
    assert!(
        !p.iter().any(|l| l.contains("not-a-list")),
        "a secret was echoed: {p:#?}"
    );
    assert!(
        p.iter().any(|l| l.starts_with("colour: unknown key")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("server") && l.contains("max_body_byte")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|l| l.starts_with("routes[0].secrets")),
        "{p:#?}"
    );
}

#[test]
fn interpolation_errors_name_the_key_and_never_the_value() {
    let p = problems(&MINIMAL.replace("${SMARTCV_SECRET}", "${MISSING_VAR}"));
    assert_eq!(
        p,
        ["routes[0].secrets[0]: environment variable MISSING_VAR is not set"]
    );
}

#[test]
fn upstream_urls_carry_no_query_fragment_or_credentials() {
    for bad in [
        "http://u:p@app:3000",
        "http://app:3000/?x=1",
        "http://app:3000/#f",
        "http://",
    ] {
        let p = problems(&MINIMAL.replace("http://127.0.0.1:3000", bad));
        assert!(
            p.iter().any(|l| l.starts_with("upstream.url:")),
            "{bad}: {p:#?}"
        );
    }
}

#[test]
fn a_global_upstream_is_needed_only_for_routes_without_their_own() {
    let text = MINIMAL.replace("[upstream]\nurl = \"http://127.0.0.1:3000\"\n", "");
    let p = problems(&text);
    assert!(
        p[0].starts_with("upstream.url: required unless every route sets its own upstream"),
        "{p:#?}"
    );
    let own = text.replace(
        "provider = \"smartcv\"",
        "provider = \"smartcv\"\nupstream = \"https://app.internal/base\"",
    );
    let c = load(&own).expect("valid").config;
    assert_eq!(
        c.routes[0].forward_uri.to_string(),
        "https://app.internal/base/webhooks/smartcv"
    );
}

#[test]
fn signing_routes_need_secrets() {
    let p = problems(&MINIMAL.replace("secrets = [\"${SMARTCV_SECRET}\"]", ""));
    assert_eq!(p, ["routes[0].secrets: at least one secret is required"]);
}

#[test]
fn route_options_parse_into_runtime_types() {
    let text = format!(
        "{MINIMAL}{}",
        r#"forward = "raw"
dedup_ttl = "0s"
allow_ips = ["203.0.113.7/24", "::1"]
default_type = "resume.created"
fields = { id = "/meta/id", type = "/meta/kind" }
rate_limit = { per_second = 2.5 }
[routes.auth]
bearer = "${APP_KEY}"
"#
    );
    let loaded = load(&text).expect("valid");
    let r = &loaded.config.routes[0];
    assert_eq!(r.forward, ForwardMode::Raw);
    assert!(r.dedup_ttl.is_zero());
    assert_eq!(r.allow_ips[0].to_string(), "203.0.113.0/24");
    assert_eq!(r.allow_ips[1].to_string(), "::1/128");
    assert_eq!(r.fields.id.as_deref(), Some("/meta/id"));
    assert_eq!(r.fields.kind.as_deref(), Some("/meta/kind"));
    assert_eq!(
        r.rate_limit,
        Some(RateLimit {
            per_second: 2.5,
            burst: 3
        })
    );
    assert!(matches!(&r.auth, Some(Auth::Bearer(s)) if s.expose() == b"k-123"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_short_dedup_ttl_on_a_timestamped_route_warns() {
    let loaded = load(&format!("{MINIMAL}dedup_ttl = \"5m\"\n")).expect("valid");
    assert!(
        loaded.warnings.iter().any(
            |w| w.starts_with("routes[0]: dedup ttl 5m is shorter than twice the tolerance 5m")
        ),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = load(MINIMAL).expect("valid").config;
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret-of-the-test-env"), "{debug}");
    assert!(debug.contains("[redacted]"));
}

fn route_problems(route: &str) -> Vec<String> {
    problems(&format!("[upstream]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nname = \"r\"\npath = \"/r\"\n{route}"))
}

#[test]
fn jobaffinity_must_authenticate_something_and_uses_secrets_only_with_hmac() {
    let p = route_problems("provider = \"jobaffinity\"\n");
    assert!(
        p.iter().any(|l| l.starts_with(
            "routes[0]: provider \"jobaffinity\" needs [routes.auth] or [routes.hmac]"
        )),
        "{p:#?}"
    );
    let p = route_problems(
        "provider = \"jobaffinity\"\nsecrets = [\"s\"]\n[routes.auth]\nbearer = \"t\"\n",
    );
    assert_eq!(p, ["routes[0].secrets: provider \"jobaffinity\" without [routes.hmac] does not use secrets"]);
    let ok = "[upstream]\nurl = \"http://a:1\"\n[[routes]]\nname = \"r\"\npath = \"/r\"\nprovider = \"jobaffinity\"\nsecrets = [\"s\"]\n[routes.hmac]\nheader = \"X-Sig\"\n";
    assert!(load(ok).is_ok());
}

#[test]
fn auth_holds_exactly_one_kind_of_credential() {
    let p = route_problems("provider = \"jobaffinity\"\n[routes.auth]\nbearer = \"t\"\nheader = { name = \"X-K\", value = \"v\" }\n");
    assert_eq!(
        p,
        ["routes[0].auth: must hold exactly one of basic, bearer, header"]
    );
    let p = route_problems("provider = \"jobaffinity\"\n[routes.auth]\n");
    assert_eq!(
        p,
        ["routes[0].auth: must hold exactly one of basic, bearer, header"]
    );
}

#[test]
fn standard_webhooks_secrets_are_whsec_base64() {
    let p =
        route_problems("provider = \"standard-webhooks\"\nsecrets = [\"plain\", \"whsec_%%%\"]\n");
    assert_eq!(
        p,
        [
            "routes[0].secrets[0]: must start with \"whsec_\" (or \"whpk_\" for an Ed25519 public key) followed by base64",
            "routes[0].secrets[1]: the part after \"whsec_\" is not valid base64",
        ]
    );
}

#[test]
fn hmac_lists_units_and_keys_are_checked_by_key_path() {
    let base = "provider = \"hmac\"\nsecrets = [\"s\"]\n[routes.hmac]\nheader = \"X-Sig\"\n";
    let cases = [
        ("separator = \",\"\n", "routes[0].hmac.prefix: required with separator"),
        ("separator = \"ab\"\n", "routes[0].hmac.separator: \"ab\" is not one punctuation character"),
        ("timestamp_key = \"t\"\n", "routes[0].hmac.timestamp_key: needs separator"),
        (
            "separator = \",\"\nprefix = \"v1\"\ntimestamp_key = \"t\"\nmessage = \"{timestamp}.{body}\"\n",
            "routes[0].hmac.prefix: with timestamp_key, the signatures' key and \"=\"",
        ),
        (
            "separator = \",\"\nprefix = \"v1=\"\ntimestamp_key = \"t\"\n",
            "routes[0].hmac.timestamp_key: the message template does not sign {timestamp}",
        ),
        ("timestamp_unit = \"hours\"\n", "routes[0].hmac.timestamp_unit: unknown unit \"hours\""),
        ("key_encoding = \"hex\"\n", "routes[0].hmac.key_encoding: unknown key encoding \"hex\""),
        ("key_encoding = \"base64\"\n", "routes[0].secrets[0]: must be base64"),
    ];
    for (extra, want) in cases {
        let p = route_problems(&format!("{base}{extra}"));
        assert!(p.iter().any(|l| l.starts_with(want)), "{extra}: {p:#?}");
    }
}

#[test]
fn hmac_templates_must_sign_the_body_and_every_header_they_name() {
    let base = "provider = \"hmac\"\nsecrets = [\"s\"]\n[routes.hmac]\nheader = \"X-Sig\"\n";
    let p = route_problems(&format!(
        "{base}message = \"{{timestamp}}\"\ntimestamp_header = \"X-Ts\"\n"
    ));
    assert!(
        p.iter()
            .any(|l| l
                .starts_with("routes[0].hmac.message: \"{timestamp}\" does not contain {body}")),
        "{p:#?}"
    );
    let p = route_problems(&format!("{base}id_header = \"X-Id\"\n"));
    assert!(
        p.iter()
            .any(|l| l
                .starts_with("routes[0].hmac.id_header: the message template does not sign {id}")),
        "{p:#?}"
    );
    let p = route_problems(&format!("{base}timestamp_header = \"X-Ts\"\n"));
    assert!(
        p.iter().any(|l| l.starts_with(
            "routes[0].hmac.timestamp_header: the message template does not sign {timestamp}"
        )),
        "{p:#?}"
    );
    let p = route_problems(&format!("{base}message = \"{{id}}.{{body}}\"\n"));
    assert!(
        p.iter()
            .any(|l| l.starts_with("routes[0].hmac.id_header: required")),
        "{p:#?}"
    );
    let p = route_problems(&format!(
        "{base}encoding = \"base32\"\nalgorithm = \"md5\"\n"
    ));
    assert!(
        p.iter()
            .any(|l| l.starts_with("routes[0].hmac.encoding: unknown encoding \"base32\"")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("routes[0].hmac.algorithm: unknown algorithm \"md5\"")),
        "{p:#?}"
    );
    let p = route_problems("provider = \"hmac\"\nsecrets = [\"s\"]\n");
    assert_eq!(p, ["routes[0].hmac: required for provider \"hmac\""]);
    let p = route_problems(
        "provider = \"smartcv\"\nsecrets = [\"s\"]\n[routes.hmac]\nheader = \"X-Sig\"\n",
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("routes[0].hmac: not used by provider \"smartcv\"")),
        "{p:#?}"
    );
}

#[test]
fn a_redis_backend_needs_a_redis_url_and_problems_never_repeat_it() {
    let with = |dedup: &str| format!("[dedup]\n{dedup}\n{MINIMAL}");
    let ok = load(&with(
        "backend = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6379/2\"",
    ))
    .unwrap_or_else(|e| panic!("{e}"))
    .config;
    assert_eq!(ok.dedup.backend, DedupBackend::Redis);
    assert!(
        !format!("{ok:?}").contains("pw@"),
        "the URL's password shows"
    );
    for url in [
        "redis+unix:///run/redis.sock",
        "rediss://cache.internal:6380/0",
    ] {
        let other = load(&with(&format!(
            "backend = \"redis\"\nredis_url = \"{url}\""
        )));
        assert!(other.is_ok(), "{url}: {:?}", other.err().map(|e| e.lines()));
    }

    assert_eq!(
        problems(&with("backend = \"redis\"")),
        ["dedup.redis_url: required when dedup.backend = \"redis\""]
    );
    for (url, says) in [
        (
            "http://:secret-pw@cache:6379",
            "expected a redis://, rediss:// or redis+unix:// URL",
        ),
        ("redis://:secret-pw@cache:notaport", "not a valid Redis URL"),
    ] {
        let p = problems(&with(&format!(
            "backend = \"redis\"\nredis_url = \"{url}\""
        )));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(&format!("dedup.redis_url: {says}")),
            "{p:?}"
        );
        assert!(!p[0].contains("secret-pw"), "{p:?}");
    }
}

#[test]
fn queue_settings_are_checked_with_their_key_paths() {
    let queued = format!("{MINIMAL}delivery = \"queue\"\nconcurrency = 0\n");
    let text = format!(
        "[queue]\nbackend = \"redis\"\nmax_attempts = 0\nbackoff = {{ initial = \"2m\", max = \"1m\" }}\nretention = \"forever\"\n{queued}"
    );
    let found = problems(&text);
    for expected in [
        "queue.redis_url: required when queue.backend = \"redis\"",
        "queue.max_attempts: must be between 1",
        "queue.backoff.initial: 2m is longer than queue.backoff.max (1m)",
        "queue.retention: invalid duration \"forever\"",
        "routes[0].concurrency: must be at least 1 (got 0)",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected:?} not in {found:#?}"
        );
    }
    // Redis: the dedup store's URL by default, or its own; a prefix without braces.
    let redis =
        format!("[dedup]\nredis_url = \"redis://x\"\n[queue]\nbackend = \"redis\"\n{MINIMAL}");
    let loaded = load(&redis).expect("valid");
    assert_eq!(
        loaded.config.queue.backend,
        QueueBackend::Redis {
            url: "redis://x".into(),
            prefix: "hookwarden:".into()
        }
    );
    assert!(!format!("{:?}", loaded.config.queue.backend).contains("redis://x"));
    let braces = format!("[queue]\nbackend = \"redis\"\nredis_url = \"redis://y\"\nredis_prefix = \"a{{b}}\"\n{MINIMAL}");
    assert!(problems(&braces)
        .iter()
        .any(|p| p.starts_with("queue.redis_prefix: \"a{b}\": must not be empty")));
    let sync_with_concurrency = format!("{MINIMAL}concurrency = 4\n");
    assert_eq!(
        problems(&sync_with_concurrency),
        ["routes[0].concurrency: only for routes with delivery = \"queue\""]
    );
    let unknown = format!("{MINIMAL}delivery = \"later\"\n");
    assert_eq!(
        problems(&unknown),
        ["routes[0].delivery: unknown mode \"later\" (expected \"sync\" or \"queue\")"]
    );

    let ok = load(&format!(
        "[queue]\ndir = \"spool\"\nbackoff = {{ initial = \"500ms\", max = \"10s\" }}\n{MINIMAL}delivery = \"queue\"\nconcurrency = 1\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let q = &ok.config.queue;
    assert_eq!(q.dir, Path::new(".").join("spool"));
    assert_eq!(
        (q.backoff_initial, q.backoff_max, q.max_attempts),
        (Duration::from_millis(500), Duration::from_secs(10), 20)
    );
    assert_eq!(
        ok.config.routes[0].delivery,
        DeliveryMode::Queue { concurrency: 1 }
    );
}

#[test]
fn the_admin_token_may_not_be_empty_and_an_open_admin_port_without_one_warns() {
    let empty = format!("[admin]\ntoken = \"\"\n{MINIMAL}");
    assert_eq!(
        problems(&empty),
        ["admin.token: must not be empty (leave it out to have no token)"]
    );
    let open = load(&format!("[admin]\nlisten = \"0.0.0.0:9090\"\n{MINIMAL}")).expect("valid");
    assert!(
        open.warnings
            .iter()
            .any(|w| w.contains("/api and /ui are off")),
        "{:?}",
        open.warnings
    );
    assert!(!open.config.admin.api_enabled());
    let guarded = load(&format!(
        "[admin]\nlisten = \"0.0.0.0:9090\"\ntoken = \"t\"\n{MINIMAL}"
    ))
    .expect("valid");
    assert!(guarded.warnings.is_empty(), "{:?}", guarded.warnings);
    assert!(guarded.config.admin.api_enabled());
    assert!(
        load(MINIMAL).expect("valid").config.admin.api_enabled(),
        "loopback"
    );
    assert!(!format!("{:?}", guarded.config.admin).contains("\"t\""));
}

#[test]
fn twilio_and_square_need_an_absolute_public_url_and_nothing_else_takes_one() {
    for provider in ["twilio", "square"] {
        let p = route_problems(&format!("provider = \"{provider}\"\nsecrets = [\"s\"]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(&format!(
                "routes[0].public_url: required for provider \"{provider}\""
            )),
            "{p:?}"
        );
        let p = route_problems(&format!(
            "provider = \"{provider}\"\nsecrets = [\"s\"]\npublic_url = \"/relative\"\n"
        ));
        assert_eq!(
            p,
            ["routes[0].public_url: \"/relative\" is not an absolute http(s) URL without a fragment"]
        );
    }
    let p = route_problems(
        "provider = \"twilio\"\nsecrets = [\"s\"]\npublic_url = \"https://h.example/t?x=1\"\n",
    );
    assert!(
        p[0].starts_with("routes[0].public_url: \"https://h.example/t?x=1\" has a query"),
        "{p:?}"
    );
    let p = route_problems(
        "provider = \"stripe\"\nsecrets = [\"s\"]\npublic_url = \"https://h.example/\"\n",
    );
    assert!(
        p[0].starts_with("routes[0].public_url: provider \"stripe\" does not sign its URL"),
        "{p:?}"
    );
}

#[test]
fn public_keys_are_checked_at_load_and_replace_secrets() {
    let p = route_problems("provider = \"discord\"\npublic_key = [\"abcd\", \"e61056bf3415bd91a3dd8ef9974feb545fe4274dd440fa6abda2b7545dc5458d\"]\n");
    assert_eq!(
        p,
        ["routes[0].public_key[0]: not an Ed25519 public key (64 hex digits, as Discord shows it): \"abcd\""]
    );
    let p = route_problems("provider = \"sendgrid\"\npublic_key = [\"bm90IGEga2V5\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("routes[0].public_key[0]: not a P-256 public key"),
        "{p:?}"
    );
    let p = route_problems("provider = \"discord\"\n");
    assert_eq!(
        p,
        ["routes[0].public_key: at least one public key is required"]
    );
    let p = route_problems("provider = \"discord\"\nsecrets = [\"s\"]\npublic_key = [\"e61056bf3415bd91a3dd8ef9974feb545fe4274dd440fa6abda2b7545dc5458d\"]\n");
    assert_eq!(
        p,
        ["routes[0].secrets: provider \"discord\" verifies with public_key, not secrets"]
    );
    let p = route_problems("provider = \"stripe\"\nsecrets = [\"s\"]\npublic_key = [\"ab\"]\n");
    assert!(
        p[0].starts_with("routes[0].public_key: provider \"stripe\" does not use public_key"),
        "{p:?}"
    );
    let p = route_problems("provider = \"standard-webhooks\"\nsecrets = [\"whpk_AAAA\"]\n");
    assert_eq!(
        p,
        ["routes[0].secrets[0]: the part after \"whpk_\" is not the base64 of a 32-byte Ed25519 public key"]
    );
}
