//! Secrets a provider hands over in a handshake rather than showing them to anyone
//! (Asana's `X-Hook-Secret`, docs/providers.md "Asana"), kept where the queue keeps its
//! state, so that a restart or another replica does not forget them: a file under
//! `queue.dir`, or a hash in Redis when the queue or the dedup ids live there.
//!
//! The handshake carries no signature, so the first one a route sees sets its secret,
//! and a later one is answered only when it carries the same secret: whoever reaches
//! the endpoint second cannot replace it. Forgetting a secret (a webhook made again)
//! is the operator's act: delete the route's entry, then restart the replicas.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, DedupBackend, QueueBackend};
use crate::redis_link::Link;
use crate::route::Secret;
use crate::sync::lock;

/// How long one Redis command may take.
const WAIT: Duration = Duration::from_secs(2);

/// What a handshake's secret is to the route.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The first: stored, and from now on the route's.
    New,
    /// The one already stored (the provider asking again).
    Same,
    /// Another than the stored one: refused.
    Other,
}

/// The store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the store of handshake secrets failed: {0}")]
pub struct LearnError(String);

pub(crate) struct LearnedSecrets {
    store: Store,
    /// What this replica has read or written; a route's secret never changes once set.
    known: std::sync::Mutex<HashMap<String, Secret>>,
    /// One learn at a time writes the file.
    writing: tokio::sync::Mutex<()>,
}

enum Store {
    File(PathBuf),
    Redis { link: Link, key: String },
}

impl LearnedSecrets {
    /// Where `config` keeps its state; a file's secrets are read now.
    pub(crate) fn open(config: &Config) -> Result<LearnedSecrets, LearnError> {
        let redis = match (&config.queue.backend, &config.dedup) {
            (QueueBackend::Redis { url, prefix }, _) => {
                Some((url.clone(), format!("{prefix}{{_}}:handshake-secrets")))
            }
            (QueueBackend::Disk, dedup) if matches!(dedup.backend, DedupBackend::Redis) => dedup
                .redis_url
                .clone()
                .map(|url| (url, "hookwarden:handshake-secrets".to_string())),
            _ => None,
        };
        let (store, known) = match redis {
            Some((url, key)) => {
                let link = Link::open(&url, WAIT).map_err(|e| LearnError(e.to_string()))?;
                (Store::Redis { link, key }, HashMap::new())
            }
            None => {
                let path = config.queue.dir.join("handshake-secrets.json");
                let known = read_file(&path)?;
                (Store::File(path), known)
            }
        };
        Ok(LearnedSecrets {
            store,
            known: std::sync::Mutex::new(known),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    /// The secret `route` learnt, if any.
    pub(crate) async fn secret(&self, route: &str) -> Result<Option<Secret>, LearnError> {
        if let Some(secret) = lock(&self.known).get(route) {
            return Ok(Some(secret.clone()));
        }
        let Store::Redis { link, key } = &self.store else {
            return Ok(None);
        };
        let found: Option<Vec<u8>> = bounded(async {
            let mut conn = link.conn().await?;
            redis::cmd("HGET")
                .arg(key)
                .arg(route)
                .query_async(&mut conn)
                .await
        })
        .await?;
        Ok(found.map(|bytes| self.remember(route, Secret::new(bytes))))
    }

    /// Takes `secret` as `route`'s unless it already has another.
    pub(crate) async fn learn(&self, route: &str, secret: &[u8]) -> Result<Learned, LearnError> {
        let _one = self.writing.lock().await;
        if let Some(known) = self.secret(route).await? {
            return Ok(judge(&known, secret));
        }
        match &self.store {
            Store::Redis { link, key } => {
                // HSETNX: of two replicas learning at once, one sets it.
                let set: bool = bounded(async {
                    let mut conn = link.conn().await?;
                    redis::cmd("HSETNX")
                        .arg(key)
                        .arg(route)
                        .arg(secret)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
                if !set {
                    let stored = self.secret(route).await?;
                    return Ok(stored.map_or(Learned::Other, |s| judge(&s, secret)));
                }
            }
            Store::File(path) => {
                let mut all = lock(&self.known).clone();
                all.insert(route.to_string(), Secret::new(secret.to_vec()));
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_file(&path, &all))
                    .await
                    .map_err(|e| LearnError(e.to_string()))??;
            }
        }
        self.remember(route, Secret::new(secret.to_vec()));
        Ok(Learned::New)
    }

    fn remember(&self, route: &str, secret: Secret) -> Secret {
        lock(&self.known).insert(route.to_string(), secret.clone());
        secret
    }
}

fn judge(known: &Secret, given: &[u8]) -> Learned {
    if known.equals(given) {
        Learned::Same
    } else {
        Learned::Other
    }
}

async fn bounded<T>(
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LearnError> {
    match tokio::time::timeout(WAIT, command).await {
        Ok(outcome) => outcome.map_err(|e| LearnError(e.to_string())),
        Err(_) => Err(LearnError("no answer in time".into())),
    }
}

/// The file's secrets: a JSON object of route name to secret text (absent: none yet).
fn read_file(path: &std::path::Path) -> Result<HashMap<String, Secret>, LearnError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(LearnError(format!("{}: {e}", path.display()))),
    };
    let map: HashMap<String, String> = serde_json::from_slice(&text)
        .map_err(|e| LearnError(format!("{}: {e}", path.display())))?;
    Ok(map
        .into_iter()
        .map(|(route, secret)| (route, Secret::new(secret.into_bytes())))
        .collect())
}

/// Writes the whole file anew (a temporary file synced, then renamed over it), so that a
/// crash leaves the old file or the new one, never half of one.
fn write_file(path: &std::path::Path, all: &HashMap<String, Secret>) -> Result<(), LearnError> {
    use std::io::Write;
    let fail = |e: std::io::Error| LearnError(format!("{}: {e}", path.display()));
    let map: HashMap<&str, String> = all
        .iter()
        .map(|(route, s)| {
            (
                route.as_str(),
                String::from_utf8_lossy(s.expose()).into_owned(),
            )
        })
        .collect();
    let text = serde_json::to_vec(&map).map_err(|e| LearnError(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let temporary = path.with_extension("json.new");
    let mut file = std::fs::File::create(&temporary).map_err(fail)?;
    file.write_all(&text).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dir: &std::path::Path) -> LearnedSecrets {
        LearnedSecrets {
            store: Store::File(dir.join("handshake-secrets.json")),
            known: std::sync::Mutex::new(
                read_file(&dir.join("handshake-secrets.json")).expect("read"),
            ),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    #[tokio::test]
    async fn the_first_secret_stays_and_outlives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = at(dir.path());
        assert_eq!(store.secret("asana").await.expect("read"), None);
        assert_eq!(
            store.learn("asana", b"s1").await.expect("learn"),
            Learned::New
        );
        assert_eq!(
            store.learn("asana", b"s1").await.expect("learn"),
            Learned::Same
        );
        assert_eq!(
            store.learn("asana", b"s2").await.expect("learn"),
            Learned::Other
        );
        assert_eq!(
            store.learn("other", b"s2").await.expect("learn"),
            Learned::New
        );
        let again = at(dir.path());
        let secret = again.secret("asana").await.expect("read").expect("kept");
        assert_eq!(secret.expose(), b"s1");
        assert_eq!(
            again.learn("asana", b"s3").await.expect("learn"),
            Learned::Other
        );
        assert!(again.secret("other").await.expect("read").is_some());
    }
}
