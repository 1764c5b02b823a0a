//! Delivery: mapping, signing, retries, dead letters, replay, ordering, throttling, disabling.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_is_sku_mapped_and_delivered_as_a_signed_webhook() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    let event = sale(
        "sale-1",
        "hk-001",
        "A-1001",
        &[
            ("4891234500017", 2, 2590),
            ("LEGACY-4891234500024", 1, 9900),
            ("999", 1, 500),
        ],
    );
    let (status, body) = host.post_json(&event).await;
    assert_eq!(
        (status, body.clone()),
        (202, json!({"id": "sale-1", "status": "accepted"}))
    );

    let entry = wait_for_state(&host, "sale-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["route"], "sales");
    assert!(
        entry["handled_by"][0].as_str().unwrap().starts_with("sku-map@"),
        "{entry}"
    );

    let requests = sink.requests_for("sale-1");
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert!(
        verify_standard_webhook(r, WEBHOOK_SECRET),
        "signature does not verify: {:?}",
        r.headers
    );
    // `{id}:{sink}:{source digest}`: ids are unique only per source.
    let key = kaunter::store::idempotency_key("/t/acme/s/hk-001/p/till-1", "sale-1", "erp");
    assert!(
        key.starts_with("sale-1:erp:") && key.len() == "sale-1:erp:".len() + 32,
        "{key}"
    );
    assert_eq!(r.header("webhook-id"), key);
    assert_eq!(r.header("idempotency-key"), key);
    assert_eq!(r.header("content-type"), "application/json");
    let delivered = r.json();
    assert_eq!(delivered["specversion"], "1.0");
    assert_eq!(delivered["type"], "pos.sale.completed.v1");
    assert_eq!(delivered["partitionkey"], "hk-001:A-1001");
    let lines = &delivered["data"]["lines"];
    assert_eq!(lines[0]["sku"], "PANADOL-500-20");
    assert_eq!(lines[0]["attributes"]["sku.original"], "4891234500017");
    assert_eq!(lines[1]["sku"], "VITC-1000-60");
    assert_eq!(lines[2]["sku"], "999");
    assert_eq!(lines[2]["attributes"]["sku.unmapped"], "true");
    assert_eq!(delivered["skuunmapped"], "1");
    // The money survives untouched: integers, never floats.
    assert_eq!(
        lines[0]["gross"],
        json!({"amount_minor": 5180, "currency": "HKD", "exponent": 2})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_failing_twice_gets_the_event_once_after_three_attempts() {
    let sink = Sink::start().await;
    sink.script(&[500, 500]);
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("retry-1", "hk-002", "B-1", &[("4891234500017", 1, 100)]))
        .await;
    let entry = wait_for_state(&host, "retry-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 3);
    let requests = sink.requests_for("retry-1");
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 204]
    );
    // Every attempt carries the same idempotency key, so the target can deduplicate.
    let key = kaunter::store::idempotency_key("/t/acme/s/hk-002/p/till-1", "retry-1", "erp");
    assert!(requests.iter().all(|r| r.header("webhook-id") == key));
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["delivered"], 1);
    assert_eq!(stats["retried"], 2);
    // A target answering 500 is the vendor's trouble, counted per sink, not a plugin failure.
    assert_eq!(stats["delivery_outcomes"]["erp"]["retry"], 2, "{stats}");
    assert_eq!(stats["plugin_failures"], json!({}), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_event_is_dead_lettered_with_context_and_replays_once_fixed() {
    let sink = Sink::start().await;
    sink.script(&[400]);
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("bad-1", "hk-003", "C-1", &[("4891234500017", 1, 100)]))
        .await;
    let entry = wait_for_state(&host, "bad-1", "erp", "dead_lettered").await;
    assert_eq!(entry["attempts"], 1);
    assert!(entry["last_error"].as_str().unwrap().contains("HTTP 400"), "{entry}");

    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["delivery_outcomes"]["erp"]["rejected"], 1, "{stats}");
    assert_eq!(stats["plugin_failures"], json!({}), "{stats}");

    let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    let letter = &dlq["dead_letters"][0];
    assert_eq!(letter["event_id"], "bad-1");
    assert_eq!(letter["sink"], "erp");
    assert_eq!(letter["plugin"], "webhook");
    assert_eq!(letter["attempts"], 1);
    assert!(
        letter["error"].as_str().unwrap().starts_with("rejected: HTTP 400"),
        "{letter}"
    );
    assert_eq!(letter["plugin_version"].as_str().unwrap().len(), 12);

    let listed = host.cli(&["dlq", "list"]);
    assert!(listed.contains("bad-1") && listed.contains("HTTP 400"), "{listed}");
    // The sink is fixed (answers 204 from now on); replay through the CLI.
    let id = letter["id"].as_i64().unwrap().to_string();
    let out = host.cli(&["dlq", "replay", &id]);
    assert!(out.contains("replayed 1"), "{out}");
    let entry = wait_for_state(&host, "bad-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(
        sink.requests_for("bad-1").iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![400, 204]
    );
    let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    assert_eq!(dlq["dead_letters"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_one_key_arrive_in_order_while_keys_run_in_parallel() {
    let sink = Sink::start().await;
    // Fail about a third of first attempts so retries interleave with later events.
    let failed_once = std::sync::Mutex::new(std::collections::HashSet::new());
    sink.respond_with(move |event| {
        let id = event["id"].as_str().unwrap_or("").to_owned();
        let h = id.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
        if h % 3 == 0 && failed_once.lock().unwrap().insert(id) {
            (503, vec![])
        } else {
            (204, vec![])
        }
    });
    // Each answer takes 20 ms, so deliveries running at once are seen together at the sink.
    sink.hold_each(std::time::Duration::from_millis(20));
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    let (orders, per_order) = (12, 8);
    for step in 0..per_order {
        let batch: Vec<_> = (0..orders)
            .map(|o| {
                let mut e = sale(
                    &format!("o{o}-s{step}"),
                    "hk-010",
                    &format!("ORD-{o}"),
                    &[("4891234500017", 1, 100)],
                );
                e["partitionkey"] = json!(format!("hk-010:ORD-{o}"));
                e
            })
            .collect();
        let (status, _) = host.post_json(&json!(batch)).await;
        assert_eq!(status, 202);
    }
    let total = orders * per_order;
    wait_for("all events delivered", 60, || async {
        let ids = sink.accepted_ids();
        (ids.iter().collect::<std::collections::BTreeSet<_>>().len() >= total).then_some(())
    })
    .await;
    let mut by_order: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for id in sink.accepted_ids() {
        let (o, s) = id.split_once("-s").unwrap();
        let steps = by_order.entry(o.to_owned()).or_default();
        let s: usize = s.parse().unwrap();
        if steps.last() != Some(&s) {
            steps.push(s);
        }
    }
    for (order, steps) in by_order {
        assert_eq!(
            steps,
            (0..per_order).collect::<Vec<_>>(),
            "order {order} delivered out of order"
        );
    }
    assert!(
        sink.requests().iter().any(|r| r.status == 503),
        "the test needs some retries"
    );
    // Parallel across keys: several orders were in flight at the same moment; and never two
    // deliveries of one order at once.
    let overlap = sink.overlap();
    assert!(overlap.most_keys_at_once >= 3, "{overlap:?}");
    assert!(overlap.same_key_at_once.is_empty(), "{overlap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_honours_retry_after() {
    let sink = Sink::start().await;
    sink.script_with(429, &[("retry-after", "1")]);
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("slow-1", "hk-004", "D-1", &[("1", 1, 100)])).await;
    let entry = wait_for_state(&host, "slow-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 2);
    let r = sink.requests_for("slow-1");
    let gap = r[1].at - r[0].at;
    assert!(
        gap >= std::time::Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After: 1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_pauses_the_sink_without_losing_the_event_until_resumed() {
    let sink = Sink::start().await;
    sink.script(&[410]);
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("gone-1", "hk-005", "E-1", &[("1", 1, 100)])).await;
    wait_for("the sink to be paused", 30, || async {
        let (_, sinks) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
        (sinks["sinks"][0]["paused"] == true).then_some(())
    })
    .await;
    host.post_json(&sale("gone-2", "hk-005", "E-2", &[("1", 1, 100)])).await;
    let before = sink.requests().len();
    wait_for_state(&host, "gone-2", "erp", "pending").await;
    assert_eq!(sink.requests().len(), before, "a paused sink must not be called");
    let out = host.cli(&["sink", "resume", "erp"]);
    assert!(out.contains("resumed"), "{out}");
    wait_for_state(&host, "gone-1", "erp", "delivered").await;
    wait_for_state(&host, "gone-2", "erp", "delivered").await;
}

/// Ids are unique only per source: the same receipt number from two stores is two sales, and a
/// receiver that deduplicates on the idempotency key must see two keys.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_id_from_two_stores_gets_two_idempotency_keys() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    for store in ["hk-001", "hk-002"] {
        let (status, body) = host.post_json(&sale("RCPT-0001", store, "A-1", &[("1", 1, 100)])).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["duplicate"], serde_json::Value::Null, "{body}");
    }
    let requests = wait_for("both sales delivered", 30, || async {
        let requests = sink.requests_for("RCPT-0001");
        (requests.len() == 2).then_some(requests)
    })
    .await;
    let mut keys: Vec<String> = requests.iter().map(|r| r.header("webhook-id").to_owned()).collect();
    keys.sort();
    let mut expected: Vec<String> = ["hk-001", "hk-002"]
        .iter()
        .map(|store| kaunter::store::idempotency_key(&format!("/t/acme/s/{store}/p/till-1"), "RCPT-0001", "erp"))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert_ne!(keys[0], keys[1]);
    for r in &requests {
        assert_eq!(r.header("idempotency-key"), r.header("webhook-id"));
    }
}

/// `steps` events for each of `orders` orders (`{prefix}{o}-s{step}`), posted step by step.
async fn post_orders(host: &Host, prefix: &str, orders: usize, steps: std::ops::Range<usize>) {
    for step in steps {
        let batch: Vec<_> = (0..orders)
            .map(|o| {
                sale(
                    &format!("{prefix}{o}-s{step}"),
                    "hk-011",
                    &format!("{prefix}ORD-{o}"),
                    &[("4891234500017", 1, 100)],
                )
            })
            .collect();
        let (status, body) = host.post_json(&json!(batch)).await;
        assert_eq!(status, 202, "{body}");
    }
}

/// The steps of each order in the order the sink first accepted them.
fn accepted_steps(sink: &Sink) -> BTreeMap<String, Vec<usize>> {
    let mut by_order: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for id in sink.accepted_ids() {
        let (o, s) = id.split_once("-s").unwrap();
        let steps = by_order.entry(o.to_owned()).or_default();
        let s: usize = s.parse().unwrap();
        if !steps.contains(&s) {
            steps.push(s);
        }
    }
    by_order
}

/// Order per key holds across a kill -9: events retried before the kill and events still pending
/// are delivered after the restart in each order's sequence.
#[tokio::test(flavor = "multi_thread")]
async fn order_per_key_holds_across_a_restart() {
    let sink = Sink::start().await;
    sink.respond_with(|_| (503, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 1000;
    let mut host = Host::start(&config(&options));
    post_orders(&host, "r", 6, 0..6).await;
    wait_for_state(&host, "r0-s0", "erp", "retrying").await;
    host.kill();
    sink.respond_with(|_| (204, vec![]));
    host.restart();
    post_orders(&host, "r", 6, 6..8).await;
    wait_for("every event delivered", 60, || async {
        (accepted_steps(&sink).values().map(Vec::len).sum::<usize>() == 48).then_some(())
    })
    .await;
    for (order, steps) in accepted_steps(&sink) {
        assert_eq!(steps, (0..8).collect::<Vec<_>>(), "order {order}");
    }
}

/// A dead-lettered event does not block its key for good, and nothing after it overtakes it:
/// the next event of the order is first sent only after the failed one's last attempt.
#[tokio::test(flavor = "multi_thread")]
async fn order_per_key_holds_around_a_dead_lettered_event() {
    let sink = Sink::start().await;
    sink.respond_with(|event| {
        if event["id"] == "d0-s1" {
            (500, vec![])
        } else {
            (204, vec![])
        }
    });
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 3;
    let host = Host::start(&config(&options));
    post_orders(&host, "d", 3, 0..4).await;
    wait_for_state(&host, "d0-s1", "erp", "dead_lettered").await;
    wait_for_state(&host, "d0-s3", "erp", "delivered").await;
    let requests = sink.requests();
    let last_failure = requests.iter().rposition(|r| r.json()["id"] == "d0-s1").unwrap();
    let next = requests.iter().position(|r| r.json()["id"] == "d0-s2").unwrap();
    assert_eq!(sink.requests_for("d0-s1").len(), 3, "three attempts, then the DLQ");
    assert!(next > last_failure, "d0-s2 overtook d0-s1 before it was dead-lettered");
    let steps = accepted_steps(&sink);
    assert_eq!(steps["d0"], [0, 2, 3]);
    for order in ["d1", "d2"] {
        assert_eq!(steps[order], [0, 1, 2, 3], "{order}");
    }
}

/// Order per key holds while the connector is swapped: each order's events arrive in sequence
/// and, per order, the connector version never goes back.
#[tokio::test(flavor = "multi_thread")]
async fn order_per_key_holds_across_a_connector_swap() {
    let sink = Sink::start().await;
    sink.hold_each(std::time::Duration::from_millis(5));
    let builds = tempfile::tempdir().unwrap();
    let v2 = kaunter_tests::variant(kaunter_tests::plugins::CONNECTOR_WEBHOOK, 2, builds.path());
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    assert_eq!(host.upload("webhook", &v2).await.0, 201);
    post_orders(&host, "w", 8, 0..5).await;
    let (status, body) = host
        .admin_post(
            "/v1/admin/plugins/webhook/deploy",
            &json!({ "version": kaunter_tests::version_of(&v2) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    post_orders(&host, "w", 8, 5..10).await;
    wait_for("every event delivered", 60, || async {
        (accepted_steps(&sink).values().map(Vec::len).sum::<usize>() == 80).then_some(())
    })
    .await;
    for (order, steps) in accepted_steps(&sink) {
        assert_eq!(steps, (0..10).collect::<Vec<_>>(), "order {order}");
    }
    let v1 = kaunter_tests::version_of(std::path::Path::new(kaunter_tests::plugins::CONNECTOR_WEBHOOK));
    for o in 0..8 {
        let mut versions = Vec::new();
        for step in 0..10 {
            versions.push(host.delivered_by(&format!("w{o}-s{step}"), "erp").await);
        }
        let switched = versions.iter().position(|v| *v != v1).unwrap_or(versions.len());
        assert!(
            versions[switched..].iter().all(|v| *v != v1),
            "order w{o} went back to v1: {versions:?}"
        );
        assert_eq!(versions[9], kaunter_tests::version_of(&v2));
    }
}

/// A delivery that always fails is tried exactly `max_attempts` times, then dead-lettered. The
/// host's recorded schedule (each failed attempt's `next_attempt_at − at`, from the delivery's
/// history) grows as `base × 2^(n−1)`, is capped at `backoff_max_ms`, and stays
/// within the 50–100 % jitter: 200, 400, 800, 800, 800 ms.
#[tokio::test(flavor = "multi_thread")]
async fn retries_back_off_exponentially_to_the_cap_and_stop_at_max_attempts() {
    let sink = Sink::start().await;
    sink.respond_with(|_| (503, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 6;
    let text = config(&options)
        .replace("backoff_base_ms = 50", "backoff_base_ms = 200")
        .replace("backoff_max_ms = 400", "backoff_max_ms = 800");
    let host = Host::start(&text);
    assert_eq!(
        host.post_json(&sale("bo-1", "hk-001", "BO-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "bo-1", "erp", "dead_lettered").await;
    // Every failed attempt is in the delivery's history with the time its retry was set for.
    let event = host.event("bo-1").await;
    let failures = event["sinks"][0]["failures"].as_array().unwrap().clone();
    assert_eq!(failures.len(), 6, "{event}");
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let schedule: BTreeMap<i64, i64> = failures
        .iter()
        .filter(|f| !f["next_attempt_at"].is_null())
        .map(|f| (f["attempt"].as_i64().unwrap(), at(&f["next_attempt_at"]) - at(&f["at"])))
        .collect();
    assert!(
        failures[5]["next_attempt_at"].is_null(),
        "the last one was dead-lettered"
    );
    let expected = [200, 400, 800, 800, 800];
    assert_eq!(
        schedule.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "{schedule:?}"
    );
    for (attempt, delay) in &schedule {
        let full = expected[*attempt as usize - 1];
        assert!(
            full / 2 <= *delay && *delay <= full,
            "attempt {attempt}: retry in {delay} ms, expected {}–{full}",
            full / 2
        );
    }
    let entry = wait_for_state(&host, "bo-1", "erp", "dead_lettered").await;
    assert_eq!(entry["attempts"], 6);
    assert_eq!(sink.requests_for("bo-1").len(), 6);
}

/// `SIGTERM` while deliveries are in flight: the host exits cleanly; every acknowledged event is
/// either delivered or still open in the log (never lost, never marked done without being sent),
/// and after a restart all of them are delivered.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_or_keeps_in_flight_work() {
    let sink = Sink::start().await;
    sink.hold_each(std::time::Duration::from_millis(200));
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    post_orders(&host, "t", 20, 0..2).await;
    wait_for("deliveries in flight", 30, || async {
        (sink.overlap().most_keys_at_once > 0).then_some(())
    })
    .await;
    assert!(host.terminate().success(), "a clean exit on SIGTERM");
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let states: BTreeMap<String, i64> = db
        .prepare("SELECT state, count(*) FROM deliveries GROUP BY state")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let routed: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(routed, 40);
    assert!(
        states
            .keys()
            .all(|s| ["delivered", "pending", "retrying"].contains(&s.as_str())),
        "{states:?}"
    );
    let delivered = states.get("delivered").copied().unwrap_or(0);
    assert!(delivered as usize <= sink.accepted_ids().len(), "{states:?}");
    drop(db);
    host.restart();
    wait_for("every event delivered after the restart", 60, || async {
        (accepted_steps(&sink).values().map(Vec::len).sum::<usize>() == 40).then_some(())
    })
    .await;
    let log = host.log();
    assert!(
        log.contains("stopping") && log.contains("signal:SIGTERM"),
        "the log records the shutdown"
    );
}

/// A target that already has the event (409 on its idempotency key) counts as delivered, and
/// the delivery says so: a note in the event lookup and in `kaunter event show`.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_target_already_had_is_delivered_with_a_note() {
    let sink = Sink::start().await;
    sink.script(&[409]);
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    assert_eq!(
        host.post_json(&sale("had-1", "hk-001", "HAD-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    let entry = wait_for_state(&host, "had-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 1, "{entry}");
    let note = entry["note"].as_str().unwrap_or_default();
    assert!(note.starts_with("the target already had it"), "{entry}");
    let shown = host.cli(&["event", "show", "had-1"]);
    assert!(shown.contains("erp") && shown.contains("delivered"), "{shown}");
    assert!(shown.contains(&format!("note: {note}")), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_from_deadlines_says_so_and_names_the_setting() {
    let sink = Sink::start().await;
    // The target takes longer to answer than the connector's deadline allows.
    sink.hold_each(std::time::Duration::from_millis(1500));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 2;
    let text = config(&options).replace(
        "[plugins.grants]\nhttp = [\"POST ",
        "[plugins.limits]\ndeadline_ms = 400\n[plugins.grants]\nhttp = [\"POST ",
    );
    assert!(text.contains("deadline_ms = 400\n[plugins.grants]\nhttp = [\"POST "));
    let host = Host::start(&text);
    host.post_json(&sale("slow-1", "hk-001", "S-1", &[("4891234500017", 1, 100)]))
        .await;
    let entry = wait_for_state(&host, "slow-1", "erp", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("gave up after 2 attempts; last error: plugin exceeded its 400 ms deadline and was stopped after 1 outbound request(s), the last to http://127.0.0.1:"),
        "{error}"
    );
    assert!(
        error.contains("raise limits.deadline_ms for plugin `webhook` (each request may take up to limits.http_timeout_ms = 10000 ms)"),
        "{error}"
    );
    // A deadline is the plugin's own fault, counted as such.
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    let label = stats["plugin_failures"]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.starts_with("webhook@"))
        .cloned()
        .unwrap();
    assert_eq!(stats["plugin_failures"][&label]["deadline"], 2, "{stats}");
}
