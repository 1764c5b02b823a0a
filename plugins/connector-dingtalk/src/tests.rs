//! Native tests on the fake host: the exact request (URL, signature, body) and how each DingTalk
//! answer is mapped.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

/// A robot secret as DingTalk shows it (`SEC…`); used as its text.
const SECRET: &[u8] = b"SEC7f3c1e0b5a9d4e2f8c6b1a0d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f";
/// A timestamp whose signature has `+`, `/` and `=` in it, to see them URL-encoded.
const NOW: i64 = 1_764_000_000_005;
/// base64(HMAC-SHA256(SECRET, "1764000000005\n" + SECRET)), computed independently:
/// `python3 -c 'import hmac,hashlib,base64; s=b"SEC7f…"; print(base64.b64encode(hmac.new(s, b"1764000000005\n"+s, hashlib.sha256).digest()))'`
const SIGNATURE: &str = "qOhRilbRu5d1txyavt6rr+2odOoPYZ/f/ABz7/U1lJY=";
/// The same, as `urllib.parse.quote_plus` encodes it.
const SIGNATURE_IN_URL: &str = "qOhRilbRu5d1txyavt6rr%2B2odOoPYZ%2Ff%2FABz7%2FU1lJY%3D";
const TOKEN: &str = "2f1c0e6a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e";

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
                 "description": "5 refunds in 30 minutes at till-1", "related_event_id": "01JSALE0001"}
    }))
}

fn alert() -> Event {
    event(json!({
        "id": "01JALERT0001",
        "source": "/t/acme/s/hk-002/p/till-3",
        "type": "kaunter.alert.v1",
        "time": "2026-11-25T10:20:00+08:00",
        "data": {"kind": "sink_failing", "severity": "warning", "title": "Sink erp is failing",
                 "message": "12 deliveries dead-lettered in 10 minutes"}
    }))
}

fn context() -> DeliveryContext {
    DeliveryContext {
        idempotency_key: "01JSALE0001:anomaly:refund_spike:dingtalk".into(),
        sink: "dingtalk".into(),
        attempt: 1,
    }
}

fn host() -> FakeHost {
    FakeHost::new()
        .config(json!({ "base_url": "http://dingtalk.test", "access_token": TOKEN, "secret": "dingtalk-robot" }))
        .secret("dingtalk-robot", SECRET)
        .clock(NOW)
}

const OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;

fn body(request: &http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn the_signature_matches_an_independent_computation() {
    let _fake = host().install();
    assert_eq!(sign("dingtalk-robot", NOW).unwrap(), SIGNATURE);
}

#[test]
fn a_signed_markdown_message_goes_to_the_robot() {
    let fake = host().respond(200, &[], OK).install();
    let receipt = deliver(anomaly(), context()).unwrap();
    assert_eq!((receipt.status, receipt.remote_id), (Some(200), None));
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.url,
        format!("http://dingtalk.test/robot/send?access_token={TOKEN}&timestamp={NOW}&sign={SIGNATURE_IN_URL}")
    );
    assert_eq!(
        sent.headers,
        vec![("content-type".to_owned(), "application/json".to_owned())]
    );
    assert_eq!(
        body(sent),
        json!({"msgtype": "markdown", "markdown": {
            "title": "🚨 Anomaly: refund_spike at store hk-001",
            "text": "### 🚨 Anomaly: refund_spike at store hk-001\n\n5 refunds in 30 minutes at till-1\n\n**Evidence**\n\n- refunds: 5\n- window_minutes: 30\n\n> critical · 2026-11-25T10:15:00+08:00 · event 01JSALE0001:anomaly:refund_spike"
        }})
    );
    let body = String::from_utf8_lossy(&sent.body).into_owned();
    assert!(
        !body.contains("SEC7f3c") && !sent.url.contains("SEC7f3c"),
        "the secret never leaves the host"
    );
}

