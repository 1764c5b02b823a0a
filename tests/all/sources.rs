//! `POST /v1/webhooks/{source}`: how the host answers for a source plugin that misbehaves, an
//! unknown source and a plugin that is not a source, and that a signed webhook replayed with fresh
//! unsigned headers is stored once. (Each vendor's source is tested against its own signature
//! scheme in `vendors/`.)

use crate::harness::*;
use crate::vendors::host_config;
use base64::Engine as _;
use hmac::Mac as _;
use serde_json::{Value, json};

fn config() -> String {
    host_config(&format!(
        r#"
[[plugins]]
name = "misbehaving"
kind = "source"
path = {source:?}
[plugins.limits]
deadline_ms = 300
[plugins.grants]
emits = ["vendor.note.v1"]
sources = ["/t/acme/s/hk-001/p/web*"]

[[plugins]]
name = "sku-map"
kind = "transform"
path = {sku:?}
"#,
        source = kaunter_tests::plugins::HOSTILE_SOURCE,
        sku = kaunter_tests::plugins::TRANSFORM_SKU_MAP,
    ))
    .replacen("[server]\n", "[server]\nmax_body_bytes = 4096\n", 1)
}

async fn webhook(host: &Host, source: &str, misbehave: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/{source}", host.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(how) = misbehave {
        request = request.header("x-misbehave", how);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_stores_nothing_and_the_host_keeps_serving() {
    let host = Host::start(&config());
    let (status, body) = webhook(&host, "misbehaving", None, b"{}".to_vec()).await;
    assert_eq!(
        (status, &body["accepted"], &body["duplicates"]),
        (202, &0.into(), &0.into()),
        "{body}"
    );

    // A failing source answers 500 with only a reference: the detail (which can name destinations,
    // secrets and plugin internals) goes to the operator log under that reference.
    let failure = |misbehave: &'static str| {
        let host = &host;
        async move {
            let (status, body) = webhook(host, "misbehaving", Some(misbehave), b"{}".to_vec()).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (500, Some("source_failed")),
                "{body}"
            );
            let message = body["error"]["message"].as_str().unwrap().to_owned();
            assert!(
                message.starts_with(
                    "source `misbehaving` failed; nothing was stored, so a retry is safe; quote reference "
                ),
                "{message}"
            );
            let reference = message.rsplit(' ').nth(3).unwrap().to_owned();
            let logged = wait_for("the failure in the host log", 10, || async {
                host.log().lines().find(|l| l.contains(&reference)).map(str::to_owned)
            })
            .await;
            (message, logged)
        }
    };
    let (message, logged) = failure("trap").await;
    assert!(!message.contains("trapped"), "{message}");
    assert!(logged.contains("plugin trapped"), "{logged}");
    let (_, logged) = failure("loop").await;
    assert!(logged.contains("exceeded its 300 ms deadline"), "{logged}");
    let (_, logged) = failure("invalid").await;
    assert!(
        logged.contains(
            "it produced events that break the event rules (a plugin bug): events[0].time must be an RFC 3339 timestamp"
        ) && logged.contains("events[0].type is required")
            && logged.contains("events[0].id is a CloudEvents context attribute"),
        "{logged}"
    );
    assert_eq!(host.get("/v1/events/bad-1", ADMIN_KEY).await.0, 404);

    // A source that cannot work until an operator acts answers 503 with Retry-After, so the vendor
    // keeps the webhook and tries again; the reason goes to the log only.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/misbehaving", host.url))
        .header("x-misbehave", "unavailable")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "60");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "source_unavailable", "{body}");
    assert!(!body.to_string().contains("vendor-signing"), "{body}");
    assert!(host.log().contains("secret `vendor-signing` is not granted"));

    // An event without a partition key gets the default one (`{store}:{id}`), not a shared "".
    let (status, body) = webhook(&host, "misbehaving", Some("keyless"), b"{}".to_vec()).await;
    assert_eq!((status, &body["accepted"]), (202, &1.into()), "{body}");
    let stored = host.get("/v1/events/keyless-1", ADMIN_KEY).await.1;
    assert_eq!(stored["event"]["partitionkey"], "hk-001:keyless-1", "{stored}");

    let (status, body) = webhook(&host, "misbehaving", None, vec![b' '; 5000]).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("4096-byte limit"),
        "{body}"
    );

    let (status, body) = webhook(&host, "shopify", None, b"{}".to_vec()).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "no source plugin named `shopify`; configure a [[plugins]] entry with kind = \"source\" and name = \"shopify\""
    );
    // A plugin of another kind gets the same answer: callers learn nothing about what exists.
    let (status, body) = webhook(&host, "sku-map", None, b"{}".to_vec()).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no source plugin named `sku-map`"),
        "{body}"
    );

    // The host and the same source still work.
    let (status, _) = webhook(&host, "misbehaving", None, b"{}".to_vec()).await;
    assert_eq!(status, 202);
    assert_eq!(host.get("/healthz", ADMIN_KEY).await.0, 200);
}

