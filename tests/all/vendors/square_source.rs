//! `source-square` end to end: Square notifications signed the way Square signs them (base64
//! HMAC-SHA256 of the notification URL followed by the raw body, under the subscription's
//! signature key), POSTed to the real host at `/v1/webhooks/square` and decoded by the real
//! component. A later `payment.updated` of the same completed payment (a new Square `event_id`)
//! and a redelivery are both duplicates of the one settlement; a bad signature gets 401 and
//! stores nothing.

use super::host_config;
use super::shopify_source::post_webhook;
use crate::harness::{ADMIN_KEY, Host};
use base64::Engine as _;
use hmac::Mac as _;
use serde_json::{Value, json};

const SIGNATURE_KEY: &str = "Ibxx_5AKakO-3qeNVR61Dw";
const NOTIFICATION_URL: &str = "https://pos.acme.example/v1/webhooks/square";

fn config() -> String {
    host_config(&format!(
        r#"
[secrets]
square-signature-key = {{ value = "{SIGNATURE_KEY}", encoding = "text" }}

[[plugins]]
name = "square"
kind = "source"
path = {square:?}
secrets = ["square-signature-key"]
[plugins.config]
tenant = "acme"
store = "hk-000"
notification_url = "{NOTIFICATION_URL}"
secret = "square-signature-key"
[plugins.config.locations]
S8GWD5R9QB376 = "hk-001"
[plugins.grants]
emits = ["pos.payment.settled.v1"]
sources = ["/t/acme/s/hk-000/p/square", "/t/acme/s/hk-001/p/square"]
"#,
        square = kaunter_tests::plugins::SOURCE_SQUARE,
    ))
}

fn square_signature(body: &str, key: &str) -> Vec<(&'static str, String)> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{NOTIFICATION_URL}{body}").as_bytes());
    vec![
        (
            "x-square-hmacsha256-signature",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        ),
        ("square-version", "2025-10-16".to_owned()),
        ("square-retry-number", "0".to_owned()),
    ]
}

fn payment_updated(event_id: &str, fee: Option<i64>) -> String {
    let fees: Value = match fee {
        Some(amount) => json!([{ "type": "INITIAL", "amount_money": { "amount": amount, "currency": "HKD" } }]),
        None => json!([]),
    };
    json!({
        "merchant_id": "6SSW7HV8K2ST5", "type": "payment.updated", "event_id": event_id,
        "created_at": "2026-11-25T02:15:04.525Z",
        "data": { "type": "payment", "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY", "object": { "payment": {
            "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY", "status": "COMPLETED", "source_type": "CARD",
            "amount_money": { "amount": 7980, "currency": "HKD" }, "tip_money": { "amount": 500, "currency": "HKD" },
            "total_money": { "amount": 8480, "currency": "HKD" }, "processing_fee": fees,
            "card_details": { "status": "CAPTURED", "card": { "card_brand": "VISA", "last_4": "1111" } },
            "location_id": "S8GWD5R9QB376", "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
            "created_at": "2026-11-25T02:15:00.225Z", "updated_at": "2026-11-25T02:15:01.525Z", "version": 3
        } } }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn square_notifications_become_one_stored_settlement_per_payment() {
    let host = Host::start(&config());
    let body = payment_updated("6a8f5f28-54a1-4eb0-a98a-3111513fd4fc", None);
    let (status, answer) = post_webhook(&host, "square", &square_signature(&body, SIGNATURE_KEY), &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["ids"], json!(["payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY"]));

    let event = &host.event("payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY").await["event"];
    assert_eq!(event["type"], "pos.payment.settled.v1");
    assert_eq!(event["source"], "/t/acme/s/hk-001/p/square");
    assert_eq!(event["time"], "2026-11-25T02:15:01.525Z");
    assert_eq!(event["vendoreventid"], "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc");
    assert_eq!(
        event["data"],
        json!({
            "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
            "tender": { "method": "card", "amount": { "amount_minor": 8480, "currency": "HKD", "exponent": 2 },
                        "processor_ref": "hYy9pRFVxpDsO1FB05SunFWUe9JZY" },
            "settlement_id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY"
        })
    );

    // Square redelivers the notification: a duplicate.
    let (status, answer) = post_webhook(&host, "square", &square_signature(&body, SIGNATURE_KEY), &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );
    // Square updates the completed payment with its fee (a new event_id): still one settlement.
    let later = payment_updated("b1c2d3e4-0000-4f5a-8b9c-0d1e2f3a4b5c", Some(263));
    let (status, answer) = post_webhook(&host, "square", &square_signature(&later, SIGNATURE_KEY), &later).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );

    // A completed refund against it: a settlement reversal.
    let refund = json!({
        "merchant_id": "6SSW7HV8K2ST5", "type": "refund.updated", "event_id": "9e0b4c1e-3f3a-4c58-9a0e-5d7b2a1c0f11",
        "created_at": "2026-11-26T01:00:02.000Z",
        "data": { "type": "refund", "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1", "object": { "refund": {
            "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1", "status": "COMPLETED",
            "amount_money": { "amount": 3990, "currency": "HKD" }, "payment_id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
            "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY", "location_id": "S8GWD5R9QB376", "destination_type": "CARD",
            "updated_at": "2026-11-26T01:00:01.500Z"
        } } }
    })
    .to_string();
    let (status, answer) = post_webhook(&host, "square", &square_signature(&refund, SIGNATURE_KEY), &refund).await;
    assert_eq!(status, 202, "{answer}");
    let event = &host.event("refund:hYy9pRFVxpDsO1FB05SunFWUe9JZY_R1").await["event"];
    assert_eq!(event["data"]["tender"]["amount"]["amount_minor"], -3990);
    assert_eq!(event["partitionkey"], "hk-001:03O3USaPaAaFnI6kkwB1JxGgBsUZY");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_is_refused_and_stores_nothing() {
    let host = Host::start(&config());
    let body = payment_updated("6a8f5f28-0000-4eb0-a98a-3111513fd4fc", None);
    let (status, answer) = post_webhook(&host, "square", &square_signature(&body, "another-key"), &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("x-square-hmacsha256-signature does not match"),
        "{answer}"
    );
    let (status, _) = host
        .get("/v1/events/payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY", ADMIN_KEY)
        .await;
    assert_eq!(status, 404, "a refused webhook must store nothing");
}
