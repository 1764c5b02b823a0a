//! Native tests on the fake host: the exact requests sent to QuickBooks and what each answer becomes.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn event(value: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
}

/// Two lines (one discounted, one taxed), paid by Octopus and cash with HK$0.18 change.
fn sale(tenders: Value) -> Event {
    event(json!({
        "id": "01JSALE", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.completed.v1",
        "data": {
            "order_id": "HK001-000124", "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
            "tax_mode": "exclusive",
            "lines": [
                {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20", "quantity_milli": 2000,
                 "unit_price": hkd(3990), "gross": hkd(7980), "discount": hkd(798), "net": hkd(7182),
                 "taxes": []},
                {"line_no": 2, "sku": "4891234500024", "quantity_milli": 1500,
                 "unit_price": hkd(12800), "gross": hkd(19200), "discount": hkd(0), "net": hkd(19200),
                 "taxes": [{"code": "VAT", "rate_ppm": 50000, "amount": hkd(960)}]}
            ],
            "tenders": tenders,
            "totals": {"gross": hkd(27180), "discount": hkd(798), "net": hkd(26382), "tax": hkd(960),
                       "total": hkd(27342), "tendered": hkd(27360), "change": hkd(18)}
        }
    }))
}

fn split_tenders() -> Value {
    json!([
        {"method": "octopus", "amount": hkd(10000), "processor_ref": "OCT-88213"},
        {"method": "cash", "amount": hkd(17360)}
    ])
}

fn refund() -> Event {
    event(json!({
        "id": "01JRFND", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
        "data": {
            "refund_id": "R-HK001-000031", "original_order_id": "HK001-000124", "business_date": "2026-11-26",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20",
                                "quantity_milli": -1000, "unit_price": hkd(3990), "gross": hkd(-3990),
                                "discount": hkd(-399), "net": hkd(-3591), "taxes": []},
                       "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "card", "amount": hkd(-3591), "processor_ref": "VISA-7731"}],
            "totals": {"gross": hkd(-3990), "discount": hkd(-399), "net": hkd(-3591), "tax": hkd(0),
                       "total": hkd(-3591), "tendered": hkd(-3591), "change": hkd(0)},
            "reason": "wrong item"
        }
    }))
}

fn context(key: &str) -> DeliveryContext {
    DeliveryContext {
        idempotency_key: key.into(),
        sink: "qbo".into(),
        attempt: 1,
    }
}

fn config() -> Value {
    json!({
        "base_url": "http://qbo.test",
        "realm_id": "9130357766900476",
        "item": "1",
        "items": {"4891234500017": "21"},
        "tax_code": "NON",
        "tax_codes": {"VAT": "TAX"},
        "discount_account": "86",
        "tenders": {
            "octopus": {"payment_method": "7", "deposit_account": "36"},
            "cash": {"payment_method": "1", "deposit_account": "35"},
            "card": {"payment_method": "3", "deposit_account": "37"}
        }
    })
}

fn host() -> FakeHost {
    FakeHost::new().config(config())
}

fn created(entity: &str, id: &str) -> String {
    json!({entity: {"Id": id, "SyncToken": "0", "domain": "QBO", "TotalAmt": 273.42},
           "time": "2026-11-25T02:15:03.123-08:00"})
    .to_string()
}

fn fault(status_type: &str, code: &str, message: &str, detail: &str) -> String {
    json!({"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}],
                     "type": status_type},
           "time": "2026-11-25T02:15:03.123-08:00"})
    .to_string()
}

