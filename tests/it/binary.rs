//! The real `hookwarden run` binary as a child process, with its log lines readable as
//! they come: for what only the process shows (signals, its environment, its logs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{now, pairs, send, smartcv_headers};

const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");

/// The binary, with its log lines readable as they come.
pub struct Gateway {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub addr: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
}

impl Gateway {
    /// `run --config path`, listening on `port` and `admin` as the file says.
    pub fn start(path: &Path, port: u16, admin: u16) -> Self {
        Self::start_with_env(path, port, admin, &[])
    }

    /// The same, with `env` added to its environment.
    pub fn start_with_env(path: &Path, port: u16, admin: u16, env: &[(&str, &Path)]) -> Self {
        let mut child = Command::new(BIN)
            .args(["run", "--config", path.to_str().expect("utf-8")])
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let gw = Gateway {
            child,
            lines,
            addr: format!("127.0.0.1:{port}").parse().expect("addr"),
            admin: format!("127.0.0.1:{admin}").parse().expect("addr"),
        };
        gw.wait_for("hookwarden listening");
        gw
    }

    /// Blocks until a log line contains `text`: the gateway's own signal that something
    /// happened. The bound only keeps a broken build from hanging the suite.
    pub fn wait_for(&self, text: &str) -> String {
        self.lines_until(text).pop().unwrap_or_default()
    }

    /// Every log line up to the first that contains `text`, that one included.
    pub fn lines_until(&self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(e) => panic!("no log line with {text:?} after {seen:?}: {e}"),
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// A signed SmartCV event to the route at `/webhooks/smartcv`.
    pub async fn deliver(&self, secret: &str, id: &str) -> crate::support::Answer {
        let body = format!(r#"{{"id":"{id}","type":"t"}}"#);
        let headers = smartcv_headers(secret, now(), &body);
        send(
            self.addr,
            "POST",
            "/webhooks/smartcv",
            &pairs(&headers),
            body.into(),
        )
        .await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
