//! `source-shopify` end to end: Shopify webhooks, signed the way Shopify signs them (base64
//! HMAC-SHA256 of the raw body under the app's client secret), POSTed to the real host at
//! `/v1/webhooks/shopify`, decoded by the real component and stored under the id the signed body
//! gives (`order:{id}`, `refund:{id}`; the unsigned `X-Shopify-Event-Id` is only carried as
//! `vendoreventid`). A redelivery is a duplicate; a bad signature gets 401 and stores nothing; a
//! topic the source does not map is acknowledged with nothing stored; the stored sale is routed to
//! a sink like any ingested event; a signed body replayed with fresh headers is still one sale.

use super::{Reply, VendorFake, host_config};
use crate::harness::{ADMIN_KEY, Host, WEBHOOK_SECRET, wait_for_state};
use base64::Engine as _;
use hmac::Mac as _;
use serde_json::{Value, json};

const CLIENT_SECRET: &str = "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";

fn config(sink: &VendorFake) -> String {
    host_config(&format!(
        r#"
[secrets]
shopify-client = {{ value = "{CLIENT_SECRET}", encoding = "text" }}
hook-signing = {{ value = "{WEBHOOK_SECRET}" }}

[[plugins]]
name = "shopify"
kind = "source"
path = {shopify:?}
secrets = ["shopify-client"]
[plugins.config]
tenant = "acme"
store = "online"
time_zone = "Asia/Hong_Kong"
secret = "shopify-client"
[plugins.config.locations]
"487838322" = "hk-001"
[plugins.grants]
emits = ["pos.sale.completed.v1", "pos.refund.completed.v1"]
sources = ["/t/acme/s/online/p/shopify", "/t/acme/s/hk-001/p/shopify"]

[[plugins]]
name = "erp"
kind = "connector"
path = {webhook:?}
secrets = ["hook-signing"]
[plugins.config]
url = "{url}/orders"
secret = "hook-signing"
[plugins.grants]
http = ["POST {url}/orders"]
clock = true

[[sinks]]
name = "erp"
connector = "erp"

[[routes]]
name = "shop-sales"
types = ["pos.sale.completed.v1", "pos.refund.completed.v1"]
sinks = ["erp"]
"#,
        shopify = kaunter_tests::plugins::SOURCE_SHOPIFY,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        url = sink.url,
    ))
}

/// Headers Shopify sends with a webhook, signed with `secret`.
fn shopify_headers(topic: &str, event_id: &str, body: &str, secret: &str) -> Vec<(&'static str, String)> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    vec![
        ("x-shopify-topic", topic.to_owned()),
        (
            "x-shopify-hmac-sha256",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        ),
        ("x-shopify-shop-domain", "acme-hk.myshopify.com".to_owned()),
        ("x-shopify-api-version", "2025-10".to_owned()),
        ("x-shopify-webhook-id", format!("webhook-{event_id}")),
        ("x-shopify-event-id", event_id.to_owned()),
        ("x-shopify-triggered-at", "2026-11-25T02:15:00.123456789Z".to_owned()),
    ]
}

