//! The embedded default store: one SQLite file in WAL mode.
//!
//! Writes go through the single writer thread in [`writer`]; reads use a small pool of read-only
//! connections on blocking threads, so a slow read never delays a commit.

mod chain;
mod compress;
mod dead_letters;
mod history;
mod prune;
mod replay;
mod writer;

pub use super::schema::{AUDIT_GUARDS, GuardProblem, audit_guard_problems};
use super::{
    Appended, Delivery, DeliveryState, DeliveryUpdate, NewEvent, ReplaySelector, Replayed, RouteCommit, RouteCommitted,
    Store, StoreError, StoreResult, StoredEvent,
    audit::{AuditHead, ChainKey},
    schema::{ADDED_COLUMNS, LATE_SCHEMA, SCHEMA},
};
pub use history::{event_outcome, event_outcomes};
use kaunter_model::Event;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use writer::WriteOp;

/// File name of the log inside the data directory.
pub const DB_FILE: &str = "kaunter.db";

/// The SQLite store.
pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<WriteOp>>,
    wal_truncate_bytes: Arc<std::sync::atomic::AtomicU64>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    audit_head: watch::Receiver<AuditHead>,
    /// Pages in use, in bytes, as of the last prune (or open).
    used_bytes: std::sync::atomic::AtomicU64,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/kaunter.db` and starts the writer thread; audit records
    /// are unkeyed (and a keyed log is refused: see [`SqliteStore::open_keyed`]).
    pub fn open(dir: &Path, commit_window: Duration, commit_max_ops: usize) -> StoreResult<SqliteStore> {
        Self::open_keyed(dir, commit_window, commit_max_ops, None)
    }

    /// Opens (creating if needed) `dir/kaunter.db` and starts the writer thread, sealing audit
    /// records with `audit_key`.
    ///
    /// Restores the audit log's append-only triggers if they are missing or altered, records a
    /// key new to the chain (`audit.keyed`), and refuses a keyed log without a key.
    pub fn open_keyed(
        dir: &Path,
        commit_window: Duration,
        commit_max_ops: usize,
        audit_key: Option<ChainKey>,
    ) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create data dir {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A larger page cache keeps index pages hot. Checkpoints run on their own thread (below)
        // so copying the WAL into the database never stalls a commit.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let audit_existed: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'",
            [],
            |r| r.get(0),
        )?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        conn.execute_batch(LATE_SCHEMA)?;
        prepare_backlog(&conn)?;
        let head = chain::prepare(&mut conn, audit_key.as_ref(), audit_existed)?;
        let (head_tx, audit_head) = watch::channel(head);
        // Logs written before kv_usage existed: count each plugin's kv once.
        conn.execute(
            "INSERT INTO kv_usage (plugin, bytes)
             SELECT plugin, SUM(length(key) + length(value)) FROM kv
             WHERE plugin NOT IN (SELECT plugin FROM kv_usage) GROUP BY plugin",
            [],
        )?;
        let used_bytes = std::sync::atomic::AtomicU64::new(prune::used_bytes(&conn)?);
        start_checkpointer(&path)?;
        let (tx, rx) = mpsc::channel();
        let wal_truncate_bytes = Arc::new(std::sync::atomic::AtomicU64::new(WAL_TRUNCATE_BYTES));
        std::thread::Builder::new()
            .name("kaunter-store-writer".into())
            .spawn({
                let wal = (wal_path(&path), wal_truncate_bytes.clone());
                move || writer::run(conn, rx, commit_window, commit_max_ops, &wal, audit_key, head_tx)
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            wal_truncate_bytes,
            readers: Arc::new(Mutex::new(Vec::new())),
            path,
            audit_head,
            used_bytes,
        })
    }

    /// Truncates the WAL once it passes `bytes` (default [`WAL_TRUNCATE_BYTES`]).
    pub fn set_wal_truncate_bytes(&self, bytes: u64) {
        self.wal_truncate_bytes
            .store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The audit chain's head, updated after every commit that appends to it (what the
    /// checkpoint writer follows).
    pub fn audit_head(&self) -> watch::Receiver<AuditHead> {
        self.audit_head.clone()
    }

    /// Sets unreadable rows aside (the `quarantine` table), loudly in the log and in the audit
    /// log, so one damaged row never keeps the host from serving the rest.
    async fn quarantine(&self, rows: Vec<Unreadable>) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            tracing::error!(
                table = row.table,
                row = row.row_id,
                reason = %row.reason,
                "UNREADABLE ROW QUARANTINED: it is set aside (table quarantine) and everything else keeps going; inspect it with sqlite3"
            );
        }
        let entries = rows
            .iter()
            .map(|row| {
                super::audit::AuditEntry::new(
                    "host",
                    "store.quarantined",
                    format!("{}:{}", row.table, row.row_id),
                    serde_json::json!({ "reason": row.reason }),
                )
            })
            .collect();
        self.write(|reply| WriteOp::Quarantine(rows, reply)).await?;
        self.audit(entries).await
    }

    /// Up to `?3` open deliveries of sink `?1` that also match `filter` (on `?2`), in row order;
    /// unreadable ones are quarantined.
    async fn read_open(&self, filter: &'static str, args: Vec<rusqlite::types::Value>) -> StoreResult<Vec<Delivery>> {
        let (good, bad) = self
            .read(move |conn| {
                read_deliveries_lenient(
                    conn,
                    &format!("d.sink = ?1 AND d.state IN ('pending', 'retrying') AND {filter} ORDER BY d.id LIMIT ?3"),
                    rusqlite::params_from_iter(args),
                )
            })
            .await?;
        self.quarantine(bad).await?;
        Ok(good)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T>(&self, op: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteOp) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        {
            let writer = self.writer.lock().map_err(|_| StoreError::WriterGone)?;
            writer.send(op(tx)).map_err(|_| StoreError::WriterGone)?;
        }
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(|_| StoreError::WriterGone)?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    conn.busy_timeout(Duration::from_secs(10))?;
                    conn
                }
            };
            let out = f(&conn);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < 8
            {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

/// Adds the columns of [`ADDED_COLUMNS`] a log written by an earlier version lacks.
fn add_missing_columns(conn: &Connection) -> StoreResult<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            params![column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
            tracing::info!(table, column, "added a column to a log written by an earlier version");
        }
    }
    Ok(())
}

/// Gives open deliveries written before they carried their partition key their event's key (what
/// a worker catching up on one key looks them up by), and recounts each sink's backlog.
fn prepare_backlog(conn: &Connection) -> StoreResult<()> {
    conn.execute(
        "UPDATE deliveries SET partition_key = (SELECT e.partition_key FROM events e WHERE e.seq = deliveries.event_seq)
         WHERE partition_key = '' AND state IN ('pending', 'retrying', 'parked')",
        [],
    )?;
    conn.execute_batch(
        "DELETE FROM sink_backlog;
         INSERT INTO sink_backlog (sink, open, parked)
             SELECT sink, SUM(state IN ('pending', 'retrying')), SUM(state = 'parked') FROM deliveries
             WHERE state IN ('pending', 'retrying', 'parked') GROUP BY sink;",
    )?;
    Ok(())
}

/// By default, above this size the WAL is checkpointed in full and truncated, waiting briefly
/// for readers (`[server] wal_truncate_mib`).
pub const WAL_TRUNCATE_BYTES: u64 = 16 * 1024 * 1024;
/// What SQLite may leave of a WAL after a checkpoint (`journal_size_limit`).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Keeps the WAL short, on its own connection: every second a passive checkpoint copies committed
/// pages into the database file without blocking the writer or readers. Passive checkpoints alone
/// cannot restart the WAL while readers are always busy, so the writer truncates it between
/// commits once it passes [`WAL_TRUNCATE_BYTES`] (see `writer::run`).
fn start_checkpointer(path: &Path) -> StoreResult<()> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    std::thread::Builder::new()
        .name("kaunter-store-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying in 1 s");
                    continue;
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start checkpoint thread: {e}")))?;
    Ok(())
}

/// The WAL file beside a database file.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Audit records after `after_seq`, in order (also used offline by `kaunter audit verify`).
pub fn read_audit(conn: &Connection, after_seq: i64, limit: usize) -> StoreResult<Vec<super::audit::AuditRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit_log
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after_seq, limit as i64], |r| {
        Ok(super::audit::AuditRecord {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            subject: r.get(4)?,
            detail: r.get(5)?,
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How far the audit log was pruned: the last record removed and its hash (what the first record
/// left must follow), if it ever was.
pub fn read_audit_pruned(conn: &Connection) -> StoreResult<Option<(i64, String)>> {
    Ok(conn
        .query_row(
            "SELECT through_seq, hash FROM audit_pruned ORDER BY through_seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Opens an existing log read-only (for offline tools such as `kaunter audit verify`).
pub fn open_read_only(dir: &Path) -> StoreResult<Connection> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Unavailable(format!(
            "no kaunter log at {}; pass --data with the directory `kaunter serve` used (its data_dir)",
            path.display()
        )));
    }
    Ok(Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?)
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_seq, e.id, d.sink, d.route,
    CASE WHEN d.partition_key = '' THEN e.partition_key ELSE d.partition_key END, d.state, d.attempts,
    d.next_attempt_at_ms, d.last_error, d.created_at_ms, d.updated_at_ms, d.delivered_at_ms,
    COALESCE((SELECT c.handled_by FROM chains c WHERE c.id = d.chain_id), d.handled_by),
    d.connector_version,
    CASE WHEN d.body_id IS NOT NULL THEN (SELECT b.body FROM bodies b WHERE b.id = d.body_id)
         WHEN length(d.body) > 0 THEN d.body END,
    e.received_at_us, e.body, d.remote_id, d.note, d.replayed_at_ms, e.trace, e.trace_state";

/// A row that could not be read, to set aside (see the `quarantine` table).
#[derive(Debug, Clone)]
pub(crate) struct Unreadable {
    /// `events` or `deliveries`.
    pub table: &'static str,
    /// Its `seq` or `id`.
    pub row_id: i64,
    /// What was wrong with it.
    pub reason: String,
}

/// Deliveries matching a `WHERE` clause over `deliveries d JOIN events e`, in id order.
pub(crate) fn read_deliveries(conn: &Connection, filter: &str, args: impl Params) -> StoreResult<Vec<Delivery>> {
    let (good, bad) = read_deliveries_lenient(conn, filter, args)?;
    match bad.into_iter().next() {
        Some(row) => Err(StoreError::Corrupt(format!("delivery {}: {}", row.row_id, row.reason))),
        None => Ok(good),
    }
}

/// As [`read_deliveries`], with the rows that cannot be read returned apart instead of failing
/// the whole read.
pub(crate) fn read_deliveries_lenient(
    conn: &Connection,
    filter: &str,
    args: impl Params,
) -> StoreResult<(Vec<Delivery>, Vec<Unreadable>)> {
    let order = if filter.contains("ORDER BY") {
        ""
    } else {
        " ORDER BY d.id"
    };
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE {filter}{order}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, |r| {
        let id: i64 = r.get(0)?;
        let row = (|| -> rusqlite::Result<(Delivery, String, Vec<u8>)> {
            Ok((
                Delivery {
                    id,
                    event_seq: r.get(1)?,
                    event_id: r.get(2)?,
                    sink: r.get(3)?,
                    route: r.get(4)?,
                    partition_key: r.get(5)?,
                    state: DeliveryState::Pending,
                    attempts: r.get(7)?,
                    next_attempt_at_ms: r.get(8)?,
                    last_error: r.get(9)?,
                    created_at_ms: r.get(10)?,
                    updated_at_ms: r.get(11)?,
                    delivered_at_ms: r.get(12)?,
                    handled_by: r.get(13)?,
                    connector_version: r.get(14)?,
                    remote_id: r.get(18)?,
                    note: r.get(19)?,
                    replayed_at_ms: r.get(20)?,
                    body: r.get::<_, Option<Vec<u8>>>(15)?.unwrap_or_default(),
                    received_at_us: r.get(16)?,
                    trace: stored_trace(r.get(21)?, r.get(22)?),
                },
                r.get::<_, String>(6)?,
                r.get::<_, Vec<u8>>(17)?,
            ))
        })();
        Ok((id, row))
    })?;
    let mut finished = Vec::new();
    for row in rows {
        let (id, row) = row?;
        let delivery = row
            .map_err(StoreError::from)
            .and_then(|(mut delivery, state, event_body)| {
                delivery.state = DeliveryState::parse(&state)?;
                let event_body = compress::unpack(&event_body)?;
                delivery.body = if delivery.body.is_empty() {
                    event_body.into_owned()
                } else {
                    compress::unpack_against(&delivery.body, &event_body)?.into_owned()
                };
                Ok(delivery)
            });
        finished.push((id, delivery));
    }
    Ok(readable("deliveries", finished))
}

/// The rows that could be read, and the others as [`Unreadable`] rows of `table`.
fn readable<T>(table: &'static str, rows: Vec<(i64, StoreResult<T>)>) -> (Vec<T>, Vec<Unreadable>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (row_id, row) in rows {
        match row {
            Ok(value) => good.push(value),
            Err(e) => bad.push(Unreadable {
                table,
                row_id,
                reason: e.to_string(),
            }),
        }
    }
    (good, bad)
}

/// The columns [`event_row`] reads.
const EVENT_COLUMNS: &str = "seq, body, received_at_us, parent_seq, trace, trace_state";

/// One `events` row as stored: seq, body, receive time, parent, trace context.
type EventRow = (i64, Vec<u8>, i64, Option<i64>, Option<String>, Option<String>);

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

/// The trace context kept in `trace` and `trace_state`.
fn stored_trace(traceparent: Option<String>, state: Option<String>) -> Option<crate::telemetry::trace::EventTrace> {
    crate::telemetry::trace::EventTrace::parse(&traceparent?, state.as_deref())
}

/// One event matching a `WHERE` clause over `events`.
pub(crate) fn read_event(conn: &Connection, filter: &str, args: impl Params) -> StoreResult<Option<StoredEvent>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE {filter} ORDER BY seq LIMIT 1");
    let row: Option<EventRow> = conn.prepare_cached(&sql)?.query_row(args, event_row).optional()?;
    row.map(decode_event).transpose()
}

fn decode_event((seq, body, received_at_us, parent_seq, trace, trace_state): EventRow) -> StoreResult<StoredEvent> {
    let body = compress::unpack(&body).map_err(|e| StoreError::Corrupt(format!("event seq {seq}: {e}")))?;
    let event = Event::from_stored(&body).map_err(|e| StoreError::Corrupt(format!("event seq {seq}: {e}")))?;
    Ok(StoredEvent {
        seq,
        event,
        received_at_us,
        parent_seq,
        trace: stored_trace(trace, trace_state),
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn disk_usage(&self) -> super::DiskUsage {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        super::DiskUsage {
            database_bytes: size(&self.path),
            used_bytes: self.used_bytes.load(std::sync::atomic::Ordering::Relaxed),
            wal_bytes: size(&wal_path(&self.path)),
        }
    }

    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Appended>> {
        // Compressed here, in the caller's task, so the single writer thread only writes.
        let packed = events.iter().map(|e| compress::pack(&e.body)).collect();
        self.write(|reply| WriteOp::Append(events, packed, reply)).await
    }

    async fn commit_routes(&self, commits: Arc<Vec<RouteCommit>>) -> StoreResult<Vec<RouteCommitted>> {
        self.write(|reply| WriteOp::Route(commits, reply)).await
    }

    async fn update_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        self.write(|reply| WriteOp::Update(updates, reply)).await
    }

    async fn dead_letter_sink(&self, sink: &str, plugin: &str, error: &str) -> StoreResult<usize> {
        let (sink, plugin, error) = (sink.to_owned(), plugin.to_owned(), error.to_owned());
        self.write(|reply| WriteOp::DeadLetterSink {
            sink,
            plugin,
            error,
            reply,
        })
        .await
    }

    async fn sinks_with_open_deliveries(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT sink FROM sink_backlog WHERE open > 0 OR parked > 0 ORDER BY sink")?;
            let sinks = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(sinks)
        })
        .await
    }

    async fn unrouted(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        let (good, bad) = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE routed = 0 AND seq > ?1 ORDER BY seq LIMIT ?2"
                ))?;
                let rows = stmt.query_map(params![after_seq, limit as i64], |r| {
                    let seq: i64 = r.get(0)?;
                    let row = event_row(r);
                    Ok((seq, row))
                })?;
                let mut decoded = Vec::new();
                for row in rows {
                    let (seq, row) = row?;
                    decoded.push((seq, row.map_err(StoreError::from).and_then(decode_event)));
                }
                Ok(readable("events", decoded))
            })
            .await?;
        self.quarantine(bad).await?;
        Ok(good)
    }

    async fn open_deliveries(&self, sink: &str, after_id: i64, limit: usize) -> StoreResult<Vec<Delivery>> {
        let args = vec![sink.to_owned().into(), after_id.into(), (limit as i64).into()];
        self.read_open("d.id > ?2", args).await
    }

    async fn open_deliveries_of_key(&self, sink: &str, key: &str, limit: usize) -> StoreResult<Vec<Delivery>> {
        let args = vec![sink.to_owned().into(), key.to_owned().into(), (limit as i64).into()];
        self.read_open("d.partition_key = ?2", args).await
    }

    async fn backlogs(&self) -> StoreResult<Vec<super::SinkBacklog>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT sink, open, parked FROM sink_backlog WHERE open > 0 OR parked > 0 ORDER BY sink",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(super::SinkBacklog {
                    sink: r.get(0)?,
                    open: r.get::<_, i64>(1)?.max(0) as u64,
                    parked: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn prune(&self, policy: super::PrunePolicy) -> StoreResult<super::Pruned> {
        let pruned = self.write(|reply| WriteOp::Prune(policy, reply)).await?;
        let used = self.read(|conn| Ok(prune::used_bytes(conn)?)).await?;
        self.used_bytes.store(used, std::sync::atomic::Ordering::Relaxed);
        Ok(pruned)
    }

    async fn prune_audit(&self, through_seq: i64, hash: &str) -> StoreResult<u64> {
        let hash = hash.to_owned();
        let removed = self
            .write(|reply| WriteOp::PruneAudit {
                through: through_seq,
                hash,
                reply,
            })
            .await?;
        Ok(removed as u64)
    }

    async fn unpark(&self, sink: &str) -> StoreResult<usize> {
        let sink = sink.to_owned();
        self.write(|reply| WriteOp::Unpark { sink, reply }).await
    }

    async fn sources_of(&self, id: &str) -> StoreResult<Vec<String>> {
        let id = id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT source FROM events WHERE id = ?1 ORDER BY seq LIMIT 100")?;
            let sources = stmt.query_map(params![id], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(sources)
        })
        .await
    }

    async fn quarantined(&self) -> StoreResult<u64> {
        self.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get::<_, i64>(0))? as u64))
            .await
    }

    async fn event(&self, id: &str, source: Option<&str>) -> StoreResult<Option<(StoredEvent, Vec<Delivery>)>> {
        let (id, source) = (id.to_owned(), source.map(str::to_owned));
        self.read(move |conn| {
            let Some(event) = read_event(conn, "id = ?1 AND (?2 IS NULL OR source = ?2)", params![id, source])? else {
                return Ok(None);
            };
            let deliveries = read_deliveries(conn, "d.event_seq = ?1", params![event.seq])?;
            Ok(Some((event, deliveries)))
        })
        .await
    }

    async fn sink_health(&self, sinks: Vec<String>) -> StoreResult<Vec<super::SinkHealth>> {
        self.read(move |conn| history::sink_health(conn, &sinks)).await
    }

    async fn event_outcomes(
        &self,
        since_us: i64,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<super::EventOutcome>> {
        self.read(move |conn| history::event_outcomes(conn, since_us, after_seq, limit))
            .await
    }

    async fn history(&self, event_seq: i64) -> StoreResult<super::EventHistory> {
        self.read(move |conn| history::history(conn, event_seq)).await
    }

    async fn events_of_order(
        &self,
        order: &str,
        store: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<super::EventRef>> {
        let (order, store) = (order.to_owned(), store.map(str::to_owned));
        self.read(move |conn| history::events_of_order(conn, &order, store.as_deref(), limit))
            .await
    }

    async fn dead_letters(
        &self,
        query: super::DeadLetterQuery,
        limit: usize,
        offset: usize,
    ) -> StoreResult<super::DeadLetterPage> {
        self.read(move |conn| dead_letters::page(conn, &query, limit, offset))
            .await
    }

    async fn replay(
        &self,
        selector: ReplaySelector,
        record: Option<super::audit::AuditEntry>,
    ) -> StoreResult<Replayed> {
        self.write(|reply| WriteOp::Replay(selector, record, reply)).await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: String) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(|reply| WriteOp::Setting { key, value, reply }).await
    }

    async fn events_since(
        &self,
        since_us: i64,
        after_seq: i64,
        through_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE seq > ?1 AND seq <= ?4 AND received_at_us >= ?2 AND parent_seq IS NULL ORDER BY seq LIMIT ?3"
                ))?;
            let rows = stmt.query_map(params![after_seq, since_us, limit as i64, through_seq], event_row)?;
            rows.map(|row| decode_event(row?)).collect()
        })
        .await
    }

    async fn count_events_since(&self, since_us: i64) -> StoreResult<(u64, i64)> {
        self.read(move |conn| {
            let (n, through): (i64, i64) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(max(seq), 0) FROM events WHERE received_at_us >= ?1 AND parent_seq IS NULL",
                )?
                .query_row(params![since_us], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((n as u64, through))
        })
        .await
    }

    async fn kv_get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
                .query_row(params![plugin, key], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn kv_set(&self, plugin: &str, key: &str, value: Vec<u8>, quota: u64) -> StoreResult<()> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.write(|reply| WriteOp::KvSet {
            plugin,
            key,
            value,
            quota,
            reply,
        })
        .await
    }

    async fn kv_delete(&self, plugin: &str, key: &str) -> StoreResult<()> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.write(|reply| WriteOp::KvDelete { plugin, key, reply }).await
    }

    async fn approvals(&self, name: &str, version: &str) -> StoreResult<(Option<super::Approval>, bool)> {
        let (name, version) = (name.to_owned(), version.to_owned());
        self.read(move |conn| {
            let latest = conn
                .prepare_cached(
                    "SELECT name, version, digest, requests, approved_by FROM plugin_approvals
                     WHERE name = ?1 ORDER BY approved_at_ms DESC, rowid DESC LIMIT 1",
                )?
                .query_row(params![name], |r| {
                    Ok(super::Approval {
                        name: r.get(0)?,
                        version: r.get(1)?,
                        digest: r.get(2)?,
                        requests: r.get(3)?,
                        approved_by: r.get(4)?,
                    })
                })
                .optional()?;
            let this: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM plugin_approvals WHERE name = ?1 AND version = ?2")?
                .query_row(params![name, version], |r| r.get(0))
                .optional()?;
            Ok((latest, this.is_some()))
        })
        .await
    }

    async fn approve(&self, approval: super::Approval) -> StoreResult<()> {
        self.write(|reply| WriteOp::Approve(approval, reply)).await
    }

    async fn audit(&self, entries: Vec<super::audit::AuditEntry>) -> StoreResult<()> {
        self.write(|reply| WriteOp::Audit(entries, reply)).await
    }

    async fn audit_log(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<super::audit::AuditRecord>> {
        self.read(move |conn| read_audit(conn, after_seq, limit)).await
    }
}

#[cfg(test)]
mod tests;
