//! Native tests on the fake host: the signature scheme (with Stripe's SDK test values), the
//! timestamp tolerance, each event type mapped field by field, and the errors.

use super::*;
use kaunter_sdk::testing::FakeHost;
use kaunter_sdk::{Money, Tender, TenderMethod};

/// An endpoint signing secret, as the bytes Stripe signs with (the whole `whsec_…` string).
const SECRET: &[u8] = b"whsec_8f3kQ2xV9mZpL1rT6yW4nB7cD0eF5gHj";
/// The host clock in these tests: 2025-11-25T02:30:00Z.
const NOW_SECS: i64 = 1_764_037_800;

fn host() -> FakeHost {
    FakeHost::new()
        .config(serde_json::json!({ "tenant": "acme", "store": "hk-001" }))
        .secret("stripe", SECRET)
        .clock(NOW_SECS * 1000)
}

/// HMAC-SHA256 as hex, computed here rather than by the fake host.
fn sign(key: &[u8], data: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    kaunter_sdk::hex_encode(&mac.finalize().into_bytes())
}

/// A webhook as Stripe sends it: `Stripe-Signature: t=…,v1=…` over `"{t}.{body}"`.
fn webhook(body: &str, key: &[u8], t: i64) -> WebhookRequest {
    let v1 = sign(key, format!("{t}.{body}").as_bytes());
    request(body, &format!("t={t},v1={v1}"))
}

