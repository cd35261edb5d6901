//! A real Redis for the shared dedup store: `redis-server` on a Unix socket in a fresh
//! folder, no persistence, stopped when dropped. `.ci/run` installs it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    child: Child,
    socket: PathBuf,
}

impl RedisServer {
    /// A server on a socket of its own.
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir.join("redis.sock"))
    }

    /// A server on `socket`, e.g. the one a stopped server used.
    pub fn start_on(socket: PathBuf) -> Self {
        Self::start_with(socket, &[])
    }

    /// A server that keeps an append-only file in `dir`, synced at every write
    /// (`appendfsync always`), on a socket in `dir`: started again on the same `dir`, it
    /// reads back what it had.
    pub fn start_durable(dir: &Path) -> Self {
        let args = [
            ("--appendonly", OsStr::new("yes")),
            ("--appendfsync", OsStr::new("always")),
            ("--dir", dir.as_os_str()),
        ];
        Self::start_with(dir.join("redis.sock"), &args)
    }

    /// `kill -9`: gone at once, as a crashed server is.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A server that also speaks TLS on `port` with `cert` and `key` (PEM files); its
    /// socket stays plain, for the test's own look.
    pub fn start_tls(dir: &Path, port: u16, cert: &Path, key: &Path) -> Self {
        let port = port.to_string();
        let args = [
            ("--tls-port", OsStr::new(&port)),
            ("--tls-cert-file", cert.as_os_str()),
            ("--tls-key-file", key.as_os_str()),
            ("--tls-ca-cert-file", cert.as_os_str()),
            ("--tls-auth-clients", OsStr::new("no")),
        ];
        Self::start_with(dir.join("redis.sock"), &args)
    }

    fn start_with(socket: PathBuf, args: &[(&str, &OsStr)]) -> Self {
        let mut command = Command::new("redis-server");
        command.args(["--port", "0", "--save", ""]);
        if !args.iter().any(|(name, _)| *name == "--appendonly") {
            command.args(["--appendonly", "no"]);
        }
        command.arg("--unixsocket").arg(&socket);
        for (name, value) in args {
            command.arg(name).arg(value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (.ci/run installs it: apt-get install -y redis-server)");
        // Its own word that it serves, instead of polling the socket.
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line))
                    if line
                        .to_ascii_lowercase()
                        .contains("ready to accept connections") =>
                {
                    break
                }
                Some(Ok(_)) => {}
                _ => panic!("redis-server exited before it was ready"),
            }
        }
        // The rest of its log is drained, so a full pipe never blocks it.
        std::thread::spawn(move || lines.for_each(drop));
        RedisServer { child, socket }
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> PathBuf {
        self.socket.clone()
    }

    /// A connection of the test's own, to look at what the gateway stored.
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The dedup keys of `route` now, with their values and milliseconds to live.
pub async fn keys(
    conn: &mut redis::aio::MultiplexedConnection,
    route: &str,
) -> Vec<(String, String, i64)> {
    let names: Vec<String> = redis::cmd("KEYS")
        .arg(format!("hookwarden:dedup:{route}:*"))
        .query_async(conn)
        .await
        .expect("KEYS");
    let mut out = Vec::new();
    for name in names {
        let value: Option<String> = redis::cmd("GET")
            .arg(&name)
            .query_async(conn)
            .await
            .expect("GET");
        // Gone since KEYS listed it (a release racing the look).
        let Some(value) = value else { continue };
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(conn)
            .await
            .expect("PTTL");
        out.push((name, value, ttl));
    }
    out
}
