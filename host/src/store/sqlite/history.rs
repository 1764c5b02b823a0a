//! Reading history: an event's failed attempts (`delivery_failures`), dead letters and family
//! (what it was derived from, what was derived from it) for its timeline; events by order; and
//! what a sink's health needs from the log (its oldest open delivery, its latest failure).

use super::super::{
    AttemptFailure, DeadLetterQuery, DeliveryState, EventHistory, EventOutcome, EventRef, FailedAttempt, SinkHealth,
    StoreResult,
};
use rusqlite::{Connection, OptionalExtension as _, Row, params};

const FAILURE_COLUMNS: &str =
    "delivery_id, sink, attempt, at_ms, connector_version, outcome, error, destination, retry_at_ms";

fn failed_attempt(r: &Row<'_>) -> rusqlite::Result<FailedAttempt> {
    Ok(FailedAttempt {
        delivery_id: r.get(0)?,
        sink: r.get(1)?,
        attempt: r.get(2)?,
        at_ms: r.get(3)?,
        connector_version: r.get(4)?,
        retry_at_ms: r.get(8)?,
        failure: AttemptFailure {
            outcome: r.get(5)?,
            error: r.get(6)?,
            destination: r.get(7)?,
        },
    })
}

/// Events transforms may derive from one event, listed at most.
const MAX_DERIVED: usize = 1000;

fn event_ref(r: &Row<'_>) -> rusqlite::Result<EventRef> {
    Ok(EventRef {
        seq: r.get(0)?,
        id: r.get(1)?,
        source: r.get(2)?,
        event_type: r.get(3)?,
    })
}

/// One event's history: failed attempts (oldest first), dead letters, parent and derived events.
pub(super) fn history(conn: &Connection, event_seq: i64) -> StoreResult<EventHistory> {
    let sql = format!("SELECT {FAILURE_COLUMNS} FROM delivery_failures WHERE event_seq = ?1 ORDER BY at_ms, id");
    let failures = conn
        .prepare_cached(&sql)?
        .query_map(params![event_seq], failed_attempt)?
        .collect::<Result<_, _>>()?;
    let letters = DeadLetterQuery {
        include_replayed: true,
        event_seq: Some(event_seq),
        ..DeadLetterQuery::default()
    };
    let dead_letters = super::dead_letters::page(conn, &letters, MAX_DERIVED, 0)?.entries;
    let parent = conn
        .prepare_cached(
            "SELECT p.seq, p.id, p.source, p.type FROM events e JOIN events p ON p.seq = e.parent_seq WHERE e.seq = ?1",
        )?
        .query_row(params![event_seq], event_ref)
        .optional()?;
    let derived = conn
        .prepare_cached("SELECT seq, id, source, type FROM events WHERE parent_seq = ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![event_seq, MAX_DERIVED as i64], event_ref)?
        .collect::<Result<_, _>>()?;
    Ok(EventHistory {
        failures,
        dead_letters,
        parent,
        derived,
    })
}

/// The columns of `events` an [`EventOutcome`] starts from, in [`outcome_of`]'s order.
const OUTCOME_COLUMNS: &str = "seq, id, source, type, parent_seq IS NOT NULL, routed, dropped_routes";

/// An [`EventOutcome`] from a row of [`OUTCOME_COLUMNS`], its deliveries not yet filled in.
fn outcome_of(r: &Row<'_>) -> rusqlite::Result<EventOutcome> {
    Ok(EventOutcome {
        seq: r.get(0)?,
        id: r.get(1)?,
        source: r.get(2)?,
        event_type: r.get(3)?,
        derived: r.get(4)?,
        routed: r.get::<_, i64>(5)? != 0,
        dropped_routes: r
            .get::<_, Option<String>>(6)?
            .map(|routes| routes.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        ..EventOutcome::default()
    })
}

/// Where the work of events received at or after `since_us` (after `after_seq`) stands.
pub fn event_outcomes(
    conn: &Connection,
    since_us: i64,
    after_seq: i64,
    limit: usize,
) -> StoreResult<Vec<EventOutcome>> {
    let sql =
        format!("SELECT {OUTCOME_COLUMNS} FROM events WHERE seq > ?1 AND received_at_us >= ?2 ORDER BY seq LIMIT ?3");
    let mut events = conn
        .prepare_cached(&sql)?
        .query_map(params![after_seq, since_us, limit as i64], outcome_of)?
        .collect::<Result<Vec<_>, _>>()?;
    fill_outcomes(conn, &mut events)?;
    Ok(events)
}

/// The outcome of the event `(source, id)`, if the log holds it.
pub fn event_outcome(conn: &Connection, source: &str, id: &str) -> StoreResult<Option<EventOutcome>> {
    let sql = format!("SELECT {OUTCOME_COLUMNS} FROM events WHERE source = ?1 AND id = ?2");
    let found = conn
        .prepare_cached(&sql)?
        .query_row(params![source, id], outcome_of)
        .optional()?;
    let mut found: Vec<EventOutcome> = found.into_iter().collect();
    fill_outcomes(conn, &mut found)?;
    Ok(found.pop())
}

fn fill_outcomes(conn: &Connection, events: &mut [EventOutcome]) -> StoreResult<()> {
    let mut deliveries = conn.prepare_cached("SELECT sink, state FROM deliveries WHERE event_seq = ?1")?;
    let mut failed = conn.prepare_cached(
        "SELECT route FROM dead_letters WHERE event_seq = ?1 AND sink IS NULL AND replayed_at_ms IS NULL",
    )?;
    for event in events {
        for row in deliveries.query_map(params![event.seq], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (sink, state) = row?;
            event.deliveries.push((sink, DeliveryState::parse(&state)?));
        }
        for row in failed.query_map(params![event.seq], |r| r.get::<_, String>(0))? {
            event.failed_routes.push(row?);
        }
    }
    Ok(())
}

/// Events about `order` (of `store`, when given), oldest first.
pub(super) fn events_of_order(
    conn: &Connection,
    order: &str,
    store: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<EventRef>> {
    let rows = conn
        .prepare_cached(
            "SELECT seq, id, source, type FROM events WHERE order_id = ?1
             AND (?2 IS NULL OR instr(source || '/', '/s/' || ?2 || '/') > 0) ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![order, store, limit as i64], event_ref)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Each sink's oldest open delivery (by its event's receive time) and latest failure. The host's
/// own alerts do not count towards the oldest: an alert sink that is down would otherwise find
/// its own undelivered alerts late and raise `sync-delayed` about them, again and again.
pub(super) fn sink_health(conn: &Connection, sinks: &[String]) -> StoreResult<Vec<SinkHealth>> {
    let mut oldest = conn.prepare_cached(
        "SELECT e.received_at_us FROM deliveries d JOIN events e ON e.seq = d.event_seq
         WHERE d.sink = ?1 AND d.state IN ('pending', 'retrying') AND e.id NOT LIKE 'kaunter-alert:%'
         ORDER BY d.id LIMIT 1",
    )?;
    let sql =
        format!("SELECT {FAILURE_COLUMNS} FROM delivery_failures WHERE sink = ?1 ORDER BY at_ms DESC, id DESC LIMIT 1");
    let mut latest = conn.prepare_cached(&sql)?;
    let mut out = Vec::with_capacity(sinks.len());
    for sink in sinks {
        out.push(SinkHealth {
            sink: sink.clone(),
            oldest_open_received_us: oldest.query_row(params![sink], |r| r.get(0)).optional()?,
            last_failure: latest.query_row(params![sink], failed_attempt).optional()?,
        });
    }
    Ok(out)
}
