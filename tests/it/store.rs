//! A real Redis for the shared stores: `redis-server` on a Unix socket in a fresh
//! folder, no persistence, stopped when dropped; a Redis Cluster of three such servers;
//! and Valkey, for what Debian's Redis 7.0 lacks (`WAITAOF`). `.ci/run` installs both.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    child: Child,
    socket: PathBuf,
}

/// Which server program: Debian's Redis 7.0, or Valkey 8 (Redis 7.2's successor, with
/// `WAITAOF`).
#[derive(Clone, Copy)]
pub enum Server {
    Redis,
    Valkey,
}

impl Server {
    fn program(self) -> &'static str {
        match self {
            Server::Redis => "redis-server",
            Server::Valkey => "valkey-server",
        }
    }
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

    /// `server` keeping an append-only file in `dir`, synced at every write
    /// (`appendfsync always`), on a socket in `dir`: started again on the same `dir`, it
    /// reads back what it had.
    pub fn start_durable_as(server: Server, dir: &Path) -> Self {
        let args = [
            ("--appendonly", OsStr::new("yes")),
            ("--appendfsync", OsStr::new("always")),
            ("--dir", dir.as_os_str()),
        ];
        Self::start_program(server, dir.join("redis.sock"), &args)
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
        Self::start_program(Server::Redis, socket, args)
    }

    fn start_program(server: Server, socket: PathBuf, args: &[(&str, &OsStr)]) -> Self {
        let program = server.program();
        let mut command = Command::new(program);
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
            .unwrap_or_else(|e| {
                panic!("{program} is needed for these tests (.ci/run installs it): {e}")
            });
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
                _ => panic!("{program} exited before it was ready"),
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

/// A Redis Cluster of three primaries on 127.0.0.1, the slots split among them, each
/// server also on a socket of its own for the test's looks.
pub struct RedisCluster {
    /// Each server with its client port and its cluster bus port.
    nodes: Vec<(RedisServer, u16, u16)>,
}

impl RedisCluster {
    pub async fn start(dir: &Path) -> Self {
        let mut nodes = Vec::new();
        for i in 0..3 {
            let (port, bus) = (crate::support::free_port(), crate::support::free_port());
            let (port_s, bus_s) = (port.to_string(), bus.to_string());
            let conf = dir.join(format!("nodes-{i}.conf"));
            let args = [
                ("--port", OsStr::new(&port_s)),
                ("--bind", OsStr::new("127.0.0.1")),
                ("--cluster-enabled", OsStr::new("yes")),
                ("--cluster-port", OsStr::new(&bus_s)),
                ("--cluster-config-file", conf.as_os_str()),
                ("--dir", dir.as_os_str()),
            ];
            let server = RedisServer::start_with(dir.join(format!("redis-{i}.sock")), &args);
            nodes.push((server, port, bus));
        }
        let cluster = RedisCluster { nodes };
        // Split so that the tests' routes and the queue's own keys fall on different
        // members: `{s}` is slot 3828, `{_}` 11034, `{q}` 11958.
        let ranges = [(0, 5460), (5461, 11500), (11501, 16383)];
        let mut clients = Vec::new();
        for ((server, _, _), (lo, hi)) in cluster.nodes.iter().zip(ranges) {
            let mut c = server.client().await;
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(lo)
                .arg(hi)
                .query_async(&mut c)
                .await
                .expect("ADDSLOTSRANGE");
            clients.push(c);
        }
        for (_, port, bus) in cluster.nodes.iter().skip(1) {
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(port)
                .arg(bus)
                .query_async(&mut clients[0])
                .await
                .expect("MEET");
        }
        // The servers gossip until each knows the others and every slot; Redis has no
        // signal for that, so each is asked until it says so.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for c in &mut clients {
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(c)
                    .await
                    .expect("CLUSTER INFO");
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "no cluster: {info}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// One member's address: the gateway learns the others from it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].1)
    }

    pub fn servers(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().map(|(s, _, _)| s)
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
