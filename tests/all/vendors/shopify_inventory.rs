//! `connector-shopify-inventory` against a fake Shopify GraphQL Admin API, in the real host with a
//! host-run OAuth credential: SKU lookups (`inventoryItems`), `inventoryAdjustQuantities` with the
//! `@idempotent` key, the cost-based `THROTTLED` answer, `userErrors` and query validation errors,
//! as Shopify documents them.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

const VERSION: &str = "2026-10";
/// The shop's catalogue: SKU → inventory item.
const CATALOGUE: &[(&str, &str)] = &[
    ("4891234500017", "gid://shopify/InventoryItem/30322695"),
    ("4891234500024", "gid://shopify/InventoryItem/30322696"),
    // The same products under the merchant's own SKUs (after transform-sku-map).
    ("PANADOL-500-20", "gid://shopify/InventoryItem/30322697"),
    ("VITC-1000-60", "gid://shopify/InventoryItem/30322698"),
];

fn cost() -> Value {
    json!({"cost": {"requestedQueryCost": 10, "actualQueryCost": 10,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990.0, "restoreRate": 100.0}}})
}

/// Answers like the GraphQL Admin API: `inventoryItems` searches by `sku:"…"`, and
/// `inventoryAdjustQuantities` (which from 2026-04 needs `@idempotent`) returns a new
/// adjustment group echoing the changes.
pub(super) fn shopify(call: &Call) -> Reply {
    if call.path != format!("/admin/api/{VERSION}/graphql.json") {
        return Reply::json(404, &json!({"errors": "Not Found"}));
    }
    static GROUP: AtomicU64 = AtomicU64::new(74452);
    let body = call.json();
    let query = body["query"].as_str().unwrap_or_default();
    if query.contains("inventoryItems(") {
        let search = body["variables"]["query"].as_str().unwrap_or_default();
        let nodes: Vec<Value> = CATALOGUE
            .iter()
            .filter(|(sku, _)| search.contains(&format!("sku:\"{sku}\"")))
            .map(|(sku, id)| json!({"id": id, "sku": sku}))
            .collect();
        return Reply::json(
            200,
            &json!({"data": {"inventoryItems": {"nodes": nodes}}, "extensions": cost()}),
        );
    }
    if query.contains("inventoryAdjustQuantities(") {
        if !query.contains("@idempotent(key:") {
            return Reply::json(
                200,
                &json!({"errors": [{"message": "The @idempotent directive is required for this mutation.",
                                     "extensions": {"code": "BAD_REQUEST"}}]}),
            );
        }
        let input = &body["variables"]["input"];
        let changes: Vec<Value> = input["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!({"name": input["name"], "delta": c["delta"]}))
            .collect();
        let id = GROUP.fetch_add(1, Ordering::SeqCst);
        return Reply::json(
            200,
            &json!({"data": {"inventoryAdjustQuantities": {
                "inventoryAdjustmentGroup": {"id": format!("gid://shopify/InventoryAdjustmentGroup/{id}"),
                    "reason": input["reason"], "referenceDocumentUri": input["referenceDocumentUri"], "changes": changes},
                "userErrors": []}}, "extensions": cost()}),
        );
    }
    Reply::json(
        200,
        &json!({"errors": [{"message": "Field doesn't exist", "extensions": {"code": "undefinedField"}}]}),
    )
}

fn config(fake: &VendorFake, oauth: &OAuthServer) -> String {
    config_for(fake, oauth, VERSION)
}

fn config_for(fake: &VendorFake, oauth: &OAuthServer, version: &str) -> String {
    host_config(&format!(
        r#"
[credentials.shopify]
grant = "client_credentials"
token_url = "{token_url}"
client_id = {{ value = "shopify-app-client-id" }}
client_secret = {{ value = "shpss_test_secret" }}
for = ["POST {url}/admin/api/"]

[[plugins]]
name = "shopify"
kind = "connector"
path = {path:?}
[plugins.config]
base_url = "{url}"
api_version = "{version}"
[plugins.config.locations]
hk-001 = "68395204"
[plugins.grants]
http = ["POST {url}/admin/api/{version}/graphql.json"]
credentials = ["shopify"]

[[sinks]]
name = "shopify"
connector = "shopify"
max_attempts = 3
backoff_base_ms = 20
backoff_max_ms = 200

[[routes]]
name = "stock"
types = ["pos.stock.adjusted.v1", "pos.sale.completed.v1"]
sinks = ["shopify"]
"#,
        token_url = oauth.token_url,
        url = fake.url,
        path = kaunter_tests::plugins::CONNECTOR_SHOPIFY_INVENTORY,
    ))
}

fn stock(id: &str, sku: &str, delta_milli: i64) -> Value {
    json!({"id": id, "source": "/t/acme/s/hk-001/p/backoffice", "type": "pos.stock.adjusted.v1",
           "time": "2026-11-25T09:00:00+08:00",
           "data": {"sku": sku, "delta_milli": delta_milli, "reason": "receipt"}})
}

fn mutations(fake: &VendorFake) -> Vec<Call> {
    fake.calls()
        .into_iter()
        .filter(|c| {
            c.json()["query"]
                .as_str()
                .unwrap()
                .contains("inventoryAdjustQuantities(")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_changes_and_sales_adjust_available_with_the_host_token_and_the_idempotency_key() {
    let oauth = OAuthServer::start().await;
    let fake = VendorFake::start(shopify).await;
    let host = Host::start(&config(&fake, &oauth));
    host.post_json(&stock("stk-1", "4891234500017", 24_000)).await;
    wait_for_state(&host, "stk-1", "shopify", "delivered").await;
    host.post_json(&sale(
        "sale-1",
        "hk-001",
        "HK001-000123",
        &[("4891234500017", 2, 3990), ("4891234500024", 1, 12800)],
    ))
    .await;
    wait_for_state(&host, "sale-1", "shopify", "delivered").await;

    let calls = fake.calls();
    assert_eq!(calls.len(), 4, "lookup, adjust; lookup of the new SKU only, adjust");
    let token = calls[0]
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    assert_eq!(jwt_claims(&token)["iss"], oauth.issuer);
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/admin/api/2026-10/graphql.json");
        assert_eq!(call.header("content-type"), "application/json");
        assert_eq!(call.header("authorization"), format!("Bearer {token}"));
        assert!(!call.text().contains(&token), "the token stays out of the body");
    }
    assert_eq!(calls[0].json()["variables"]["query"], "sku:\"4891234500017\"");
    assert_eq!(calls[2].json()["variables"]["query"], "sku:\"4891234500024\"");

    let sent = mutations(&fake);
    assert!(sent[0].json()["query"].as_str().unwrap().contains(&format!(
        "inventoryAdjustQuantities(input: $input) @idempotent(key: \"{}\")",
        host.key_of("stk-1", "shopify").await
    )));
    assert_eq!(
        sent[0].json()["variables"]["input"],
        json!({"reason": "received", "name": "available",
               "referenceDocumentUri": format!("gid://kaunter/Delivery/{}", host.key_of("stk-1", "shopify").await.replace(':', "%3A")),
               "changes": [{"delta": 24, "inventoryItemId": "gid://shopify/InventoryItem/30322695",
                            "locationId": "gid://shopify/Location/68395204", "changeFromQuantity": null}]})
    );
    assert!(sent[1].json()["query"].as_str().unwrap().contains(&format!(
        "@idempotent(key: \"{}\")",
        host.key_of("sale-1", "shopify").await
    )));
    assert_eq!(
        sent[1].json()["variables"]["input"]["changes"],
        json!([{"delta": -2, "inventoryItemId": "gid://shopify/InventoryItem/30322695",
                "locationId": "gid://shopify/Location/68395204", "changeFromQuantity": null},
               {"delta": -1, "inventoryItemId": "gid://shopify/InventoryItem/30322696",
                "locationId": "gid://shopify/Location/68395204", "changeFromQuantity": null}])
    );
    assert_eq!(sent[1].json()["variables"]["input"]["reason"], "correction");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_adjustment_is_sent_again_with_the_same_key_and_user_and_validation_errors_dead_letter() {
    let oauth = OAuthServer::start().await;
    let fake = VendorFake::start(shopify).await;
    let host = Host::start(&config(&fake, &oauth));
    // The lookup succeeds; the mutation meets an empty bucket once ((12 − 2) / 100 per s = 100 ms).
    fake.script([
        shopify_lookup(),
        Reply::json(
            200,
            &json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": 12, "actualQueryCost": null,
                        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 2, "restoreRate": 100.0}}}}),
        ),
    ]);
    host.post_json(&stock("thr-1", "4891234500017", -5000)).await;
    let entry = wait_for_state(&host, "thr-1", "shopify", "delivered").await;
    assert_eq!(entry["attempts"], 2);
    let sent = mutations(&fake);
    assert_eq!(sent.len(), 2, "the throttled mutation and its retry");
    assert_eq!(
        sent[0].body, sent[1].body,
        "the retry is the same request, same idempotency key"
    );

    // Shopify refuses the item at this location: dead-lettered at once with Shopify's message.
    fake.script([Reply::json(
        200,
        &json!({"data": {"inventoryAdjustQuantities": {"inventoryAdjustmentGroup": null, "userErrors": [
            {"field": ["input", "changes", "0", "locationId"],
             "message": "The item is not stocked at the location.", "code": "ITEM_NOT_STOCKED_AT_LOCATION"}]}}}),
    )]);
    host.post_json(&stock("ref-1", "4891234500017", 1000)).await;
    let entry = wait_for_state(&host, "ref-1", "shopify", "dead_lettered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(
        entry["last_error"],
        "rejected: Shopify refused the adjustment: The item is not stocked at the location. (ITEM_NOT_STOCKED_AT_LOCATION at input.changes.0.locationId)"
    );

    // A query validation error is permanent: dead-lettered at once, not retried.
    fake.script([Reply::json(
        200,
        &json!({"errors": [{"message": "Field 'inventoryAdjustQuantities' doesn't accept argument 'input'",
            "locations": [{"line": 1, "column": 91}],
            "path": ["mutation AdjustInventory", "inventoryAdjustQuantities", "input"],
            "extensions": {"code": "argumentNotAccepted", "name": "inventoryAdjustQuantities",
                           "typeName": "Field", "argumentName": "input"}}]}),
    )]);
    host.post_json(&stock("bad-1", "4891234500017", 1000)).await;
    let entry = wait_for_state(&host, "bad-1", "shopify", "dead_lettered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(
        entry["last_error"],
        "rejected: Shopify refused the request as invalid: Field 'inventoryAdjustQuantities' doesn't accept argument 'input' (argumentNotAccepted)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_version_without_the_idempotency_key_is_refused_before_anything_is_sent() {
    let oauth = OAuthServer::start().await;
    let fake = VendorFake::start(shopify).await;
    let host = Host::start(&config_for(&fake, &oauth, "2025-10"));
    host.post_json(&stock("old-1", "4891234500017", 1000)).await;
    let entry = wait_for_state(&host, "old-1", "shopify", "dead_lettered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(
        entry["last_error"],
        "rejected: invalid shopify config: `api_version` = \"2025-10\" is not supported: inventory adjustments need the @idempotent key, which Shopify takes from API version 2026-01 on (without it a retry after a lost answer adjusts stock twice); set `api_version` to \"2026-01\" or later (the default is \"2026-10\"), in the format YYYY-MM"
    );
    assert!(fake.calls().is_empty(), "nothing reached Shopify");
}

/// The lookup answer for the first SKU of the catalogue.
fn shopify_lookup() -> Reply {
    let (sku, id) = CATALOGUE[0];
    Reply::json(
        200,
        &json!({"data": {"inventoryItems": {"nodes": [{"id": id, "sku": sku}]}}, "extensions": cost()}),
    )
}
