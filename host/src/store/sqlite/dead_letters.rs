//! Reading the dead-letter queue: filtered, paged, counted and grouped by sink and error, and
//! the entries a filtered replay takes.

use super::super::{DeadLetter, DeadLetterGroup, DeadLetterPage, DeadLetterQuery, StoreResult};
use rusqlite::Connection;
use rusqlite::types::Value;
use std::collections::HashMap;

/// Groups listed at most.
const MAX_GROUPS: usize = 20;

/// The `WHERE` clause over `dead_letters l JOIN events e` for `query`, and its arguments.
fn filter(query: &DeadLetterQuery, only_unreplayed: bool) -> (String, Vec<Value>) {
    let mut clauses = vec!["1".to_owned()];
    let mut args: Vec<Value> = Vec::new();
    let arg = |clause: &str, value: Value, args: &mut Vec<Value>| {
        args.push(value);
        clause.replace('?', &format!("?{}", args.len()))
    };
    if only_unreplayed || !query.include_replayed {
        clauses.push("l.replayed_at_ms IS NULL".into());
    }
    match query.sink.as_deref() {
        Some("transform") => clauses.push("l.sink IS NULL".into()),
        Some(sink) => clauses.push(arg("l.sink = ?", Value::Text(sink.to_owned()), &mut args)),
        None => {}
    }
    if let Some(store) = &query.store {
        // A till's source is /t/{tenant}/s/{store}/p/{till}; derived events add /x/{plugin}.
        clauses.push(arg(
            "instr(e.source || '/', '/s/' || ? || '/') > 0",
            Value::Text(store.clone()),
            &mut args,
        ));
    }
    if let Some(error) = &query.error {
        clauses.push(arg("instr(l.error, ?) > 0", Value::Text(error.clone()), &mut args));
    }
    if let Some(since) = query.since_ms {
        clauses.push(arg("l.failed_at_ms >= ?", Value::Integer(since), &mut args));
    }
    if let Some(until) = query.until_ms {
        clauses.push(arg("l.failed_at_ms < ?", Value::Integer(until), &mut args));
    }
    if let Some(seq) = query.event_seq {
        clauses.push(arg("l.event_seq = ?", Value::Integer(seq), &mut args));
    }
    (clauses.join(" AND "), args)
}

/// One page of the entries `query` matches, newest first, with the count and groups of all.
pub(super) fn page(
    conn: &Connection,
    query: &DeadLetterQuery,
    limit: usize,
    offset: usize,
) -> StoreResult<DeadLetterPage> {
    let (filter, args) = filter(query, false);
    let sql = format!(
        "SELECT l.id, l.event_seq, e.id, e.type, l.sink, l.route, l.plugin, l.plugin_version, l.error,
                l.attempts, l.failed_at_ms, l.replayed_at_ms, e.source, l.replayed_by,
                (SELECT d.state FROM deliveries d WHERE d.event_seq = l.event_seq AND d.sink = l.sink) AS delivery_state
         FROM dead_letters l JOIN events e ON e.seq = l.event_seq
         WHERE {filter} ORDER BY l.id DESC LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let entries = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                event_seq: r.get(1)?,
                event_id: r.get(2)?,
                event_type: r.get(3)?,
                sink: r.get(4)?,
                route: r.get(5)?,
                plugin: r.get(6)?,
                plugin_version: r.get(7)?,
                error: r.get(8)?,
                attempts: r.get(9)?,
                failed_at_ms: r.get(10)?,
                replayed_at_ms: r.get(11)?,
                event_source: r.get(12)?,
                replayed_by: r.get(13)?,
                delivery_state: r.get(14)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let sql = format!("SELECT l.sink, l.error FROM dead_letters l JOIN events e ON e.seq = l.event_seq WHERE {filter}");
    let mut stmt = conn.prepare(&sql)?;
    let mut counts: HashMap<(Option<String>, String), u64> = HashMap::new();
    let mut total = 0;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (sink, error) = row?;
        *counts.entry((sink, crate::text::fold_digits(&error))).or_default() += 1;
        total += 1;
    }
    let mut groups: Vec<DeadLetterGroup> = counts
        .into_iter()
        .map(|((sink, error), count)| DeadLetterGroup { sink, error, count })
        .collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.sink.cmp(&b.sink))
            .then_with(|| a.error.cmp(&b.error))
    });
    groups.truncate(MAX_GROUPS);
    Ok(DeadLetterPage { entries, total, groups })
}

/// `(id, event_seq, sink, route)` of every entry not yet replayed that `query` matches, oldest
/// first: what a filtered replay takes.
pub(super) fn unreplayed(conn: &Connection, query: &DeadLetterQuery) -> StoreResult<Vec<super::replay::Entry>> {
    let (filter, args) = filter(query, true);
    let sql = format!(
        "SELECT l.id, l.event_seq, l.sink, l.route FROM dead_letters l JOIN events e ON e.seq = l.event_seq
         WHERE {filter} ORDER BY l.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
