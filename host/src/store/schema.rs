//! The SQLite schema. Plain tables an auditor can read with the `sqlite3` shell.

/// Columns added after a table was first created: applied on open when missing (logs written
/// by earlier versions), as `(table, column, definition)`.
pub const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("deliveries", "body_id", "INTEGER REFERENCES bodies(id)"),
    ("deliveries", "chain_id", "INTEGER REFERENCES chains(id)"),
];

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
    UNIQUE (sink, event_seq)
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (sink, id)
    WHERE state IN ('pending', 'retrying');

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
    replayed_at_ms INTEGER
);

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
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

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
