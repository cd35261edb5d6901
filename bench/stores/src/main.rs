//! The CPU per event of what the queue asks of its store, in SQLite (the spool's own
//! schema and statements), fjall and redb: commits of B events, each event looked up by
//! id, then stored (its row, its body, its id), one fsync per commit; then the same
//! events settled (their row updated with the attempt), one fsync per commit. CPU is
//! the process's user + system time (/proc/self/stat), so the syscalls count.
//!
//!   taskset -c 0 target/release/hookwarden-store-cost sqlite /tmp/store-cost
//!   BATCH=11 taskset -c 0 target/release/hookwarden-store-cost sqlite /tmp/store-cost
use std::time::Instant;

const N: usize = 200_000;
/// Events per commit: $BATCH, 32 when unset.
fn per_commit() -> usize {
    std::env::var("BATCH").ok().and_then(|b| b.parse().ok()).unwrap_or(32)
}

/// Seconds of CPU (user + system) this process has used, in clock ticks of 1/100 s.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap() / 100.0;
    ticks(11) + ticks(12)
}

fn body(i: usize) -> Vec<u8> {
    let mut b = format!("{{\"id\":\"evt_{i}\",\"type\":\"resume.created\",\"data\":").into_bytes();
    b.resize(1200, b'x');
    b
}

fn sqlite(dir: &str) {
    let conn = rusqlite::Connection::open(format!("{dir}/q.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 10000).unwrap();
    conn.execute_batch("
CREATE TABLE events (seq INTEGER PRIMARY KEY, route TEXT NOT NULL, id BLOB NOT NULL, shown_id TEXT NOT NULL, type TEXT NOT NULL, state INTEGER NOT NULL, size INTEGER NOT NULL, content_type TEXT, received_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, last_status INTEGER, last_error TEXT, settled_at INTEGER, history TEXT NOT NULL DEFAULT '');
CREATE TABLE bodies (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE INDEX events_by_id ON events (route, id);
CREATE INDEX events_by_state ON events (route, state, seq);
CREATE INDEX events_due ON events (route, next_attempt_at, seq) WHERE state = 0;").unwrap();
    let mut conn = conn;
    let c0 = cpu(); let t0 = Instant::now();
    let mut seqs = Vec::new();
    for batch in 0..N / per_commit() {
        let tx = conn.transaction().unwrap();
        seqs.clear();
        for k in 0..per_commit() {
            let i = batch * per_commit() + k;
            let id = format!("evt_{i}");
            let known: bool = tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM events WHERE route = ?1 AND id = ?2)").unwrap()
                .query_row(rusqlite::params!["smartcv", id.as_bytes()], |r| r.get(0)).unwrap();
            assert!(!known);
            tx.prepare_cached("INSERT INTO events (route, id, shown_id, type, state, size, content_type, received_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?7)").unwrap()
                .execute(rusqlite::params!["smartcv", id.as_bytes(), id, "resume.created", 1200, "application/json", 1764000000000i64 + i as i64]).unwrap();
            let seq = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO bodies (seq, body) VALUES (?1, ?2)").unwrap().execute(rusqlite::params![seq, body(i)]).unwrap();
            seqs.push(seq);
        }
        tx.commit().unwrap();
        let tx = conn.transaction().unwrap();
        for seq in &seqs {
            tx.prepare_cached("UPDATE events SET state = 1, attempts = attempts + 1, last_status = 200, settled_at = ?2, history = history || ?3 WHERE seq = ?1").unwrap()
                .execute(rusqlite::params![seq, 1764000001000i64, "{\"at\":1764000001000,\"status\":200,\"ms\":1}\n"]).unwrap();
        }
        tx.commit().unwrap();
    }
    report("sqlite", c0, t0);
}

fn fjall_run(dir: &str) {
    let ks = fjall::Config::new(format!("{dir}/fj")).open().unwrap();
    let meta = ks.open_partition("meta", Default::default()).unwrap();
    let bodies = ks.open_partition("bodies", Default::default()).unwrap();
    let ids = ks.open_partition("ids", Default::default()).unwrap();
    let c0 = cpu(); let t0 = Instant::now();
    let mut seqs = Vec::new();
    for batch in 0..N / per_commit() {
        let mut b = ks.batch();
        seqs.clear();
        for k in 0..per_commit() {
            let i = batch * per_commit() + k;
            let id = format!("smartcv\0evt_{i}");
            assert!(ids.get(id.as_bytes()).unwrap().is_none());
            let seq = (i as u64).to_be_bytes();
            let m = format!("smartcv|evt_{i}|resume.created|0|1200|application/json|{}|0|", 1764000000000i64 + i as i64);
            b.insert(&meta, seq, m.as_bytes());
            b.insert(&bodies, seq, body(i));
            b.insert(&ids, id.as_bytes(), seq);
            seqs.push(seq);
        }
        b.commit().unwrap();
        ks.persist(fjall::PersistMode::SyncAll).unwrap();
        let mut b = ks.batch();
        for seq in &seqs {
            let old = meta.get(seq).unwrap().unwrap();
            let mut m = old.to_vec();
            m.extend_from_slice(b"1|{\"at\":1764000001000,\"status\":200,\"ms\":1}\n");
            b.insert(&meta, *seq, m);
        }
        b.commit().unwrap();
        ks.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    report("fjall", c0, t0);
}

fn redb_run(dir: &str) {
    use redb::{ReadableTable, TableDefinition};
    const META: TableDefinition<u64, &[u8]> = TableDefinition::new("meta");
    const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
    const IDS: TableDefinition<&[u8], u64> = TableDefinition::new("ids");
    let db = redb::Database::create(format!("{dir}/r.redb")).unwrap();
    let c0 = cpu(); let t0 = Instant::now();
    let mut seqs = Vec::new();
    for batch in 0..N / per_commit() {
        let tx = db.begin_write().unwrap();
        seqs.clear();
        {
            let mut meta = tx.open_table(META).unwrap();
            let mut bodies = tx.open_table(BODIES).unwrap();
            let mut ids = tx.open_table(IDS).unwrap();
            for k in 0..per_commit() {
                let i = batch * per_commit() + k;
                let id = format!("smartcv\0evt_{i}");
                assert!(ids.get(id.as_bytes()).unwrap().is_none());
                let seq = i as u64;
                let m = format!("smartcv|evt_{i}|resume.created|0|1200|application/json|{}|0|", 1764000000000i64 + i as i64);
                meta.insert(seq, m.as_bytes()).unwrap();
                bodies.insert(seq, body(i).as_slice()).unwrap();
                ids.insert(id.as_bytes(), seq).unwrap();
                seqs.push(seq);
            }
        }
        tx.commit().unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            for seq in &seqs {
                let mut m = meta.get(*seq).unwrap().unwrap().value().to_vec();
                m.extend_from_slice(b"1|{\"at\":1764000001000,\"status\":200,\"ms\":1}\n");
                meta.insert(*seq, m.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    report("redb", c0, t0);
}

fn report(name: &str, c0: f64, t0: Instant) {
    let (c1, wall) = (cpu(), t0.elapsed().as_secs_f64());
    println!("{name}: {:.1} µs CPU per event, {:.1} µs wall per event, {:.0} events/s", (c1 - c0) * 1e6 / N as f64, wall * 1e6 / N as f64, N as f64 / wall);
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let dir = std::env::args().nth(2).unwrap_or("/tmp/sb".into());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    match which.as_str() {
        "sqlite" => sqlite(&dir),
        "fjall" => fjall_run(&dir),
        "redb" => redb_run(&dir),
        _ => panic!("sqlite|fjall|redb"),
    }
}
