//! The host's SOP alerts end to end: a vendor goes down, `kaunter.alert.v1` events reach the Slack
//! fake through an ordinary route, the vendor comes back, `resolved` follows and the backlog
//! drains with nothing twice; and an alert sink that is itself down raises one bounded set of
//! alerts, never alerts about its own alerts. Thresholds are shortened by `[alerts]` (seconds);
//! the measured alert latency is printed, never asserted.

use super::slack::{HOOK, anomaly, slack, webhook_connector};
use super::xero::{Books, connector_config, sale_event, xero};
use super::{VendorFake, host_config};
use crate::harness::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[alerts]` for tests: checked every second, resolved after two clear seconds.
const FAST_ALERTS: &str = r#"
[alerts]
check_interval_secs = 1
sink_failures = 3
resolve_after_secs = 2
window_secs = 3
"#;

/// The Slack connector posting to the fake's incoming webhook, a `chat` sink and a route for
/// alerts.
fn slack_chat(fake: &VendorFake, max_attempts: u32, alert_types: &str) -> String {
    format!(
        r#"
{plugin}
[[sinks]]
name = "chat"
connector = "slack"
max_attempts = {max_attempts}
backoff_base_ms = 50
backoff_max_ms = 100

[[routes]]
name = "alerts"
types = [{alert_types}]
sinks = ["chat"]
"#,
        plugin = webhook_connector(fake).1,
    )
}

fn slack_secret(fake: &VendorFake) -> String {
    webhook_connector(fake).0
}

/// The `text` of every message the Slack fake took.
fn posted(fake: &VendorFake) -> Vec<String> {
    fake.calls_to("POST", HOOK)
        .iter()
        .map(|c| c.json()["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits for a Slack message containing `needle`; returns how long it took from `since`.
async fn wait_for_post(fake: &VendorFake, needle: &str, since: Instant) -> Duration {
    wait_for(&format!("a Slack message with {needle:?}"), 90, || async {
        posted(fake).iter().any(|t| t.contains(needle)).then(|| since.elapsed())
    })
    .await
}

async fn status(host: &Host) -> Value {
    let (code, body) = host.get("/v1/admin/status", ADMIN_KEY).await;
    assert_eq!(code, 200, "{body}");
    body
}

fn open_keys(status: &Value) -> Vec<String> {
    status["alerts"]["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn xero_down_raises_sink_failing_and_sync_delayed_in_slack_then_resolves_and_drains_once() {
    let oauth = OAuthServer::start().await;
    let books = Arc::new(Mutex::new(Books::default()));
    let erp = VendorFake::start(xero(books.clone())).await;
    let chat = VendorFake::start(slack).await;
    let host = Host::start(&host_config(&format!(
        r#"
{FAST_ALERTS}
[secrets]
{secret}

{xero}

[[sinks]]
name = "xero"
connector = "xero"
max_attempts = 1000
backoff_base_ms = 100
backoff_max_ms = 300
freshness_threshold_secs = 3

[[routes]]
name = "books"
types = ["pos.sale.*"]
sinks = ["xero"]
{chat}
"#,
        secret = slack_secret(&chat),
        xero = connector_config(&erp, &oauth, "200", "090"),
        chat = slack_chat(&chat, 5, r#""kaunter.alert.v1""#),
    )));

    host.post_json(&sale_event("al-1", "HK001-000701")).await;
    wait_for_state(&host, "al-1", "xero", "delivered").await;

    // Xero goes down with sales still coming.
    erp.set_down(true);
    let down_at = Instant::now();
    for (id, order) in [
        ("al-2", "HK001-000702"),
        ("al-3", "HK001-000703"),
        ("al-4", "HK001-000704"),
    ] {
        host.post_json(&sale_event(id, order)).await;
    }
    let failing_after = wait_for_post(&chat, "Sink xero is failing", down_at).await;
    let delayed_after = wait_for_post(&chat, "Sync to xero is delayed", down_at).await;
    eprintln!(
        "measured alert latency from Xero going down: sink-failing {:.1} s, sync-delayed {:.1} s (threshold 3 s)",
        failing_after.as_secs_f64(),
        delayed_after.as_secs_f64()
    );
    let during = status(&host).await;
    assert_eq!(
        open_keys(&during),
        ["sink-failing:xero", "sync-delayed:xero"],
        "{during}"
    );
    let (code, text) = host.cli_code(&["status"]);
    assert_eq!(code, 1, "degraded: {text}");
    assert!(
        text.contains("open alerts: 2") && text.contains("sink-failing:xero"),
        "{text}"
    );

    // Back up: the backlog drains in order and both conditions resolve.
    erp.set_down(false);
    let up_at = Instant::now();
    for id in ["al-2", "al-3", "al-4"] {
        wait_for_state(&host, id, "xero", "delivered").await;
    }
    let resolved_after = wait_for_post(&chat, "Resolved: Sink xero is failing", up_at).await;
    wait_for_post(&chat, "Resolved: Sync to xero is delayed", up_at).await;
    eprintln!(
        "measured: resolved {:.1} s after Xero came back (resolve_after_secs = 2)",
        resolved_after.as_secs_f64()
    );

    // A few more checks: nothing more is raised, nothing was posted or booked twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let texts = posted(&chat);
    assert_eq!(texts.len(), 4, "two firing, two resolved: {texts:#?}");
    assert!(
        texts[0].starts_with(":rotating_light: *Sink xero is failing*"),
        "{texts:#?}"
    );
    let body = chat.calls_to("POST", HOOK)[0].json();
    let evidence = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        evidence.contains("consecutive-failures") && evidence.contains("last-error") && evidence.contains("503"),
        "{evidence}"
    );
    assert!(
        body["blocks"][2]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("SOP docs/operators.md#sop-sink-failing"),
        "{body}"
    );
    assert!(
        texts.iter().filter(|t| t.starts_with(":white_check_mark:")).count() == 2,
        "{texts:#?}"
    );
    let invoices = books.lock().unwrap().documents.len();
    assert_eq!(invoices, 4, "one invoice per sale, none twice");
    let after = status(&host).await;
    assert!(open_keys(&after).is_empty(), "{after}");
    assert_eq!(
        after["alerts"]["raised"],
        serde_json::json!({"firing": 2, "resolved": 2})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_sink_that_is_down_raises_one_bounded_set_of_alerts() {
    let chat = VendorFake::start(slack).await;
    chat.set_down(true);
    let host = Host::start(&host_config(&format!(
        r#"
{FAST_ALERTS}
[secrets]
{secret}
{chat}
"#,
        secret = slack_secret(&chat),
        chat = slack_chat(&chat, 2, r#""kaunter.alert.v1", "pos.anomaly.*""#),
    )));
    // An anomaly cannot reach the chat: two attempts, then the dead-letter queue.
    host.post_json(&anomaly("ab-1")).await;
    wait_for_state(&host, "ab-1", "chat", "dead_lettered").await;

    // The chat sink fails and its dead letters grew: one alert each. Their own deliveries fail and
    // dead-letter too, and are not counted as evidence, so the DLQ condition still resolves.
    wait_for(
        "sink-failing and dlq-growing raised, dlq-growing resolved",
        90,
        || async {
            let s = status(&host).await;
            let settled = s["alerts"]["raised"] == serde_json::json!({"firing": 2, "resolved": 1})
                && open_keys(&s) == ["sink-failing:chat"];
            settled.then_some(())
        },
    )
    .await;
    let settled = status(&host).await;
    assert_eq!(open_keys(&settled), ["sink-failing:chat"], "{settled}");
    // Six more checks change nothing: no loop of alerts about alerts.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = status(&host).await;
    assert_eq!(later["alerts"], settled["alerts"], "the set is bounded");
    let (_, letters) = host.get("/v1/admin/dlq?sink=chat", ADMIN_KEY).await;
    let alert_letters = letters["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "kaunter.alert.v1")
        .count();
    assert_eq!(
        alert_letters, 3,
        "every alert was attempted and kept for replay: {letters}"
    );
    assert!(chat.calls().is_empty());
}

/// A registered store that sends nothing is noticed (freshness cannot see it: nothing waits),
/// and the alert resolves with its first sale.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_store_raises_store_silent_and_resolves_once_it_sells() {
    let chat = VendorFake::start(slack).await;
    let host = Host::start(&host_config(&format!(
        r#"
{FAST_ALERTS}
[stores.hk-009]
silent_after_secs = 2

[secrets]
{secret}
{chat}
"#,
        secret = slack_secret(&chat),
        chat = slack_chat(&chat, 5, r#""kaunter.alert.v1""#),
    )));
    let started = Instant::now();
    let silent_after = wait_for_post(&chat, "Store hk-009 is silent", started).await;
    eprintln!(
        "measured: store-silent {:.1} s after start (silent_after_secs = 2)",
        silent_after.as_secs_f64()
    );
    let text = posted(&chat).join("\n");
    assert!(
        text.contains("silent-while-open") && text.contains("none since start"),
        "{text}"
    );
    // The store opens: a sale a second, until the alert has resolved.
    for n in 1.. {
        let sale = sale(&format!("hk9-{n}"), "hk-009", &format!("HK9-{n}"), &[("1", 1, 100)]);
        assert_eq!(host.post_json(&sale).await.0, 202);
        if posted(&chat)
            .iter()
            .any(|t| t.contains("Resolved: Store hk-009 is silent"))
        {
            break;
        }
        assert!(n < 90, "no resolved alert after {n} sales: {:?}", posted(&chat));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(open_keys(&status(&host).await).is_empty());
}