fn request(body: &str, signature: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        path: "/v1/webhooks/stripe".into(),
        headers: vec![
            ("content-type".into(), "application/json; charset=utf-8".into()),
            ("stripe-signature".into(), signature.into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn hkd(minor: i64) -> Money {
    Money::new(minor, "HKD", 2)
}

fn payment_intent_succeeded() -> String {
    serde_json::json!({
        "id": "evt_3QaBcD2eZvKYlo2C1a2b3c4d", "object": "event", "api_version": "2025-10-29.clover",
        "created": 1_764_037_795, "livemode": false, "pending_webhooks": 1,
        "request": { "id": "req_8Jk2LmN3oP", "idempotency_key": "c0f2b3e1-9a7d-4c6e-8b5a-1d2e3f4a5b6c" },
        "type": "payment_intent.succeeded",
        "data": { "object": {
            "id": "pi_3QaBcD2eZvKYlo2C0x1y2z3w", "object": "payment_intent", "amount": 7980,
            "amount_capturable": 0, "amount_received": 7980, "currency": "hkd", "status": "succeeded",
            "latest_charge": "ch_3QaBcD2eZvKYlo2C0q9w8e7r", "payment_method": "pm_1QaBcD2eZvKYlo2C",
            "payment_method_types": ["card"], "metadata": { "order_id": "HK001-000123" },
            "created": 1_764_037_790, "customer": null
        } }
    })
    .to_string()
}

fn charge(refunded: i64) -> serde_json::Value {
    serde_json::json!({
        "id": "ch_3QaBcD2eZvKYlo2C0q9w8e7r", "object": "charge", "amount": 7980, "amount_captured": 7980,
        "amount_refunded": refunded, "captured": true, "currency": "hkd", "paid": true,
        "refunded": refunded == 7980, "status": "succeeded",
        "payment_intent": "pi_3QaBcD2eZvKYlo2C0x1y2z3w", "balance_transaction": "txn_3QaBcD2eZvKYlo2C0a1s2d3f",
        "metadata": { "order_id": "HK001-000123" },
        "payment_method_details": { "type": "card", "card": { "brand": "visa", "last4": "4242" } }
    })
}

fn event(id: &str, ty: &str, object: serde_json::Value, previous: Option<serde_json::Value>) -> String {
    let mut data = serde_json::json!({ "object": object });
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    serde_json::json!({
        "id": id, "object": "event", "api_version": "2025-10-29.clover", "created": 1_764_037_795,
        "livemode": false, "type": ty, "data": data
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

#[test]
fn stripes_sdk_test_values_verify() {
    // stripe-python's test secret and payload, the timestamp and header layout (a v0 entry
    // beside v1) of Stripe's documentation; the expected v1 was computed with Python's hmac.
    let _fake = FakeHost::new()
        .config(serde_json::json!({ "tenant": "acme", "store": "hk-001" }))
        .secret("stripe", b"whsec_test_secret")
        .clock(1_492_774_577_000 + 10_000)
        .install();
    let config = CONFIG.get().unwrap();
    let body = "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
    let header = "t=1492774577,v1=c2f890decbc5ede7c5060bb9a6d31e0626a4342bacb9aeae2adb1bcea72f9812,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
    assert!(verify(&request(body, header), config).is_ok());
    let tampered = body.replace("evt_test_webhook", "evt_test_webhoo0");
    assert!(verify(&request(&tampered, header), config).is_err());
}

#[test]
fn any_matching_v1_signature_is_enough_during_secret_rotation() {
    let _fake = host().install();
    let body = payment_intent_succeeded();
    let t = NOW_SECS - 5;
    let old = sign(b"whsec_the_previous_secret", format!("{t}.{body}").as_bytes());
    let new = sign(SECRET, format!("{t}.{body}").as_bytes());
    let events = decode(request(&body, &format!("t={t},v1={old},v1={new}"))).unwrap();
    assert_eq!(events.len(), 1);
}

#[test]
fn payment_intent_succeeded_maps_to_a_settlement_field_by_field() {
    let _fake = host().install();
    let events = decode(webhook(&payment_intent_succeeded(), SECRET, NOW_SECS - 5)).unwrap();
    let event = &events[0];
    assert_eq!(event.id, "evt_3QaBcD2eZvKYlo2C1a2b3c4d");
    assert_eq!(event.source, "/t/acme/s/hk-001/p/stripe");
    assert_eq!(event.ty, "pos.payment.settled.v1");
    assert_eq!(event.time, "2025-11-25T02:29:55Z");
    assert_eq!(event.subject.as_deref(), Some("HK001-000123"));
    assert_eq!(event.partition_key, "hk-001:HK001-000123");
    assert_eq!(event.extension("vendorevent"), Some("payment_intent.succeeded"));
    assert_eq!(
        settled(&events),
        &PaymentSettled {
            order_id: "HK001-000123".into(),
            tender: Tender {
                method: TenderMethod::Card,
                amount: hkd(7980),
                processor_ref: Some("pi_3QaBcD2eZvKYlo2C0x1y2z3w".into()),
            },
            settlement_id: "ch_3QaBcD2eZvKYlo2C0q9w8e7r".into(),
            fee: None,
        }
    );
    assert_eq!(kaunter_sdk::validate(event), Ok(()));
}

#[test]
fn charge_succeeded_maps_to_a_settlement_field_by_field() {
    let _fake = host().install();
    let body = event("evt_1ChargeOk", "charge.succeeded", charge(0), None);
    let events = decode(webhook(&body, SECRET, NOW_SECS)).unwrap();
    assert_eq!(events[0].id, "evt_1ChargeOk");
    assert_eq!(events[0].extension("vendorevent"), Some("charge.succeeded"));
    assert_eq!(
        settled(&events),
        &PaymentSettled {
            order_id: "HK001-000123".into(),
            tender: Tender {
                method: TenderMethod::Card,
                amount: hkd(7980),
                processor_ref: Some("pi_3QaBcD2eZvKYlo2C0x1y2z3w".into()),
            },
            settlement_id: "ch_3QaBcD2eZvKYlo2C0q9w8e7r".into(),
            fee: None,
        }
    );
}

#[test]
fn an_authorised_but_uncaptured_charge_stores_nothing() {
    let _fake = host().install();
    let mut object = charge(0);
    object["captured"] = false.into();
    object["amount_captured"] = 0.into();
    let body = event("evt_1Auth", "charge.succeeded", object, None);
    assert_eq!(decode(webhook(&body, SECRET, NOW_SECS)).unwrap(), vec![]);
}

#[test]
fn charge_refunded_reverses_what_this_refund_added() {
    let _fake = host().install();
    // A second partial refund: 30.00 was refunded before, 50.00 now (80.00 in all).
    let mut object = charge(8000);
    object["amount"] = 10000.into();
    object["amount_captured"] = 10000.into();
    object["refunds"] = serde_json::json!({ "object": "list", "data": [
        { "id": "re_3QaBcD2eZvKYlo2C0new", "amount": 5000, "currency": "hkd", "status": "succeeded" },
        { "id": "re_3QaBcD2eZvKYlo2C0old", "amount": 3000, "currency": "hkd", "status": "succeeded" }
    ] });
    let body = event(
        "evt_1Refunded",
        "charge.refunded",
        object,
        Some(serde_json::json!({ "amount_refunded": 3000 })),
    );
    let events = decode(webhook(&body, SECRET, NOW_SECS)).unwrap();
    assert_eq!(events[0].id, "evt_1Refunded");
    assert_eq!(events[0].ty, "pos.payment.settled.v1");
    assert_eq!(
        settled(&events),
        &PaymentSettled {
            order_id: "HK001-000123".into(),
            tender: Tender {
                method: TenderMethod::Card,
                amount: hkd(-5000),
                processor_ref: Some("pi_3QaBcD2eZvKYlo2C0x1y2z3w".into()),
            },
            settlement_id: "re_3QaBcD2eZvKYlo2C0new".into(),
            fee: None,
        }
    );
    assert_eq!(kaunter_sdk::validate(&events[0]), Ok(()));
}

#[test]
fn charge_refunded_without_the_refund_list_names_the_charge() {
    let _fake = host().install();
    let body = event(
        "evt_1Full",
        "charge.refunded",
        charge(7980),
        Some(serde_json::json!({ "amount_refunded": 0, "refunded": false })),
    );
    let events = decode(webhook(&body, SECRET, NOW_SECS)).unwrap();
    let p = settled(&events);
    assert_eq!(p.tender.amount, hkd(-7980));
    assert_eq!(p.settlement_id, "ch_3QaBcD2eZvKYlo2C0q9w8e7r:refunded:7980");
    // Nothing more refunded than before: nothing to store.
    let body = event(
        "evt_1Same",
        "charge.refunded",
        charge(7980),
        Some(serde_json::json!({ "amount_refunded": 7980 })),
    );
    assert_eq!(decode(webhook(&body, SECRET, NOW_SECS)).unwrap(), vec![]);
}

#[test]
fn refund_created_maps_a_succeeded_refund_to_a_reversal() {
    let _fake = host().install();
    let refund = |status: &str| {
        serde_json::json!({
            "id": "re_3QaBcD2eZvKYlo2C0new", "object": "refund", "amount": 2500, "currency": "jpy",
            "charge": "ch_3QaBcD2eZvKYlo2C0q9w8e7r", "payment_intent": "pi_3QaBcD2eZvKYlo2C0x1y2z3w",
            "status": status, "reason": "requested_by_customer", "metadata": {},
            "destination_details": { "type": "card", "card": { "type": "refund" } }
        })
    };
    let body = event("evt_1RefundCreated", "refund.created", refund("succeeded"), None);
    let events = decode(webhook(&body, SECRET, NOW_SECS)).unwrap();
    assert_eq!(events[0].id, "evt_1RefundCreated");
    assert_eq!(events[0].subject.as_deref(), Some("pi_3QaBcD2eZvKYlo2C0x1y2z3w"));
    assert_eq!(
        settled(&events),
        &PaymentSettled {
            // No order id in the refund's metadata: the PaymentIntent stands in.
            order_id: "pi_3QaBcD2eZvKYlo2C0x1y2z3w".into(),
            tender: Tender {
                method: TenderMethod::Card,
                amount: Money::new(-2500, "JPY", 0),
                processor_ref: Some("pi_3QaBcD2eZvKYlo2C0x1y2z3w".into()),
            },
            settlement_id: "re_3QaBcD2eZvKYlo2C0new".into(),
            fee: None,
        }
    );
    for status in ["pending", "failed", "canceled", "requires_action"] {
        let body = event("evt_1Other", "refund.created", refund(status), None);
        assert_eq!(decode(webhook(&body, SECRET, NOW_SECS)).unwrap(), vec![], "{status}");
    }
}

#[test]
fn a_redelivery_gets_the_same_id() {
    let _fake = host().install();
    let body = payment_intent_succeeded();
    let first = decode(webhook(&body, SECRET, NOW_SECS - 60)).unwrap();
    // The id is the signed body's `evt_…`, never anything from a header.
    assert_eq!(first[0].id, "evt_3QaBcD2eZvKYlo2C1a2b3c4d");
    // Stripe signs each delivery afresh: a new timestamp (signed with the body), the same event,
    // whatever the unsigned headers say.
    for (n, t) in [NOW_SECS - 299, NOW_SECS - 120, NOW_SECS - 1, NOW_SECS]
        .into_iter()
        .enumerate()
    {
        let mut again = webhook(&body, SECRET, t);
        again.headers.push((
            "user-agent".into(),
            format!("Stripe/1.0 (+https://stripe.com/docs/webhooks) {n}"),
        ));
        again.headers.push(("x-request-id".into(), format!("req_{n}")));
        assert_eq!(decode(again).unwrap(), first, "delivery signed at {t}");
    }
}

#[test]
fn a_stale_timestamp_is_unauthorized() {
    let _fake = host().install();
    let body = payment_intent_succeeded();
    assert_eq!(decode(webhook(&body, SECRET, NOW_SECS - 300)).unwrap().len(), 1);
    assert_eq!(
        unauthorized(decode(webhook(&body, SECRET, NOW_SECS - 301))),
        "Stripe-Signature timestamp 1764037499 is 301 s old, beyond the 300 s tolerance (a replay, or the host clock is off)"
    );
}

#[test]
fn without_the_clock_the_signature_is_refused_not_trusted() {
    let _fake = host().clock(0).install();
    match decode(webhook(&payment_intent_succeeded(), SECRET, NOW_SECS)) {
        Err(DecodeError::Unavailable(reason)) => assert_eq!(
            reason,
            "cannot check the signature's age: the host clock is not granted (grant clock = true)"
        ),
        other => panic!("expected unavailable (503, the vendor retries), got {other:?}"),
    }
}

#[test]
fn a_tampered_body_or_another_secret_is_unauthorized() {
    let _fake = host().install();
    let body = payment_intent_succeeded();
    let mut tampered = webhook(&body, SECRET, NOW_SECS);
    tampered.body = body.replace("7980", "798").into_bytes();
    assert_eq!(
        unauthorized(decode(tampered)),
        "no v1 signature in Stripe-Signature matches the body (is the secret this endpoint's signing secret, stored as the README says?)"
    );
    assert!(unauthorized(decode(webhook(&body, b"whsec_another_endpoint", NOW_SECS))).starts_with("no v1 signature"));
    // The timestamp is signed too: moving it breaks the signature.
    let signed = webhook(&body, SECRET, NOW_SECS);
    let header = signed
        .header("stripe-signature")
        .unwrap()
        .replace(&NOW_SECS.to_string(), &(NOW_SECS + 1).to_string());
    assert!(unauthorized(decode(request(&body, &header))).starts_with("no v1 signature"));
}

#[test]
fn a_missing_or_incomplete_signature_header_is_unauthorized() {
    let _fake = host().install();
    let body = payment_intent_succeeded();
    let mut missing = webhook(&body, SECRET, NOW_SECS);
    missing.headers.retain(|(k, _)| k != "stripe-signature");
    assert_eq!(unauthorized(decode(missing)), "the Stripe-Signature header is missing");
    assert_eq!(
        unauthorized(decode(request(&body, "v1=abcd"))),
        "Stripe-Signature has no timestamp (t=)"
    );
    assert_eq!(
        unauthorized(decode(request(&body, "t=soon,v1=abcd"))),
        "Stripe-Signature timestamp `soon` is not a number"
    );
    assert_eq!(
        unauthorized(decode(request(&body, &format!("t={NOW_SECS},v0=abcd")))),
        "Stripe-Signature has no v1 signature"
    );
    assert!(unauthorized(decode(request(&body, &format!("t={NOW_SECS},v1=zz")))).starts_with("no v1 signature"));
}

#[test]
fn types_it_does_not_map_are_acknowledged_without_events() {
    let fake = host().install();
    let body = event(
        "evt_1Customer",
        "customer.created",
        serde_json::json!({ "id": "cus_1" }),
        None,
    );
    assert_eq!(decode(webhook(&body, SECRET, NOW_SECS)).unwrap(), vec![]);
    assert!(fake.logs()[0].1.contains("`customer.created` is not mapped"));
}

#[test]
fn bodies_that_are_not_stripes_are_malformed_with_the_reason() {
    let _fake = host().install();
    assert_eq!(
        malformed(decode(webhook(
            r#"{"id": "evt_1", "type": "charge.succeeded""#,
            SECRET,
            NOW_SECS
        ))),
        "the body is not the JSON this source expects: EOF while parsing an object at line 1 column 42"
    );
    let no_amount = event(
        "evt_1",
        "payment_intent.succeeded",
        serde_json::json!({ "id": "pi_1", "currency": "hkd" }),
        None,
    );
    assert_eq!(
        malformed(decode(webhook(&no_amount, SECRET, NOW_SECS))),
        "payment_intent.succeeded: `data.object` is not a Stripe PaymentIntent: missing field `amount`"
    );
}

#[test]
fn a_bad_configuration_is_unavailable_naming_the_field() {
    let _fake = FakeHost::new()
        .config(serde_json::json!({ "tenant": "acme", "store": "hk-001", "tolerance": 60 }))
        .secret("stripe", SECRET)
        .clock(NOW_SECS * 1000)
        .install();
    // The operator's mistake, not the vendor's: 503 keeps the webhook coming back until fixed.
    let reason = match decode(webhook(&payment_intent_succeeded(), SECRET, NOW_SECS)) {
        Err(DecodeError::Unavailable(reason)) => reason,
        other => panic!("expected unavailable, got {other:?}"),
    };
    assert!(reason.contains("unknown field `tolerance`"), "{reason}");
}
