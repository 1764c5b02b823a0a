//! Native tests on the fake host: Square's published signature examples, each notification type
//! mapped field by field, the object ids that keep one settlement per payment, and the errors.

use super::*;
use kaunter_sdk::testing::FakeHost;
use kaunter_sdk::{Money, Tender, TenderMethod};

const KEY: &[u8] = b"Ibxx_5AKakO-3qeNVR61Dw";
const URL: &str = "https://pos.example.com/v1/webhooks/square";

fn host() -> FakeHost {
    FakeHost::new()
        .config(serde_json::json!({
            "tenant": "acme",
            "store": "hk-000",
            "locations": { "S8GWD5R9QB376": "hk-001" },
            "notification_url": URL,
        }))
        .secret("square", KEY)
}

/// Base64 HMAC-SHA256, computed here rather than by the fake host.
fn sign(key: &[u8], data: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn request(body: &str, signature: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        path: "/v1/webhooks/square".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("square-version".into(), "2025-10-16".into()),
            ("x-square-hmacsha256-signature".into(), signature.into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// A notification as Square sends it: signed over the notification URL followed by the body.
fn webhook(body: &str) -> WebhookRequest {
    request(body, &sign(KEY, format!("{URL}{body}").as_bytes()))
}

fn hkd(minor: i64) -> Money {
    Money::new(minor, "HKD", 2)
}

fn payment(event_id: &str, status: &str, fee: Option<i64>) -> String {
    let fees = match fee {
        Some(amount) => serde_json::json!([{ "effective_at": "2026-11-25T02:15:03.000Z", "type": "INITIAL",
                                               "amount_money": { "amount": amount, "currency": "HKD" } }]),
        None => serde_json::json!([]),
    };
    serde_json::json!({
        "merchant_id": "6SSW7HV8K2ST5", "type": "payment.updated", "event_id": event_id,
        "created_at": "2026-11-25T02:15:04.525Z",
        "data": { "type": "payment", "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY", "object": { "payment": {
            "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY", "created_at": "2026-11-25T02:15:00.225Z",
            "updated_at": "2026-11-25T02:15:01.525Z", "status": status, "source_type": "CARD",
            "amount_money": { "amount": 7980, "currency": "HKD" },
            "tip_money": { "amount": 500, "currency": "HKD" },
            "total_money": { "amount": 8480, "currency": "HKD" },
            "approved_money": { "amount": 8480, "currency": "HKD" },
            "processing_fee": fees,
            "card_details": { "status": "CAPTURED", "entry_method": "EMV",
                              "card": { "card_brand": "VISA", "last_4": "1111", "exp_month": 11, "exp_year": 2028 } },
            "location_id": "S8GWD5R9QB376", "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
            "receipt_number": "hYy9", "version": 3
        } } }
    })
    .to_string()
}

fn refund(status: &str) -> String {
    serde_json::json!({
        "merchant_id": "6SSW7HV8K2ST5", "type": "refund.updated", "event_id": "9e0b4c1e-3f3a-4c58-9a0e-5d7b2a1c0f11",
        "created_at": "2026-11-26T01:00:02.000Z",
        "data": { "type": "refund", "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1", "object": { "refund": {
            "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1", "status": status,
            "amount_money": { "amount": 3990, "currency": "HKD" },
            "payment_id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY", "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
            "location_id": "S8GWD5R9QB377", "reason": "Returned goods", "destination_type": "CARD",
            "processing_fee": [{ "effective_at": "2026-11-26T01:00:01.000Z", "type": "INITIAL",
                                 "amount_money": { "amount": -131, "currency": "HKD" } }],
            "created_at": "2026-11-26T01:00:00.000Z", "updated_at": "2026-11-26T01:00:01.500Z", "version": 2
        } } }
    })
    .to_string()
}

fn settled(events: &[Event]) -> &PaymentSettled {
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0].payload {
        Payload::PaymentSettled(p) => p,
        other => panic!("not a settlement: {other:?}"),
    }
}

fn unauthorized(result: Result<Vec<Event>, DecodeError>) -> String {
    match result {
        Err(DecodeError::Unauthorized(reason)) => reason,
        other => panic!("expected unauthorized, got {other:?}"),
    }
}

fn malformed(result: Result<Vec<Event>, DecodeError>) -> String {
    match result {
        Err(DecodeError::Malformed(reason)) => reason,
        other => panic!("expected malformed, got {other:?}"),
    }
}

fn config(url: &str, key: &[u8]) -> FakeHost {
    FakeHost::new()
        .config(serde_json::json!({ "tenant": "acme", "store": "hk-000", "notification_url": url }))
        .secret("square", key)
}

#[test]
fn squares_documented_example_verifies() {
    // "Validate notifications" in Square's webhook docs: this URL, body and key give this signature.
    let _fake = config("https://example.com/webhook", b"asdf1234").install();
    let cfg = CONFIG.get().unwrap();
    let signature = "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=";
    assert!(verify(&request(r#"{"hello":"world"}"#, signature), cfg).is_ok());
    assert!(verify(&request(r#"{"hello":"world!"}"#, signature), cfg).is_err());
}

#[test]
fn square_sdk_test_notification_is_verified_and_acknowledged() {
    // The fixture of Square's SDK tests (webhooks helper): a `webhooks.test_notification`.
    const BODY: &str = r#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
    const SIGNATURE: &str = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=";
    const SDK_URL: &str = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    let fake = config(SDK_URL, b"Ibxx_5AKakO-3qeNVR61Dw").install();
    assert_eq!(decode(request(BODY, SIGNATURE)).unwrap(), vec![]);
    assert!(fake.logs()[0].1.contains("`webhooks.test_notification` is not mapped"));
    drop(fake);
    // The SDK's negative cases: another URL, another key.
    let _fake = config("https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9", KEY).install();
    assert!(unauthorized(decode(request(BODY, SIGNATURE))).contains("does not match"));
}

#[test]
fn the_sdks_other_key_is_unauthorized() {
    const BODY: &str = r#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
    let _fake = config(
        "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9",
        b"MCmhFRxGX82xMwg5FsaoQA",
    )
    .install();
    assert_eq!(
        unauthorized(decode(request(BODY, "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="))),
        "x-square-hmacsha256-signature does not match (is `notification_url` exactly the subscription's URL, and the secret its signature key?)"
    );
}

#[test]
fn a_completed_payment_maps_to_a_settlement_field_by_field() {
    let _fake = host().install();
    let events = decode(webhook(&payment(
        "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc",
        "COMPLETED",
        Some(263),
    )))
    .unwrap();
    let event = &events[0];
    assert_eq!(event.id, "payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY");
    assert_eq!(event.source, "/t/acme/s/hk-001/p/square");
    assert_eq!(event.ty, "pos.payment.settled.v1");
    assert_eq!(event.time, "2026-11-25T02:15:01.525Z");
    assert_eq!(event.subject.as_deref(), Some("03O3USaPaAaFnI6kkwB1JxGgBsUZY"));
    assert_eq!(event.partition_key, "hk-001:03O3USaPaAaFnI6kkwB1JxGgBsUZY");
    assert_eq!(event.extension("vendorevent"), Some("payment.updated"));
    assert_eq!(
        event.extension("vendoreventid"),
        Some("6a8f5f28-54a1-4eb0-a98a-3111513fd4fc")
    );
    assert_eq!(
        settled(&events),
        &PaymentSettled {
            order_id: "03O3USaPaAaFnI6kkwB1JxGgBsUZY".into(),
            tender: Tender {
                method: TenderMethod::Card,
                // total_money: the tip is part of what settled.
                amount: hkd(8480),
                processor_ref: Some("hYy9pRFVxpDsO1FB05SunFWUe9JZY".into()),
            },
            settlement_id: "hYy9pRFVxpDsO1FB05SunFWUe9JZY".into(),
            fee: Some(hkd(263)),
        }
    );
    assert_eq!(kaunter_sdk::validate(event), Ok(()));
}

#[test]
fn every_notification_of_one_payment_gets_the_payments_id() {
    let _fake = host().install();
    // Completed without a fee yet, then updated with the fee: two notifications, one settlement id.
    let first = decode(webhook(&payment("e-1", "COMPLETED", None))).unwrap();
    let later = decode(webhook(&payment("e-2", "COMPLETED", Some(263)))).unwrap();
    assert_eq!(first[0].id, later[0].id);
    assert_eq!(settled(&first).fee, None);
    // A redelivery of the same notification: the same event.
    assert_eq!(decode(webhook(&payment("e-1", "COMPLETED", None))).unwrap(), first);
}

#[test]
fn a_signed_body_resent_with_fresh_headers_keeps_its_id() {
    // Square signs the notification URL and the body, not its headers: a captured notification
    // re-sent with fresh retry and delivery headers must be the same event, stored once.
    let _fake = host().install();
    for (body, id) in [
        (
            payment("e-1", "COMPLETED", None),
            "payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY",
        ),
        (refund("COMPLETED"), "refund:hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1"),
    ] {
        let first = decode(webhook(&body)).unwrap();
        assert_eq!(first[0].id, id);
        for n in 1..6 {
            let mut again = webhook(&body);
            again.headers.extend([
                ("square-retry-number".into(), n.to_string()),
                ("square-retry-reason".into(), "http_timeout".into()),
                (
                    "square-initial-delivery-timestamp".into(),
                    format!("2026-11-25T02:15:0{n}.000Z"),
                ),
                ("square-environment".into(), "Production".into()),
            ]);
            assert_eq!(decode(again).unwrap(), first, "delivery {n}");
        }
    }
}

#[test]
fn payments_that_are_not_completed_store_nothing() {
    let _fake = host().install();
    for status in ["APPROVED", "PENDING", "CANCELED", "FAILED"] {
        let body = payment("e-3", status, None).replace("payment.updated", "payment.created");
        assert_eq!(decode(webhook(&body)).unwrap(), vec![], "{status}");
    }
}

#[test]
fn tender_methods_follow_the_source_type() {
    let _fake = host().install();
    let with = |changes: serde_json::Value| {
        let mut body: serde_json::Value = serde_json::from_str(&payment("e-4", "COMPLETED", None)).unwrap();
        let object = &mut body["data"]["object"]["payment"];
        for (k, v) in changes.as_object().unwrap() {
            object[k] = v.clone();
        }
        settled(&decode(webhook(&body.to_string())).unwrap())
            .tender
            .method
            .clone()
    };
    assert_eq!(with(serde_json::json!({ "source_type": "CASH" })), TenderMethod::Cash);
    assert_eq!(
        with(serde_json::json!({ "card_details": { "card": { "card_brand": "SQUARE_GIFT_CARD" } } })),
        TenderMethod::Voucher
    );
    assert_eq!(
        with(serde_json::json!({ "source_type": "WALLET", "wallet_details": { "brand": "ALIPAY" } })),
        TenderMethod::Other("wallet:alipay".into())
    );
    assert_eq!(
        with(serde_json::json!({ "source_type": "EXTERNAL", "external_details": { "type": "OTHER_GIFT_CARD" } })),
        TenderMethod::Voucher
    );
    assert_eq!(
        with(serde_json::json!({ "source_type": "EXTERNAL", "external_details": { "type": "BANK_TRANSFER" } })),
        TenderMethod::Other("external:bank_transfer".into())
    );
    assert_eq!(
        with(serde_json::json!({ "source_type": "BUY_NOW_PAY_LATER" })),
        TenderMethod::Other("buy_now_pay_later".into())
    );
}

#[test]
fn a_completed_refund_maps_to_a_settlement_reversal() {
    let _fake = host().install();
    let events = decode(webhook(&refund("COMPLETED"))).unwrap();
    let event = &events[0];
    assert_eq!(event.id, "refund:hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1");
    // A location not in `locations`: the default store.
    assert_eq!(event.source, "/t/acme/s/hk-000/p/square");
    assert_eq!(event.time, "2026-11-26T01:00:01.500Z");
    assert_eq!(event.extension("vendorevent"), Some("refund.updated"));
    assert_eq!(
        settled(&events),
        &PaymentSettled {
            order_id: "03O3USaPaAaFnI6kkwB1JxGgBsUZY".into(),
            tender: Tender {
                method: TenderMethod::Card,
                amount: hkd(-3990),
                processor_ref: Some("hYy9pRFVxpDsO1FB05SunFWUe9JZY".into()),
            },
            settlement_id: "hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1".into(),
            fee: Some(hkd(-131)),
        }
    );
    assert_eq!(kaunter_sdk::validate(event), Ok(()));
    for status in ["PENDING", "REJECTED", "FAILED"] {
        assert_eq!(decode(webhook(&refund(status))).unwrap(), vec![], "{status}");
    }
}

#[test]
fn a_tampered_body_a_missing_or_garbled_signature_is_unauthorized() {
    let _fake = host().install();
    let body = payment("e-5", "COMPLETED", None);
    let mut tampered = webhook(&body);
    tampered.body = body.replace("8480", "84800").into_bytes();
    assert!(unauthorized(decode(tampered)).contains("does not match"));
    // Signed for another URL (a proxy that rewrote the path): refused.
    let elsewhere = request(
        &body,
        &sign(KEY, format!("https://other.example.com/hook{body}").as_bytes()),
    );
    assert!(unauthorized(decode(elsewhere)).contains("does not match"));
    let mut missing = webhook(&body);
    missing.headers.retain(|(k, _)| k != "x-square-hmacsha256-signature");
    assert_eq!(
        unauthorized(decode(missing)),
        "the x-square-hmacsha256-signature header is missing"
    );
    assert_eq!(
        unauthorized(decode(request(&body, "%%%"))),
        "x-square-hmacsha256-signature is not base64"
    );
}

#[test]
fn bodies_that_are_not_squares_are_malformed_with_the_reason() {
    let _fake = host().install();
    assert_eq!(
        malformed(decode(webhook("{\"type\": \"payment.updated\"}"))),
        "the body is not the JSON this source expects: missing field `event_id` at line 1 column 27"
    );
    let no_payment =
        r#"{"type": "payment.updated", "event_id": "e", "created_at": "2026-11-25T00:00:00Z", "data": {"object": {}}}"#;
    assert_eq!(
        malformed(decode(webhook(no_payment))),
        "payment.updated: `data.object.payment` is missing"
    );
    let no_amount = r#"{"type": "refund.created", "event_id": "e", "created_at": "2026-11-25T00:00:00Z", "data": {"object": {"refund": {"id": "r", "status": "COMPLETED"}}}}"#;
    assert_eq!(
        malformed(decode(webhook(no_amount))),
        "refund.created: `data.object.refund`: missing field `amount_money`"
    );
}

#[test]
fn a_bad_configuration_is_unavailable_naming_the_field() {
    let _fake = FakeHost::new()
        .config(serde_json::json!({ "tenant": "acme", "store": "hk-000" }))
        .secret("square", KEY)
        .install();
    // The operator's mistake, not the vendor's: 503 keeps the webhook coming back until fixed.
    let reason = match decode(webhook(&payment("e", "COMPLETED", None))) {
        Err(DecodeError::Unavailable(reason)) => reason,
        other => panic!("expected unavailable, got {other:?}"),
    };
    assert!(reason.contains("missing field `notification_url`"), "{reason}");
}
