//! Wasm isolation in the event path: a plugin that never returns is stopped on time, its event is
//! dead-lettered with the reason, and everything else keeps flowing.

use crate::harness::*;

/// Pilot stores' sales go through `plugin`; Hong Kong stores' through the SKU map; both to `erp`.
fn pilot_stores_through(sink: &Sink, plugin: &str) -> ConfigOptions {
    let mut options = ConfigOptions::new(&sink.url);
    options.routes = format!(
        r#"
[[routes]]
name = "pilot"
types = ["pos.sale.*"]
stores = ["pilot-*"]
transforms = ["{plugin}"]
sinks = ["erp"]

[[routes]]
name = "sales"
types = ["pos.sale.*"]
stores = ["hk-*"]
transforms = ["sku-map"]
sinks = ["erp"]
"#
    );
    options
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_transform_is_stopped_and_other_routes_keep_delivering() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, "spin")));
    host.post_json(&sale("loop-1", "pilot-01", "L-1", &[("1", 1, 100)]))
        .await;
    for i in 0..5 {
        host.post_json(&sale(
            &format!("fine-{i}"),
            "hk-001",
            &format!("F-{i}"),
            &[("1", 1, 100)],
        ))
        .await;
    }
    let letter = wait_for("the looping event in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(letter["event_id"], "loop-1");
    assert_eq!(letter["plugin"], "spin");
    assert_eq!(letter["sink"], serde_json::Value::Null);
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("exceeded its 300 ms deadline"),
        "{letter}"
    );
    for i in 0..5 {
        wait_for_state(&host, &format!("fine-{i}"), "erp", "delivered").await;
    }
    // The host is still healthy and the spinning instance was discarded: it fails again, on time.
    host.post_json(&sale("loop-2", "pilot-02", "L-2", &[("1", 1, 100)]))
        .await;
    wait_for("the second looping event in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        (dlq["dead_letters"].as_array()?.len() == 2).then_some(())
    })
    .await;
    assert!(sink.requests_for("loop-1").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_over_its_memory_cap_traps_and_only_its_event_fails() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, "hog")));
    host.post_json(&sale("hog-1", "pilot-01", "H-1", &[("1", 1, 100)]))
        .await;
    host.post_json(&sale("calm-1", "hk-001", "C-1", &[("1", 1, 100)])).await;
    let letter = wait_for("the memory hog in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(letter["event_id"], "hog-1");
    assert_eq!(letter["plugin"], "hog");
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.starts_with("plugin trapped:") && error.contains("memory"),
        "{letter}"
    );
    wait_for_state(&host, "calm-1", "erp", "delivered").await;
    assert!(sink.requests_for("hog-1").is_empty());
}
