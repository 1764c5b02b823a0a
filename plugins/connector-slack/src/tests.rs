//! Native tests on the fake host: the exact requests sent and how each Slack answer is mapped.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::Value;

fn event(value: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
}

fn anomaly() -> Event {
    event(json!({
        "id": "01JSALE0001:anomaly:refund_spike",
        "source": "/t/acme/s/hk-001/p/till-1",
        "type": "pos.anomaly.detected.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "causationid": "01JSALE0001",
        "evidence": "{\"refunds\":5,\"window_minutes\":30}",
        "data": {"kind": "refund_spike", "severity": "critical",
                 "description": "5 refunds in 30 minutes at till-1 <!channel>",
                 "related_event_id": "01JSALE0001"}
    }))
}

fn restock() -> Event {
    event(json!({
        "id": "01JSALE0001:restock:4891234500017",
        "source": "/t/acme/s/hk-002/p/till-3",
        "type": "pos.restock.suggested.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "data": {"sku": "4891234500017", "on_hand_milli": 2000, "suggested_milli": 24000,
                 "reason": "below reorder point 5"}
    }))
}

fn sale() -> Event {
    let text = include_str!("../../../samples/sale.json");
    event(serde_json::from_str(text).unwrap())
}

fn context() -> DeliveryContext {
    DeliveryContext {
        idempotency_key: "01JSALE0001:anomaly:refund_spike:slack".into(),
        sink: "slack".into(),
        attempt: 1,
    }
}

const HOOK: &str = "http://hooks.slack.test/services/T000/B000/XXXX";

fn webhook_host() -> FakeHost {
    FakeHost::new()
        .config(json!({ "webhook_url": HOOK }))
        .clock(1_764_000_000_000)
}

fn api_host() -> FakeHost {
    FakeHost::new()
        .config(json!({ "channel": "C0ALERTS", "base_url": "http://slack.test/api" }))
        .clock(1_764_000_000_000)
}

fn header<'a>(request: &'a http::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn body(request: &http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn an_anomaly_goes_to_the_webhook_with_emoji_store_detail_and_evidence() {
    let fake = webhook_host()
        .respond(200, &[("content-type", "text/html")], "ok")
        .install();
    let receipt = deliver(anomaly(), context()).unwrap();
    assert_eq!(receipt.status, Some(200));
    let sent = &fake.requests()[0];
    assert_eq!((sent.method.as_str(), sent.url.as_str()), ("POST", HOOK));
    assert_eq!(header(sent, "content-type"), Some("application/json"));
    assert_eq!(header(sent, "authorization"), None, "the plugin never carries a token");
    let body = body(sent);
    assert_eq!(
        body["text"],
        ":rotating_light: *Anomaly: refund_spike* at store hk-001: 5 refunds in 30 minutes at till-1 &lt;!channel&gt; (evidence: refunds: 5, window_minutes: 30)"
    );
    assert_eq!(
        body["blocks"],
        json!([
            {"type": "section", "text": {"type": "mrkdwn",
                "text": ":rotating_light: *Anomaly: refund_spike*\n5 refunds in 30 minutes at till-1 &lt;!channel&gt;"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Evidence*\n• refunds: 5\n• window_minutes: 30"}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": "Severity critical · Store hk-001 · 2026-11-25T10:15:00+08:00 · Event 01JSALE0001:anomaly:refund_spike"}]}
        ])
    );
    assert_eq!(body["unfurl_links"], false);
    assert!(
        body.get("channel").is_none(),
        "an incoming webhook posts to its own channel"
    );
}

#[test]
fn a_restock_suggestion_reads_as_quantities() {
    let fake = webhook_host().respond(200, &[], "ok").install();
    deliver(restock(), context()).unwrap();
    assert_eq!(
        body(&fake.requests()[0])["text"],
        ":package: *Restock suggested* at store hk-002: SKU 4891234500017: 2 on hand, suggest ordering 24 (below reorder point 5)"
    );
}

#[test]
fn other_events_are_skipped_without_a_request() {
    let fake = webhook_host().install();
    let receipt = deliver(sale(), context()).unwrap();
    assert_eq!((receipt.status, receipt.remote_id), (None, None));
    assert!(fake.requests().is_empty());
    assert!(fake.logs().iter().any(|(_, m)| m.contains("is not an alert")));
}

#[test]
fn alerts_below_min_severity_are_skipped() {
    let fake = FakeHost::new()
        .config(json!({ "webhook_url": HOOK, "min_severity": "warning" }))
        .install();
    assert_eq!(deliver(restock(), context()).unwrap().status, None);
    assert!(fake.requests().is_empty());
}

