//! Sink queues live in the log: a sink that is down builds a backlog on disk (its worker holds a
//! bounded window in memory), never slows the other sinks or ingest, parks work past its limit,
//! and after recovery or a restart delivers everything in per-key order.

use crate::harness::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// The window the `down` sink's worker may hold in memory.
const WINDOW: u64 = 16;

/// Options with a second sink, `down`, on its own receiver, next to `erp`; both get every sale.
fn two_sinks(erp: &Sink, down: &Sink, down_settings: &str) -> ConfigOptions {
    let mut options = ConfigOptions::new(&erp.url);
    options.extra = format!(
        r#"
[[plugins]]
name = "webhook-down"
kind = "connector"
path = {path:?}
secrets = ["erp-signing"]
[plugins.config]
url = "{url}"
secret = "erp-signing"
[plugins.grants]
http = ["POST {url}"]
clock = true

[[sinks]]
name = "down"
connector = "webhook-down"
concurrency = 4
max_attempts = 100000
backoff_base_ms = 20
backoff_max_ms = 100
window = {WINDOW}
{down_settings}
"#,
        path = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        url = down.url,
    );
    options.routes = r#"
[[routes]]
name = "sales"
types = ["pos.*"]
transforms = ["sku-map"]
sinks = ["erp", "down"]
"#
    .into();
    options
}

/// Sale `i` of a run: 8 orders over 4 stores, so each partition key gets every 8th sale.
fn keyed_sale(prefix: &str, i: usize) -> Value {
    let store = format!("hk-00{}", i % 4 + 1);
    sale(
        &format!("{prefix}-{i:04}"),
        &store,
        &format!("K-{}", i % 8),
        &[("4891234500017", 1, 100)],
    )
}

/// One sink as `GET /v1/admin/sinks` reports it.
async fn sink_state(host: &Host, name: &str) -> Value {
    let (status, body) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
    assert_eq!(status, 200, "{body}");
    body["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name} in {body}"))
}

/// Asserts the worker of `down` holds no more than its window.
async fn assert_window_held(host: &Host) -> Value {
    let state = sink_state(host, "down").await;
    assert!(
        state["in_memory"].as_u64().unwrap() <= WINDOW && state["window"] == WINDOW,
        "the worker holds more than its window: {state}"
    );
    state
}

/// Checks every event reached `sink` exactly `n` distinct ids, and each key's events in order.
fn assert_delivered_in_key_order(sink: &Sink, prefix: &str, n: usize) {
    let accepted = sink.accepted_ids();
    let mut per_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for id in &accepted {
        let i: usize = id.strip_prefix(&format!("{prefix}-")).unwrap().parse().unwrap();
        // A retry after a lost answer may repeat an event; its first acceptance is what counts.
        if seen.insert(i) {
            per_key.entry(i % 8).or_default().push(i);
        }
    }
    assert_eq!(seen.len(), n, "not every event was delivered");
    for (key, order) in per_key {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "key K-{key} was delivered out of order");
    }
}

