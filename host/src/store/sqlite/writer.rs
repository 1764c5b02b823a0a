//! The single writer: one thread, one connection, group commit.
//!
//! Writers send a [`WriteOp`] with a reply channel. The thread takes the first op and gathers
//! more while they keep arriving (each within a tenth of the commit window of the last, for at
//! most the whole window, or until the batch is full), so a lone write commits at once and a burst
//! shares one fsync. It applies them all in one transaction
//! (each in its own savepoint, so one bad op fails alone), commits with `synchronous = FULL`
//! (fsync of the WAL), and only then replies. Throughput therefore grows with concurrency while
//! every acknowledged write is on disk.

use super::super::audit::{AuditHead, ChainKey};
use super::super::{
    Appended, AttemptFailure, Delivery, DeliveryState, DeliveryUpdate, NewDeadLetter, NewDelivery, NewEvent,
    RouteCommit, RouteCommitted, StoreError, StoreResult, now_ms,
};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// One unit of work for the writer, with where to send its result.
pub(crate) enum WriteOp {
    /// Events with their bodies already packed (off the writer thread).
    Append(Vec<NewEvent>, Vec<Vec<u8>>, oneshot::Sender<StoreResult<Vec<Appended>>>),
    Route(
        std::sync::Arc<Vec<RouteCommit>>,
        oneshot::Sender<StoreResult<Vec<RouteCommitted>>>,
    ),
    Update(Vec<DeliveryUpdate>, oneshot::Sender<StoreResult<()>>),
    Replay(
        super::super::ReplaySelector,
        Option<super::super::audit::AuditEntry>,
        oneshot::Sender<StoreResult<super::super::Replayed>>,
    ),
    KvSet {
        plugin: String,
        key: String,
        value: Vec<u8>,
        quota: u64,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Audit(Vec<super::super::audit::AuditEntry>, oneshot::Sender<StoreResult<()>>),
    Approve(super::super::Approval, oneshot::Sender<StoreResult<()>>),
    KvDelete {
        plugin: String,
        key: String,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Setting {
        key: String,
        value: String,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Quarantine(Vec<super::Unreadable>, oneshot::Sender<StoreResult<()>>),
    DeadLetterSink {
        sink: String,
        plugin: String,
        error: String,
        reply: oneshot::Sender<StoreResult<usize>>,
    },
    Unpark {
        sink: String,
        reply: oneshot::Sender<StoreResult<usize>>,
    },
    Prune(
        super::super::PrunePolicy,
        oneshot::Sender<StoreResult<super::super::Pruned>>,
    ),
    PruneAudit {
        through: i64,
        hash: String,
        reply: oneshot::Sender<StoreResult<usize>>,
    },
}

/// A finished op waiting for the commit before its reply is sent.
enum Reply {
    Append(oneshot::Sender<StoreResult<Vec<Appended>>>, StoreResult<Vec<Appended>>),
    Route(
        oneshot::Sender<StoreResult<Vec<RouteCommitted>>>,
        StoreResult<Vec<RouteCommitted>>,
    ),
    Unit(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
    Count(oneshot::Sender<StoreResult<usize>>, StoreResult<usize>),
    Replay(
        oneshot::Sender<StoreResult<super::super::Replayed>>,
        StoreResult<super::super::Replayed>,
    ),
    Pruned(
        oneshot::Sender<StoreResult<super::super::Pruned>>,
        StoreResult<super::super::Pruned>,
    ),
}

impl Reply {
    fn send(self, commit: &Result<(), String>) {
        // A receiver that went away (client disconnected) needs no answer.
        macro_rules! answer {
            ($tx:expr, $result:expr) => {{
                let result = match commit {
                    Ok(()) => $result,
                    Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                let _ = $tx.send(result);
            }};
        }
        match self {
            Reply::Append(tx, r) => answer!(tx, r),
            Reply::Route(tx, r) => answer!(tx, r),
            Reply::Unit(tx, r) => answer!(tx, r),
            Reply::Count(tx, r) => answer!(tx, r),
            Reply::Replay(tx, r) => answer!(tx, r),
            Reply::Pruned(tx, r) => answer!(tx, r),
        }
    }
}

/// The audit chain as the writer keeps it: the key it seals with, and where it publishes the
/// head after each commit.
struct Chain {
    key: Option<ChainKey>,
    head: watch::Sender<AuditHead>,
}

/// Runs the writer until every sender is dropped. Between commits, at most every 100 ms, it
/// truncates the WAL at `wal` once it passes `truncate_at` bytes: as the only writer it
/// never meets a write lock, and waits only for readers of older snapshots to finish.
pub(crate) fn run(
    mut conn: Connection,
    rx: Receiver<WriteOp>,
    window: Duration,
    max_ops: usize,
    (wal, truncate_at): &(std::path::PathBuf, std::sync::Arc<std::sync::atomic::AtomicU64>),
    audit_key: Option<ChainKey>,
    audit_head: watch::Sender<AuditHead>,
) {
    let chain = Chain {
        key: audit_key,
        head: audit_head,
    };
    let gap = window / 10;
    let mut wal_checked = Instant::now();
    loop {
        // Idle for a second: look at the WAL anyway (the last burst may have left it long).
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                wal_checked = Instant::now();
                truncate_wal_if_long(&conn, wal, truncate_at.load(std::sync::atomic::Ordering::Relaxed));
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + window;
        while batch.len() < max_ops {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => {
                    let left = deadline.saturating_duration_since(Instant::now()).min(gap);
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(op) => batch.push(op),
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            }
        }
        let started = Instant::now();
        commit_batch(&mut conn, batch, &chain);
        crate::telemetry::prom::metrics().observe_commit(started.elapsed());
        // A burst can write megabytes a second: look at the WAL every tenth of a second between
        // commits (a size check; it is truncated only when past its threshold).
        if wal_checked.elapsed() >= Duration::from_millis(100) {
            wal_checked = Instant::now();
            truncate_wal_if_long(&conn, wal, truncate_at.load(std::sync::atomic::Ordering::Relaxed));
        }
    }
}

fn truncate_wal_if_long(conn: &Connection, wal: &std::path::Path, limit: u64) {
    let size = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    if size <= limit {
        return;
    }
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => tracing::debug!(bytes = size, "WAL truncated"),
        Ok(_) => tracing::info!(bytes = size, "WAL not truncated yet: readers were busy; trying again"),
        Err(e) => tracing::warn!(error = %e, "WAL truncate failed; trying again"),
    }
}

fn commit_batch(conn: &mut Connection, batch: Vec<WriteOp>, chain: &Chain) {
    let mut replies = Vec::with_capacity(batch.len());
    let mut head = None;
    let outcome = (|| -> Result<(), String> {
        let mut tx = conn.transaction().map_err(|e| e.to_string())?;
        for op in batch {
            replies.push(apply_in_savepoint(&mut tx, op, chain, &mut head));
        }
        tx.commit().map_err(|e| e.to_string())
    })();
    match (&outcome, head) {
        (Err(e), _) => {
            tracing::error!(error = %e, ops = replies.len(), "group commit failed; every write in it is reported failed")
        }
        (Ok(()), Some(head)) => {
            chain.head.send_modify(|h| {
                let operator_seq = head.operator_seq.max(h.operator_seq);
                *h = AuditHead { operator_seq, ..head };
            });
        }
        (Ok(()), None) => {}
    }
    for reply in replies {
        reply.send(&outcome);
    }
}

/// Applies one op in its own savepoint; an audit append that stays leaves the chain's new head in
/// `head`.
fn apply_in_savepoint(tx: &mut Transaction<'_>, op: WriteOp, chain: &Chain, head: &mut Option<AuditHead>) -> Reply {
    fn scoped<T>(tx: &mut Transaction<'_>, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let sp = tx.savepoint()?;
        let out = f(&sp)?;
        sp.commit()?;
        Ok(out)
    }
    match op {
        WriteOp::Append(events, packed, reply) => Reply::Append(reply, scoped(tx, |t| append(t, &events, &packed))),
        WriteOp::Route(commits, reply) => Reply::Route(reply, scoped(tx, |t| route(t, &commits))),
        WriteOp::Update(updates, reply) => Reply::Unit(reply, scoped(tx, |t| update(t, updates))),
        WriteOp::Replay(selector, record, reply) => Reply::Replay(
            reply,
            scoped(tx, |t| {
                let by_ids = matches!(selector, super::super::ReplaySelector::Ids(_));
                let replayed = super::replay::replay(t, selector, record.as_ref().map(|r| r.actor.as_str()))?;
                // Recorded in the same transaction: a replay without its record does not happen.
                // Named entries are listed; a filtered replay records its filter (in the detail
                // already) and the count, not thousands of ids.
                if let Some(mut record) = record {
                    if by_ids {
                        record.detail["entries"] = serde_json::json!(replayed.entries);
                    }
                    record.detail["count"] = serde_json::json!(replayed.entries.len());
                    let new = super::chain::append(t, chain.key.as_ref(), &[record])?;
                    let operator_seq = head.as_ref().map_or(0, |h| h.operator_seq).max(new.operator_seq);
                    *head = Some(AuditHead { operator_seq, ..new });
                }
                Ok(replayed)
            }),
        ),
        WriteOp::KvSet {
            plugin,
            key,
            value,
            quota,
            reply,
        } => Reply::Unit(reply, scoped(tx, |t| kv_set(t, &plugin, &key, &value, quota))),
        WriteOp::Audit(entries, reply) => {
            let appended = scoped(tx, |t| super::chain::append(t, chain.key.as_ref(), &entries));
            Reply::Unit(
                reply,
                appended.map(|new| {
                    let operator_seq = head.as_ref().map_or(0, |h| h.operator_seq).max(new.operator_seq);
                    *head = Some(AuditHead { operator_seq, ..new });
                }),
            )
        }
        WriteOp::Approve(a, reply) => Reply::Unit(
            reply,
            scoped(tx, |t| {
                t.execute(
                    "INSERT OR REPLACE INTO plugin_approvals (name, version, digest, requests, approved_at_ms, approved_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![a.name, a.version, a.digest, a.requests, now_ms(), a.approved_by],
                )?;
                Ok(())
            }),
        ),
        WriteOp::Setting { key, value, reply } => Reply::Unit(
            reply,
            scoped(tx, |t| {
                t.execute(
                    "INSERT INTO settings (key, value, updated_at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
                    params![key, value, now_ms()],
                )?;
                Ok(())
            }),
        ),
        WriteOp::KvDelete { plugin, key, reply } => Reply::Unit(reply, scoped(tx, |t| kv_delete(t, &plugin, &key))),
        WriteOp::Quarantine(rows, reply) => Reply::Unit(reply, scoped(tx, |t| quarantine(t, &rows))),
        WriteOp::DeadLetterSink {
            sink,
            plugin,
            error,
            reply,
        } => Reply::Count(reply, scoped(tx, |t| dead_letter_sink(t, &sink, &plugin, &error))),
        WriteOp::Prune(policy, reply) => Reply::Pruned(reply, scoped(tx, |t| super::prune::prune(t, policy))),
        WriteOp::PruneAudit { through, hash, reply } => {
            Reply::Count(reply, scoped(tx, |t| super::prune::prune_audit(t, through, &hash)))
        }
        WriteOp::Unpark { sink, reply } => Reply::Count(
            reply,
            scoped(tx, |t| {
                Ok(t.execute(
                    "UPDATE deliveries SET state = 'pending', next_attempt_at_ms = ?2, updated_at_ms = ?2
                     WHERE sink = ?1 AND state = 'parked'",
                    params![sink, now_ms()],
                )?)
            }),
        ),
    }
}

/// Appends `events`, whose stored bodies are `packed` (see [`super::compress::pack`]), in order.
pub(super) fn append(tx: &Connection, events: &[NewEvent], packed: &[Vec<u8>]) -> StoreResult<Vec<Appended>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (id, source, type, partition_key, received_at_us, parent_seq, body, order_id, trace, trace_state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (source, id) DO NOTHING",
    )?;
    let mut existing = tx.prepare_cached("SELECT seq, body FROM events WHERE source = ?1 AND id = ?2")?;
    let mut pruned = tx.prepare_cached("SELECT content_sha256 FROM pruned_events WHERE source = ?1 AND id = ?2")?;
    let mut out = Vec::with_capacity(events.len());
    for (new, packed) in events.iter().zip(packed) {
        let e = &new.event;
        // Pruned, but still remembered: a duplicate, as if it were there (it has no seq now).
        if let Some(stored_sha256) = pruned
            .query_row(params![e.source, e.id], |r| r.get::<_, String>(0))
            .optional()?
        {
            let sent_sha256 = super::super::content_sha256(&new.body);
            out.push(Appended {
                seq: 0,
                duplicate: true,
                conflict: (stored_sha256 != sent_sha256).then_some(super::super::ContentConflict {
                    stored_sha256,
                    sent_sha256,
                }),
            });
            continue;
        }
        let changed = insert.execute(params![
            e.id,
            e.source,
            e.ty,
            e.partition_key,
            new.received_at_us,
            new.parent_seq,
            packed,
            super::super::order_of(e),
            new.trace.as_ref().map(|t| t.traceparent()),
            new.trace.as_ref().and_then(|t| t.state.clone())
        ])?;
        if changed == 1 {
            out.push(Appended {
                seq: tx.last_insert_rowid(),
                duplicate: false,
                conflict: None,
            });
        } else {
            let (seq, stored): (i64, Vec<u8>) =
                existing.query_row(params![e.source, e.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let stored_sha256 = super::super::content_sha256(&super::compress::unpack(&stored)?);
            let sent_sha256 = super::super::content_sha256(&new.body);
            let conflict = (stored_sha256 != sent_sha256).then_some(super::super::ContentConflict {
                stored_sha256,
                sent_sha256,
            });
            out.push(Appended {
                seq,
                duplicate: true,
                conflict,
            });
        }
    }
    Ok(out)
}

fn route(tx: &Connection, commits: &[RouteCommit]) -> StoreResult<Vec<RouteCommitted>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(commits.len());
    for commit in commits {
        let packed: Vec<Vec<u8>> = commit.derived.iter().map(|d| super::compress::pack(&d.body)).collect();
        let derived = append(tx, &commit.derived, &packed)?;
        let mut deliveries = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (event_seq, sink, route, partition_key, state, attempts,
                     next_attempt_at_ms, created_at_ms, updated_at_ms, handled_by, chain_id, body, body_id, replayed_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?8, 0, CASE WHEN ?8 = 'pending' THEN ?5 END, ?5, ?5, '', ?6, X'', ?7,
                     CASE WHEN ?9 THEN ?5 END)
                 ON CONFLICT (sink, event_seq) DO NOTHING",
            )?;
            let mut reopen = tx.prepare_cached(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = ?3,
                     updated_at_ms = ?3, replayed_at_ms = ?3, last_error = NULL, delivered_at_ms = NULL, route = ?4,
                     handled_by = '', chain_id = ?5, body = X'', body_id = ?6, partition_key = ?7
                 WHERE event_seq = ?1 AND sink = ?2 AND state IN ('delivered', 'dead_lettered')
                 RETURNING id",
            )?;
            let mut bodies = Bodies::of_event(tx, commit.event_seq)?;
            for d in &commit.deliveries {
                let body_id = bodies.intern(tx, &d.body)?;
                let chain_id = bodies.chain(tx, &d.handled_by)?;
                let state = if over_backlog(tx, &d.sink, d.max_backlog)? {
                    DeliveryState::Parked
                } else {
                    DeliveryState::Pending
                };
                let changed = insert.execute(params![
                    commit.event_seq,
                    d.sink,
                    d.route,
                    d.partition_key,
                    now,
                    chain_id,
                    body_id,
                    if state == DeliveryState::Parked {
                        "parked"
                    } else {
                        "pending"
                    },
                    commit.redeliver,
                ])?;
                if changed == 1 {
                    deliveries.push(created_delivery(tx.last_insert_rowid(), commit, d, now, state));
                } else if commit.redeliver
                    && let Some(id) = reopen
                        .query_row(
                            params![
                                commit.event_seq,
                                d.sink,
                                now,
                                d.route,
                                chain_id,
                                body_id,
                                d.partition_key
                            ],
                            |r| r.get::<_, i64>(0),
                        )
                        .optional()?
                {
                    deliveries.push(created_delivery(id, commit, d, now, DeliveryState::Pending));
                }
            }
        }
        for letter in &commit.dead_letters {
            insert_dead_letter(tx, letter, now)?;
        }
        let dropped = (!commit.dropped_routes.is_empty()).then(|| commit.dropped_routes.join(","));
        tx.prepare_cached("UPDATE events SET routed = 1, dropped_routes = ?2 WHERE seq = ?1")?
            .execute(params![commit.event_seq, dropped])?;
        out.push(RouteCommitted { derived, deliveries });
    }
    Ok(out)
}

/// Where the deliveries of one routed event take their body from: the event's own body when a
/// delivery's is the same (no copy), else one shared row in `bodies` per distinct content.
struct Bodies {
    event_seq: i64,
    event_body: Vec<u8>,
    interned: Vec<(Vec<u8>, i64)>,
    chains: Vec<(String, i64)>,
}

impl Bodies {
    fn of_event(tx: &Connection, event_seq: i64) -> StoreResult<Bodies> {
        let stored: Vec<u8> = tx
            .prepare_cached("SELECT body FROM events WHERE seq = ?1")?
            .query_row(params![event_seq], |r| r.get(0))
            .optional()?
            .unwrap_or_default();
        let event_body = super::compress::unpack(&stored)?.into_owned();
        Ok(Bodies {
            event_seq,
            event_body,
            interned: Vec::new(),
            chains: Vec::new(),
        })
    }

    /// The id of the `chains` row for `handled_by`.
    fn chain(&mut self, tx: &Connection, handled_by: &str) -> StoreResult<i64> {
        if let Some((_, id)) = self.chains.iter().find(|(h, _)| h == handled_by) {
            return Ok(*id);
        }
        let id: i64 = tx
            .prepare_cached(
                "INSERT INTO chains (handled_by) VALUES (?1)
                 ON CONFLICT (handled_by) DO UPDATE SET handled_by = excluded.handled_by RETURNING id",
            )?
            .query_row(params![handled_by], |r| r.get(0))?;
        self.chains.push((handled_by.to_owned(), id));
        Ok(id)
    }

    /// `None` when `body` is the event's own; else the id of its row in `bodies`.
    fn intern(&mut self, tx: &Connection, body: &[u8]) -> StoreResult<Option<i64>> {
        if body == self.event_body.as_slice() {
            return Ok(None);
        }
        if let Some((_, id)) = self.interned.iter().find(|(b, _)| b.as_slice() == body) {
            return Ok(Some(*id));
        }
        tx.prepare_cached("INSERT INTO bodies (event_seq, body) VALUES (?1, ?2)")?
            .execute(params![
                self.event_seq,
                super::compress::pack_against(body, &self.event_body)
            ])?;
        let id = tx.last_insert_rowid();
        self.interned.push((body.to_vec(), id));
        Ok(Some(id))
    }
}

/// Whether a new delivery to `sink` must be parked: the sink has `max_backlog` open deliveries
/// or more, or has parked ones already (which keeps each key's order: nothing overtakes them).
fn over_backlog(tx: &Connection, sink: &str, max_backlog: u64) -> StoreResult<bool> {
    let (open, parked): (i64, i64) = tx
        .prepare_cached("SELECT open, parked FROM sink_backlog WHERE sink = ?1")?
        .query_row(params![sink], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0));
    Ok(parked > 0 || (max_backlog > 0 && open as u64 >= max_backlog))
}

/// The row just inserted for `d`, without reading it back.
fn created_delivery(id: i64, commit: &RouteCommit, d: &NewDelivery, now_ms: i64, state: DeliveryState) -> Delivery {
    Delivery {
        id,
        event_seq: commit.event_seq,
        event_id: commit.event_id.clone(),
        sink: d.sink.clone(),
        route: d.route.clone(),
        partition_key: d.partition_key.clone(),
        state,
        attempts: 0,
        next_attempt_at_ms: (state == DeliveryState::Pending).then_some(now_ms),
        last_error: None,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        delivered_at_ms: None,
        handled_by: d.handled_by.clone(),
        connector_version: None,
        remote_id: None,
        note: None,
        replayed_at_ms: commit.redeliver.then_some(now_ms),
        body: d.body.clone(),
        received_at_us: commit.received_at_us,
        trace: commit.trace.clone(),
    }
}

pub(super) fn insert_dead_letter(tx: &Connection, letter: &NewDeadLetter, now: i64) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO dead_letters (event_seq, sink, route, plugin, plugin_version, error, attempts, failed_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        letter.event_seq,
        letter.sink,
        letter.route,
        letter.plugin,
        letter.plugin_version,
        letter.error,
        letter.attempts,
        now
    ])?;
    Ok(())
}

