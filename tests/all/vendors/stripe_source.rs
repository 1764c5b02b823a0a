//! `source-stripe` end to end: Stripe events signed the way Stripe signs them (`Stripe-Signature:
//! t=…,v1=…`, HMAC-SHA256 of `"{t}.{body}"` under the endpoint's `whsec_…` secret, used as text),
//! POSTed to the real host at `/v1/webhooks/stripe` and decoded by the real component, which
//! checks the timestamp against the host clock it is granted. A redelivery (same `evt_…`) is a
//! duplicate; a bad signature or a stale timestamp gets 401 and stores nothing.

use super::host_config;
use super::shopify_source::post_webhook;
use crate::harness::{ADMIN_KEY, Host};
use hmac::Mac as _;
use serde_json::{Value, json};

const ENDPOINT_SECRET: &str = "whsec_Hk8mZ2pQ7rT1vX4yB6nC9dF3gJ5kL0wE";

fn config() -> String {
    host_config(&format!(
        r#"
[secrets]
stripe-endpoint = {{ value = "{ENDPOINT_SECRET}", encoding = "text" }}

[[plugins]]
name = "stripe"
kind = "source"
path = {stripe:?}
secrets = ["stripe-endpoint"]
[plugins.config]
tenant = "acme"
store = "hk-001"
secret = "stripe-endpoint"
[plugins.grants]
clock = true
emits = ["pos.payment.settled.v1"]
sources = ["/t/acme/s/hk-001/p/stripe"]
"#,
        stripe = kaunter_tests::plugins::SOURCE_STRIPE,
    ))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `Stripe-Signature` for `body` at time `t`.
fn stripe_signature(body: &str, secret: &str, t: i64) -> Vec<(&'static str, String)> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let v1: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    vec![
        ("stripe-signature", format!("t={t},v1={v1}")),
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_owned(),
        ),
    ]
}

fn stripe_event(id: &str, ty: &str, object: Value) -> String {
    json!({
        "id": id, "object": "event", "api_version": "2025-10-29.clover", "created": 1_764_037_795,
        "livemode": false, "pending_webhooks": 1, "type": ty,
        "request": { "id": "req_8Jk2LmN3oP", "idempotency_key": null },
        "data": { "object": object }
    })
    .to_string()
}

fn payment_intent() -> Value {
    json!({
        "id": "pi_3QaBcD2eZvKYlo2C0x1y2z3w", "object": "payment_intent", "amount": 7980,
        "amount_received": 7980, "currency": "hkd", "status": "succeeded",
        "latest_charge": "ch_3QaBcD2eZvKYlo2C0q9w8e7r", "payment_method_types": ["card"],
        "metadata": { "order_id": "HK001-000123" }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_events_become_stored_settlements() {
    let host = Host::start(&config());
    let body = stripe_event(
        "evt_3QaBcD2eZvKYlo2C1a2b3c4d",
        "payment_intent.succeeded",
        payment_intent(),
    );
    let headers = stripe_signature(&body, ENDPOINT_SECRET, now_secs());

    let (status, answer) = post_webhook(&host, "stripe", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["ids"], json!(["evt_3QaBcD2eZvKYlo2C1a2b3c4d"]));
    let event = &host.event("evt_3QaBcD2eZvKYlo2C1a2b3c4d").await["event"];
    assert_eq!(event["type"], "pos.payment.settled.v1");
    assert_eq!(event["source"], "/t/acme/s/hk-001/p/stripe");
    assert_eq!(event["time"], "2025-11-25T02:29:55Z");
    assert_eq!(event["vendorevent"], "payment_intent.succeeded");
    assert_eq!(
        event["data"],
        json!({
            "order_id": "HK001-000123",
            "tender": { "method": "card", "amount": { "amount_minor": 7980, "currency": "HKD", "exponent": 2 },
                        "processor_ref": "pi_3QaBcD2eZvKYlo2C0x1y2z3w" },
            "settlement_id": "ch_3QaBcD2eZvKYlo2C0q9w8e7r"
        })
    );

    // Stripe retries with a fresh signature: the same event id, a duplicate.
    let headers = stripe_signature(&body, ENDPOINT_SECRET, now_secs());
    let (status, answer) = post_webhook(&host, "stripe", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );

    // A refund: a settlement reversal with a negative amount.
    let refund = json!({
        "id": "re_3QaBcD2eZvKYlo2C0new", "object": "refund", "amount": 3990, "currency": "hkd",
        "charge": "ch_3QaBcD2eZvKYlo2C0q9w8e7r", "payment_intent": "pi_3QaBcD2eZvKYlo2C0x1y2z3w",
        "status": "succeeded", "metadata": { "order_id": "HK001-000123" },
        "destination_details": { "type": "card" }
    });
    let body = stripe_event("evt_3QaBcD2eZvKYlo2C9r8e7f6u", "refund.created", refund);
    let (status, answer) = post_webhook(
        &host,
        "stripe",
        &stripe_signature(&body, ENDPOINT_SECRET, now_secs()),
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let event = &host.event("evt_3QaBcD2eZvKYlo2C9r8e7f6u").await["event"];
    assert_eq!(event["data"]["tender"]["amount"]["amount_minor"], -3990);
    assert_eq!(event["data"]["settlement_id"], "re_3QaBcD2eZvKYlo2C0new");
    assert_eq!(event["partitionkey"], "hk-001:HK001-000123");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_or_a_stale_timestamp_is_refused() {
    let host = Host::start(&config());
    let id = "evt_3QaBcD2eZvKYlo2CForged0";
    let body = stripe_event(id, "payment_intent.succeeded", payment_intent());

    let (status, answer) = post_webhook(
        &host,
        "stripe",
        &stripe_signature(&body, "whsec_other", now_secs()),
        &body,
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("no v1 signature in Stripe-Signature matches the body"),
        "{answer}"
    );

    // Correctly signed, but ten minutes old: a replay.
    let stale = stripe_signature(&body, ENDPOINT_SECRET, now_secs() - 600);
    let (status, answer) = post_webhook(&host, "stripe", &stale, &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.to_string().contains("beyond the 300 s tolerance"), "{answer}");

    let (status, _) = host.get(&format!("/v1/events/{id}"), ADMIN_KEY).await;
    assert_eq!(status, 404, "a refused webhook must store nothing");

    // An event type the source does not map: acknowledged, nothing stored.
    let body = stripe_event(
        "evt_customer",
        "customer.created",
        json!({ "id": "cus_1", "object": "customer" }),
    );
    let (status, answer) = post_webhook(
        &host,
        "stripe",
        &stripe_signature(&body, ENDPOINT_SECRET, now_secs()),
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 0, "{answer}");
}
