//! Replaying dead letters: mark them replayed and put their work back in the queue.

use super::super::{ReplaySelector, Replayed, StoreResult, now_ms};
use super::{read_deliveries, read_event};
use rusqlite::{Connection, params};

/// A dead letter to replay: `(id, event_seq, sink, route)`.
pub(super) type Entry = (i64, i64, Option<String>, String);

/// Replays what `selector` names; `actor` (who asked) is kept on each entry.
pub(super) fn replay(tx: &Connection, selector: ReplaySelector, actor: Option<&str>) -> StoreResult<Replayed> {
    let rows: Vec<Entry> = match &selector {
        ReplaySelector::Ids(ids) => {
            let mut stmt = tx.prepare(
                "SELECT id, event_seq, sink, route FROM dead_letters
                 WHERE replayed_at_ms IS NULL AND id IN (SELECT value FROM json_each(?1)) ORDER BY id",
            )?;
            let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
            stmt.query_map(params![ids], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?
        }
        ReplaySelector::Matching(query) => super::dead_letters::unreplayed(tx, query)?,
    };
    let now = now_ms();
    let mut out = Replayed::default();
    for (id, event_seq, sink, route) in rows {
        tx.execute(
            "UPDATE dead_letters SET replayed_at_ms = ?2, replayed_by = ?3 WHERE id = ?1",
            params![id, now, actor],
        )?;
        out.entries.push(id);
        match sink {
            Some(sink) => {
                let changed = tx.execute(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = ?3,
                         updated_at_ms = ?3, replayed_at_ms = ?3,
                         partition_key = CASE WHEN partition_key = ''
                             THEN (SELECT e.partition_key FROM events e WHERE e.seq = deliveries.event_seq)
                             ELSE partition_key END
                     WHERE event_seq = ?1 AND sink = ?2 AND state = 'dead_lettered'",
                    params![event_seq, sink, now],
                )?;
                if changed > 0 {
                    out.deliveries.extend(read_deliveries(
                        tx,
                        "d.event_seq = ?1 AND d.sink = (SELECT sink FROM dead_letters WHERE id = ?2)",
                        params![event_seq, id],
                    )?);
                }
            }
            None => {
                if let Some(event) = read_event(tx, "seq = ?1", params![event_seq])? {
                    out.reroute.push((event, route));
                }
            }
        }
    }
    Ok(out)
}
