//! Native tests on the fake host: the exact requests sent and how each of NetSuite's answers maps.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

const BASE: &str = "http://netsuite.example";

fn event(ty: &str, data: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    let value = json!({"id": "e1", "source": "/t/acme/s/hk-001/p/till-1", "type": ty,
                       "time": "2026-11-25T10:15:00+08:00", "data": data});
    Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
}

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn line(no: u32, sku: &str, quantity_milli: i64, unit: i64, net: i64, tax: i64) -> Value {
    json!({"line_no": no, "sku": sku, "name": format!("Item {sku}"), "quantity_milli": quantity_milli,
           "unit_price": hkd(unit), "gross": hkd(net), "discount": hkd(0), "net": hkd(net),
           "taxes": if tax == 0 { json!([]) } else { json!([{"code": "VAT", "rate_ppm": 50000, "amount": hkd(tax)}]) }})
}

fn totals(total: i64) -> Value {
    json!({"gross": hkd(total), "discount": hkd(0), "net": hkd(total), "tax": hkd(0), "total": hkd(total),
           "tendered": hkd(total), "change": hkd(0)})
}

fn sale() -> Event {
    event(
        "pos.sale.completed.v1",
        json!({"order_id": "HK001-000123", "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
               "tax_mode": "inclusive",
               "lines": [line(1, "4891234500017", 2000, 3990, 7980, 0), line(2, "RICE-LOOSE", 1500, 1235, 1853, 0)],
               "tenders": [{"method": "octopus", "amount": hkd(9833)}], "totals": totals(9833)}),
    )
}

fn refund() -> Event {
    event(
        "pos.refund.completed.v1",
        json!({"refund_id": "HK001-R-7", "original_order_id": "HK001-000123", "business_date": "2026-11-26",
               "time_zone": "Asia/Hong_Kong", "tax_mode": "exclusive",
               "lines": [{"line": line(1, "4891234500017", -1000, 3800, -3800, -190), "restock": true}],
               "tenders": [{"method": "cash", "amount": hkd(-3990)}], "totals": totals(-3990),
               "reason": "damaged box"}),
    )
}

fn context() -> DeliveryContext {
    DeliveryContext {
        idempotency_key: "e1:netsuite".into(),
        sink: "netsuite".into(),
        attempt: 1,
    }
}

fn config() -> Value {
    json!({
        "base_url": BASE,
        "entity": "107",
        "subsidiary": "1",
        "account": "122",
        "locations": {"hk-001": "3"},
        "items": {"4891234500017": "501", "RICE-LOOSE": "502"},
    })
}

fn host() -> FakeHost {
    FakeHost::new().config(config())
}

fn created(id: &str, record: &str) -> (u16, Vec<(&'static str, String)>) {
    (
        204,
        vec![(
            "location",
            format!("https://demo123.suitetalk.api.netsuite.com/services/rest/record/v1/{record}/{id}"),
        )],
    )
}

fn header<'a>(request: &'a kaunter_sdk::http::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn error(status: u16, code: &str, detail: &str) -> String {
    json!({"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1", "title": "Bad Request",
           "status": status, "o:errorDetails": [{"detail": detail, "o:errorCode": code}]})
    .to_string()
}

#[test]
fn a_sale_is_upserted_as_a_cash_sale_on_store_and_order_with_the_record_id_from_location() {
    let (status, location) = created("647", "cashSale");
    let fake = host().respond(status, &[("location", &location[0].1)], "").install();
    let receipt = deliver(sale(), context()).unwrap();
    assert_eq!(receipt.status, Some(204));
    assert_eq!(receipt.remote_id.as_deref(), Some("647"));
    let sent = &fake.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.url.as_str()),
        (
            "PUT",
            "http://netsuite.example/services/rest/record/v1/cashSale/eid:hk-001-HK001-000123?replace=item"
        )
    );
    assert_eq!(header(sent, "content-type"), Some("application/json"));
    assert_eq!(header(sent, "accept"), Some("application/json"));
    // Only asynchronous requests use NetSuite's idempotency key; the upsert is what makes this one safe.
    assert_eq!(header(sent, "x-netsuite-idempotency-key"), None);
    assert_eq!(header(sent, "prefer"), None);
    assert!(header(sent, "authorization").is_none(), "the host adds credentials");
    // The exact body, numbers as written (no float went in between); no rate, only the amount.
    assert_eq!(
        String::from_utf8(sent.body.clone()).unwrap(),
        concat!(
            r#"{"memo":"POS order HK001-000123","tranDate":"2026-11-25","#,
            r#""entity":{"id":"107"},"subsidiary":{"id":"1"},"location":{"id":"3"},"account":{"id":"122"},"#,
            r#""item":{"items":["#,
            r#"{"item":{"id":"501"},"quantity":2,"amount":79.80,"description":"Item 4891234500017"},"#,
            r#"{"item":{"id":"502"},"quantity":1.5,"amount":18.53,"description":"Item RICE-LOOSE"}"#,
            r#"]}}"#
        )
    );
}

