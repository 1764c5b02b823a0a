//! The SQLite schema. Plain tables an auditor can read with the `sqlite3` shell.
//!
//! Also the triggers that keep `audit_log` append-only ([`AUDIT_GUARDS`]), with a check that
//! they are present and unaltered (what `kaunter audit verify` reports) and their restoration on
//! open (which the store records in the audit log).

use rusqlite::{Connection, OptionalExtension as _, params};

/// Columns added after a table was first created: applied on open when missing (logs written
/// by earlier versions), as `(table, column, definition)`.
pub const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("deliveries", "body_id", "INTEGER REFERENCES bodies(id)"),
    ("deliveries", "chain_id", "INTEGER REFERENCES chains(id)"),
    ("deliveries", "remote_id", "TEXT"),
    ("deliveries", "note", "TEXT"),
    ("deliveries", "replayed_at_ms", "INTEGER"),
    ("events", "order_id", "TEXT"),
    ("events", "dropped_routes", "TEXT"),
    ("events", "trace", "TEXT"),
    ("events", "trace_state", "TEXT"),
    ("dead_letters", "replayed_by", "TEXT"),
];

/// Applied on open after [`ADDED_COLUMNS`]: indexes over columns a log written by an earlier
/// version gains only then.
pub const LATE_SCHEMA: &str = r#"
-- "What happened to order X": sales, refunds, voids and payments by the order they are about.
CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id) WHERE order_id IS NOT NULL;
"#;

/// Applied on open; every statement is idempotent.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    partition_key  TEXT    NOT NULL,
    received_at_us INTEGER NOT NULL,
    parent_seq     INTEGER REFERENCES events(seq),
    routed         INTEGER NOT NULL DEFAULT 0,
    body           BLOB    NOT NULL,
    -- The order a sale, refund, void or payment is about (what `kaunter event show --order` finds).
    order_id       TEXT,
    -- Routes whose transforms passed it on to no sink, comma-separated (a filter, not a loss).
    dropped_routes TEXT,
    UNIQUE (source, id)
);
CREATE INDEX IF NOT EXISTS events_by_id ON events (id);
CREATE INDEX IF NOT EXISTS events_unrouted ON events (seq) WHERE routed = 0;

-- Bodies that transforms made of an event, one row per distinct content, shared by every sink
-- of a route, deflated against the event's own body; a delivery of the event as received reads
-- the event's body instead.
CREATE TABLE IF NOT EXISTS bodies (
    id        INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL REFERENCES events(seq),
    body      BLOB    NOT NULL
);

