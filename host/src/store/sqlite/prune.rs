//! Pruning finished events (`[retention]`), one bounded batch per call, on the writer's
//! connection.
//!
//! An event goes only when it is finished: routed, none of its deliveries open or parked, no dead
//! letter of it waiting for a replay, and no derived event of it left (so a parent goes in a later
//! batch than what it derived). With it go its deliveries, bodies and replayed dead letters. Pruned events received within the dedupe window leave `(source, id, content digest)`
//! in `pruned_events`, which `append` consults, so a late resend stays a duplicate.

use super::super::{PrunePolicy, Pruned, StoreResult, content_sha256};
use rusqlite::{Connection, params};

/// The bytes of the database's pages that hold data (page count less free pages).
pub(super) fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// The finished-event condition on `events e`.
const FINISHED: &str = "e.routed = 1
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq
                    AND d.state IN ('pending', 'retrying', 'parked'))
    AND NOT EXISTS (SELECT 1 FROM dead_letters l WHERE l.event_seq = e.seq AND l.replayed_at_ms IS NULL)
    AND NOT EXISTS (SELECT 1 FROM events c WHERE c.parent_seq = e.seq)";

pub(super) fn prune(tx: &Connection, policy: PrunePolicy) -> StoreResult<Pruned> {
    let mut out = Pruned {
        forgotten: tx
            .prepare_cached("DELETE FROM pruned_events WHERE received_at_us < ?1")?
            .execute(params![policy.dedupe_after_us])? as u64,
        ..Pruned::default()
    };
    let over_size = policy
        .max_used_bytes
        .is_some_and(|max| used_bytes(tx).is_ok_and(|used| used > max));
    let cutoff = match (policy.received_before_us, over_size) {
        (_, true) => i64::MAX,
        (Some(before), false) => before,
        (None, false) => return Ok(out),
    };
    let batch: Vec<(i64, String, String, i64, Vec<u8>)> = tx
        .prepare_cached(&format!(
            "SELECT e.seq, e.source, e.id, e.received_at_us, e.body FROM events e
             WHERE e.received_at_us < ?1 AND {FINISHED} ORDER BY e.seq LIMIT ?2"
        ))?
        .query_map(params![cutoff, policy.batch as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    for (seq, source, id, received_at_us, body) in batch {
        if received_at_us >= policy.dedupe_after_us {
            // An unreadable body still leaves its id remembered; its digest then matches nothing.
            let digest = super::compress::unpack(&body)
                .map(|b| content_sha256(&b))
                .unwrap_or_default();
            tx.prepare_cached(
                "INSERT INTO pruned_events (source, id, content_sha256, received_at_us) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, id) DO NOTHING",
            )?
            .execute(params![source, id, digest, received_at_us])?;
            out.remembered += 1;
        }
        for sql in [
            "DELETE FROM dead_letters WHERE event_seq = ?1",
            "DELETE FROM delivery_failures WHERE event_seq = ?1",
            "DELETE FROM deliveries WHERE event_seq = ?1",
            "DELETE FROM bodies WHERE event_seq = ?1",
            "DELETE FROM events WHERE seq = ?1",
        ] {
            tx.prepare_cached(sql)?.execute(params![seq])?;
        }
        out.events += 1;
    }
    Ok(out)
}

/// Removes audit records #1..#`through` after checking that record #`through` has `hash`, and
/// records the prune in `audit_pruned` first (the delete guard lets only such records go).
pub(super) fn prune_audit(tx: &Connection, through: i64, hash: &str) -> StoreResult<usize> {
    use rusqlite::OptionalExtension as _;
    let stored: Option<String> = tx
        .prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?
        .query_row(params![through], |r| r.get(0))
        .optional()?;
    match stored {
        Some(stored) if stored == hash => {}
        // Already pruned that far (a retry after the statement was written): nothing to do.
        None if super::read_audit_pruned(tx)?.is_some_and(|(seq, _)| seq >= through) => return Ok(0),
        _ => {
            return Err(super::super::StoreError::Corrupt(format!(
                "audit record #{through} does not have the hash its checkpoint holds; not pruning"
            )));
        }
    }
    tx.prepare_cached("INSERT INTO audit_pruned (through_seq, hash, pruned_at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![through, hash, super::super::now_ms()])?;
    Ok(tx
        .prepare_cached("DELETE FROM audit_log WHERE seq <= ?1")?
        .execute(params![through])?)
}
