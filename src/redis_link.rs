//! How the gateway reaches a Redis (the queue, the shared dedup ids): one server, or a
//! Redis Cluster, told apart on first contact (docs/queue.md "Redis Cluster").
//!
//! The operator gives one URL either way. The first command asks that server
//! `INFO cluster`: a cluster member answers `cluster_enabled:1`, and from then on the
//! commands go through the `redis` crate's cluster client, seeded with the same URL,
//! which learns the slots and follows them when they move; a lone server keeps the
//! single-node connection manager. Until the first answer nothing is decided, so a
//! gateway starts while its Redis is still coming up.
//!
//! Every key a script touches shares its route's `{route}` hash tag, so a script stays
//! on one shard; only a pipeline that spans a route and the queue's own keys has to be
//! split on a cluster ([`Link::is_cluster`]).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

/// A connection to use for one command; cheap to clone, as both kinds multiplex.
#[derive(Clone)]
pub(crate) enum Conn {
    One(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// One Redis, as one URL names it.
pub(crate) struct Link {
    url: String,
    /// Bounds connecting and each answer, on either kind.
    wait: Duration,
    /// The single-node connection: the first contact, and the connection for good
    /// unless that server is a cluster member.
    one: ConnectionManager,
    /// What the first answer said.
    chosen: OnceCell<Conn>,
}

impl Link {
    /// A link to `url`, connected on first use (and again after Redis comes back).
    /// Must run inside the tokio runtime.
    pub(crate) fn open(url: &str, wait: Duration) -> RedisResult<Link> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(wait))
            .set_response_timeout(Some(wait))
            // A caller waits for one attempt, not a series of back-offs; its own retry
            // (the provider's, the worker's next look) is the next attempt.
            .set_number_of_retries(0);
        Ok(Link {
            url: url.to_string(),
            wait,
            one: ConnectionManager::new_lazy_with_config(client, config)?,
            chosen: OnceCell::new(),
        })
    }

    /// The connection for the next command: the first call asks the server what it is
    /// (and fails, to be asked again next time, while it cannot be reached).
    pub(crate) async fn conn(&self) -> RedisResult<Conn> {
        self.chosen
            .get_or_try_init(|| async {
                let mut one = self.one.clone();
                let info: String = redis::cmd("INFO")
                    .arg("cluster")
                    .query_async(&mut one)
                    .await?;
                if !cluster_enabled(&info) {
                    return Ok(Conn::One(one));
                }
                let cluster = ClusterClient::builder([self.url.as_str()])
                    .connection_timeout(self.wait)
                    .response_timeout(self.wait)
                    // Enough to follow a slot that moved (MOVED, ASK) and no more; the
                    // caller's deadline bounds the rest.
                    .retries(2)
                    .build()?
                    .get_async_connection()
                    .await?;
                tracing::info!(
                    "Redis at the configured URL is a cluster member: using the cluster client"
                );
                Ok(Conn::Cluster(cluster))
            })
            .await
            .cloned()
    }

    /// Whether the server is a cluster member (asked on first contact). On a cluster the
    /// route's keys and the queue's own live on different shards.
    pub(crate) async fn is_cluster(&self) -> RedisResult<bool> {
        Ok(matches!(self.conn().await?, Conn::Cluster(_)))
    }
}

/// Whether an `INFO cluster` answer comes from a cluster member.
fn cluster_enabled(info: &str) -> bool {
    info.lines().any(|l| l.trim() == "cluster_enabled:1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cluster_member_says_cluster_enabled_1() {
        assert!(cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"));
        assert!(!cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"));
        assert!(!cluster_enabled(""));
    }
}
