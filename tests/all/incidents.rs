//! What an on-call operator reads during an incident, without SQL: each sink's health, an
//! order's whole history, the dead-letter queue a page and a group at a time, and replays that
//! neither erase what went before nor distort live latency.

use crate::harness::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn sink_list_tells_a_failing_sink_from_a_running_one_with_its_last_error() {
    let sink = Sink::start().await;
    sink.respond_with(|_| (503, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 3;
    let host = Host::start(&config(&options));
    host.post_json(&sale("down-1", "hk-001", "D-1", &[("1", 1, 100)])).await;
    wait_for_state(&host, "down-1", "erp", "dead_lettered").await;

    let (_, sinks) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
    let erp = &sinks["sinks"][0];
    assert_eq!(erp["state"], "failing", "{erp}");
    assert_eq!(erp["recent"]["failed"], 3, "{erp}");
    assert_eq!(erp["recent"]["error_rate"], 1.0, "{erp}");
    let last = &erp["last_failure"];
    assert_eq!(last["outcome"], "retry", "{erp}");
    assert_eq!(
        last["destination"],
        format!("http://127.0.0.1:{}", sink.port()),
        "{erp}"
    );
    assert!(last["error"].as_str().unwrap().contains("503"), "{erp}");
    let listed = host.cli(&["sink", "list"]);
    assert!(listed.contains("failing") && listed.contains("100%"), "{listed}");
    assert!(listed.contains("erp last error at "), "{listed}");
    // A vendor outage is the target's trouble, not a plugin fault; since start and now apart.
    let stats = host.cli(&["stats"]);
    assert!(stats.starts_with("since this host started ("), "{stats}");
    assert!(
        stats.contains("undelivered attempts (the target's trouble): erp: retry 3"),
        "{stats}"
    );
    assert!(stats.contains("  plugin faults: none"), "{stats}");
    assert!(stats.contains("\nnow:\n"), "{stats}");

    // The vendor is back: the next delivery makes it `running`, and the rate counts both.
    sink.clear_responder();
    host.post_json(&sale("up-1", "hk-001", "U-1", &[("1", 1, 100)])).await;
    wait_for_state(&host, "up-1", "erp", "delivered").await;
    let (_, sinks) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
    let erp = &sinks["sinks"][0];
    assert_eq!(erp["state"], "running", "{erp}");
    assert_eq!(erp["recent"]["error_rate"], 0.75, "{erp}");

    // Paused with work waiting: the backlog and the age of its oldest delivery.
    host.cli(&["sink", "pause", "erp"]);
    host.post_json(&sale("held-1", "hk-001", "H-1", &[("1", 1, 100)])).await;
    let erp = wait_for("the paused sink's backlog", 30, || async {
        let (_, sinks) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
        let erp = sinks["sinks"][0].clone();
        (erp["open"] == 1).then_some(erp)
    })
    .await;
    assert_eq!(erp["state"], "paused", "{erp}");
    assert!(erp["oldest_open_age_secs"].is_i64(), "{erp}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_s_history_keeps_every_failure_and_who_replayed_it() {
    let sink = Sink::start().await;
    // The two events go out in parallel: the refusal is tied to hist-1, not to whichever arrives first.
    sink.respond_with(|body| match body["id"] == "hist-1" {
        true => (400, vec![]),
        false => (204, vec![]),
    });
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("hist-1", "hk-003", "ORD-HIST", &[("1", 1, 100)]))
        .await;
    host.post_json(&sale("other-1", "hk-001", "ORD-OTHER", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "hist-1", "erp", "dead_lettered").await;
    wait_for_state(&host, "other-1", "erp", "delivered").await;
    sink.clear_responder();

    let listed = host.cli(&["dlq", "list", "--store", "hk-003"]);
    assert!(listed.starts_with("1–1 of 1 dead letter(s)"), "{listed}");
    let replayed = host.cli(&["dlq", "replay", "--store", "hk-003"]);
    assert!(replayed.starts_with("replayed 1 dead letter(s): #"), "{replayed}");
    wait_for_state(&host, "hist-1", "erp", "delivered").await;

    let (status, found) = host.get("/v1/events?order=ORD-HIST&store=hk-003", ADMIN_KEY).await;
    assert_eq!(status, 200, "{found}");
    let events = found["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{found}");
    let erp = &events[0]["sinks"][0];
    assert_eq!(erp["state"], "delivered");
    // Delivered: no stale error on the entry, and the failure before the replay is still there.
    assert_eq!(erp["last_error"], Value::Null, "{erp}");
    assert!(erp["replayed_at"].is_string(), "{erp}");
    let failures = erp["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{erp}");
    assert_eq!(failures[0]["outcome"], "rejected");
    assert_eq!(failures[0]["destination"], format!("http://127.0.0.1:{}", sink.port()));
    let letter = &events[0]["dead_letters"][0];
    assert_eq!(letter["replayed_by"], "api-key:ops", "{letter}");
    assert_eq!(letter["delivery_state"], "delivered", "{letter}");

    let shown = host.cli(&["event", "show", "--order", "ORD-HIST"]);
    assert!(shown.starts_with("order ORD-HIST: 1 event(s)"), "{shown}");
    assert!(
        shown.contains("attempt 1 failed (rejected) → http://127.0.0.1:"),
        "{shown}"
    );
    assert!(
        shown.contains("replayed by api-key:ops; its delivery is now delivered"),
        "{shown}"
    );

    // Every acknowledged event reached its sink: verify agrees, and catches a delivery lost
    // behind the host's back.
    let verified = host.cli(&["verify", "--since", "2000-01-01T00:00:00Z"]);
    assert!(
        verified
            .starts_with("2 event(s) since 2000-01-01T00:00:00Z: 2 delivered everywhere, 0 in flight, 0 dead-lettered"),
        "{verified}"
    );
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    db.execute(
        "DELETE FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE id = 'other-1')",
        [],
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .arg("verify")
        .env("KAUNTER_URL", &host.url)
        .env("KAUNTER_API_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "verify exits 1 when a delivery is missing"
    );
    let lost = String::from_utf8_lossy(&output.stdout);
    assert!(lost.contains("1 MISSING a delivery"), "{lost}");
    assert!(
        lost.contains("missing: event other-1 from /t/acme/s/hk-001/p/till-1 at erp"),
        "{lost}"
    );

    // The replayed delivery has its own latency; live latency is the other sale's alone.
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert!(stats["replay_p50_us"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["p50_us"].as_u64().unwrap() > 0, "{stats}");
    let at = |field: &Value| {
        chrono::DateTime::parse_from_rfc3339(field.as_str().unwrap())
            .unwrap()
            .timestamp_micros()
    };
    // Received → delivered took the dead letter, two CLI runs and the replay.
    let replayed_sale_us = at(&erp["delivered_at"]) - at(&events[0]["received_at"]);
    let live_p99_us = stats["p99_us"].as_i64().unwrap();
    assert!(
        live_p99_us < replayed_sale_us / 2,
        "live p99 {live_p99_us} µs counts the replayed sale ({replayed_sale_us} µs from receipt)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dead_letter_queue_pages_groups_filters_and_replays_by_filter() {
    let sink = Sink::start().await;
    sink.respond_with(|body| {
        let store = body["source"].as_str().unwrap_or("").to_owned();
        if store.contains("/s/hk-002/") {
            (422, vec![])
        } else {
            (400, vec![])
        }
    });
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    for i in 0..5 {
        host.post_json(&sale(
            &format!("q-a{i}"),
            "hk-001",
            &format!("QA-{i}"),
            &[("1", 1, 100)],
        ))
        .await;
    }
    for i in 0..3 {
        host.post_json(&sale(
            &format!("q-b{i}"),
            "hk-002",
            &format!("QB-{i}"),
            &[("1", 1, 100)],
        ))
        .await;
    }
    wait_for("eight dead letters", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq?limit=1", ADMIN_KEY).await;
        (dlq["total"] == 8).then_some(())
    })
    .await;

    let (_, page) = host.get("/v1/admin/dlq?limit=3&offset=3", ADMIN_KEY).await;
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 3);
    assert_eq!(page["total"], 8);
    let groups = page["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{page}");
    assert_eq!(groups[0]["count"], 5, "{page}");
    // Numbers that are ids or durations fold; a status code does not.
    assert_eq!(groups[0]["error"], "rejected: HTTP 400: sink says so", "{page}");
    let listed = host.cli(&["dlq", "list", "--limit", "3"]);
    assert!(
        listed.starts_with("1–3 of 8 dead letter(s) (next page: --offset 3)"),
        "{listed}"
    );
    assert!(listed.contains("by sink and error:"), "{listed}");
    let filtered = host.cli(&["dlq", "list", "--error", "422"]);
    assert!(filtered.starts_with("1–3 of 3 dead letter(s)"), "{filtered}");

    // Fixed for hk-002 only; replay what the filter takes, and only that.
    sink.clear_responder();
    let out = host.cli(&["dlq", "replay", "--store", "hk-002", "--error", "422"]);
    assert!(out.starts_with("replayed 3 dead letter(s)"), "{out}");
    for i in 0..3 {
        wait_for_state(&host, &format!("q-b{i}"), "erp", "delivered").await;
    }
    let (_, left) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    assert_eq!(left["total"], 5, "{left}");
    let (_, all) = host.get("/v1/admin/dlq?all=true&store=hk-002", ADMIN_KEY).await;
    assert!(
        all["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["delivery_state"] == "delivered" && l["replayed_by"] == "api-key:ops"),
        "{all}"
    );
}