/// A source speaks only for the sources and types granted to it (here `/t/acme/s/hk-001/p/web*`
/// and `vendor.note.v1`): an event in a till's name, in the namespace of derived events or of
/// another type refuses the webhook (nothing stored) and is audited; the till's own event with
/// that id is then accepted as new, not taken for a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_cannot_speak_for_a_till_a_plugin_or_an_ungranted_type() {
    let host = Host::start(&config());
    for (misbehave, reason) in [
        (
            "claim-till",
            "source plugin `misbehaving` returned event `hk-001-till-sale-1` with source `/t/acme/s/hk-001/p/till-1`, which is not in its grants.sources [\"/t/acme/s/hk-001/p/web*\"]",
        ),
        (
            "claim-derived",
            "source plugin `misbehaving` returned event `web-1:restock:4891234500017` with source `/t/acme/s/hk-001/p/web/x/restock`, which is in the namespace of events plugin `restock` derives",
        ),
        (
            "other-type",
            "source plugin `misbehaving` emitted event `web-2` of type `vendor.order.v1`, which is not in its grants.emits [\"vendor.note.v1\"]",
        ),
    ] {
        let (status, body) = webhook(&host, "misbehaving", Some(misbehave), b"{}".to_vec()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (500, Some("source_failed")),
            "{misbehave}: {body}"
        );
        assert!(!body.to_string().contains("grants"), "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        let reference = message.rsplit(' ').nth(3).unwrap().to_owned();
        let logged = wait_for("the refusal in the host log", 10, || async {
            host.log().lines().find(|l| l.contains(&reference)).map(str::to_owned)
        })
        .await;
        assert!(
            logged.contains("capability denied: plugin `misbehaving` emitted 1 event(s) it may not; refused the webhook (nothing was stored)"),
            "{logged}"
        );
        // The log escapes quotes; compare without them.
        assert!(logged.replace('\\', "").contains(reason), "{misbehave}: {logged}");
    }
    for id in ["hk-001-till-sale-1", "web-1:restock:4891234500017", "web-2"] {
        assert_eq!(host.get(&format!("/v1/events/{id}"), ADMIN_KEY).await.0, 404, "{id}");
    }
    let denials: Vec<Value> = host
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "capability.denied")
        .collect();
    assert_eq!(denials.len(), 3, "{denials:?}");
    assert!(
        denials
            .iter()
            .all(|d| d["actor"].as_str().unwrap().starts_with("plugin:misbehaving@"))
    );
    assert_eq!(denials[0]["subject"], "hk-001-till-sale-1");

    // The till's sale with the id the source tried to take is new.
    let (status, answer) = host
        .post_json(&sale("hk-001-till-sale-1", "hk-001", "TS-1", &[("1", 1, 100)]))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({"id": "hk-001-till-sale-1", "status": "accepted"}));
}

/// The Shopify app's client secret in [`shopify_config`] (a sandbox value).
const SHOPIFY_SECRET: &str = "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";

fn shopify_config() -> String {
    host_config(&format!(
        r#"
[secrets]
shopify-client = {{ value = "{SHOPIFY_SECRET}", encoding = "text" }}

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
[plugins.grants]
emits = ["pos.sale.completed.v1", "pos.refund.completed.v1"]
sources = ["/t/acme/s/online/p/shopify"]
"#,
        shopify = kaunter_tests::plugins::SOURCE_SHOPIFY,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_shopify_webhook_with_fresh_headers_is_one_sale() {
    // Security review, item 3: Shopify's MAC covers the body only. One validly signed
    // `orders/create` body, re-sent six times with fresh values in the headers the MAC does not
    // cover, is one sale: the id comes from the signed body, so every replay is a duplicate.
    let host = Host::start(&shopify_config());
    let body = json!({
        "id": 5_916_842_180_787u64, "name": "#1042", "created_at": "2026-11-25T10:15:00+08:00",
        "currency": "HKD", "taxes_included": true, "total_price": "79.80",
        "payment_gateway_names": ["shopify_payments"],
        "line_items": [
            { "id": 13_912_066_212_019u64, "variant_id": 457_924_702u64, "name": "Panadol 500mg x20",
              "sku": "4891234500017", "quantity": 2, "price": "39.90", "discount_allocations": [], "tax_lines": [] }
        ],
        "shipping_lines": []
    })
    .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SHOPIFY_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let delivery = |n: usize| format!("3c2a9f7e-8d41-4b5e-9a7c-0f1e2d3c4b{n:02}");

    for n in 0..6 {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/shopify", host.url))
            .header("content-type", "application/json")
            .header("x-shopify-topic", "orders/create")
            .header("x-shopify-hmac-sha256", &signature)
            .header("x-shopify-shop-domain", "acme-hk.myshopify.com")
            .header("x-shopify-api-version", "2025-10")
            .header("x-shopify-event-id", delivery(n))
            .header(
                "x-shopify-webhook-id",
                format!("b54557e4-bdd9-4b37-8a5f-bf7d70bcd0{n:02}"),
            )
            .header("x-shopify-triggered-at", format!("2026-11-25T02:15:0{n}.123456789Z"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 202, "delivery {n}: {answer}");
        assert_eq!(answer["ids"], json!(["order:5916842180787"]), "delivery {n}: {answer}");
        let expected = if n == 0 { (Some(1), Some(0)) } else { (Some(0), Some(1)) };
        assert_eq!(
            (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
            expected,
            "delivery {n}: {answer}"
        );
    }

    // Exactly one event stored: one accepted, five duplicates, nothing under a header's id.
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["accepted"], 1, "{stats}");
    assert_eq!(stats["duplicates"], 5, "{stats}");
    let stored = host.event("order:5916842180787").await;
    assert_eq!(stored["event"]["type"], "pos.sale.completed.v1", "{stored}");
    assert_eq!(stored["event"]["data"]["order_id"], "5916842180787", "{stored}");
    // The first delivery's header travels for tracing only.
    assert_eq!(stored["event"]["vendoreventid"], delivery(0), "{stored}");
    for n in 0..6 {
        let (status, _) = host.get(&format!("/v1/events/{}", delivery(n)), ADMIN_KEY).await;
        assert_eq!(
            status,
            404,
            "no event may be stored under X-Shopify-Event-Id {}",
            delivery(n)
        );
    }
}