#[test]
fn a_text_message_leads_with_the_keyword_and_an_unsigned_robot_gets_no_signature() {
    let fake = FakeHost::new()
        .config(
            json!({ "base_url": "http://dingtalk.test/", "access_token": TOKEN, "msgtype": "text",
                        "keyword": "POS alert" }),
        )
        .clock(NOW)
        .respond(200, &[], OK)
        .install();
    deliver(alert(), context()).unwrap();
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.url,
        format!("http://dingtalk.test/robot/send?access_token={TOKEN}")
    );
    assert_eq!(
        body(sent),
        json!({"msgtype": "text", "text": {"content":
            "[POS alert] ⚠️ Sink erp is failing at store hk-002\n12 deliveries dead-lettered in 10 minutes\nwarning · 2026-11-25T10:20:00+08:00 · event 01JALERT0001"}})
    );
}

#[test]
fn other_events_and_quiet_alerts_are_skipped() {
    let fake = FakeHost::new()
        .config(json!({ "access_token": TOKEN, "min_severity": "critical" }))
        .install();
    let sale = event(serde_json::from_str(include_str!("../../../samples/sale.json")).unwrap());
    assert_eq!(deliver(sale, context()).unwrap().status, None);
    assert_eq!(deliver(alert(), context()).unwrap().status, None);
    assert!(fake.requests().is_empty());
}

#[test]
fn a_redelivered_event_is_not_sent_twice() {
    let fake = host().respond(200, &[], OK).install();
    deliver(anomaly(), context()).unwrap();
    assert_eq!(deliver(anomaly(), context()).unwrap().status, None);
    assert_eq!(fake.requests().len(), 1);
}

fn context_for(key: &str) -> DeliveryContext {
    DeliveryContext {
        idempotency_key: key.into(),
        sink: "dingtalk".into(),
        attempt: 1,
    }
}

fn remembered(fake: &kaunter_sdk::testing::Installed) -> Vec<String> {
    serde_json::from_slice(&fake.kv("sent/dingtalk").unwrap()).unwrap()
}

#[test]
fn the_record_of_recent_sends_keeps_the_last_dedup_window_sends_and_still_deduplicates() {
    let mut fake = FakeHost::new()
        .config(json!({ "base_url": "http://dingtalk.test", "access_token": TOKEN, "dedup_window": 3 }))
        .clock(NOW);
    for _ in 1..=5 {
        fake = fake.respond(200, &[], OK);
    }
    let fake = fake.install();
    for n in 1..=4 {
        deliver(anomaly(), context_for(&format!("a{n}:dingtalk"))).unwrap();
    }
    // One record for the sink, holding the last three sends, oldest first.
    assert_eq!(remembered(&fake), ["a2:dingtalk", "a3:dingtalk", "a4:dingtalk"]);
    // A redelivery of one of the last three is not sent.
    assert_eq!(deliver(anomaly(), context_for("a2:dingtalk")).unwrap().status, None);
    assert_eq!(fake.requests().len(), 4);
    // The oldest fell out of the window: its redelivery is sent again (the documented bound).
    assert_eq!(
        deliver(anomaly(), context_for("a1:dingtalk")).unwrap().status,
        Some(200)
    );
    assert_eq!(fake.requests().len(), 5);
    assert_eq!(remembered(&fake), ["a3:dingtalk", "a4:dingtalk", "a1:dingtalk"]);
}

#[test]
fn the_record_stays_one_bounded_kv_value_at_the_default_window() {
    let mut fake = FakeHost::new()
        .config(json!({ "base_url": "http://dingtalk.test", "access_token": TOKEN }))
        .clock(NOW);
    for _ in 0..(recent::DEFAULT_WINDOW + 10) {
        fake = fake.respond(200, &[], OK);
    }
    let fake = fake.install();
    for n in 0..(recent::DEFAULT_WINDOW + 10) {
        deliver(
            anomaly(),
            context_for(&format!("01JSALE{n:019}:anomaly:refund_spike:dingtalk")),
        )
        .unwrap();
    }
    let record = fake.kv("sent/dingtalk").unwrap();
    let entries: Vec<String> = serde_json::from_slice(&record).unwrap();
    assert_eq!(entries.len(), recent::DEFAULT_WINDOW);
    assert_eq!(entries[0], "01JSALE0000000000000000010:anomaly:refund_spike:dingtalk");
    // About 60 bytes a send, within the ~70 bytes a send the README states.
    assert!(record.len() < recent::DEFAULT_WINDOW * 70, "{} bytes", record.len());
}

