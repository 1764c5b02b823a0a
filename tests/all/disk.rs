//! The log's size on disk: the write-ahead log stays bounded under steady load, and the database
//! grows by at most 2 KB per till event (one compressed body per event; deliveries reference it).

use crate::harness::*;
use serde_json::Value;

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wal_stays_bounded_and_each_event_costs_at_most_2_kb() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    // Truncate at 1 MiB instead of 16, so a short test crosses the threshold many times.
    options.server_extra = "wal_truncate_mib = 1".into();
    let host = Host::start(&config(&options));
    let db = host.dir.path().join("data/kaunter.db");
    let wal = host.dir.path().join("data/kaunter.db-wal");
    let before = file_size(&db) + file_size(&wal);
    let (batches, per_batch) = (60, 50);
    let mut largest_wal = 0;
    for b in 0..batches {
        let batch: Vec<Value> = (0..per_batch)
            .map(|i| {
                let n = b * per_batch + i;
                sale(
                    &format!("disk-{n}"),
                    &format!("hk-{:03}", n % 20),
                    &format!("D-{n}"),
                    &[("4891234500017", 2, 3990), ("LEGACY-4891234500024", 1, 12800)],
                )
            })
            .collect();
        let (status, body) = host.post_json(&Value::Array(batch)).await;
        assert_eq!(status, 202, "{body}");
        largest_wal = largest_wal.max(file_size(&wal));
    }
    let events = (batches * per_batch) as u64;
    wait_for("every event delivered", 120, || async {
        (sink.accepted_ids().len() as u64 >= events).then_some(())
    })
    .await;
    // Let the writer notice the WAL once more after the last commits.
    let settled = wait_for("the WAL back under its threshold", 60, || async {
        let size = file_size(&wal);
        (size <= 2 * 1024 * 1024).then_some(size)
    })
    .await;
    assert!(
        largest_wal <= 16 * 1024 * 1024,
        "the WAL reached {largest_wal} bytes with a 1 MiB threshold"
    );
    let grown = file_size(&db) + settled - before;
    assert!(
        grown <= events * 2048,
        "the log grew {grown} bytes for {events} events: {} per event",
        grown / events
    );
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert!(stats["disk"]["database_bytes"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["disk"]["wal_bytes"].is_u64(), "{stats}");
    // Deliveries still carry the transformed body (sku-mapped), read back from the shared row.
    let delivered = sink.requests_for("disk-7")[0].json();
    assert_eq!(delivered["data"]["lines"][1]["sku"], "VITC-1000-60");
}

/// `[retention]`: finished events are pruned in the background; one with an open delivery is
/// kept; a pruned event sent again is still a duplicate (or a 409 with other content), never a
/// new sale; each run is audited.
#[tokio::test(flavor = "multi_thread")]
async fn retention_prunes_finished_events_keeps_open_work_and_a_resend_stays_a_duplicate() {
    let sink = Sink::start().await;
    sink.respond_with(|event| (if event["id"] == "ret-open" { 503 } else { 204 }, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 100_000;
    options.extra = "\n[retention]\nevents_max_age_secs = 1\nprune_interval_secs = 1\ndedupe_secs = 3600\n".into();
    let host = Host::start(&config(&options));
    let sales: Vec<Value> = (0..20)
        .map(|i| sale(&format!("ret-{i}"), "hk-001", &format!("R-{i}"), &[("1", 1, 100)]))
        .chain([sale("ret-open", "hk-001", "R-OPEN", &[("1", 1, 100)])])
        .collect();
    assert_eq!(host.post_json(&Value::Array(sales)).await.0, 202);
    wait_for("20 events pruned", 60, || async {
        let stats = host.get("/v1/admin/stats", ADMIN_KEY).await.1;
        (stats["pruned"].as_u64() == Some(20)).then_some(())
    })
    .await;
    assert_eq!(host.get("/v1/events/ret-0", ADMIN_KEY).await.0, 404);
    let kept = host.event("ret-open").await;
    assert_eq!(kept["sinks"][0]["state"], "retrying", "{kept}");

    let resent = sale("ret-0", "hk-001", "R-0", &[("1", 1, 100)]);
    let (status, answer) = host.post_json(&resent).await;
    assert_eq!(
        (status, answer["duplicate"].clone()),
        (202, Value::Bool(true)),
        "{answer}"
    );
    let changed = sale("ret-1", "hk-001", "R-1-CHANGED", &[("1", 1, 100)]);
    let (status, answer) = host.post_json(&changed).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(sink.requests_for("ret-0").len(), 1, "the resend reached the sink");
    assert!(
        host.audit_records().iter().any(|r| r["action"] == "store.pruned"),
        "pruning is not in the audit log"
    );
}

/// With retention on, the pages in use stop growing under steady load: pruning frees what new
/// events take.
#[tokio::test(flavor = "multi_thread")]
async fn with_retention_on_the_database_stops_growing_under_steady_load() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.extra = "\n[retention]\nevents_max_age_secs = 1\nprune_interval_secs = 1\ndedupe_secs = 1\n".into();
    let host = Host::start(&config(&options));
    let (mut used, mut file) = (Vec::new(), Vec::new());
    let per_round = 200;
    for round in 0..6 {
        let batch: Vec<Value> = (0..per_round)
            .map(|i| {
                let n = round * per_round + i;
                sale(
                    &format!("grow-{n}"),
                    &format!("hk-{:03}", n % 20),
                    &format!("G-{n}"),
                    &[("1", 1, 100)],
                )
            })
            .collect();
        assert_eq!(host.post_json(&Value::Array(batch)).await.0, 202);
        let posted = ((round + 1) * per_round) as u64;
        let stats = wait_for("this round delivered and pruned", 60, || async {
            let stats = host.get("/v1/admin/stats", ADMIN_KEY).await.1;
            (stats["pruned"].as_u64() == Some(posted)).then_some(stats)
        })
        .await;
        used.push(stats["disk"]["used_bytes"].as_u64().unwrap());
        file.push(stats["disk"]["database_bytes"].as_u64().unwrap());
    }
    // Rounds 3 to 6 reuse what earlier rounds freed: neither the pages in use nor the file grow.
    for (what, sizes) in [("pages in use", &used), ("the database file", &file)] {
        let settled = sizes[2];
        assert!(
            sizes[5] <= settled + settled / 4,
            "{what} kept growing: {sizes:?} bytes after each round"
        );
    }
}
