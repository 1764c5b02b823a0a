//! The demo's closing check: was anything the tills were told was accepted lost?
//!
//! The simulated tills keep the `(source, id)` of every event whose `202` they received. Each of
//! those must be in the log and have reached every sink its routes name (judged as `kaunter
//! verify` judges, by [`crate::pipeline::verify`]); an acknowledged event the log never stored
//! counts as lost as well, which a count taken from the log alone could not see. Events the chain
//! derived are judged the same way. A dead letter replayed and delivered since is delivered.

use crate::config::RouteConfig;
use crate::pipeline::verify::Verdict;
use crate::store::sqlite::{event_outcome, event_outcomes, open_read_only};
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
    /// Events the tills received a `202` for.
    pub acknowledged: u64,
    /// The acknowledged events, judged against the routes (one not in the log is missing).
    pub verdict: Verdict,
    /// The derived events, judged the same way.
    pub derived_verdict: Verdict,
    /// Dead letters not replayed (deliveries and route runs).
    pub dead_lettered: u64,
    /// Up to five of them: sink or route, and the error.
    pub dead_letters: Vec<String>,
    /// Delivered/all deliveries per sink.
    pub by_sink: String,
}

impl Log {
    /// Acknowledged or derived events that did not reach a sink their routes name and are not
    /// dead-lettered either: missing, or still in flight when the run ended.
    pub fn lost(&self) -> u64 {
        self.verdict.missing + self.verdict.in_flight + self.verdict.waiting
    }

    /// Derived events whose deliveries are missing or unfinished.
    pub fn derived_unfinished(&self) -> u64 {
        self.derived_verdict.missing + self.derived_verdict.in_flight + self.derived_verdict.waiting
    }