#[test]
fn a_dedup_window_out_of_range_is_rejected() {
    for window in [0, recent::MAX_WINDOW + 1] {
        let fake = FakeHost::new()
            .config(json!({ "access_token": TOKEN, "dedup_window": window }))
            .install();
        match deliver(anomaly(), context()) {
            Err(DeliveryError::Rejected(m)) => assert_eq!(
                m,
                format!(
                    "invalid dingtalk config: `dedup_window` = {window} is out of range; set it between 1 and 50000 (the default is 2000)"
                )
            ),
            other => panic!("{other:?}"),
        }
        assert!(fake.requests().is_empty());
    }
}

#[test]
fn an_ungranted_secret_is_rejected_by_name() {
    let _fake = FakeHost::new()
        .config(json!({ "access_token": TOKEN, "secret": "robot" }))
        .install();
    match deliver(anomaly(), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.starts_with("cannot sign with secret `robot`"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn answer(status: u16, text: &str) -> Result<Receipt, DeliveryError> {
    let fake = host()
        .respond(status, &[("content-type", "application/json")], text)
        .install();
    let result = deliver(anomaly(), context());
    assert_eq!(
        fake.kv("sent/dingtalk").is_some(),
        result.is_ok(),
        "only a send DingTalk took is remembered"
    );
    result
}

#[test]
fn errcodes_map_to_what_the_host_should_do() {
    match answer(
        200,
        r#"{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}"#,
    ) {
        Err(DeliveryError::Rejected(m)) => {
            assert!(m.starts_with("DingTalk answered errcode 310000: sign not match"), "{m}");
            assert!(m.contains("security settings"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    match answer(
        200,
        r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#,
    ) {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(TOO_FAST_WAIT_MS)),
        other => panic!("{other:?}"),
    }
    match answer(200, r#"{"errcode":300001,"errmsg":"token is not exist"}"#) {
        Err(DeliveryError::Disable(m)) => assert!(m.contains("token is not exist"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        answer(200, r#"{"errcode":-1,"errmsg":"系统繁忙"}"#),
        Err(DeliveryError::Retry(_))
    ));
    match answer(200, r#"{"errcode":400105,"errmsg":"不支持的消息类型"}"#) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(m, "DingTalk answered errcode 400105: 不支持的消息类型"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        answer(200, "{}").unwrap().status,
        Some(200),
        "a 2xx without errcode is not refused"
    );
    assert!(matches!(answer(503, "busy"), Err(DeliveryError::Retry(_))));
    assert!(matches!(answer(429, ""), Err(DeliveryError::Throttled(_))));
    let _fake = host().fail_request("timed out").install();
    assert!(matches!(deliver(anomaly(), context()), Err(DeliveryError::Retry(_))));
}

#[test]
fn base64_matches_the_standard_alphabet_with_padding() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
}

/// A host SOP alert that has resolved: a check mark, the condition's evidence (target and since
/// first) and its SOP link as text.
#[test]
fn a_resolved_host_alert_shows_its_evidence_and_sop() {
    let fake = host().respond(200, &[], OK).install();
    let resolved = event(json!({
        "id": "kaunter-alert:sink-failing:xero:1764036900000:resolved",
        "source": "/kaunter/host",
        "type": "kaunter.alert.v1",
        "time": "2026-11-25T10:25:00Z",
        "data": {"kind": "sink-failing", "severity": "critical", "title": "Sink xero is failing",
                 "message": "Clear for 60 s now.", "state": "resolved", "dedup_key": "sink-failing:xero",
                 "target": "sink xero", "since": "2026-11-25T10:15:00Z",
                 "evidence": [{"name": "lasted", "value": "600 s"}, {"name": "last-error", "value": "HTTP 503"}],
                 "runbook": "docs/operators.md#sop-sink-failing"}
    }));
    deliver(resolved, context()).unwrap();
    let text = body(&fake.requests()[0])["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        text,
        "### ✅ Resolved: Sink xero is failing\n\nClear for 60 s now.\n\n**Evidence**\n\n- target: sink xero\n- since: 2026-11-25T10:15:00Z\n- lasted: 600 s\n- last-error: HTTP 503\n\nSOP: docs/operators.md#sop-sink-failing\n\n> critical · 2026-11-25T10:25:00Z · event kaunter-alert:sink-failing:xero:1764036900000:resolved"
    );
}