/// Sets unreadable rows aside: recorded in `quarantine`, and marked so they are not read again
/// (an event as routed, a delivery as quarantined).
fn quarantine(tx: &Connection, rows: &[super::Unreadable]) -> StoreResult<()> {
    let now = now_ms();
    for row in rows {
        tx.prepare_cached(
            "INSERT INTO quarantine (source_table, row_id, reason, quarantined_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source_table, row_id) DO NOTHING",
        )?
        .execute(params![row.table, row.row_id, row.reason, now])?;
        match row.table {
            "events" => tx.execute("UPDATE events SET routed = 1 WHERE seq = ?1", params![row.row_id])?,
            _ => tx.execute(
                "UPDATE deliveries SET state = 'quarantined', next_attempt_at_ms = NULL WHERE id = ?1",
                params![row.row_id],
            )?,
        };
    }
    Ok(())
}

/// Moves every open delivery of `sink` to the dead letters with `error`; how many.
fn dead_letter_sink(tx: &Connection, sink: &str, plugin: &str, error: &str) -> StoreResult<usize> {
    let now = now_ms();
    let moved: Vec<(i64, String, u32, Option<String>)> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'dead_lettered', next_attempt_at_ms = NULL, last_error = ?2,
                 updated_at_ms = ?3
             WHERE sink = ?1 AND state IN ('pending', 'retrying', 'parked')
             RETURNING event_seq, route, attempts, connector_version",
        )?
        .query_map(params![sink, error, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    for (event_seq, route, attempts, version) in &moved {
        let letter = NewDeadLetter {
            event_seq: *event_seq,
            sink: Some(sink.to_owned()),
            route: route.clone(),
            plugin: plugin.to_owned(),
            plugin_version: version.clone().unwrap_or_default(),
            error: error.to_owned(),
            attempts: *attempts,
        };
        insert_dead_letter(tx, &letter, now)?;
    }
    Ok(moved.len())
}

/// A finished delivery's partition key as stored: empty when it is its event's (reads fill it
/// in), so finished rows stay compact; open rows keep theirs (the `deliveries_open_by_key` index).
macro_rules! compact_key {
    () => {
        "CASE WHEN partition_key = (SELECT e.partition_key FROM events e WHERE e.seq = deliveries.event_seq)
             THEN '' ELSE partition_key END"
    };
}

fn update(tx: &Connection, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
    let now = now_ms();
    for u in updates {
        match u {
            DeliveryUpdate::Delivered {
                id,
                attempts,
                connector_version,
                remote_id,
                note,
            } => {
                // Earlier failures stay in `delivery_failures`; the row no longer shows them.
                tx.prepare_cached(concat!(
                    "UPDATE deliveries SET state = 'delivered', attempts = ?2, next_attempt_at_ms = NULL, last_error = NULL,
                         updated_at_ms = ?3, delivered_at_ms = ?3, connector_version = ?4, remote_id = ?5, note = ?6, partition_key = ",
                    compact_key!(),
                    " WHERE id = ?1"
                ))?
                .execute(params![id, attempts, now, connector_version, remote_id, note])?;
            }
            DeliveryUpdate::Retry {
                id,
                attempts,
                next_attempt_at_ms,
                failed_at_ms,
                error,
                connector_version,
                failure,
            } => {
                let changed = tx
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'retrying', attempts = ?2, next_attempt_at_ms = ?3,
                         last_error = ?4, updated_at_ms = ?5, connector_version = ?6
                     WHERE id = ?1 AND state IN ('pending', 'retrying')",
                    )?
                    .execute(params![id, attempts, next_attempt_at_ms, error, now, connector_version])?;
                if changed > 0 {
                    let attempt = Attempt {
                        id,
                        number: attempts,
                        at_ms: failed_at_ms,
                        retry_at_ms: Some(next_attempt_at_ms),
                        connector_version: &connector_version,
                    };
                    record_failure(tx, &attempt, &failure)?;
                }
            }
            DeliveryUpdate::DeadLetter { id, letter, failure } => {
                if let Some(failure) = &failure {
                    let attempt = Attempt {
                        id,
                        number: letter.attempts,
                        at_ms: now,
                        retry_at_ms: None,
                        connector_version: &letter.plugin_version,
                    };
                    record_failure(tx, &attempt, failure)?;
                }
                tx.prepare_cached(concat!(
                    "UPDATE deliveries SET state = 'dead_lettered', attempts = ?2, next_attempt_at_ms = NULL,
                         last_error = ?3, updated_at_ms = ?4, connector_version = ?5, partition_key = ",
                    compact_key!(),
                    " WHERE id = ?1"
                ))?
                .execute(params![id, letter.attempts, letter.error, now, letter.plugin_version])?;
                insert_dead_letter(tx, &letter, now)?;
            }
        }
    }
    Ok(())
}

