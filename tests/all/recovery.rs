//! Durability: whatever was acknowledged survives a kill -9 and is delivered after restart.

use crate::harness::*;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_is_delivered_after_the_host_is_killed() {
    let sink = Sink::start().await;
    // The sink is down while events arrive, so work is in flight when the host dies.
    sink.respond_with(|_| (503, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 1000;
    let mut host = Host::start(&config(&options));
    let mut acknowledged = BTreeSet::new();
    for batch in 0..10 {
        let events: Vec<_> = (0..20)
            .map(|i| {
                sale(
                    &format!("k{batch}-{i}"),
                    "hk-020",
                    &format!("K-{batch}-{i}"),
                    &[("4891234500017", 1, 100)],
                )
            })
            .collect();
        let (status, body) = host.post_json(&serde_json::json!(events)).await;
        assert_eq!(status, 202, "{body}");
        for r in body["results"].as_array().unwrap() {
            acknowledged.insert(r["id"].as_str().unwrap().to_owned());
        }
    }
    host.kill();
    sink.respond_with(|_| (204, vec![]));
    host.restart();
    wait_for("every acknowledged event at the sink", 60, || async {
        let delivered: BTreeSet<String> = sink.accepted_ids().into_iter().collect();
        acknowledged.is_subset(&delivered).then_some(())
    })
    .await;
    for id in ["k0-0", "k9-19"] {
        let entry = wait_for_state(&host, id, "erp", "delivered").await;
        assert!(entry["attempts"].as_u64().unwrap() >= 1);
    }
    assert_eq!(acknowledged.len(), 200);
}

/// A damaged row does not stop the host: an unreadable event and an unreadable delivery are set
/// aside in `quarantine` (audited, counted in stats, loud in the log) and everything else is
/// routed and delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_row_is_quarantined_and_the_host_starts_serving() {
    let sink = Sink::start().await;
    sink.script(&[500; 1000]);
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    for id in ["q-ok", "q-bad-delivery"] {
        assert_eq!(host.post_json(&sale(id, "hk-001", id, &[("1", 1, 100)])).await.0, 202);
        wait_for_state(&host, id, "erp", "retrying").await;
    }
    host.kill();
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    // An event that was acknowledged but not routed yet, with a body that no longer inflates.
    db.execute(
        "INSERT INTO events (id, source, type, partition_key, received_at_us, routed, body)
         VALUES ('q-bad-event', '/t/acme/s/hk-001/p/till-1', 'pos.sale.completed.v1', 'hk-001:Q', 0, 0, X'01FFFF')",
        [],
    )
    .unwrap();
    db.execute(
        "UPDATE deliveries SET state = 'retrying', attempts = 'garbage' WHERE event_seq = (SELECT seq FROM events WHERE id = 'q-bad-delivery')",
        [],
    )
    .unwrap();
    drop(db);
    sink.clear_script();
    host.restart();
    wait_for_state(&host, "q-ok", "erp", "delivered").await;
    assert_eq!(
        host.post_json(&sale("q-after", "hk-002", "Q-2", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "q-after", "erp", "delivered").await;
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["quarantined"], 2, "{stats}");
    let log = host.log();
    assert!(log.contains("UNREADABLE ROW QUARANTINED"), "{log}");
    let audited: Vec<String> = host
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "store.quarantined")
        .map(|r| r["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited.iter().any(|s| s.starts_with("events:")));
    assert!(audited.iter().any(|s| s.starts_with("deliveries:")));
}
