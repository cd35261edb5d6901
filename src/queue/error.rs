//! Why the queue could not do something. Messages name files and limits, never payloads.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue.dir {dir} is in use by another hookwarden process{holder}")]
    Locked { dir: PathBuf, holder: String },
    #[error("queue.dir {dir}: {message}")]
    Open { dir: PathBuf, message: String },
    /// The store was written by a newer hookwarden whose steps this one does not know.
    #[error("queue.dir {dir}: its store has schema version {found}, newer than this build's {known}; run the newer hookwarden, or restore a backup")]
    NewerSchema {
        dir: PathBuf,
        found: i64,
        known: i64,
    },
    /// `queue.max_bytes` reached: nothing stored.
    #[error("the queue is full (queue.max_bytes)")]
    Full,
    /// Too many writes are waiting for the store already (a slow or stalled disk):
    /// nothing stored, the sender should retry shortly.
    #[error("too many writes are waiting for the queue store")]
    Busy,
    /// A read or write of SQLite failed (disk full, I/O error): nothing of it stored.
    #[error("the queue store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A command to Redis failed or did not answer in time (the message is the
    /// client's, never the URL).
    #[error("the queue store (Redis) failed: {0}")]
    Redis(String),
    /// The store was closed (the gateway is stopping).
    #[error("the queue store is closed")]
    Closed,
}
