//! The `hookwarden` binary: `check` exit codes and messages, config path fallbacks, and
//! `run` serving until SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::delivery::SC_BODY;
use crate::support::{free_port, now, pairs, send, smartcv_headers};

const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");

fn hookwarden(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("HOOKWARDEN_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

#[test]
fn check_accepts_the_example_and_lists_its_routes() {
    let out = hookwarden(&["check", "--config", EXAMPLE])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("route smartcv"), "{stdout}");
    assert!(stdout.contains("/webhooks/semantikmatch"), "{stdout}");
    assert!(
        stdout.contains("1 secret; sync)"),
        "each route's delivery: {stdout}"
    );
    // The example's sample secrets are named, never shown.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("routes[0].secrets[0]: a sample secret; replace it before real use"),
        "{stderr}"
    );
    assert!(!stderr.contains("sample-smartcv-secret"), "{stderr}");

    // Its comment on `provider` names every provider there is.
    let example = std::fs::read_to_string(EXAMPLE).expect("example");
    let comment: String = example
        .lines()
        .skip_while(|l| !l.starts_with("provider = "))
        .take_while(|l| l.starts_with("provider = ") || l.trim_start().starts_with("# |"))
        .collect();
    for provider in hookwarden::Provider::all() {
        assert!(
            comment.contains(&format!(" {} ", provider.name())),
            "config.example.toml does not list {}: {comment}",
            provider.name()
        );
    }
}

/// Runs `check` on `config`, which it must refuse with exit 2; returns what it printed.
fn check_refuses(config: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.toml");
    std::fs::write(&path, config).expect("write");
    let out = hookwarden(&["check", "--config", path.to_str().expect("utf-8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_refuses_presets_without_public_url_or_with_malformed_public_keys() {
    let stderr = check_refuses(
        r#"
[upstream]
url = "http://127.0.0.1:3000"
[[routes]]
name = "twilio"
path = "/twilio"
provider = "twilio"
secrets = ["t"]
[[routes]]
name = "square"
path = "/square"
provider = "square"
secrets = ["s"]
[[routes]]
name = "discord"
path = "/discord"
provider = "discord"
public_key = ["not-hex"]
[[routes]]
name = "sendgrid"
path = "/sendgrid"
provider = "sendgrid"
public_key = ["MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"]
"#,
    );
    for expected in [
        "routes[0].public_url: required for provider \"twilio\"",
        "routes[1].public_url: required for provider \"square\"",
        "routes[2].public_key[0]: not an Ed25519 public key",
        "routes[3].public_key[0]: not a P-256 public key",
    ] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
}

#[test]
fn check_prints_every_problem_and_exits_2() {
    let stderr = check_refuses(
        r#"
[server]
listen = "not-an-address"
[upstream]
url = "http://127.0.0.1:3000"
[[routes]]
name = "a"
path = "/a"
provider = "smartcv"
secrets = ["s"]
[[routes]]
name = "b"
path = "/b"
provider = "nosuch"
"#,
    );
    assert!(
        stderr.contains("server.listen: invalid address \"not-an-address\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("routes[1].provider: unknown provider \"nosuch\""),
        "{stderr}"
    );
}

#[test]
fn the_config_path_falls_back_to_the_environment_then_the_working_folder() {
    let out = hookwarden(&["check"])
        .env("HOOKWARDEN_CONFIG", EXAMPLE)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let none = hookwarden(&["check"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("hookwarden.toml"));
    std::fs::copy(EXAMPLE, dir.path().join("hookwarden.toml")).expect("copy");
    let found = hookwarden(&["check"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        found.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        hookwarden(&["frobnicate"])
            .output()
            .expect("run")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        hookwarden(&["run", "--nope"])
            .output()
            .expect("run")
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn run_serves_the_example_until_sigterm_and_exits_0() {
    let port = free_port();
    let dead_upstream = free_port();
    let admin = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.toml");
    // Every port of the example moved, so the test passes beside the README's gateway.
    let text = std::fs::read_to_string(EXAMPLE)
        .expect("example")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{dead_upstream}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"));
    for fixed in ["127.0.0.1:8080", "127.0.0.1:3000", "127.0.0.1:9090"] {
        assert!(
            !text.contains(fixed),
            "{fixed} is still in the test's config"
        );
    }
    std::fs::write(&path, text).expect("write");
    let mut child = hookwarden(&["run", "--config", path.to_str().expect("utf-8")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The "listening" log line is the readiness signal.
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("hookwarden listening"));
    assert!(ready, "the gateway never said it was listening");

    // Transparent huge pages are off for the gateway (main.rs says why); kernels since
    // 5.0 show it in the process status.
    #[cfg(target_os = "linux")]
    {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("proc status");
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
        }
    }

    let headers = smartcv_headers("sample-smartcv-secret", now(), SC_BODY);
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let answer = send(
        addr,
        "POST",
        "/webhooks/smartcv",
        &pairs(&headers),
        SC_BODY.into(),
    )
    .await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (502, "upstream_unavailable"),
        "no app is running"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("outcome=\"upstream_unavailable\"")
                || l.contains("upstream_unavailable")),
        "{rest:#?}"
    );
    assert!(
        !rest.iter().any(|l| l.contains("sample-smartcv-secret")),
        "a secret was logged"
    );
}

#[test]
fn run_refuses_a_bad_config_with_exit_2_and_a_busy_port_with_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = 5\n").expect("write");
    let out = hookwarden(&["run", "--config", bad.to_str().expect("utf-8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));

    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let taken = dir.path().join("taken.toml");
    let text = std::fs::read_to_string(EXAMPLE)
        .expect("example")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{}", free_port()));
    std::fs::write(&taken, text).expect("write");
    let out = hookwarden(&["run", "--config", taken.to_str().expect("utf-8")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The error says which address, not only "Address already in use".
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (server.listen)"
        )),
        "{stderr}"
    );
}

#[test]
fn completions_for_every_shell_and_a_manual_page_come_from_the_command_itself() {
    for (shell, mark) in [
        ("bash", "complete -F _hookwarden"),
        ("zsh", "#compdef hookwarden"),
        ("fish", "complete -c hookwarden"),
        ("elvish", "edit:completion:arg-completer[hookwarden]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = hookwarden(&["completions", shell]).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(mark), "{shell}: {mark} not in the script");
        assert!(
            script.contains("retry-now"),
            "{shell}: the events levers are completed"
        );
    }
    let bad = hookwarden(&["completions", "tcsh"]).output().expect("run");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    let man = hookwarden(&["man"]).output().expect("run");
    assert_eq!(man.status.code(), Some(0));
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH hookwarden 1"), "a section-1 page");
    for command in [
        "run",
        "check",
        "sign",
        "send",
        "events",
        "requests",
        "completions",
    ] {
        assert!(page.contains(command), "{command} not in the page");
    }
}
