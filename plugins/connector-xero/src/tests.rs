//! Native tests on the fake host: the exact requests sent to Xero and what each answer becomes.

use super::*;
use kaunter_sdk::testing::{FakeHost, Installed};
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

/// Two lines (one discounted), paid HK$100 by Octopus and HK$100 cash with HK$0.18 change.
fn sale() -> Event {
    event(json!({
        "id": "01JSALE", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.completed.v1",
        "data": {
            "order_id": "HK001-000124", "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
            "tax_mode": "inclusive",
            "lines": [
                {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20", "quantity_milli": 2000,
                 "unit_price": hkd(3990), "gross": hkd(7980), "discount": hkd(798), "net": hkd(7182),
                 "taxes": []},
                {"line_no": 2, "sku": "4891234500024", "quantity_milli": 1500,
                 "unit_price": hkd(12800), "gross": hkd(19200), "discount": hkd(0), "net": hkd(19200),
                 "taxes": [{"code": "VAT", "rate_ppm": 50000, "amount": hkd(914)}]}
            ],
            "tenders": [
                {"method": "octopus", "amount": hkd(10000), "processor_ref": "OCT-88213"},
                {"method": "cash", "amount": hkd(16400)}
            ],
            "totals": {"gross": hkd(27180), "discount": hkd(798), "net": hkd(26382), "tax": hkd(914),
                       "total": hkd(26382), "tendered": hkd(26400), "change": hkd(18)}
        }
    }))
}

