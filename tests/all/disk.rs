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