#[test]
fn a_discounted_tax_inclusive_line_sends_its_net_amount_excluding_tax_and_no_rate() {
    // 3 × 10.00 inclusive of 5% VAT, 3.00 off: net 27.00, of which 1.29 is tax → amount 25.71.
    let mut discounted = line(1, "4891234500017", 3000, 1000, 2700, 129);
    discounted["gross"] = hkd(3000);
    discounted["discount"] = hkd(300);
    let sale = event(
        "pos.sale.completed.v1",
        json!({"order_id": "HK001-9", "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
               "tax_mode": "inclusive", "lines": [discounted],
               "tenders": [{"method": "cash", "amount": hkd(2700)}], "totals": totals(2700)}),
    );
    let (status, location) = created("648", "cashSale");
    let fake = host().respond(status, &[("location", &location[0].1)], "").install();
    deliver(sale, context()).unwrap();
    let body: Value = serde_json::from_slice(&fake.requests()[0].body).unwrap();
    assert_eq!(
        body["item"]["items"],
        json!([{"item": {"id": "501"}, "quantity": 3, "amount": 25.71, "description": "Item 4891234500017"}])
    );
}

#[test]
fn a_refund_is_upserted_as_a_cash_refund_with_positive_lines_excluding_tax() {
    let (status, location) = created("912", "cashRefund");
    let fake = FakeHost::new()
        .config(json!({"base_url": BASE, "entity": "107", "locations": {"hk-001": "3"},
                       "items": {"4891234500017": "501"}}))
        .respond(status, &[("location", &location[0].1)], "")
        .install();
    let receipt = deliver(refund(), context()).unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some("912"));
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "PUT");
    assert_eq!(
        sent.url,
        "http://netsuite.example/services/rest/record/v1/cashRefund/eid:hk-001-HK001-R-7?replace=item"
    );
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"memo": "POS refund HK001-R-7 of order HK001-000123 (damaged box)",
               "tranDate": "2026-11-26", "entity": {"id": "107"}, "location": {"id": "3"},
               "item": {"items": [{"item": {"id": "501"}, "quantity": 1, "amount": 38.00,
                                   "description": "Item 4891234500017"}]}})
    );
}

#[test]
fn the_external_id_template_is_configurable_and_checked() {
    let with = |template: &str| {
        let mut c = config();
        c["external_id"] = json!(template);
        FakeHost::new().config(c).respond(204, &[], "").install()
    };
    let fake = with("{order}");
    let receipt = deliver(sale(), context()).unwrap();
    assert_eq!(
        fake.requests()[0].url,
        "http://netsuite.example/services/rest/record/v1/cashSale/eid:HK001-000123?replace=item"
    );
    // No Location: the receipt names the record by its external id.
    assert_eq!(receipt.remote_id.as_deref(), Some("eid:HK001-000123"));
    drop(fake);
    let fake = with("pos_{tenant}_{store}_{order}");
    deliver(sale(), context()).unwrap();
    assert!(
        fake.requests()[0]
            .url
            .ends_with("/cashSale/eid:pos_acme_hk-001_HK001-000123?replace=item")
    );
    drop(fake);
    for (template, message) in [
        ("{store}", "external_id `{store}` must contain {order}"),
        ("{store}-{register}-{order}", "unknown placeholder `{register}`"),
        ("{store}/{order}", "letters, digits, `_` and `-` only"),
    ] {
        let fake = with(template);
        match deliver(sale(), context()) {
            Err(DeliveryError::Rejected(m)) => assert!(m.contains(message), "{template}: {m}"),
            other => panic!("{template}: expected rejected, got {other:?}"),
        }
        assert!(fake.requests().is_empty());
    }
    let mut other_store = sale();
    other_store.source = "/t/acme/s/hk-002/p/till-1".into();
    assert_eq!(
        external_id(DEFAULT_EXTERNAL_ID, &other_store, "A-123").unwrap(),
        "hk-002-A-123"
    );
}