/// Item 6 of the hardening review: with one sink down under steady load, ingest keeps answering
/// 202 and the other sink stays current; the down sink's queue grows in the log (its count), not
/// in memory (its worker's window); after a kill -9 and restart it drains in per-key order.
#[tokio::test(flavor = "multi_thread")]
async fn one_sink_down_under_steady_load_queues_on_disk_and_drains_in_key_order_after_a_restart() {
    let erp = Sink::start().await;
    let down = Sink::start().await;
    down.respond_with(|_| (503, vec![]));
    // A queue limit far below the backlog the down sink builds: it must not refuse ingest.
    let mut options = two_sinks(&erp, &down, "");
    options.max_pending = 50;
    let mut host = Host::start(&config(&options));
    const N: usize = 400;
    for round in 0..20 {
        for i in round * 20..(round + 1) * 20 {
            let (status, body) = host.post_json(&keyed_sale("steady", i)).await;
            assert_eq!(status, 202, "sale {i} refused while one sink is down: {body}");
        }
        assert_window_held(&host).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The working sink is current while the other is still down.
    wait_for("erp to have every sale", 60, || async {
        (erp.accepted_ids().len() >= N && sink_state(&host, "erp").await["open"] == 0).then_some(())
    })
    .await;
    let state = wait_for("the down sink's whole backlog in the log", 60, || async {
        let state = assert_window_held(&host).await;
        (state["open"] == N as u64).then_some(state)
    })
    .await;
    assert!(state["in_memory"].as_u64().unwrap() > 0, "{state}");
    assert!(down.accepted_ids().is_empty());
    assert_delivered_in_key_order(&erp, "steady", N);

    host.kill();
    down.respond_with(|_| (204, vec![]));
    host.restart();
    wait_for("the backlog to drain after the restart", 120, || async {
        let state = assert_window_held(&host).await;
        (state["open"] == 0 && down.accepted_ids().len() >= N).then_some(())
    })
    .await;
    assert_delivered_in_key_order(&down, "steady", N);
}

/// Past `max_backlog`, a sink's new deliveries are parked: kept in the log, counted, not tried,
/// and ingest still answers 202. Unparked by an operator, they go in per-key order.
#[tokio::test(flavor = "multi_thread")]
async fn past_its_backlog_limit_a_sink_parks_work_until_an_operator_unparks_it() {
    let erp = Sink::start().await;
    let down = Sink::start().await;
    down.respond_with(|_| (503, vec![]));
    let host = Host::start(&config(&two_sinks(&erp, &down, "max_backlog = 24")));
    const N: usize = 64;
    for i in 0..N {
        let (status, body) = host.post_json(&keyed_sale("park", i)).await;
        assert_eq!(status, 202, "sale {i}: {body}");
    }
    let state = wait_for("24 open and 40 parked at the down sink", 60, || async {
        let state = assert_window_held(&host).await;
        (state["open"] == 24 && state["parked"] == 40).then_some(state)
    })
    .await;
    let stats = host.get("/v1/admin/stats", ADMIN_KEY).await.1;
    assert_eq!(stats["parked_deliveries"], 40, "{stats}");
    let listed = host.cli(&["sink", "list"]);
    assert!(
        listed.lines().any(|l| l.starts_with("down") && l.contains(" 40 ")),
        "{listed}\n{state}"
    );
    wait_for("erp to have every sale", 60, || async {
        (erp.accepted_ids().len() >= N).then_some(())
    })
    .await;

    // The sink recovers: what was open goes, what was parked stays parked.
    down.respond_with(|_| (204, vec![]));
    wait_for("the open backlog to drain", 60, || async {
        (sink_state(&host, "down").await["open"] == 0).then_some(())
    })
    .await;
    assert_eq!(sink_state(&host, "down").await["parked"], 40);
    assert_eq!(down.accepted_ids().len(), 24);

    let out = host.cli(&["sink", "unpark", "down"]);
    assert!(out.contains("40 parked deliveries"), "{out}");
    wait_for("every sale at the down sink", 60, || async {
        (down.accepted_ids().len() >= N && sink_state(&host, "down").await["parked"] == 0).then_some(())
    })
    .await;
    assert_delivered_in_key_order(&down, "park", N);
    assert!(
        host.audit_records().iter().any(|r| r["action"] == "sink.unpark"
            && r["subject"] == "down"
            && r["detail"].as_str().is_some_and(|d| d.contains(r#""parked":40"#))),
        "the unpark is not in the audit log"
    );
}

/// Ingest answers 503 (`log_full`, with Retry-After) only when the log is over its own disk
/// budget, and stores nothing it refused.
#[tokio::test(flavor = "multi_thread")]
async fn ingest_answers_503_only_when_the_log_is_over_its_disk_budget() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.server_extra = "log_budget_mib = 1".into();
    let host = Host::start(&config(&options));
    let mut refused = None;
    for i in 0..5000 {
        let response = host
            .http
            .post(format!("{}/v1/events", host.url))
            .bearer_auth(POS_KEY)
            .header("content-type", "application/json")
            .body(keyed_sale("budget", i).to_string())
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            202 => {}
            503 => {
                refused = Some((i, response));
                break;
            }
            other => panic!("sale {i}: unexpected status {other}"),
        }
    }
    let (i, response) = refused.expect("a 1 MiB log budget was never reached");
    assert!(i > 0, "the very first sale was refused");
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "log_full", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("log_budget_mib"),
        "{body}"
    );
    let id = format!("budget-{i:04}");
    assert_eq!(host.get(&format!("/v1/events/{id}"), ADMIN_KEY).await.0, 404);
}

/// One key whose head keeps failing, with far more rows than the window, never stalls the other
/// keys of the sink: its rows beyond a quarter of the window stay in the log and are read by key
/// once the ones in memory are done, in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_key_with_a_long_backlog_does_not_stall_the_other_keys() {
    let erp = Sink::start().await;
    let down = Sink::start().await;
    let stuck = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = stuck.clone();
    down.respond_with(move |event| {
        let blocked = failing.load(std::sync::atomic::Ordering::SeqCst) && event["partitionkey"] == "hk-001:K-0";
        (if blocked { 503 } else { 204 }, vec![])
    });
    let host = Host::start(&config(&two_sinks(&erp, &down, "")));
    // Sales 0, 8, 16, … are key K-0 (see keyed_sale): first 60 of them, then the other keys.
    for i in 0..60 {
        assert_eq!(host.post_json(&keyed_sale("hot", i * 8)).await.0, 202);
    }
    for i in 0..60usize {
        if !i.is_multiple_of(8) {
            assert_eq!(host.post_json(&keyed_sale("hot", i)).await.0, 202);
        }
    }
    let others = (0..60usize).filter(|i| !i.is_multiple_of(8)).count();
    wait_for("the other keys to be delivered past the stuck one", 60, || async {
        let state = assert_window_held(&host).await;
        (state["open"] == 60 && down.accepted_ids().len() >= others).then_some(())
    })
    .await;
    stuck.store(false, std::sync::atomic::Ordering::SeqCst);
    wait_for("the stuck key to drain", 60, || async {
        (sink_state(&host, "down").await["open"] == 0).then_some(())
    })
    .await;
    let accepted = down.accepted_ids();
    let hot: Vec<usize> = accepted
        .iter()
        .map(|id| id.strip_prefix("hot-").unwrap().parse().unwrap())
        .filter(|i: &usize| i.is_multiple_of(8))
        .collect();
    assert_eq!(
        hot,
        (0..60).map(|i| i * 8).collect::<Vec<_>>(),
        "K-0 out of order or repeated"
    );
}