/// POSTs a webhook to `/v1/webhooks/{name}`; the status and JSON answer.
pub async fn post_webhook(host: &Host, name: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let mut request = host
        .http
        .post(format!("{}/v1/webhooks/{name}", host.url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn order() -> String {
    json!({
        "id": 5_916_842_180_787u64, "name": "#1042", "created_at": "2026-11-25T10:15:00+08:00",
        "currency": "HKD", "taxes_included": true, "financial_status": "paid", "source_name": "pos",
        "total_price": "149.70", "subtotal_price": "149.70", "total_tax": "0.00", "total_discounts": "10.00",
        "payment_gateway_names": ["shopify_payments"], "location_id": 487_838_322u64, "user_id": 548_380_009u64,
        "customer": { "id": 207_119_551u64 },
        "line_items": [
            { "id": 13_912_066_212_019u64, "variant_id": 457_924_702u64, "title": "Panadol",
              "name": "Panadol 500mg x20", "sku": "4891234500017", "quantity": 3, "price": "39.90",
              "discount_allocations": [{ "amount": "10.00", "discount_application_index": 0 }], "tax_lines": [] },
            { "id": 13_912_066_212_020u64, "variant_id": 808_950_810u64, "title": "Vitamin C",
              "name": "Vitamin C 1000mg", "sku": "VITC-1000-60", "quantity": 1, "price": "40.00",
              "discount_allocations": [], "tax_lines": [] }
        ],
        "shipping_lines": []
    })
    .to_string()
}

fn refund() -> String {
    json!({
        "id": 929_361_463u64, "order_id": 5_916_842_180_787u64, "created_at": "2026-11-26T11:00:00+08:00",
        "note": "damaged box", "user_id": 548_380_009u64,
        "refund_line_items": [{
            "id": 1, "quantity": 1, "line_item_id": 13_912_066_212_019u64, "location_id": 487_838_322u64,
            "restock_type": "return",
            "subtotal_set": { "shop_money": { "amount": "36.57", "currency_code": "HKD" } },
            "total_tax_set": { "shop_money": { "amount": "0.00", "currency_code": "HKD" } },
            "line_item": { "id": 13_912_066_212_019u64, "variant_id": 457_924_702u64, "name": "Panadol 500mg x20",
                           "sku": "4891234500017", "quantity": 3, "price": "39.90", "tax_lines": [] }
        }],
        "transactions": [{ "id": 389_404_469u64, "kind": "refund", "status": "success", "gateway": "shopify_payments",
                           "amount": "36.57", "currency": "HKD" }]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn shopify_webhooks_become_stored_routed_events() {
    let sink = VendorFake::start(|_| Reply::json(200, &json!({ "ok": true }))).await;
    let host = Host::start(&config(&sink));
    // Shopify's delivery id (unsigned): carried for tracing, never the event id.
    let event_id = "3c2a9f7e-8d41-4b5e-9a7c-0f1e2d3c4b5a";
    // The event id, from the signed body's order id.
    let id = "order:5916842180787";
    let body = order();
    let headers = shopify_headers("orders/create", event_id, &body, CLIENT_SECRET);

    let (status, answer) = post_webhook(&host, "shopify", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["duplicates"], 0, "{answer}");
    assert_eq!(answer["ids"], json!([id]));

    let stored = host.event(id).await;
    let event = &stored["event"];
    assert_eq!(event["type"], "pos.sale.completed.v1");
    assert_eq!(event["source"], "/t/acme/s/hk-001/p/shopify");
    assert_eq!(event["time"], "2026-11-25T10:15:00+08:00");
    assert_eq!(event["shopifyshop"], "acme-hk.myshopify.com");
    assert_eq!(event["vendoreventid"], event_id);
    let data = &event["data"];
    assert_eq!(data["order_id"], "5916842180787");
    assert_eq!(data["business_date"], "2026-11-25");
    assert_eq!(data["tax_mode"], "inclusive");
    assert_eq!(data["member_id"], "207119551");
    assert_eq!(data["cashier_id"], "548380009");
    assert_eq!(data["lines"][0]["sku"], "4891234500017");
    assert_eq!(data["lines"][0]["quantity_milli"], 3000);
    assert_eq!(
        data["lines"][0]["unit_price"],
        json!({"amount_minor": 3990, "currency": "HKD", "exponent": 2})
    );
    assert_eq!(data["lines"][0]["gross"]["amount_minor"], 11970);
    assert_eq!(data["lines"][0]["discount"]["amount_minor"], 1000);
    assert_eq!(data["lines"][0]["net"]["amount_minor"], 10970);
    assert_eq!(data["lines"][1]["sku"], "VITC-1000-60");
    assert_eq!(
        data["tenders"],
        json!([{"method": "card", "amount": {"amount_minor": 14970, "currency": "HKD", "exponent": 2}}])
    );
    assert_eq!(data["totals"]["total"]["amount_minor"], 14970);

    // Routed like any ingested event: the ERP sink gets the mapped sale.
    wait_for_state(&host, id, "erp", "delivered").await;
    let delivered = sink.calls_to("POST", "/orders");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].json()["data"]["order_id"], "5916842180787");

    // Shopify redelivers the same webhook: acknowledged, stored once.
    let (status, answer) = post_webhook(&host, "shopify", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );

    // The refund of one unit, restocked.
    let refund_event_id = "7d0e1f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6";
    let body = refund();
    let (status, answer) = post_webhook(
        &host,
        "shopify",
        &shopify_headers("refunds/create", refund_event_id, &body, CLIENT_SECRET),
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["ids"], json!(["refund:929361463"]));
    let event = &host.event("refund:929361463").await["event"];
    assert_eq!(event["type"], "pos.refund.completed.v1");
    assert_eq!(event["partitionkey"], "hk-001:5916842180787");
    let data = &event["data"];
    assert_eq!(data["refund_id"], "929361463");
    assert_eq!(data["original_order_id"], "5916842180787");
    assert_eq!(data["reason"], "damaged box");
    assert_eq!(data["lines"][0]["restock"], true);
    assert_eq!(data["lines"][0]["line"]["quantity_milli"], -1000);
    assert_eq!(data["lines"][0]["line"]["net"]["amount_minor"], -3657);
    assert_eq!(data["tenders"][0]["amount"]["amount_minor"], -3657);
    assert_eq!(data["tenders"][0]["processor_ref"], "389404469");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_is_refused_and_unmapped_topics_store_nothing() {
    let sink = VendorFake::start(|_| Reply::json(200, &json!({}))).await;
    let host = Host::start(&config(&sink));
    let body = order();

    // Signed with another app's secret.
    let forged = "0b7e6f3c-1111-4a2b-9c3d-4e5f60718293";
    let headers = shopify_headers("orders/create", forged, &body, "shpss_not_this_app");
    let (status, answer) = post_webhook(&host, "shopify", &headers, &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("X-Shopify-Hmac-Sha256 does not match the body"),
        "{answer}"
    );
    // Signed correctly, then tampered with on the way.
    let headers = shopify_headers("orders/create", forged, &body, CLIENT_SECRET);
    let tampered = body.replace("39.90", "0.90");
    let (status, _) = post_webhook(&host, "shopify", &headers, &tampered).await;
    assert_eq!(status, 401);
    let (status, _) = host.get("/v1/events/order:5916842180787", ADMIN_KEY).await;
    assert_eq!(status, 404, "a refused webhook must store nothing");

    // A topic the source does not map: 202, nothing stored (Shopify stops retrying).
    let product = r#"{"id": 632910392, "title": "Panadol"}"#;
    let other = "5a6b7c8d-0000-4e1f-a2b3-c4d5e6f70819";
    let (status, answer) = post_webhook(
        &host,
        "shopify",
        &shopify_headers("products/update", other, product, CLIENT_SECRET),
        product,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 0, "{answer}");
    assert_eq!(answer["ids"], json!([]));
    let (status, _) = host.get("/v1/events/order:632910392", ADMIN_KEY).await;
    assert_eq!(status, 404);

    // A body that is not a complete order: 400 with the reason.
    let broken = r#"{"id": 1, "line_items": []}"#;
    let (status, answer) = post_webhook(
        &host,
        "shopify",
        &shopify_headers(
            "orders/create",
            "9f8e7d6c-0000-4000-8000-000000000001",
            broken,
            CLIENT_SECRET,
        ),
        broken,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("missing field `created_at`"), "{answer}");
}

/// Shopify's MAC covers the body only. One validly signed `orders/create` body, re-sent six times
/// with fresh values in the headers the MAC does not cover, is one sale: the id comes from the
/// signed body, so every replay is a duplicate, and nothing is stored under a header's id.
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_shopify_webhook_with_fresh_headers_is_one_sale() {
    let sink = VendorFake::start(|_| Reply::json(200, &json!({ "ok": true }))).await;
    let host = Host::start(&config(&sink));
    let body = order();
    let delivery = |n: usize| format!("3c2a9f7e-8d41-4b5e-9a7c-0f1e2d3c4b{n:02}");
    for n in 0..6 {
        let mut headers = shopify_headers("orders/create", &delivery(n), &body, CLIENT_SECRET);
        headers.retain(|(k, _)| *k != "x-shopify-triggered-at");
        headers.push(("x-shopify-triggered-at", format!("2026-11-25T02:15:0{n}.123456789Z")));
        let (status, answer) = post_webhook(&host, "shopify", &headers, &body).await;
        assert_eq!(status, 202, "delivery {n}: {answer}");
        assert_eq!(answer["ids"], json!(["order:5916842180787"]), "delivery {n}: {answer}");
        let expected = if n == 0 { (Some(1), Some(0)) } else { (Some(0), Some(1)) };
        assert_eq!(
            (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
            expected,
            "delivery {n}: {answer}"
        );
    }
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(
        (stats["accepted"].clone(), stats["duplicates"].clone()),
        (json!(1), json!(5)),
        "{stats}"
    );
    let stored = host.event("order:5916842180787").await;
    assert_eq!(stored["event"]["type"], "pos.sale.completed.v1", "{stored}");
    // The first delivery's header travels for tracing only.
    assert_eq!(stored["event"]["vendoreventid"], delivery(0), "{stored}");
    for n in 0..6 {
        let (status, _) = host.get(&format!("/v1/events/{}", delivery(n)), ADMIN_KEY).await;
        assert_eq!(status, 404, "stored under X-Shopify-Event-Id {}", delivery(n));
    }
}
