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
