//! Native tests on the fake host: the exact requests sent and how each HubSpot answer is mapped.

use super::*;
use kaunter_sdk::testing::FakeHost;

const UPSERT: &str = "http://hubspot.test/crm/v3/objects/contacts/batch/upsert";
const NOTES: &str = "http://hubspot.test/crm/v3/objects/notes";

fn event(value: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
}

/// The sample sale, bought by member M-1001, as `transform-loyalty` leaves it.
fn member_sale(id: &str) -> Event {
    member_order(id, "HK001-000123")
}

/// The sample sale as order `order`, in event `id`.
fn member_order(id: &str, order: &str) -> Event {
    let mut value: Value = serde_json::from_str(include_str!("../../../samples/sale.json")).unwrap();
    value["id"] = json!(id);
    value["data"]["order_id"] = json!(order);
    value["data"]["member_id"] = json!("M-1001");
    value["loyaltypoints"] = json!("79");
    value["loyaltybalance"] = json!("1279");
    value["loyaltytier"] = json!("gold");
    event(value)
}

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn member_refund() -> Event {
    let line = json!({"line_no": 1, "sku": "4891234500017", "quantity_milli": -1000, "unit_price": hkd(3990),
                      "gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "taxes": []});
    event(json!({
        "id": "01JREFUND0001",
        "source": "/t/acme/s/hk-002/p/till-2",
        "type": "pos.refund.completed.v1",
        "time": "2026-11-26T09:00:00+08:00",
        "loyaltypoints": "-39",
        "loyaltybalance": "1240",
        "loyaltytier": "gold",
        "data": {"refund_id": "R-77", "original_order_id": "HK001-000123", "business_date": "2026-11-26",
                 "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
                 "lines": [{"line": line, "original_line_no": 1, "restock": true}],
                 "tenders": [{"method": "octopus", "amount": hkd(-3990)}],
                 "totals": {"gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "tax": hkd(0),
                            "total": hkd(-3990), "tendered": hkd(-3990), "change": hkd(0)},
                 "member_id": "M-1001"}
    }))
}

fn member_update(data: Value) -> Event {
    event(json!({
        "id": "01JMEMBER0001",
        "source": "/t/acme/s/hk-001/p/till-1",
        "type": "pos.member.updated.v1",
        "time": "2026-11-25T10:20:00+08:00",
        "data": data
    }))
}

fn context(key: &str) -> DeliveryContext {
    DeliveryContext {
        idempotency_key: key.into(),
        sink: "crm".into(),
        attempt: 1,
    }
}

fn host() -> FakeHost {
    FakeHost::new()
        .config(json!({ "base_url": "http://hubspot.test" }))
        .clock(1_764_000_000_000)
}

fn upserted(contact: &str) -> String {
    json!({"status": "COMPLETE", "results": [{"id": contact, "properties": {}, "new": false,
           "createdAt": "2026-11-01T00:00:00Z", "updatedAt": "2026-11-25T02:15:00Z", "archived": false}],
           "startedAt": "2026-11-25T02:15:00Z", "completedAt": "2026-11-25T02:15:00Z"})
    .to_string()
}

fn body(request: &http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn header<'a>(request: &'a http::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn a_member_sale_upserts_the_contact_by_member_id() {
    let fake = host().respond(200, &[], &upserted("5101")).install();
    let receipt = deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")).unwrap();
    assert_eq!(
        (receipt.status, receipt.remote_id.as_deref()),
        (Some(200), Some("5101"))
    );
    let sent = &fake.requests()[0];
    assert_eq!((sent.method.as_str(), sent.url.as_str()), ("POST", UPSERT));
    assert_eq!(header(sent, "content-type"), Some("application/json"));
    assert_eq!(header(sent, "authorization"), None, "the host adds the bearer token");
    assert_eq!(
        body(sent),
        json!({"inputs": [{
            "idProperty": "kaunter_member_id",
            "id": "M-1001",
            "objectWriteTraceId": "01JSALE0001:crm",
            "properties": {
                "kaunter_last_purchase_date": "2026-11-25",
                "kaunter_last_purchase_store": "hk-001",
                "kaunter_last_purchase_order_id": "HK001-000123",
                "kaunter_last_purchase_amount": "79.80",
                "kaunter_last_purchase_currency": "HKD",
                "kaunter_lifetime_spend": "79.80",
                "kaunter_loyalty_points_earned": "79",
                "kaunter_loyalty_balance": "1279",
                "kaunter_loyalty_tier": "gold"
            }
        }]})
    );
}

fn spent(fake: &kaunter_sdk::testing::Installed, i: usize) -> Value {
    body(&fake.requests()[i])["inputs"][0]["properties"]["kaunter_lifetime_spend"].clone()
}

#[test]
fn lifetime_spend_counts_each_order_once_across_retries_replays_and_new_event_ids() {
    let fake = host().respond(503, &[], "unavailable").install();
    assert!(matches!(
        deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")),
        Err(DeliveryError::Retry(_))
    ));
    deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")).unwrap();
    assert_eq!(
        (spent(&fake, 0), spent(&fake, 1)),
        (json!("79.80"), json!("79.80")),
        "the retry after a failed upsert adds nothing"
    );
    deliver(member_sale("01JSALE0001-RESENT"), context("01JSALE0001-RESENT:crm")).unwrap();
    assert_eq!(
        spent(&fake, 2),
        json!("79.80"),
        "the same order under a new event id adds nothing"
    );
    deliver(member_order("01JSALE0002", "HK001-000124"), context("01JSALE0002:crm")).unwrap();
    assert_eq!(spent(&fake, 3), json!("159.60"));
    deliver(member_refund(), context("01JREFUND0001:crm")).unwrap();
    let refund = body(&fake.requests()[4]);
    assert_eq!(
        refund["inputs"][0]["properties"],
        json!({
            "kaunter_last_refund_date": "2026-11-26",
            "kaunter_last_refund_store": "hk-002",
            "kaunter_last_refund_amount": "39.90",
            "kaunter_last_refund_currency": "HKD",
            "kaunter_lifetime_spend": "119.70",
            "kaunter_loyalty_points_earned": "-39",
            "kaunter_loyalty_balance": "1240",
            "kaunter_loyalty_tier": "gold"
        })
    );
    deliver(member_refund(), context("01JREFUND0001:crm")).unwrap();
    deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")).unwrap();
    assert_eq!(
        (spent(&fake, 5), spent(&fake, 6)),
        (json!("119.70"), json!("119.70")),
        "replays of the refund and of the first sale send the current total"
    );
}

#[test]
fn a_replay_older_than_what_is_remembered_adds_nothing() {
    let fake = FakeHost::new()
        .config(json!({ "base_url": "http://hubspot.test", "remember_documents": 2 }))
        .install();
    let sale_on = |i: usize| {
        let mut sale = member_order(&format!("e{i}"), &format!("HK001-00020{i}"));
        if let Payload::Sale(s) = &mut sale.payload {
            s.business_date = format!("2026-11-2{i}");
        }
        sale
    };
    for i in 0..4 {
        deliver(sale_on(i), context(&format!("e{i}:crm"))).unwrap();
    }
    assert_eq!(spent(&fake, 3), json!("319.20"));
    // `kaunter replay --since` sends the first sale again: it is no longer in the member's record,
    // and its business day is not after what was dropped.
    deliver(sale_on(0), context("e0:crm")).unwrap();
    assert_eq!(spent(&fake, 4), json!("319.20"));
    assert!(
        fake.logs()
            .iter()
            .any(|(_, line)| line.contains("`hk-001:HK001-000200` is from before the oldest document remembered")),
        "{:?}",
        fake.logs()
    );
    let record: Value = serde_json::from_slice(&fake.kv("spend/M-1001").unwrap()).unwrap();
    assert_eq!(record["d"].as_array().unwrap().len(), 2, "{record}");
}

#[test]
fn a_full_kv_quota_does_not_reject_the_contact_update() {
    let fake = FakeHost::new()
        .config(json!({ "base_url": "http://hubspot.test", "notes": true }))
        .respond(200, &[], &upserted("5101"))
        .install();
    spend::quota::fill(true);
    let receipt = deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm"));
    spend::quota::fill(false);
    assert_eq!(receipt.unwrap().remote_id.as_deref(), Some("5101"));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "no note that could not be kept to once");
    let properties = &body(&requests[0])["inputs"][0]["properties"];
    assert_eq!(properties["kaunter_last_purchase_order_id"], "HK001-000123");
    assert_eq!(properties.get("kaunter_lifetime_spend"), None, "{properties}");
    assert!(
        fake.logs()
            .iter()
            .any(|(level, line)| matches!(level, kaunter_sdk::host::Level::Warn)
                && line.contains("kv quota exceeded")
                && line.contains("raise limits.kv_quota_bytes")),
        "{:?}",
        fake.logs()
    );
    assert_eq!(fake.kv("spend/M-1001"), None);
}

#[test]
fn a_member_update_sends_personal_fields_only_when_present() {
    let fake = host().install();
    deliver(
        member_update(
            json!({"member_id": "M-1001", "tier": "platinum", "points_balance": 5200,
                             "name": "Chan Tai Man", "phone": "+85291234567", "email": "tm.chan@example.com"}),
        ),
        context("01JMEMBER0001:crm"),
    )
    .unwrap();
    deliver(
        member_update(json!({"member_id": "M-1002", "tier": "silver"})),
        context("01JMEMBER0002:crm"),
    )
    .unwrap();
    let requests = fake.requests();
    assert_eq!(
        body(&requests[0])["inputs"][0]["properties"],
        json!({"kaunter_loyalty_tier": "platinum", "kaunter_loyalty_balance": "5200",
               "firstname": "Chan Tai Man", "phone": "+85291234567", "email": "tm.chan@example.com"})
    );
    assert_eq!(body(&requests[1])["inputs"][0]["id"], "M-1002");
    assert_eq!(
        body(&requests[1])["inputs"][0]["properties"],
        json!({"kaunter_loyalty_tier": "silver"}),
        "a redacted update touches no personal property"
    );
}

#[test]
fn events_without_a_member_and_other_types_are_skipped() {
    let fake = host().install();
    let mut anonymous: Value = serde_json::from_str(include_str!("../../../samples/sale.json")).unwrap();
    anonymous["id"] = json!("01JSALE0003");
    let receipt = deliver(event(anonymous), context("k")).unwrap();
    assert_eq!((receipt.status, receipt.remote_id), (None, None));
    let stock = event(
        json!({"id": "s1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.stock.adjusted.v1",
                            "data": {"sku": "1", "delta_milli": 1000, "reason": "receipt"}}),
    );
    assert_eq!(deliver(stock, context("k")).unwrap().status, None);
    assert_eq!(
        deliver(member_update(json!({"member_id": "M-1"})), context("k"))
            .unwrap()
            .status,
        None
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn notes_are_added_to_the_timeline_once_per_event() {
    let fake = FakeHost::new()
        .config(
            json!({ "base_url": "http://hubspot.test/", "notes": true, "id_property": "member_no",
                        "property_prefix": "pos_" }),
        )
        .respond(200, &[], &upserted("5101"))
        .respond(201, &[], r#"{"id":"9001","properties":{}}"#)
        .respond(200, &[], &upserted("5101"))
        .install();
    deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")).unwrap();
    let requests = fake.requests();
    assert_eq!(body(&requests[0])["inputs"][0]["idProperty"], "member_no");
    assert_eq!(
        body(&requests[0])["inputs"][0]["properties"]["pos_lifetime_spend"],
        "79.80"
    );
    assert_eq!((requests[1].method.as_str(), requests[1].url.as_str()), ("POST", NOTES));
    assert_eq!(
        body(&requests[1]),
        json!({
            "properties": {"hs_timestamp": "2026-11-25T10:15:00+08:00",
                           "hs_note_body": "Purchase at store hk-001: order HK001-000123, HKD 79.80 (1 line)"},
            "associations": [{"to": {"id": "5101"},
                              "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]
        })
    );
    deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")).unwrap();
    deliver(member_sale("01JSALE0001-RESENT"), context("01JSALE0001-RESENT:crm")).unwrap();
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        4,
        "a redelivery, and the same order under a new event id, upsert again but add no second note"
    );
    assert_eq!((requests[2].url.as_str(), requests[3].url.as_str()), (UPSERT, UPSERT));
    let record = String::from_utf8(fake.kv("spend/M-1001").unwrap()).unwrap();
    assert!(
        record.contains(r#""n":["crm"]"#),
        "the note is marked in the member's record: {record}"
    );
    assert!(fake.kv("note/01JSALE0001:crm").is_none(), "no marker key per note");
}

fn answer(status: u16, headers: &[(&str, &str)], text: &str) -> Result<Receipt, DeliveryError> {
    let _fake = host().respond(status, headers, text).install();
    deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm"))
}

#[test]
fn hubspot_answers_map_to_what_the_host_should_do() {
    let invalid = r#"{"status":"error","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"kaunter_lifetime_spend\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"kaunter_lifetime_spend\"}]","correlationId":"b0a5e6f0-1d4c-4a5e-9f55-7a3d3c8f6e11","category":"VALIDATION_ERROR"}"#;
    match answer(400, &[], invalid) {
        Err(DeliveryError::Rejected(m)) => {
            assert!(
                m.starts_with("HubSpot answered HTTP 400 VALIDATION_ERROR: Property values were not valid"),
                "{m}"
            );
            assert!(m.contains("kaunter_lifetime_spend"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // HubSpot's answer when the email being set belongs to another contact: nothing was written.
    let conflict = r#"{"status":"error","message":"Contact already exists. Existing ID: 5102","correlationId":"c1","category":"CONFLICT"}"#;
    let _fake = host().respond(409, &[], conflict).install();
    let update = member_update(json!({"member_id": "M-1001", "email": "tm.chan@example.com"}));
    match deliver(update, context("01JMEMBER0001:crm")) {
        Err(DeliveryError::Rejected(m)) => assert!(
            m.starts_with("HubSpot answered HTTP 409 CONFLICT: Contact already exists. Existing ID: 5102")
                && m.contains("belongs to another HubSpot contact"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let batch_conflict = r#"{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"status":"error","category":"CONFLICT","message":"Contact already exists. Existing ID: 5102","context":{}}]}"#;
    assert!(matches!(
        answer(207, &[], batch_conflict),
        Err(DeliveryError::Rejected(_))
    ));
    let limited = r#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"c2","policyName":"SECONDLY"}"#;
    let window = [
        ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
        ("x-hubspot-ratelimit-max", "100"),
        ("x-hubspot-ratelimit-remaining", "0"),
    ];
    match answer(429, &window, limited) {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(10_000)),
        other => panic!("{other:?}"),
    }
    match answer(429, &[("retry-after", "3")], limited) {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(3_000)),
        other => panic!("{other:?}"),
    }
    let daily = r#"{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","correlationId":"c3","policyName":"DAILY"}"#;
    match answer(429, &[], daily) {
        Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(3_600_000)),
        other => panic!("{other:?}"),
    }
    let expired = r#"{"status":"error","message":"Authentication credentials not found.","correlationId":"c4","category":"INVALID_AUTHENTICATION"}"#;
    match answer(401, &[], expired) {
        Err(DeliveryError::Retry(h)) => assert!(h.reason.contains("INVALID_AUTHENTICATION"), "{h:?}"),
        other => panic!("{other:?}"),
    }
    let scopes = r#"{"status":"error","message":"This app hasn't been granted all required scopes","correlationId":"c5","category":"MISSING_SCOPES"}"#;
    assert!(matches!(answer(403, &[], scopes), Err(DeliveryError::Rejected(_))));
    assert!(matches!(
        answer(502, &[], "<html>bad gateway</html>"),
        Err(DeliveryError::Retry(_))
    ));
    let partial = r#"{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"status":"error","category":"VALIDATION_ERROR","message":"Property \"kaunter_loyalty_balance\" value \"x\" is not a number","context":{}}]}"#;
    match answer(207, &[], partial) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("VALIDATION_ERROR: Property"), "{m}"),
        other => panic!("{other:?}"),
    }
    let _fake = host().fail_request("connection reset").install();
    match deliver(member_sale("01JSALE0001"), context("01JSALE0001:crm")) {
        Err(DeliveryError::Retry(h)) => assert!(h.reason.contains("connection reset")),
        other => panic!("{other:?}"),
    }
}