fn header<'a>(request: &'a http::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn body(request: &http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn a_sale_becomes_a_sales_receipt_with_the_request_id() {
    let fake = host().respond(200, &[], &created("SalesReceipt", "148")).install();
    let receipt = deliver(sale(split_tenders()), context("01JSALE:qbo")).unwrap();
    assert_eq!((receipt.status, receipt.remote_id.as_deref()), (Some(200), Some("148")));
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        (
            "POST",
            "http://qbo.test/v3/company/9130357766900476/salesreceipt?requestid=01JSALE%3Aqbo&minorversion=75"
        )
    );
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(header(request, "accept"), Some("application/json"));
    assert_eq!(
        header(request, "authorization"),
        None,
        "the host adds the token, not the plugin"
    );
    // Split tender without `split_tender`: the cash, which paid the most, decides.
    assert_eq!(
        body(request),
        json!({
            "DocNumber": "hk-001-HK001-000124",
            "TxnDate": "2026-11-25",
            "CurrencyRef": {"value": "HKD"},
            "GlobalTaxCalculation": "TaxExcluded",
            "Line": [
                {"LineNum": 1, "Description": "Panadol 500mg x20", "Amount": 79.80, "DetailType": "SalesItemLineDetail",
                 "SalesItemLineDetail": {"ItemRef": {"value": "21"}, "Qty": 2, "UnitPrice": 39.90,
                                         "TaxCodeRef": {"value": "NON"}}},
                {"LineNum": 2, "Description": "4891234500024", "Amount": 192.00, "DetailType": "SalesItemLineDetail",
                 "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1.5, "UnitPrice": 128.00,
                                         "TaxCodeRef": {"value": "TAX"}}},
                {"Amount": 7.98, "DetailType": "DiscountLineDetail",
                 "DiscountLineDetail": {"PercentBased": false, "DiscountAccountRef": {"value": "86"}}}
            ],
            "PaymentMethodRef": {"value": "1"},
            "DepositToAccountRef": {"value": "35"},
            "PrivateNote": "POS hk-001 order HK001-000124; paid octopus 100.00 (OCT-88213), cash 173.42"
        })
    );
    let raw = String::from_utf8(request.body.clone()).unwrap();
    assert!(
        raw.contains(r#""Amount":79.80"#) && raw.contains(r#""UnitPrice":128.00"#),
        "{raw}"
    );
}

#[test]
fn a_split_tender_uses_the_configured_split_refs() {
    let mut config = config();
    config["split_tender"] = json!({"payment_method": "9", "deposit_account": "4"});
    config["customer"] = json!("58");
    let fake = FakeHost::new()
        .config(config)
        .respond(200, &[], &created("SalesReceipt", "149"))
        .install();
    deliver(sale(split_tenders()), context("k")).unwrap();
    let sent = body(&fake.requests()[0]);
    assert_eq!(sent["PaymentMethodRef"], json!({"value": "9"}));
    assert_eq!(sent["DepositToAccountRef"], json!({"value": "4"}));
    assert_eq!(sent["CustomerRef"], json!({"value": "58"}));
    assert_eq!(sent.get("PaymentRefNum"), None);
}

#[test]
fn a_single_tender_gives_its_method_account_and_reference() {
    let fake = host().respond(200, &[], &created("SalesReceipt", "150")).install();
    let tenders = json!([{"method": "octopus", "amount": hkd(27342), "processor_ref": "OCT-88214"}]);
    deliver(sale(tenders), context("k")).unwrap();
    let sent = body(&fake.requests()[0]);
    assert_eq!(sent["PaymentMethodRef"], json!({"value": "7"}));
    assert_eq!(sent["DepositToAccountRef"], json!({"value": "36"}));
    assert_eq!(sent["PaymentRefNum"], "OCT-88214");
}

#[test]
fn a_refund_becomes_a_refund_receipt_with_positive_amounts() {
    let fake = host().respond(200, &[], &created("RefundReceipt", "212")).install();
    let receipt = deliver(refund(), context("01JRFND:qbo")).unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some("212"));
    let request = &fake.requests()[0];
    assert_eq!(
        request.url,
        "http://qbo.test/v3/company/9130357766900476/refundreceipt?requestid=01JRFND%3Aqbo&minorversion=75"
    );
    assert_eq!(
        body(request),
        json!({
            "DocNumber": "hk-001-R-HK001-000031",
            "TxnDate": "2026-11-26",
            "CurrencyRef": {"value": "HKD"},
            "GlobalTaxCalculation": "TaxInclusive",
            "Line": [
                {"LineNum": 1, "Description": "Panadol 500mg x20", "Amount": 39.90, "DetailType": "SalesItemLineDetail",
                 "SalesItemLineDetail": {"ItemRef": {"value": "21"}, "Qty": 1, "UnitPrice": 39.90,
                                         "TaxCodeRef": {"value": "NON"}}},
                {"Amount": 3.99, "DetailType": "DiscountLineDetail",
                 "DiscountLineDetail": {"PercentBased": false, "DiscountAccountRef": {"value": "86"}}}
            ],
            "PaymentMethodRef": {"value": "3"},
            "DepositToAccountRef": {"value": "37"},
            "PaymentRefNum": "VISA-7731",
            "PrivateNote": "POS hk-001 refund R-HK001-000031 of order HK001-000124: wrong item; paid card 35.91 (VISA-7731)"
        })
    );
}