#[test]
fn answers_map_to_what_the_host_should_do() {
    let _fake = host()
        .respond(400, &[], &error(400, "USER_ERROR", "Error while accessing resource: This record already exists."))
        .respond(400, &[], &error(400, "INVALID_CONTENT",
            "Error while accessing resource: You have entered an Invalid Field Value 9999 for the following field: item"))
        .respond(400, &[], &error(400, "USER_ERROR", "Error while accessing resource: Please enter value(s) for: Location"))
        .respond(401, &[], &error(401, "INVALID_LOGIN",
            "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail."))
        .respond(403, &[], &error(403, "INSUFFICIENT_PERMISSION", "Permission Violation: You need the 'Transactions -> Cash Sale' permission."))
        .respond(429, &[], &error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked."))
        .respond(429, &[("retry-after", "3")], &error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Request blocked."))
        .respond(503, &[], "<html>Service Unavailable</html>")
        .fail_request("timed out")
        .respond(409, &[], &error(409, "CONFLICT", "Conflict"))
        .install();
    let outcomes: Vec<_> = (0..10).map(|_| deliver(sale(), context())).collect();
    // No answer is read as "already there": an error that mentions an existing record is an error.
    assert!(
        matches!(&outcomes[0], Err(DeliveryError::Rejected(m)) if m == "HTTP 400: USER_ERROR: Error while accessing resource: This record already exists.")
    );
    assert!(matches!(&outcomes[1], Err(DeliveryError::Rejected(m))
        if m == "HTTP 400: INVALID_CONTENT: Error while accessing resource: You have entered an Invalid Field Value 9999 for the following field: item"));
    assert!(
        matches!(&outcomes[2], Err(DeliveryError::Rejected(m)) if m.contains("USER_ERROR: Error while accessing resource: Please enter value(s) for: Location"))
    );
    assert!(matches!(&outcomes[3], Err(DeliveryError::Retry(h)) if h.reason.contains("INVALID_LOGIN")));
    assert!(
        matches!(&outcomes[4], Err(DeliveryError::Rejected(m)) if m.starts_with("HTTP 403: INSUFFICIENT_PERMISSION"))
    );
    assert!(matches!(&outcomes[5], Err(DeliveryError::Throttled(h)) if h.after_ms.is_none()));
    assert!(matches!(&outcomes[6], Err(DeliveryError::Throttled(h)) if h.after_ms == Some(3000)));
    assert!(matches!(&outcomes[7], Err(DeliveryError::Retry(h)) if h.reason.starts_with("HTTP 503")));
    assert!(matches!(&outcomes[8], Err(DeliveryError::Retry(h)) if h.reason.contains("timed out")));
    // A conflict (say, two attempts at once): upserting again converges on the same record.
    assert!(matches!(&outcomes[9], Err(DeliveryError::Retry(h)) if h.reason.starts_with("HTTP 409")));
}

#[test]
fn unmapped_skus_and_stores_are_rejected_and_other_events_skipped() {
    let fake = FakeHost::new()
        .config(json!({"base_url": BASE, "entity": "107", "locations": {"hk-001": "3"}, "items": {}}))
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.starts_with("SKU `4891234500017` has no NetSuite item"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    let stock = event(
        "pos.stock.adjusted.v1",
        json!({"sku": "A", "delta_milli": 1000, "reason": "receipt"}),
    );
    let receipt = deliver(stock, context()).unwrap();
    assert_eq!((receipt.status, receipt.remote_id), (None, None));
    drop(fake);
    let fake = FakeHost::new()
        .config(json!({"base_url": BASE, "entity": "107", "locations": {}, "items": {}}))
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.starts_with("no NetSuite location for store `hk-001`"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn the_account_id_names_the_real_endpoint_and_quantities_keep_their_thousandths() {
    let config: NetSuiteConfig =
        serde_json::from_value(json!({"account_id": "1234567_SB1", "entity": "1", "locations": {}, "items": {}}))
            .unwrap();
    assert_eq!(config.base().unwrap(), "https://1234567-sb1.suitetalk.api.netsuite.com");
    assert_eq!(
        [2000, 1500, 1250, 5, -250].map(milli_to_decimal),
        ["2", "1.5", "1.25", "0.005", "-0.25"]
    );
}