fn refund() -> Event {
    event(json!({
        "id": "01JRFND", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
        "data": {
            "refund_id": "R-HK001-000031", "original_order_id": "HK001-000124", "business_date": "2026-11-26",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "exclusive",
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

fn context() -> DeliveryContext {
    DeliveryContext {
        idempotency_key: "01JSALE:xero".into(),
        sink: "xero".into(),
        attempt: 1,
    }
}

fn config() -> Value {
    json!({
        "base_url": "http://xero.test/api.xro/2.0",
        "tenant_id": "70784a63-d24b-46a9-a4db-0e70a274b056",
        "sales_account": "200",
        "tax_type": "NONE",
        "tax_types": {"VAT": "OUTPUT"},
        "payment_accounts": {"octopus": "091", "cash": "090", "card": "092"}
    })
}

const INVOICE_ID: &str = "243216c5-369e-4056-ac67-05388f86dc81";
const CREDIT_NOTE_ID: &str = "e2a9c6f2-7b5d-4f46-b1a7-3c1e2f0c9d11";

fn invoice_answer() -> String {
    json!({"Id": "c5c4b0c5-1f5e-4d6a-9b0e-2f5b1e8f3a21", "Status": "OK", "ProviderName": "kaunter",
           "Invoices": [{"Type": "ACCREC", "InvoiceID": INVOICE_ID, "InvoiceNumber": "HK001-000124",
                         "Status": "AUTHORISED", "Total": 263.82}]})
    .to_string()
}

fn payments_answer() -> String {
    json!({"Id": "a1b2", "Status": "OK", "Payments": [{"PaymentID": "p-1"}, {"PaymentID": "p-2"}]}).to_string()
}

fn validation(messages: &[&str]) -> String {
    let errors: Vec<Value> = messages.iter().map(|m| json!({"Message": m})).collect();
    json!({"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
           "Elements": [{"ValidationErrors": errors}]})
    .to_string()
}

fn header<'a>(request: &'a http::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn body(request: &http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn text(request: &http::Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

fn host() -> FakeHost {
    FakeHost::new().config(config())
}

fn install_ok() -> Installed {
    host()
        .respond(200, &[("content-type", "application/json")], &invoice_answer())
        .respond(200, &[("content-type", "application/json")], &payments_answer())
        .install()
}

#[test]
fn a_sale_becomes_an_authorised_invoice_then_its_payments() {
    let fake = install_ok();
    let receipt = deliver(sale(), context()).unwrap();
    assert_eq!(receipt.status, Some(200));
    assert_eq!(receipt.remote_id.as_deref(), Some(INVOICE_ID));
    let sent = fake.requests();
    assert_eq!(sent.len(), 2);

    let invoice = &sent[0];
    assert_eq!(
        (invoice.method.as_str(), invoice.url.as_str()),
        ("PUT", "http://xero.test/api.xro/2.0/Invoices")
    );
    assert_eq!(header(invoice, "content-type"), Some("application/json"));
    assert_eq!(header(invoice, "accept"), Some("application/json"));
    assert_eq!(
        header(invoice, "xero-tenant-id"),
        Some("70784a63-d24b-46a9-a4db-0e70a274b056")
    );
    assert_eq!(header(invoice, "idempotency-key"), Some("01JSALE:xero:invoice"));
    assert_eq!(
        header(invoice, "authorization"),
        None,
        "the host adds the token, not the plugin"
    );
    assert_eq!(
        body(invoice),
        json!({"Invoices": [{
            "Type": "ACCREC",
            "Contact": {"Name": "POS walk-in customer"},
            "Date": "2026-11-25",
            "DueDate": "2026-11-25",
            "InvoiceNumber": "hk-001-HK001-000124",
            "Reference": "POS hk-001",
            "CurrencyCode": "HKD",
            "Status": "AUTHORISED",
            "LineAmountTypes": "Inclusive",
            "LineItems": [
                {"Description": "Panadol 500mg x20", "Quantity": 2, "UnitAmount": 39.90, "AccountCode": "200",
                 "TaxType": "NONE", "DiscountAmount": 7.98},
                {"Description": "4891234500024", "Quantity": 1.5, "UnitAmount": 128.00, "AccountCode": "200",
                 "TaxType": "OUTPUT"}
            ]
        }]})
    );
    // Amounts are written as exact decimal text, not through a float.
    let raw = text(invoice);
    assert!(
        raw.contains(r#""UnitAmount":39.90"#) && raw.contains(r#""DiscountAmount":7.98"#),
        "{raw}"
    );
    assert!(raw.contains(r#""Quantity":1.5,"UnitAmount":128.00"#), "{raw}");

    let payments = &sent[1];
    assert_eq!(
        (payments.method.as_str(), payments.url.as_str()),
        ("PUT", "http://xero.test/api.xro/2.0/Payments")
    );
    assert_eq!(header(payments, "idempotency-key"), Some("01JSALE:xero:payments"));
    assert_eq!(
        header(payments, "xero-tenant-id"),
        Some("70784a63-d24b-46a9-a4db-0e70a274b056")
    );
    // HK$264.00 tendered for HK$263.82: the change comes off the cash.
    assert_eq!(
        body(payments),
        json!({"Payments": [
            {"Invoice": {"InvoiceID": INVOICE_ID}, "Account": {"Code": "091"}, "Date": "2026-11-25",
             "Amount": 100.00, "Reference": "HK001-000124 octopus OCT-88213"},
            {"Invoice": {"InvoiceID": INVOICE_ID}, "Account": {"Code": "090"}, "Date": "2026-11-25",
             "Amount": 163.82, "Reference": "HK001-000124 cash"}
        ]})
    );
    assert!(text(payments).contains(r#""Amount":100.00"#));
}

#[test]
fn a_refund_becomes_a_credit_note_then_its_refund_payment() {
    let fake = host()
        .respond(
            200,
            &[],
            &json!({"Status": "OK", "CreditNotes": [{"CreditNoteID": CREDIT_NOTE_ID, "Type": "ACCRECCREDIT"}]})
                .to_string(),
        )
        .respond(200, &[], &payments_answer())
        .install();
    let receipt = deliver(refund(), context()).unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some(CREDIT_NOTE_ID));
    let sent = fake.requests();
    assert_eq!(sent[0].url, "http://xero.test/api.xro/2.0/CreditNotes");
    assert_eq!(sent[0].method, "PUT");
    assert_eq!(header(&sent[0], "idempotency-key"), Some("01JSALE:xero:credit-note"));
    assert_eq!(
        body(&sent[0]),
        json!({"CreditNotes": [{
            "Type": "ACCRECCREDIT",
            "Contact": {"Name": "POS walk-in customer"},
            "Date": "2026-11-26",
            "CreditNoteNumber": "hk-001-R-HK001-000031",
            "Reference": "POS hk-001 refund of HK001-000124: wrong item",
            "CurrencyCode": "HKD",
            "Status": "AUTHORISED",
            "LineAmountTypes": "Exclusive",
            "LineItems": [
                {"Description": "Panadol 500mg x20", "Quantity": 1, "UnitAmount": 39.90, "AccountCode": "200",
                 "TaxType": "NONE"},
                {"Description": "Discount on Panadol 500mg x20", "Quantity": 1, "UnitAmount": -3.99,
                 "AccountCode": "200", "TaxType": "NONE"}
            ]
        }]})
    );
    assert_eq!(sent[1].url, "http://xero.test/api.xro/2.0/Payments");
    assert_eq!(header(&sent[1], "idempotency-key"), Some("01JSALE:xero:payments"));
    assert_eq!(
        body(&sent[1]),
        json!({"Payments": [
            {"CreditNote": {"CreditNoteID": CREDIT_NOTE_ID}, "Account": {"Code": "092"}, "Date": "2026-11-26",
             "Amount": 35.91, "Reference": "R-HK001-000031 card VISA-7731"}
        ]})
    );
}

#[test]
fn a_configured_contact_id_is_used_instead_of_the_name() {
    let mut config = config();
    config["contact_id"] = json!("5b96e86b-418e-48e8-8949-308c14aec278");
    let fake = FakeHost::new()
        .config(config)
        .respond(200, &[], &invoice_answer())
        .install();
    deliver(sale(), context()).unwrap();
    assert_eq!(
        body(&fake.requests()[0])["Invoices"][0]["Contact"],
        json!({"ContactID": "5b96e86b-418e-48e8-8949-308c14aec278"})
    );
}

#[test]
fn a_validation_exception_is_rejected_with_xeros_messages_and_nothing_more_is_sent() {
    let fake = host()
        .respond(
            400,
            &[],
            &validation(&[
                "Account code '200' is not a valid code for this document.",
                "The TaxType code 'NONE' does not exist or cannot be used for this type of transaction.",
            ]),
        )
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "Xero refused the invoice hk-001-HK001-000124 (HTTP 400): Account code '200' is not a valid code for this document.; The TaxType code 'NONE' does not exist or cannot be used for this type of transaction."
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 1);
}

fn found_invoice(status: &str, amount_due: &str) -> String {
    format!(
        r#"{{"Id":"f1","Status":"OK","Invoices":[{{"Type":"ACCREC","InvoiceID":"{INVOICE_ID}","InvoiceNumber":"hk-001-HK001-000124","Status":"{status}","Total":263.82,"AmountDue":{amount_due},"AmountPaid":0.00}}]}}"#
    )
}

#[test]
fn a_taken_invoice_number_is_looked_up_and_what_is_due_is_paid() {
    let fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(200, &[], &found_invoice("AUTHORISED", "263.82"))
        .respond(200, &[], &payments_answer())
        .install();
    let receipt = deliver(sale(), context()).unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some(INVOICE_ID));
    assert_eq!(receipt.status, Some(200));
    let sent = fake.requests();
    assert_eq!(sent.len(), 3);
    let lookup = &sent[1];
    assert_eq!(
        (lookup.method.as_str(), lookup.url.as_str()),
        (
            "GET",
            "http://xero.test/api.xro/2.0/Invoices?InvoiceNumbers=hk-001-HK001-000124"
        )
    );
    assert_eq!(
        header(lookup, "xero-tenant-id"),
        Some("70784a63-d24b-46a9-a4db-0e70a274b056")
    );
    assert_eq!(header(lookup, "accept"), Some("application/json"));
    assert_eq!(header(lookup, "idempotency-key"), None);
    assert!(lookup.body.is_empty());
    assert_eq!(sent[2].url, "http://xero.test/api.xro/2.0/Payments");
    assert_eq!(header(&sent[2], "idempotency-key"), Some("01JSALE:xero:payments"));
    assert_eq!(
        body(&sent[2]),
        json!({"Payments": [
            {"Invoice": {"InvoiceID": INVOICE_ID}, "Account": {"Code": "091"}, "Date": "2026-11-25",
             "Amount": 100.00, "Reference": "HK001-000124 octopus OCT-88213"},
            {"Invoice": {"InvoiceID": INVOICE_ID}, "Account": {"Code": "090"}, "Date": "2026-11-25",
             "Amount": 163.82, "Reference": "HK001-000124 cash"}
        ]})
    );
}

#[test]
fn a_found_invoice_partly_paid_gets_only_the_rest() {
    let fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(200, &[], &found_invoice("AUTHORISED", "63.82"))
        .respond(200, &[], &payments_answer())
        .install();
    deliver(sale(), context()).unwrap();
    assert_eq!(
        body(&fake.requests()[2])["Payments"],
        json!([{"Invoice": {"InvoiceID": INVOICE_ID}, "Account": {"Code": "091"}, "Date": "2026-11-25",
                "Amount": 63.82, "Reference": "HK001-000124 octopus OCT-88213"}])
    );
}

#[test]
fn a_found_invoice_already_paid_is_delivered_without_payments() {
    let fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(200, &[], &found_invoice("PAID", "0.00"))
        .install();
    let receipt = deliver(sale(), context()).unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some(INVOICE_ID));
    let methods: Vec<_> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PUT", "GET"], "nothing left to pay");
}

#[test]
fn a_found_invoice_that_cannot_be_paid_is_rejected() {
    let fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(200, &[], &found_invoice("VOIDED", "0.00"))
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "Xero already has the invoice hk-001-HK001-000124, but VOIDED: it cannot be paid, nothing was sent"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 2);
    // Taken, but the lookup finds nothing with that number (e.g. another document type).
    let _fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(200, &[], r#"{"Status":"OK","Invoices":[]}"#)
        .install();
    assert!(matches!(deliver(sale(), context()), Err(DeliveryError::Rejected(m)) if m.contains("finds no invoice")));
}

#[test]
fn a_failed_lookup_is_retried_or_throttled_like_any_request() {
    let _fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(
            401,
            &[],
            r#"{"Title":"Unauthorized","Status":401,"Detail":"TokenExpired"}"#,
        )
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Retry(hint)) => assert!(
            hint.reason
                .starts_with("Xero answered 401 looking up the invoice hk-001-HK001-000124"),
            "{}",
            hint.reason
        ),
        other => panic!("expected retry, got {other:?}"),
    }
    let _fake = host()
        .respond(400, &[], &validation(&["Invoice # must be unique."]))
        .respond(429, &[("retry-after", "3")], "")
        .install();
    assert!(matches!(deliver(sale(), context()), Err(DeliveryError::Throttled(h)) if h.after_ms == Some(3000)));
}

#[test]
fn a_taken_credit_note_number_is_looked_up_and_what_remains_is_refunded() {
    let found = format!(
        r#"{{"Status":"OK","CreditNotes":[{{"Type":"ACCRECCREDIT","CreditNoteID":"{CREDIT_NOTE_ID}","CreditNoteNumber":"hk-001-R-HK001-000031","Status":"AUTHORISED","Total":35.91,"RemainingCredit":35.91}}]}}"#
    );
    let fake = host()
        .respond(400, &[], &validation(&["Credit Note # must be unique."]))
        .respond(200, &[], &found)
        .respond(200, &[], &payments_answer())
        .install();
    let receipt = deliver(refund(), context()).unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some(CREDIT_NOTE_ID));
    let sent = fake.requests();
    assert_eq!(
        (sent[1].method.as_str(), sent[1].url.as_str()),
        (
            "GET",
            "http://xero.test/api.xro/2.0/CreditNotes?where=CreditNoteNumber%3D%3D%22hk-001-R-HK001-000031%22"
        )
    );
    assert_eq!(
        body(&sent[2])["Payments"],
        json!([{"CreditNote": {"CreditNoteID": CREDIT_NOTE_ID}, "Account": {"Code": "092"}, "Date": "2026-11-26",
                "Amount": 35.91, "Reference": "R-HK001-000031 card VISA-7731"}])
    );
    // Already refunded: nothing more is sent.
    let found = found.replace(r#""RemainingCredit":35.91"#, r#""RemainingCredit":0.00"#);
    let fake = host()
        .respond(400, &[], &validation(&["Credit Note # must be unique."]))
        .respond(200, &[], &found)
        .install();
    deliver(refund(), context()).unwrap();
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn the_document_number_template_is_configurable() {
    let mut config = config();
    config["document_number"] = json!("{order}");
    let fake = FakeHost::new()
        .config(config)
        .respond(200, &[], &invoice_answer())
        .install();
    deliver(sale(), context()).unwrap();
    assert_eq!(
        body(&fake.requests()[0])["Invoices"][0]["InvoiceNumber"],
        "HK001-000124"
    );

    let mut config = self::config();
    config["document_number"] = json!("{tenant}/{store}/{order}");
    let fake = FakeHost::new()
        .config(config)
        .respond(200, &[], &invoice_answer())
        .install();
    deliver(sale(), context()).unwrap();
    assert_eq!(
        body(&fake.requests()[0])["Invoices"][0]["InvoiceNumber"],
        "acme/hk-001/HK001-000124"
    );
}

#[test]
fn a_bad_document_number_template_or_an_event_without_a_store_is_rejected() {
    for (template, expected) in [
        ("{store}", "must contain {order}"),
        ("{shop}-{order}", "unknown placeholder `{shop}`"),
        ("{store-{order}", "unknown placeholder `{store-{order}`"),
        ("{order", "unclosed"),
    ] {
        let mut config = config();
        config["document_number"] = json!(template);
        let fake = FakeHost::new().config(config).install();
        match deliver(sale(), context()) {
            Err(DeliveryError::Rejected(m)) => assert!(m.contains(expected), "{template}: {m}"),
            other => panic!("expected rejected, got {other:?}"),
        }
        assert!(fake.requests().is_empty());
    }
    let fake = host().install();
    let mut no_store = sale();
    no_store.source = "/t/acme/p/till-1".into();
    match deliver(no_store, context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("names no store"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn a_number_too_long_for_xero_is_shortened_with_a_hash() {
    let _fake = host().install();
    let event = sale();
    let long = "9".repeat(300);
    let number =
        kaunter_sdk::documents::document_number("document_number", "{store}-{order}", &event, &long, MAX_NUMBER_LEN)
            .unwrap();
    assert_eq!(number.len(), MAX_NUMBER_LEN);
    assert!(number.starts_with("hk-001-999"), "{number}");
    assert_eq!(
        number,
        kaunter_sdk::documents::document_number("document_number", "{store}-{order}", &event, &long, MAX_NUMBER_LEN)
            .unwrap(),
        "the same on every attempt"
    );
    let other = kaunter_sdk::documents::document_number(
        "document_number",
        "{store}-{order}",
        &event,
        &format!("{long}8"),
        MAX_NUMBER_LEN,
    )
    .unwrap();
    assert_ne!(number, other);
}

#[test]
fn a_401_is_retried_for_the_host_to_refresh_its_token() {
    let body = json!({"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired at 11/25/2026 02:30:00"});
    let _fake = host().respond(401, &[], &body.to_string()).install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Retry(hint)) => {
            assert_eq!(hint.after_ms, None);
            assert!(
                hint.reason.contains("401") && hint.reason.contains("TokenExpired"),
                "{}",
                hint.reason
            );
        }
        other => panic!("expected retry, got {other:?}"),
    }
}

#[test]
fn a_429_throttles_for_retry_after_and_names_the_limit() {
    let _fake = host()
        .respond(429, &[("retry-after", "7"), ("x-rate-limit-problem", "minute")], "")
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Throttled(hint)) => {
            assert_eq!(hint.after_ms, Some(7000));
            assert!(hint.reason.contains("(minute)"), "{}", hint.reason);
        }
        other => panic!("expected throttled, got {other:?}"),
    }
}

#[test]
fn server_errors_and_no_answer_are_retried() {
    let _fake = host()
        .respond(503, &[("retry-after", "30")], "Service Unavailable")
        .install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Retry(hint)) => assert_eq!(hint.after_ms, Some(30_000)),
        other => panic!("expected retry, got {other:?}"),
    }
    let _fake = host().fail_request("connection reset").install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Retry(hint)) => assert!(hint.reason.contains("connection reset"), "{}", hint.reason),
        other => panic!("expected retry, got {other:?}"),
    }
}

#[test]
fn a_409_is_retried_not_taken_as_delivered() {
    let _fake = host().respond(409, &[], "").install();
    assert!(matches!(deliver(sale(), context()), Err(DeliveryError::Retry(_))));
}

#[test]
fn a_failed_payment_step_is_retried_with_the_same_keys() {
    let fake = host()
        .respond(200, &[], &invoice_answer())
        .respond(500, &[], "")
        .install();
    assert!(matches!(deliver(sale(), context()), Err(DeliveryError::Retry(_))));
    let keys: Vec<_> = fake
        .requests()
        .iter()
        .map(|r| header(r, "idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["01JSALE:xero:invoice", "01JSALE:xero:payments"]);
}

#[test]
fn a_tender_without_an_account_is_rejected_before_anything_is_sent() {
    let mut config = config();
    config["payment_accounts"] = json!({"octopus": "091"});
    let fake = FakeHost::new().config(config).install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "no Xero account for tender method `cash`: add it (or `other`) to payment_accounts"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn other_events_are_skipped() {
    let fake = host().install();
    let stock = event(json!({
        "id": "s1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.stock.adjusted.v1",
        "data": {"sku": "4891234500017", "delta_milli": -1000, "reason": "shrinkage"}
    }));
    let receipt = deliver(stock, context()).unwrap();
    assert_eq!((receipt.status, receipt.remote_id), (None, None));
    assert!(fake.requests().is_empty());
    assert!(fake.logs()[0].1.contains("pos.stock.adjusted.v1"));
}

#[test]
fn a_key_too_long_for_xero_is_hashed_and_stays_stable() {
    let long = "k".repeat(200);
    let _fake = host().install();
    let first = derived_key(&long, "invoice");
    assert_eq!(first, derived_key(&long, "invoice"));
    assert!(first.len() <= MAX_KEY_LEN && first.ends_with(":invoice"), "{first}");
    assert_ne!(derived_key(&long, "payments"), first);
}

#[test]
fn a_bad_config_is_rejected_with_the_field() {
    let _fake = FakeHost::new().config(json!({"tenant": "x"})).install();
    match deliver(sale(), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("unknown field `tenant`"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
}