#[test]
fn a_key_longer_than_quickbooks_allows_becomes_a_stable_short_request_id() {
    let long = format!("{}:quickbooks-hong-kong-head-office", "01JDEMO0SALE000000000000001");
    assert!(long.len() > 50);
    let fake = host()
        .respond(200, &[], &created("SalesReceipt", "1"))
        .respond(200, &[], &created("SalesReceipt", "1"))
        .install();
    deliver(sale(split_tenders()), context(&long)).unwrap();
    deliver(sale(split_tenders()), context(&long)).unwrap();
    let ids: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| {
            r.url
                .split("requestid=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids[0], ids[1], "the same on every attempt");
    assert_eq!(ids[0].len(), 32);
    assert!(ids[0].bytes().all(|b| b.is_ascii_hexdigit()), "{}", ids[0]);
}

#[test]
fn a_duplicate_document_number_means_quickbooks_already_has_it() {
    let _fake = host()
        .respond(
            400,
            &[],
            &fault(
                "ValidationFault",
                "6140",
                "Duplicate Document Number Error",
                "Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber=hk-001-HK001-000124 is assigned to TxnType=Sales Receipt with TxnId=148",
            ),
        )
        .install();
    match deliver(sale(split_tenders()), context("k")) {
        Err(DeliveryError::ConflictIsSuccess(Some(note))) => {
            assert!(
                note.contains("sales receipt hk-001-HK001-000124") && note.contains("TxnId=148"),
                "{note}"
            )
        }
        other => panic!("expected conflict-is-success, got {other:?}"),
    }
}

#[test]
fn receipts_are_numbered_per_store_and_the_template_is_configurable() {
    // Two stores' order `A-123`: two different numbers, so one never passes for the other.
    let mut other_store = sale(split_tenders());
    other_store.source = "/t/acme/s/hk-002/p/till-1".into();
    let fake = host()
        .respond(200, &[], &created("SalesReceipt", "148"))
        .respond(200, &[], &created("SalesReceipt", "149"))
        .install();
    deliver(sale(split_tenders()), context("k1")).unwrap();
    deliver(other_store, context("k2")).unwrap();
    let numbers: Vec<_> = fake.requests().iter().map(|r| body(r)["DocNumber"].clone()).collect();
    assert_eq!(numbers, [json!("hk-001-HK001-000124"), json!("hk-002-HK001-000124")]);

    let mut config = config();
    config["document_number"] = json!("{order}");
    let fake = FakeHost::new()
        .config(config)
        .respond(200, &[], &created("SalesReceipt", "148"))
        .install();
    deliver(sale(split_tenders()), context("k")).unwrap();
    assert_eq!(body(&fake.requests()[0])["DocNumber"], "HK001-000124");

    let mut config = self::config();
    config["document_number"] = json!("{store}");
    let fake = FakeHost::new().config(config).install();
    match deliver(sale(split_tenders()), context("k")) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "cannot number the QuickBooks receipt: document_number `{store}` must contain {order}"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn a_number_longer_than_21_characters_is_shortened_with_a_hash() {
    let mut long = sale(split_tenders());
    long.source = "/t/acme/s/causeway-bay-flagship/p/till-1".into();
    let fake = host()
        .respond(200, &[], &created("SalesReceipt", "148"))
        .respond(200, &[], &created("SalesReceipt", "149"))
        .install();
    deliver(long.clone(), context("k")).unwrap();
    deliver(long, context("k")).unwrap();
    let sent = fake.requests();
    let number = body(&sent[0])["DocNumber"].as_str().unwrap().to_owned();
    assert_eq!(number.len(), 21, "{number}");
    assert!(number.starts_with("causeway-bay-"), "{number}");
    let hash = kaunter_sdk::hex_encode(&host::sha256(b"causeway-bay-flagship-HK001-000124"));
    assert_eq!(number, format!("causeway-bay-{}", &hash[..8]));
    assert_eq!(
        body(&sent[1])["DocNumber"],
        number.as_str(),
        "the same on every attempt"
    );
    // The whole order id is still in the note.
    assert!(
        body(&sent[0])["PrivateNote"]
            .as_str()
            .unwrap()
            .contains("order HK001-000124")
    );
}

#[test]
fn a_validation_fault_is_rejected_with_code_message_and_detail() {
    let _fake = host()
        .respond(
            400,
            &[],
            &fault(
                "ValidationFault",
                "610",
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.",
            ),
        )
        .install();
    match deliver(sale(split_tenders()), context("k")) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "QuickBooks refused the sales receipt hk-001-HK001-000124 (HTTP 400): ValidationFault: Object Not Found: Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. (code 610)"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
}

#[test]
fn a_401_is_retried_for_the_host_to_refresh_its_token() {
    // QuickBooks spells the 401 fault in lower case.
    let body = json!({"warnings": null, "intuitObject": null,
        "fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                             "detail": "Token expired: AB11764...", "code": "3200"}],
                  "type": "AUTHENTICATION"},
        "report": null, "queryResponse": null, "batchItemResponse": [], "attachableResponse": [],
        "syncErrorResponse": null, "requestId": null, "time": 1764036903123_u64, "status": null,
        "cdcresponse": []});
    let _fake = host().respond(401, &[], &body.to_string()).install();
    match deliver(sale(split_tenders()), context("k")) {
        Err(DeliveryError::Retry(hint)) => {
            assert!(
                hint.reason.contains("AUTHENTICATION") && hint.reason.contains("code 3200"),
                "{}",
                hint.reason
            )
        }
        other => panic!("expected retry, got {other:?}"),
    }
}

#[test]
fn a_429_throttles_and_server_errors_retry() {
    let throttled = fault(
        "SERVICE",
        "003001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
    );
    let _fake = host().respond(429, &[("retry-after", "60")], &throttled).install();
    match deliver(sale(split_tenders()), context("k")) {
        Err(DeliveryError::Throttled(hint)) => {
            assert_eq!(hint.after_ms, Some(60_000));
            assert!(hint.reason.contains("ThrottleExceeded"), "{}", hint.reason);
        }
        other => panic!("expected throttled, got {other:?}"),
    }
    let _fake = host().respond(503, &[], "Service Unavailable").install();
    assert!(matches!(
        deliver(sale(split_tenders()), context("k")),
        Err(DeliveryError::Retry(_))
    ));
    let _fake = host().fail_request("timed out").install();
    assert!(matches!(
        deliver(sale(split_tenders()), context("k")),
        Err(DeliveryError::Retry(_))
    ));
}

#[test]
fn an_unmapped_tender_is_rejected_before_anything_is_sent() {
    let fake = host().install();
    let tenders = json!([{"method": "wechat_pay", "amount": hkd(27342)}]);
    match deliver(sale(tenders), context("k")) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "no QuickBooks payment method for tender method `wechat_pay`: add [tenders.wechat_pay] (or [tenders.other]) to the config"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn other_events_are_skipped() {
    let fake = host().install();
    let void = event(json!({
        "id": "v1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.voided.v1",
        "data": {"order_id": "HK001-000124"}
    }));
    let receipt = deliver(void, context("k")).unwrap();
    assert_eq!((receipt.status, receipt.remote_id), (None, None));
    assert!(fake.requests().is_empty());
}

#[test]
fn a_bad_config_is_rejected_with_the_field() {
    let _fake = FakeHost::new().config(json!({"realm": "x"})).install();
    match deliver(refund(), context("k")) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("unknown field `realm`"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
}