#[test]
fn a_redelivered_event_is_not_posted_twice() {
    let fake = api_host()
        .respond(200, &[], r#"{"ok":true,"channel":"C0ALERTS","ts":"1764036900.000200"}"#)
        .install();
    let first = deliver(anomaly(), context()).unwrap();
    assert_eq!(first.remote_id.as_deref(), Some("C0ALERTS/1764036900.000200"));
    let again = deliver(anomaly(), context()).unwrap();
    assert_eq!(again.remote_id.as_deref(), Some("C0ALERTS/1764036900.000200"));
    assert_eq!(fake.requests().len(), 1, "the second delivery found the kv marker");
}

#[test]
fn a_failed_post_leaves_no_marker() {
    let fake = webhook_host().respond(500, &[], "rollup_error").install();
    assert!(matches!(deliver(anomaly(), context()), Err(DeliveryError::Retry(_))));
    assert_eq!(fake.kv("posted/slack"), None);
}

fn context_for(key: &str) -> DeliveryContext {
    DeliveryContext {
        idempotency_key: key.into(),
        sink: "slack".into(),
        attempt: 1,
    }
}

fn remembered(fake: &kaunter_sdk::testing::Installed) -> Vec<(String, String)> {
    serde_json::from_slice(&fake.kv("posted/slack").unwrap()).unwrap()
}

#[test]
fn the_record_of_recent_posts_keeps_the_last_dedup_window_posts_and_still_deduplicates() {
    let mut fake = FakeHost::new()
        .config(json!({ "channel": "C0ALERTS", "base_url": "http://slack.test/api", "dedup_window": 3 }))
        .clock(1_764_000_000_000);
    for n in 1..=5 {
        fake = fake.respond(
            200,
            &[],
            &format!(r#"{{"ok":true,"channel":"C0ALERTS","ts":"1764036900.00000{n}"}}"#),
        );
    }
    let fake = fake.install();
    for n in 1..=4 {
        deliver(anomaly(), context_for(&format!("a{n}:slack"))).unwrap();
    }
    // One record for the sink, holding the last three posts, oldest first.
    assert_eq!(
        remembered(&fake),
        vec![
            ("a2:slack".to_owned(), "C0ALERTS/1764036900.000002".to_owned()),
            ("a3:slack".to_owned(), "C0ALERTS/1764036900.000003".to_owned()),
            ("a4:slack".to_owned(), "C0ALERTS/1764036900.000004".to_owned()),
        ]
    );
    // A redelivery of one of the last three is answered from the record, not posted.
    let again = deliver(anomaly(), context_for("a2:slack")).unwrap();
    assert_eq!(again.remote_id.as_deref(), Some("C0ALERTS/1764036900.000002"));
    assert_eq!(fake.requests().len(), 4);
    // The oldest fell out of the window: its redelivery is posted again (the documented bound).
    deliver(anomaly(), context_for("a1:slack")).unwrap();
    assert_eq!(fake.requests().len(), 5);
    let keys: Vec<String> = remembered(&fake).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["a3:slack", "a4:slack", "a1:slack"]);
}

#[test]
fn the_record_stays_one_bounded_kv_value_at_the_default_window() {
    let mut fake = webhook_host();
    for _ in 0..(recent::DEFAULT_WINDOW + 10) {
        fake = fake.respond(200, &[], "ok");
    }
    let fake = fake.install();
    for n in 0..(recent::DEFAULT_WINDOW + 10) {
        deliver(
            anomaly(),
            context_for(&format!("01JSALE{n:019}:anomaly:refund_spike:slack")),
        )
        .unwrap();
    }
    let record = fake.kv("posted/slack").unwrap();
    let entries: Vec<(String, String)> = serde_json::from_slice(&record).unwrap();
    assert_eq!(entries.len(), recent::DEFAULT_WINDOW);
    assert_eq!(entries[0].0, "01JSALE0000000000000000010:anomaly:refund_spike:slack");
    // About 60 bytes a webhook post (no remote id), within the ~100 bytes a post the README states.
    assert!(record.len() < recent::DEFAULT_WINDOW * 100, "{} bytes", record.len());
}

#[test]
fn a_dedup_window_out_of_range_is_rejected() {
    for window in [0, recent::MAX_WINDOW + 1] {
        let fake = FakeHost::new()
            .config(json!({ "webhook_url": HOOK, "dedup_window": window }))
            .install();
        match deliver(anomaly(), context()) {
            Err(DeliveryError::Rejected(m)) => assert_eq!(
                m,
                format!(
                    "invalid slack config: `dedup_window` = {window} is out of range; set it between 1 and 50000 (the default is 2000)"
                )
            ),
            other => panic!("{other:?}"),
        }
        assert!(fake.requests().is_empty());
    }
}

fn webhook_answer(status: u16, headers: &[(&str, &str)], text: &str) -> Result<Receipt, DeliveryError> {
    let _fake = webhook_host().respond(status, headers, text).install();
    deliver(anomaly(), context())
}

#[test]
fn webhook_answers_map_to_what_the_host_should_do() {
    match webhook_answer(400, &[], "invalid_payload") {
        Err(DeliveryError::Rejected(m)) => assert_eq!(m, "Slack answered HTTP 400 invalid_payload"),
        other => panic!("{other:?}"),
    }
    match webhook_answer(404, &[], "channel_not_found") {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("channel_not_found"), "{m}"),
        other => panic!("{other:?}"),
    }
    match webhook_answer(403, &[], "action_prohibited") {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("action_prohibited"), "{m}"),
        other => panic!("{other:?}"),
    }
    match webhook_answer(404, &[], "no_service") {
        Err(DeliveryError::Disable(m)) => assert!(m.starts_with("Slack answered HTTP 404 no_service: "), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        webhook_answer(410, &[], "channel_is_archived"),
        Err(DeliveryError::Disable(_))
    ));
    match webhook_answer(429, &[("retry-after", "30")], "rate_limited") {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(30_000)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        webhook_answer(503, &[], "rollup_error"),
        Err(DeliveryError::Retry(_))
    ));
    let _fake = webhook_host().fail_request("connection refused").install();
    match deliver(anomaly(), context()) {
        Err(DeliveryError::Retry(h)) => assert!(h.reason.contains("connection refused")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_post_message_sends_the_channel_with_a_charset() {
    let fake = api_host()
        .respond(
            200,
            &[],
            r#"{"ok":true,"channel":"C0ALERTS","ts":"1764036900.000200","message":{}}"#,
        )
        .install();
    let receipt = deliver(anomaly(), context()).unwrap();
    assert_eq!(
        (receipt.status, receipt.remote_id.as_deref()),
        (Some(200), Some("C0ALERTS/1764036900.000200"))
    );
    let sent = &fake.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.url.as_str()),
        ("POST", "http://slack.test/api/chat.postMessage")
    );
    assert_eq!(header(sent, "content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(header(sent, "authorization"), None, "the host adds the bot token");
    let body = body(sent);
    assert_eq!(body["channel"], "C0ALERTS");
    assert!(body["text"].as_str().unwrap().starts_with(":rotating_light: *Anomaly"));
    assert_eq!(body["blocks"].as_array().unwrap().len(), 3);
}

fn api_answer(status: u16, headers: &[(&str, &str)], text: &str) -> Result<Receipt, DeliveryError> {
    let _fake = api_host().respond(status, headers, text).install();
    deliver(anomaly(), context())
}

#[test]
fn chat_post_message_answers_map_to_what_the_host_should_do() {
    match api_answer(429, &[("retry-after", "12")], r#"{"ok":false,"error":"ratelimited"}"#) {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(12_000)),
        other => panic!("{other:?}"),
    }
    match api_answer(200, &[], r#"{"ok":false,"error":"ratelimited"}"#) {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, None),
        other => panic!("{other:?}"),
    }
    for error in ["invalid_auth", "not_authed"] {
        match api_answer(200, &[], &format!(r#"{{"ok":false,"error":"{error}"}}"#)) {
            Err(DeliveryError::Retry(h)) => assert_eq!(h.reason, format!("chat.postMessage answered {error}")),
            other => panic!("{error}: {other:?}"),
        }
    }
    match api_answer(200, &[], r#"{"ok":false,"error":"channel_not_found"}"#) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(m, "chat.postMessage answered channel_not_found"),
        other => panic!("{other:?}"),
    }
    match api_answer(
        200,
        &[],
        r#"{"ok":false,"error":"missing_scope","needed":"chat:write"}"#,
    ) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("needs scope chat:write"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        api_answer(200, &[], r#"{"ok":false,"error":"token_revoked"}"#),
        Err(DeliveryError::Disable(_))
    ));
    assert!(matches!(
        api_answer(502, &[], "Bad Gateway"),
        Err(DeliveryError::Retry(_))
    ));
}

#[test]
fn a_config_with_both_or_neither_destination_is_rejected() {
    let _fake = FakeHost::new()
        .config(json!({ "webhook_url": HOOK, "channel": "C1" }))
        .install();
    match deliver(anomaly(), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("exactly one of `webhook_url`"), "{m}"),
        other => panic!("{other:?}"),
    }
    let _fake = FakeHost::new().config(json!({ "channnel": "C1" })).install();
    match deliver(anomaly(), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("unknown field `channnel`"), "{m}"),
        other => panic!("{other:?}"),
    }
}