-- Transform chains (`plugin@version,…`) deliveries were handled by, each written once.
CREATE TABLE IF NOT EXISTS chains (
    id         INTEGER PRIMARY KEY,
    handled_by TEXT    NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS deliveries (
    id                 INTEGER PRIMARY KEY,
    event_seq          INTEGER NOT NULL REFERENCES events(seq),
    sink               TEXT    NOT NULL,
    route              TEXT    NOT NULL,
    partition_key      TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,
    last_error         TEXT,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    delivered_at_ms    INTEGER,
    handled_by         TEXT    NOT NULL,
    connector_version  TEXT,
    -- Empty partition_key: the event's. The body to deliver when it is not the event's own: empty,
    -- with body_id naming the shared row in `bodies` (rows written before bodies existed keep
    -- their copy here).
    body               BLOB    NOT NULL,
    body_id            INTEGER REFERENCES bodies(id),
    -- The transform chain that handled it (`handled_by`, then left empty), shared by its rows.
    chain_id           INTEGER REFERENCES chains(id),
    -- What the connector said on success: the remote document's id, and a note ("already
    -- booked" when the target had it).
    remote_id          TEXT,
    note               TEXT,
    -- When a replay (of its dead letter, or of history) last put it back to work: its delivery
    -- latency then counts from there, apart from live traffic.
    replayed_at_ms     INTEGER,
    UNIQUE (sink, event_seq)
);

-- Every failed delivery attempt: an event's timeline and a sink's health (error rate, last
-- error and where it was going) read it. A later success clears the delivery's last_error; a
-- replay resets its attempt count; neither erases these rows. Pruned with their event.
CREATE TABLE IF NOT EXISTS delivery_failures (
    id                INTEGER PRIMARY KEY,
    delivery_id       INTEGER NOT NULL,
    event_seq         INTEGER NOT NULL,
    sink              TEXT    NOT NULL,
    attempt           INTEGER NOT NULL,
    at_ms             INTEGER NOT NULL,
    outcome           TEXT    NOT NULL,
    error             TEXT    NOT NULL,
    destination       TEXT,
    connector_version TEXT,
    -- When the next attempt was scheduled; NULL when this one ended in the dead-letter queue.
    retry_at_ms       INTEGER
);
CREATE INDEX IF NOT EXISTS delivery_failures_by_event ON delivery_failures (event_seq);
CREATE INDEX IF NOT EXISTS delivery_failures_by_sink ON delivery_failures (sink, at_ms);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (sink, id)
    WHERE state IN ('pending', 'retrying');
-- A key's open deliveries in order, for a sink worker catching up on one busy key. Open rows
-- always carry their partition key (it is emptied, when it is the event's, once they finish).
CREATE INDEX IF NOT EXISTS deliveries_open_by_key ON deliveries (sink, partition_key, id)
    WHERE state IN ('pending', 'retrying');
-- Deliveries set aside because their sink's backlog was over its limit (`max_backlog`).
CREATE INDEX IF NOT EXISTS deliveries_parked ON deliveries (sink, id) WHERE state = 'parked';

-- Open and parked deliveries per sink, kept in step with `deliveries` by the triggers below (in
-- the same transaction), so the backlog limit and the stats cost one row; recounted on open.
CREATE TABLE IF NOT EXISTS sink_backlog (
    sink   TEXT    PRIMARY KEY,
    open   INTEGER NOT NULL DEFAULT 0,
    parked INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS sink_backlog_insert AFTER INSERT ON deliveries
    WHEN NEW.state IN ('pending', 'retrying', 'parked')
BEGIN
    INSERT OR IGNORE INTO sink_backlog (sink) VALUES (NEW.sink);
    UPDATE sink_backlog SET open = open + (NEW.state IN ('pending', 'retrying')),
        parked = parked + (NEW.state = 'parked') WHERE sink = NEW.sink;
END;
CREATE TRIGGER IF NOT EXISTS sink_backlog_update AFTER UPDATE OF state ON deliveries
    WHEN (OLD.state IN ('pending', 'retrying')) != (NEW.state IN ('pending', 'retrying'))
      OR (OLD.state = 'parked') != (NEW.state = 'parked')
BEGIN
    INSERT OR IGNORE INTO sink_backlog (sink) VALUES (NEW.sink);
    UPDATE sink_backlog
        SET open = open + (NEW.state IN ('pending', 'retrying')) - (OLD.state IN ('pending', 'retrying')),
            parked = parked + (NEW.state = 'parked') - (OLD.state = 'parked')
        WHERE sink = NEW.sink;
END;
CREATE TRIGGER IF NOT EXISTS sink_backlog_delete AFTER DELETE ON deliveries
    WHEN OLD.state IN ('pending', 'retrying', 'parked')
BEGIN
    UPDATE sink_backlog SET open = open - (OLD.state IN ('pending', 'retrying')),
        parked = parked - (OLD.state = 'parked') WHERE sink = OLD.sink;
END;

-- Lookups by event: its deliveries (event view, pruning), its derived events and bodies.
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_seq);
CREATE INDEX IF NOT EXISTS bodies_by_event ON bodies (event_seq);
CREATE INDEX IF NOT EXISTS events_by_parent ON events (parent_seq) WHERE parent_seq IS NOT NULL;

-- What pruning removed, kept for `[retention] dedupe_secs` so that a late resend of a pruned event
-- is still a duplicate (or a conflict), never a new one.
CREATE TABLE IF NOT EXISTS pruned_events (
    source         TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    content_sha256 TEXT    NOT NULL,
    received_at_us INTEGER NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dead_letters (
    id             INTEGER PRIMARY KEY,
    event_seq      INTEGER NOT NULL REFERENCES events(seq),
    sink           TEXT,
    route          TEXT    NOT NULL,
    plugin         TEXT    NOT NULL,
    plugin_version TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    failed_at_ms   INTEGER NOT NULL,
    replayed_at_ms INTEGER,
    -- Who replayed it (`api-key:NAME`), as in the audit record of the replay.
    replayed_by    TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_by_event ON dead_letters (event_seq);

CREATE TABLE IF NOT EXISTS audit_log (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
-- Its append-only triggers are AUDIT_GUARDS (below), checked and restored on every open.

-- How far the host pruned the audit log (`[retention] audit_max_age_secs`): records #1..#through
-- are gone; record #through had `hash`, and the chain goes on from it. Each prune is also a signed
-- statement in the anchor file, which `kaunter audit verify` requires.
CREATE TABLE IF NOT EXISTS audit_pruned (
    through_seq INTEGER PRIMARY KEY,
    hash        TEXT    NOT NULL,
    pruned_at_ms INTEGER NOT NULL
);

-- Rows that could not be read (a damaged body, an unknown state): set aside at start-up so the
-- host serves everything else. The row stays where it was, marked (events: routed; deliveries:
-- state 'quarantined'); this table says which and why.
CREATE TABLE IF NOT EXISTS quarantine (
    id               INTEGER PRIMARY KEY,
    source_table     TEXT    NOT NULL,
    row_id           INTEGER NOT NULL,
    reason           TEXT    NOT NULL,
    quarantined_at_ms INTEGER NOT NULL,
    UNIQUE (source_table, row_id)
);

CREATE TABLE IF NOT EXISTS plugin_approvals (
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    requests       TEXT    NOT NULL,
    approved_at_ms INTEGER NOT NULL,
    approved_by    TEXT    NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE IF NOT EXISTS settings (
    key           TEXT    PRIMARY KEY,
    value         TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS kv (
    plugin TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (plugin, key)
);
-- Bytes (keys + values) each plugin keeps in kv, kept in step by every write, so checking the
-- quota costs one row instead of a scan of the plugin's keys.
CREATE TABLE IF NOT EXISTS kv_usage (
    plugin TEXT PRIMARY KEY,
    bytes  INTEGER NOT NULL
);
"#;

/// The triggers that refuse `UPDATE` and `DELETE` on `audit_log`: (name, statement).
pub const AUDIT_GUARDS: [(&str, &str); 2] = [
    (
        "audit_log_no_update",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ),
    (
        "audit_log_no_delete",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN OLD.seq > (SELECT COALESCE(MAX(through_seq), 0) FROM audit_pruned)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (only records a signed prune statement covers may go)'); END",
    ),
];

/// Guards written by earlier versions, as strict or stricter than today's: upgraded on open
/// without being reported as altered.
const LEGACY_GUARDS: [(&str, &str); 1] = [(
    "audit_log_no_delete",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)];

/// What is wrong with one of the [`AUDIT_GUARDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardProblem {
    /// The trigger is not there (dropped).
    Missing,
    /// A trigger of that name is there, but its statement is not the guard's.
    Altered,
}

impl std::fmt::Display for GuardProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GuardProblem::Missing => "missing (dropped)",
            GuardProblem::Altered => "altered (its statement is not the guard's)",
        })
    }
}

/// Whitespace-insensitive form of a statement, as SQLite keeps it.
fn normal(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The statement of trigger `name`: `None` when there is no such trigger.
fn trigger_sql(conn: &Connection, name: &str) -> rusqlite::Result<Option<Option<String>>> {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
        params![name],
        |r| r.get(0),
    )
    .optional()
}

/// The guards that are missing or altered in `conn`'s database.
pub fn audit_guard_problems(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, GuardProblem)>> {
    let mut out = Vec::new();
    for (name, sql) in AUDIT_GUARDS {
        let stored = trigger_sql(conn, name)?;
        match stored {
            None => out.push((name, GuardProblem::Missing)),
            Some(stored) if stored.as_deref().map(normal) != Some(normal(sql)) => {
                let legacy = LEGACY_GUARDS
                    .iter()
                    .any(|(n, old)| *n == name && stored.as_deref().map(normal) == Some(normal(old)));
                if !legacy {
                    out.push((name, GuardProblem::Altered))
                }
            }
            Some(_) => {}
        }
    }
    Ok(out)
}

/// Creates the guards that are missing and replaces altered ones; returns what it found wrong.
pub fn restore_audit_guards(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, GuardProblem)>> {
    for (name, old) in LEGACY_GUARDS {
        let stored = trigger_sql(conn, name)?;
        if stored.flatten().as_deref().map(normal) == Some(normal(old))
            && let Some((_, sql)) = AUDIT_GUARDS.iter().find(|(n, _)| *n == name)
        {
            conn.execute_batch(&format!("DROP TRIGGER {name}; {sql}"))?;
        }
    }
    let problems = audit_guard_problems(conn)?;
    for (name, problem) in &problems {
        if *problem == GuardProblem::Altered {
            conn.execute_batch(&format!("DROP TRIGGER {name}"))?;
        }
        if let Some((_, sql)) = AUDIT_GUARDS.iter().find(|(n, _)| n == name) {
            conn.execute_batch(sql)?;
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_are_checked_and_restored() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        assert_eq!(
            restore_audit_guards(&conn).unwrap(),
            vec![
                ("audit_log_no_update", GuardProblem::Missing),
                ("audit_log_no_delete", GuardProblem::Missing)
            ]
        );
        assert_eq!(audit_guard_problems(&conn).unwrap(), vec![]);
        conn.execute_batch(
            "DROP TRIGGER audit_log_no_delete;
             CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END;
             DROP TRIGGER audit_log_no_update;",
        )
        .unwrap();
        assert_eq!(
            audit_guard_problems(&conn).unwrap(),
            vec![
                ("audit_log_no_update", GuardProblem::Missing),
                ("audit_log_no_delete", GuardProblem::Altered)
            ]
        );
        restore_audit_guards(&conn).unwrap();
        assert_eq!(audit_guard_problems(&conn).unwrap(), vec![]);
        conn.execute(
            "INSERT INTO audit_log VALUES (1, 1, 'host', 'x', 'x', '{}', 'p', 'h')",
            [],
        )
        .unwrap();
        let refused = conn.execute("DELETE FROM audit_log", []).unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{refused}");
    }
}
