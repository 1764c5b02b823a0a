//! The demo's closing check, read from the log itself: was anything acknowledged lost?
//!
//! Events the tills sent have no parent; events the chain derived point at the one they came
//! from. Every received event must have been delivered to head office (the sink every till event
//! is routed to), and every delivery made for a derived event must have been made.

use crate::store::sqlite::open_read_only;
use std::path::Path;

/// What the log says at the end of a run.
#[derive(Debug, Default)]
pub struct Log {
    /// Events the tills sent.
    pub received: u64,
    /// Received events by type, e.g. `5,700 pos.sale.completed.v1, …`.
    pub received_by_type: String,
    /// Events transforms derived.
    pub derived: u64,
    /// Derived events by type.
    pub derived_by_type: String,
    /// Received events without a delivered head-office delivery.
    pub lost: u64,
    /// Deliveries of derived events in any state but delivered.
    pub derived_undelivered: u64,
    /// Dead letters (deliveries and route runs).
    pub dead_lettered: u64,
    /// Up to five dead letters: sink or route, and the error.
    pub dead_letters: Vec<String>,
    /// Delivered/all deliveries per sink.
    pub by_sink: String,
}

impl Log {
    /// Reads the log in `dir` (the host's data directory).
    pub fn read(dir: &Path) -> anyhow::Result<Log> {
        let conn = open_read_only(dir)?;
        let count = |sql: &str| -> anyhow::Result<u64> { Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
        let grouped = |sql: &str| -> anyhow::Result<String> {
            let mut statement = conn.prepare(sql)?;
            let rows = statement.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })?;
            let mut parts = Vec::new();
            for row in rows {
                parts.push(row?);
            }
            Ok(parts
                .into_iter()
                .map(|(name, a, b)| {
                    if b < 0 {
                        format!("{} {name}", super::thousands(a as u64))
                    } else {
                        format!("{name} {}/{}", super::thousands(a as u64), super::thousands(b as u64))
                    }
                })
                .collect::<Vec<_>>()
                .join(" · "))
        };
        let mut dead_letters = Vec::new();
        let mut statement =
            conn.prepare("SELECT COALESCE(sink, 'route ' || route), error FROM dead_letters ORDER BY id LIMIT 5")?;
        for row in statement.query_map([], |r| {
            Ok(format!("{}: {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            dead_letters.push(row?);
        }
        Ok(Log {
            received: count("SELECT COUNT(*) FROM events WHERE parent_seq IS NULL")?,
            received_by_type: grouped(
                "SELECT type, COUNT(*), -1 FROM events WHERE parent_seq IS NULL GROUP BY type ORDER BY COUNT(*) DESC",
            )?,
            derived: count("SELECT COUNT(*) FROM events WHERE parent_seq IS NOT NULL")?,
            derived_by_type: grouped(
                "SELECT type, COUNT(*), -1 FROM events WHERE parent_seq IS NOT NULL GROUP BY type ORDER BY COUNT(*) DESC",
            )?,
            lost: count(
                "SELECT COUNT(*) FROM events e WHERE e.parent_seq IS NULL AND NOT EXISTS
                 (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.sink = 'head-office' AND d.state = 'delivered')",
            )?,
            derived_undelivered: count(
                "SELECT COUNT(*) FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE e.parent_seq IS NOT NULL AND d.state <> 'delivered'",
            )?,
            dead_lettered: count("SELECT COUNT(*) FROM dead_letters")?,
            dead_letters,
            by_sink: grouped(
                "SELECT sink, SUM(state = 'delivered'), COUNT(*) FROM deliveries GROUP BY sink ORDER BY MIN(id)",
            )?,
        })
    }
}