/// Which attempt of which delivery failed, when, and when the next is due.
struct Attempt<'a> {
    id: i64,
    number: u32,
    at_ms: i64,
    retry_at_ms: Option<i64>,
    connector_version: &'a str,
}

/// Adds one failed attempt to its delivery's history.
fn record_failure(tx: &Connection, attempt: &Attempt<'_>, failure: &AttemptFailure) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO delivery_failures (delivery_id, event_seq, sink, attempt, at_ms, outcome, error, destination,
             connector_version, retry_at_ms)
         SELECT id, event_seq, sink, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM deliveries WHERE id = ?1",
    )?
    .execute(params![
        attempt.id,
        attempt.number,
        attempt.at_ms,
        failure.outcome,
        failure.error,
        failure.destination,
        attempt.connector_version,
        attempt.retry_at_ms
    ])?;
    Ok(())
}

/// Bytes `plugin` keeps in kv, and the size of `key`'s entry (0 when absent).
fn kv_sizes(tx: &Connection, plugin: &str, key: &str) -> StoreResult<(i64, i64)> {
    use rusqlite::OptionalExtension as _;
    let used: i64 = tx
        .prepare_cached("SELECT bytes FROM kv_usage WHERE plugin = ?1")?
        .query_row(params![plugin], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let entry: i64 = tx
        .prepare_cached("SELECT length(key) + length(value) FROM kv WHERE plugin = ?1 AND key = ?2")?
        .query_row(params![plugin, key], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok((used, entry))
}

fn set_kv_usage(tx: &Connection, plugin: &str, bytes: i64) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO kv_usage (plugin, bytes) VALUES (?1, ?2)
         ON CONFLICT (plugin) DO UPDATE SET bytes = excluded.bytes",
    )?
    .execute(params![plugin, bytes.max(0)])?;
    Ok(())
}

fn kv_set(tx: &Connection, plugin: &str, key: &str, value: &[u8], quota: u64) -> StoreResult<()> {
    let (used, old) = kv_sizes(tx, plugin, key)?;
    let new = (key.len() + value.len()) as i64;
    let would_use = (used - old + new).max(0) as u64;
    if would_use > quota {
        return Err(StoreError::QuotaExceeded { quota, would_use });
    }
    tx.prepare_cached(
        "INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![plugin, key, value])?;
    set_kv_usage(tx, plugin, would_use as i64)
}

fn kv_delete(tx: &Connection, plugin: &str, key: &str) -> StoreResult<()> {
    let (used, old) = kv_sizes(tx, plugin, key)?;
    if old > 0 {
        tx.prepare_cached("DELETE FROM kv WHERE plugin = ?1 AND key = ?2")?
            .execute(params![plugin, key])?;
        set_kv_usage(tx, plugin, used - old)?;
    }
    Ok(())
}