    /// Reads the log in `dir` (the host's data directory), checking every event in
    /// `acknowledged` (`(source, id)` of each `202` a till received) against `routes`.
    pub fn read(dir: &Path, acknowledged: &[(String, String)], routes: &[RouteConfig]) -> anyhow::Result<Log> {
        let conn = open_read_only(dir)?;
        let mut verdict = Verdict::default();
        for (source, id) in acknowledged {
            match event_outcome(&conn, source, id)? {
                Some(outcome) => verdict.add(&outcome, routes),
                None => verdict.add_not_stored(source, id),
            }
        }
        let mut derived_verdict = Verdict::default();
        let mut after = 0;
        loop {
            let page = event_outcomes(&conn, 0, after, 5000)?;
            for outcome in page.iter().filter(|o| o.derived) {
                derived_verdict.add(outcome, routes);
            }
            match page.last() {
                Some(last) if page.len() == 5000 => after = last.seq,
                _ => break,
            }
        }
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
        let mut statement = conn.prepare(
            "SELECT COALESCE(sink, 'route ' || route), error FROM dead_letters WHERE replayed_at_ms IS NULL ORDER BY id LIMIT 5",
        )?;
        for row in statement.query_map([], |r| {
            Ok(format!("{}: {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            dead_letters.push(row?);
        }
        Ok(Log {
            received: count("SELECT COUNT(*) FROM events WHERE parent_seq IS NULL AND source != '/kaunter/host'")?,
            received_by_type: grouped(
                "SELECT type, COUNT(*), -1 FROM events WHERE parent_seq IS NULL AND source != '/kaunter/host' GROUP BY type ORDER BY COUNT(*) DESC",
            )?,
            derived: count("SELECT COUNT(*) FROM events WHERE parent_seq IS NOT NULL")?,
            derived_by_type: grouped(
                "SELECT type, COUNT(*), -1 FROM events WHERE parent_seq IS NOT NULL GROUP BY type ORDER BY COUNT(*) DESC",
            )?,
            acknowledged: acknowledged.len() as u64,
            verdict,
            derived_verdict,
            dead_lettered: count("SELECT COUNT(*) FROM dead_letters WHERE replayed_at_ms IS NULL")?,
            dead_letters,
            by_sink: grouped(
                "SELECT sink, SUM(state = 'delivered'), COUNT(*) FROM deliveries GROUP BY sink ORDER BY MIN(id)",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{DeliveryUpdate, NewDelivery, NewEvent, RouteCommit, Store};
    use kaunter_model::{Defaults, Dialect, Event};

    const TILL: &str = "/t/acme/s/hk-001/p/till-1";

    fn event(id: &str) -> NewEvent {
        let value = serde_json::json!({
            "specversion": "1.0", "id": id, "source": TILL, "type": "x.test", "data": {"n": id}
        });
        let defaults = Defaults {
            id: String::new(),
            now: "2026-11-25T00:00:00Z".into(),
        };
        NewEvent::new(
            Event::from_json(value, Dialect::CloudEvents, &defaults).unwrap(),
            None,
            1,
        )
    }

    /// Stores `id` routed to head office, delivered or not.
    async fn stored(store: &SqliteStore, id: &str, delivered: bool) {
        let seq = store.append(vec![event(id)]).await.unwrap()[0].seq;
        let committed = store
            .commit_routes(std::sync::Arc::new(vec![RouteCommit {
                trace: None,
                event_seq: seq,
                event_id: id.into(),
                received_at_us: 1,
                derived: vec![],
                deliveries: vec![NewDelivery {
                    sink: "head-office".into(),
                    route: "sales".into(),
                    partition_key: id.into(),
                    body: b"{}".to_vec(),
                    handled_by: String::new(),
                    max_backlog: 0,
                }],
                dead_letters: vec![],
                dropped_routes: vec![],
                redeliver: false,
            }]))
            .await
            .unwrap();
        if delivered {
            store
                .update_deliveries(vec![DeliveryUpdate::Delivered {
                    id: committed[0].deliveries[0].id,
                    attempts: 1,
                    connector_version: "v".into(),
                    remote_id: None,
                    note: None,
                }])
                .await
                .unwrap();
        }
    }

    fn routes() -> Vec<RouteConfig> {
        vec![RouteConfig {
            name: "sales".into(),
            types: vec!["x.*".into()],
            stores: vec!["*".into()],
            transforms: vec![],
            sinks: vec!["head-office".into()],
        }]
    }

    fn acked(ids: &[&str]) -> Vec<(String, String)> {
        ids.iter().map(|id| (TILL.to_owned(), (*id).to_owned())).collect()
    }

    #[tokio::test]
    async fn every_acknowledged_event_delivered_is_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), std::time::Duration::from_micros(200), 64).unwrap();
        stored(&store, "a", true).await;
        stored(&store, "b", true).await;
        let log = Log::read(dir.path(), &acked(&["a", "b"]), &routes()).unwrap();
        assert_eq!((log.acknowledged, log.lost()), (2, 0));
        assert_eq!(log.received, 2);
    }

    /// The case a count from the log alone misses: a 202 for an event the log never stored.
    #[tokio::test]
    async fn an_acknowledged_event_missing_from_the_log_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), std::time::Duration::from_micros(200), 64).unwrap();
        stored(&store, "a", true).await;
        let log = Log::read(dir.path(), &acked(&["a", "never-stored"]), &routes()).unwrap();
        assert_eq!(log.verdict.missing_examples[0].sink, "(not in the log)");
        assert_eq!((log.verdict.complete, log.lost()), (1, 1));
    }

    #[tokio::test]
    async fn an_acknowledged_event_not_delivered_everywhere_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), std::time::Duration::from_micros(200), 64).unwrap();
        stored(&store, "a", true).await;
        stored(&store, "stuck", false).await;
        let log = Log::read(dir.path(), &acked(&["a", "stuck"]), &routes()).unwrap();
        assert_eq!((log.verdict.in_flight, log.lost()), (1, 1));
        // An event of the same id from another till is a different event.
        let other = vec![("/t/acme/s/hk-002/p/till-1".to_owned(), "a".to_owned())];
        let log = Log::read(dir.path(), &other, &routes()).unwrap();
        assert_eq!(log.verdict.missing_examples[0].sink, "(not in the log)");
    }
}
