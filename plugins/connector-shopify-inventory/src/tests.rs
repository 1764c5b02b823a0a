//! Native tests on the fake host: the exact requests sent and how each of Shopify's answers maps.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

const URL: &str = "http://shop.example/admin/api/2026-10/graphql.json";
const ITEM: &str = "gid://shopify/InventoryItem/30322695";

fn event(ty: &str, data: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    let value = json!({"id": "e1", "source": "/t/acme/s/hk-001/p/till-1", "type": ty,
                       "time": "2026-11-25T10:15:00+08:00", "data": data});
    Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
}

fn stock(sku: &str, delta_milli: i64) -> Event {
    event(
        "pos.stock.adjusted.v1",
        json!({"sku": sku, "delta_milli": delta_milli, "reason": "receipt"}),
    )
}

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn line(no: u32, sku: &str, quantity_milli: i64) -> Value {
    json!({"line_no": no, "sku": sku, "quantity_milli": quantity_milli, "unit_price": hkd(100),
           "gross": hkd(100), "discount": hkd(0), "net": hkd(100), "taxes": []})
}

fn totals() -> Value {
    json!({"gross": hkd(0), "discount": hkd(0), "net": hkd(0), "tax": hkd(0), "total": hkd(0),
           "tendered": hkd(0), "change": hkd(0)})
}

fn sale(lines: Vec<Value>) -> Event {
    event(
        "pos.sale.completed.v1",
        json!({"order_id": "HK001-1", "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
               "tax_mode": "inclusive", "lines": lines, "tenders": [], "totals": totals()}),
    )
}

fn refund(lines: Vec<(Value, bool)>) -> Event {
    let lines: Vec<Value> = lines
        .into_iter()
        .map(|(line, restock)| json!({"line": line, "restock": restock}))
        .collect();
    event(
        "pos.refund.completed.v1",
        json!({"refund_id": "R-1", "original_order_id": "HK001-1", "business_date": "2026-11-25",
               "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive", "lines": lines, "tenders": [],
               "totals": totals()}),
    )
}

fn context() -> DeliveryContext {
    DeliveryContext {
        idempotency_key: "e1:shopify".into(),
        sink: "shopify".into(),
        attempt: 1,
    }
}

fn config(extra: Value) -> Value {
    let mut config = json!({
        "base_url": "http://shop.example",
        "locations": { "hk-001": "68395204" },
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

fn host() -> FakeHost {
    FakeHost::new().config(config(json!({})))
}

fn items_answer(nodes: Value) -> String {
    json!({"data": {"inventoryItems": {"nodes": nodes}},
           "extensions": {"cost": {"requestedQueryCost": 4, "actualQueryCost": 3,
               "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1997.0, "restoreRate": 100.0}}}})
    .to_string()
}

fn adjusted_answer() -> String {
    json!({"data": {"inventoryAdjustQuantities": {
        "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/74452", "reason": "received",
            "referenceDocumentUri": "gid://kaunter/Delivery/e1%3Ashopify",
            "changes": [{"name": "available", "delta": 3}]},
        "userErrors": []}}})
    .to_string()
}

fn user_errors(errors: Value) -> String {
    json!({"data": {"inventoryAdjustQuantities": {"inventoryAdjustmentGroup": null, "userErrors": errors}}}).to_string()
}

fn header<'a>(request: &'a kaunter_sdk::http::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn body(request: &kaunter_sdk::http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn a_stock_adjustment_looks_the_sku_up_caches_it_and_adjusts_available_with_the_idempotency_key() {
    let fake = host()
        .respond(200, &[], &items_answer(json!([{"id": ITEM, "sku": "4891234500017"}])))
        .respond(200, &[], &adjusted_answer())
        .install();
    let receipt = deliver(stock("4891234500017", 3000), context()).unwrap();
    assert_eq!(receipt.status, Some(200));
    assert_eq!(
        receipt.remote_id.as_deref(),
        Some("gid://shopify/InventoryAdjustmentGroup/74452")
    );
    let sent = fake.requests();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        assert_eq!((request.method.as_str(), request.url.as_str()), ("POST", URL));
        assert_eq!(header(request, "content-type"), Some("application/json"));
        assert!(header(request, "authorization").is_none(), "the host adds credentials");
        assert!(
            header(request, "x-shopify-access-token").is_none(),
            "the host adds credentials"
        );
    }
    assert_eq!(
        body(&sent[0]),
        json!({"query": graphql::ITEMS_QUERY, "variables": {"query": "sku:\"4891234500017\"", "first": 2}})
    );
    assert_eq!(
        body(&sent[1]),
        json!({
            "query": "mutation AdjustInventory($input: InventoryAdjustQuantitiesInput!) { inventoryAdjustQuantities(input: $input) @idempotent(key: \"e1:shopify\") { inventoryAdjustmentGroup { id reason referenceDocumentUri changes { name delta } } userErrors { field message code } } }",
            "variables": {"input": {
                "reason": "received",
                "name": "available",
                "referenceDocumentUri": "gid://kaunter/Delivery/e1%3Ashopify",
                "changes": [{"delta": 3, "inventoryItemId": ITEM, "locationId": "gid://shopify/Location/68395204",
                             "changeFromQuantity": null}],
            }},
        })
    );
    assert_eq!(fake.kv("sku:4891234500017").as_deref(), Some(ITEM.as_bytes()));
}

#[test]
fn a_cached_sku_needs_only_the_mutation() {
    let fake = host()
        .kv("sku:4891234500017", ITEM.as_bytes())
        .respond(200, &[], &adjusted_answer())
        .install();
    deliver(stock("4891234500017", -2000), context()).unwrap();
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(body(&sent[0])["variables"]["input"]["changes"][0]["delta"], -2);
}

#[test]
fn a_sale_takes_each_sku_out_once_summed_and_a_refund_restocks_only_restock_lines() {
    let fake = host()
        .kv("sku:A", b"gid://shopify/InventoryItem/1")
        .kv("sku:B", b"gid://shopify/InventoryItem/2")
        .respond(200, &[], &adjusted_answer())
        .respond(200, &[], &adjusted_answer())
        .install();
    deliver(
        sale(vec![line(1, "A", 2000), line(2, "B", 1000), line(3, "A", 1000)]),
        context(),
    )
    .unwrap();
    deliver(
        refund(vec![(line(1, "A", -2000), true), (line(2, "B", -1000), false)]),
        context(),
    )
    .unwrap();
    let sent = fake.requests();
    let sold = body(&sent[0])["variables"]["input"].clone();
    assert_eq!(sold["reason"], "correction");
    let deltas: Vec<(Value, Value)> = sold["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["inventoryItemId"].clone(), c["delta"].clone()))
        .collect();
    assert_eq!(
        deltas,
        vec![
            (json!("gid://shopify/InventoryItem/1"), json!(-3)),
            (json!("gid://shopify/InventoryItem/2"), json!(-1)),
        ]
    );
    let restocked = body(&sent[1])["variables"]["input"].clone();
    assert_eq!(restocked["reason"], "restock");
    assert_eq!(
        restocked["changes"],
        json!([{"delta": 2, "inventoryItemId": "gid://shopify/InventoryItem/1",
                "locationId": "gid://shopify/Location/68395204", "changeFromQuantity": null}])
    );
}

#[test]
fn sales_and_refunds_can_be_switched_off_and_other_events_are_skipped() {
    let fake = FakeHost::new()
        .config(config(json!({"sales": false, "refunds": false})))
        .install();
    for event in [
        sale(vec![line(1, "A", 1000)]),
        refund(vec![(line(1, "A", -1000), true)]),
        event("pos.sale.voided.v1", json!({"order_id": "HK001-1"})),
        refund(vec![(line(1, "A", -1000), false)]),
    ] {
        let receipt = deliver(event, context()).unwrap();
        assert_eq!((receipt.status, receipt.remote_id), (None, None));
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn api_versions_before_2026_01_are_refused_before_anything_is_sent() {
    for version in ["2025-10", "2024-07", "2026", "latest"] {
        let fake = FakeHost::new()
            .config(config(json!({"api_version": version})))
            .kv("sku:A", ITEM.as_bytes())
            .respond(200, &[], &adjusted_answer())
            .install();
        match deliver(stock("A", 1000), context()) {
            Err(DeliveryError::Rejected(m)) => assert_eq!(
                m,
                format!(
                    "invalid shopify config: `api_version` = \"{version}\" is not supported: inventory adjustments need the @idempotent key, which Shopify takes from API version 2026-01 on (without it a retry after a lost answer adjusts stock twice); set `api_version` to \"2026-01\" or later (the default is \"2026-10\"), in the format YYYY-MM"
                )
            ),
            other => panic!("{version}: expected rejected, got {other:?}"),
        }
        assert!(fake.requests().is_empty(), "{version}: nothing is sent");
    }
}

#[test]
fn every_supported_version_sends_the_idempotency_key() {
    for (version, change_from_quantity) in [("2026-01", false), ("2026-04", true), ("unstable", true)] {
        let fake = FakeHost::new()
            .config(config(json!({"api_version": version})))
            .kv("sku:A", ITEM.as_bytes())
            .respond(200, &[], &adjusted_answer())
            .install();
        deliver(stock("A", 1000), context()).unwrap();
        let sent = &fake.requests()[0];
        assert_eq!(
            sent.url,
            format!("http://shop.example/admin/api/{version}/graphql.json")
        );
        let sent = body(sent);
        assert!(
            sent["query"]
                .as_str()
                .unwrap()
                .contains("inventoryAdjustQuantities(input: $input) @idempotent(key: \"e1:shopify\")"),
            "{version}"
        );
        assert_eq!(
            sent["variables"]["input"]["referenceDocumentUri"],
            "gid://kaunter/Delivery/e1%3Ashopify"
        );
        assert_eq!(
            sent["variables"]["input"]["changes"][0]
                .get("changeFromQuantity")
                .is_some(),
            change_from_quantity,
            "{version}"
        );
    }
}

#[test]
fn errors_refusing_the_query_or_its_variables_are_rejected_with_shopifys_message() {
    let refusals = [
        (
            json!({"errors": [{"message": "Field 'inventoryAdjustQuantitiez' doesn't exist on type 'Mutation'",
                "locations": [{"line": 1, "column": 70}], "path": ["mutation AdjustInventory", "inventoryAdjustQuantitiez"],
                "extensions": {"code": "undefinedField", "typeName": "Mutation", "fieldName": "inventoryAdjustQuantitiez"}}]}),
            "Field 'inventoryAdjustQuantitiez' doesn't exist on type 'Mutation' (undefinedField)",
        ),
        (
            json!({"errors": [{"message": "Argument 'first' on Field 'inventoryItems' has an invalid value (\"two\"). Expected type 'Int'.",
                "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": "first"}}]}),
            "Argument 'first' on Field 'inventoryItems' has an invalid value (\"two\"). Expected type 'Int'. (argumentLiteralsIncompatible)",
        ),
        (
            json!({"errors": [{"message": "Directive 'idempotent' is not defined",
                "extensions": {"code": "undefinedDirective", "directiveName": "idempotent"}}]}),
            "Directive 'idempotent' is not defined (undefinedDirective)",
        ),
        (
            json!({"errors": [{"message": "The @idempotent directive is required for this mutation.",
                "extensions": {"code": "BAD_REQUEST"}}]}),
            "The @idempotent directive is required for this mutation. (BAD_REQUEST)",
        ),
        (
            json!({"errors": [{"message": "Variable $input of type InventoryAdjustQuantitiesInput! was provided invalid value for changes.0.inventoryItemId (Invalid global id 'x')",
                "locations": [{"line": 1, "column": 25}],
                "extensions": {"value": {}, "problems": [{"path": ["changes", 0, "inventoryItemId"], "explanation": "Invalid global id 'x'"}]}}]}),
            "Variable $input of type InventoryAdjustQuantitiesInput! was provided invalid value for changes.0.inventoryItemId (Invalid global id 'x')",
        ),
        (
            json!({"errors": [{"message": "Parse error on \"}\" (RCURLY) at [1, 12]", "locations": [{"line": 1, "column": 12}]}]}),
            "Parse error on \"}\" (RCURLY) at [1, 12]",
        ),
    ];
    for (answer, message) in refusals {
        let _fake = host()
            .kv("sku:A", ITEM.as_bytes())
            .respond(200, &[], &answer.to_string())
            .install();
        match deliver(stock("A", 1000), context()) {
            Err(DeliveryError::Rejected(m)) => {
                assert_eq!(m, format!("Shopify refused the request as invalid: {message}"))
            }
            other => panic!("{message}: expected rejected, got {other:?}"),
        }
    }
    // Shopify's operational codes, codes this plugin does not know and errors without a code are
    // not taken as refusals: they are retried.
    for answer in [
        json!({"errors": [{"message": "Internal error. Looks like something went wrong on our end.",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "d2f47302"}}]}),
        json!({"errors": [{"message": "Something new", "extensions": {"code": "SOMETHING_NEW"}}]}),
        json!({"errors": [{"message": "Timeout"}]}),
    ] {
        let _fake = host()
            .kv("sku:A", ITEM.as_bytes())
            .respond(200, &[], &answer.to_string())
            .install();
        assert!(
            matches!(deliver(stock("A", 1000), context()), Err(DeliveryError::Retry(_))),
            "{answer}"
        );
    }
    // The lookup is refused the same way.
    let fake = host()
        .respond(
            200,
            &[],
            &json!({"errors": [{"message": "Field 'skuu' doesn't exist on type 'InventoryItem'",
                "extensions": {"code": "undefinedField"}}]})
            .to_string(),
        )
        .install();
    assert!(matches!(
        deliver(stock("A", 1000), context()),
        Err(DeliveryError::Rejected(m)) if m.contains("doesn't exist on type 'InventoryItem'")
    ));
    assert_eq!(fake.requests().len(), 1, "no mutation after a refused lookup");
}

#[test]
fn throttled_answers_wait_for_the_bucket_to_refill() {
    let throttled = json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": 752, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 666, "restoreRate": 50.0}}}
    });
    let _fake = host()
        .kv("sku:A", ITEM.as_bytes())
        .respond(200, &[], &throttled.to_string())
        .install();
    match deliver(stock("A", 1000), context()) {
        // (752 − 666) / 50 points per second = 1.72 s.
        Err(DeliveryError::Throttled(hint)) => assert_eq!(hint.after_ms, Some(1720)),
        other => panic!("expected throttled, got {other:?}"),
    }
}

#[test]
fn user_errors_reject_with_shopifys_message_unless_shopify_asks_to_try_again() {
    let refused = user_errors(json!([{"field": ["input", "changes", "0", "locationId"],
        "message": "The specified location could not be found.", "code": "INVALID_LOCATION"}]));
    let busy = user_errors(
        json!([{"field": null, "message": "This request is currently in progress, please try again.",
        "code": "IDEMPOTENCY_CONCURRENT_REQUEST"}]),
    );
    let _fake = host()
        .kv("sku:A", ITEM.as_bytes())
        .respond(200, &[], &refused)
        .respond(200, &[], &busy)
        .install();
    match deliver(stock("A", 1000), context()) {
        Err(DeliveryError::Rejected(m)) => assert_eq!(
            m,
            "Shopify refused the adjustment: The specified location could not be found. (INVALID_LOCATION at input.changes.0.locationId)"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(matches!(
        deliver(stock("A", 1000), context()),
        Err(DeliveryError::Retry(_))
    ));
}

#[test]
fn a_stale_cached_item_is_forgotten_and_looked_up_on_the_next_attempt() {
    let invalid = user_errors(json!([{"field": ["input", "changes", "0", "inventoryItemId"],
        "message": "The specified inventory item could not be found.", "code": "INVALID_INVENTORY_ITEM"}]));
    let fake = host()
        .kv("sku:A", b"gid://shopify/InventoryItem/1")
        .respond(200, &[], &invalid)
        .respond(200, &[], &items_answer(json!([{"id": ITEM, "sku": "A"}])))
        .respond(200, &[], &adjusted_answer())
        .install();
    match deliver(stock("A", 1000), context()) {
        Err(DeliveryError::Retry(hint)) => assert!(hint.reason.contains("looked up again"), "{}", hint.reason),
        other => panic!("expected retry, got {other:?}"),
    }
    assert_eq!(fake.kv("sku:A"), None);
    deliver(stock("A", 1000), context()).unwrap();
    assert_eq!(fake.kv("sku:A").as_deref(), Some(ITEM.as_bytes()));
    assert_eq!(
        body(&fake.requests()[2])["variables"]["input"]["changes"][0]["inventoryItemId"],
        ITEM
    );
}

#[test]
fn http_statuses_and_top_level_errors_map_to_what_the_host_should_do() {
    let other_error = json!({"errors": [{"message": "Internal error. Looks like something went wrong on our end.",
                                          "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]});
    let denied = json!({"errors": [{"message": "Access denied for inventoryAdjustQuantities field.",
                                     "extensions": {"code": "ACCESS_DENIED"}}]});
    let _fake = host()
        .kv("sku:A", ITEM.as_bytes())
        .respond(
            401,
            &[],
            r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#,
        )
        .respond(403, &[], r#"{"errors":"Forbidden"}"#)
        .respond(
            429,
            &[("retry-after", "2.0")],
            r#"{"errors":"Exceeded 2 calls per second for api client."}"#,
        )
        .respond(503, &[], "unavailable")
        .respond(200, &[], &other_error.to_string())
        .respond(200, &[], &denied.to_string())
        .fail_request("connection refused")
        .respond(200, &[], r#"{"data":null}"#)
        .install();
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(deliver(stock("A", 1000), context()));
    }
    assert!(matches!(&outcomes[0], Err(DeliveryError::Retry(h)) if h.reason.starts_with("HTTP 401")));
    assert!(matches!(&outcomes[1], Err(DeliveryError::Rejected(m)) if m.starts_with("HTTP 403")));
    assert!(matches!(&outcomes[2], Err(DeliveryError::Throttled(h)) if h.after_ms == Some(2000)));
    assert!(matches!(&outcomes[3], Err(DeliveryError::Retry(_))));
    assert!(matches!(&outcomes[4], Err(DeliveryError::Retry(h)) if h.reason.contains("Internal error")));
    assert!(matches!(&outcomes[5], Err(DeliveryError::Rejected(m)) if m.contains("Access denied")));
    assert!(matches!(&outcomes[6], Err(DeliveryError::Retry(h)) if h.reason.contains("connection refused")));
    assert!(matches!(&outcomes[7], Err(DeliveryError::Retry(h)) if h.reason.contains("without the mutation's result")));
}

#[test]
fn unknown_and_ambiguous_skus_are_rejected_unless_unknown_ones_may_be_skipped() {
    let _fake = host()
        .respond(200, &[], &items_answer(json!([{"id": ITEM, "sku": "A-LONGER"}])))
        .respond(
            200,
            &[],
            &items_answer(json!([{"id": ITEM, "sku": "A"}, {"id": "gid://shopify/InventoryItem/9", "sku": "A"}])),
        )
        .install();
    match deliver(stock("A", 1000), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.starts_with("SKU `A` matches no Shopify inventory item"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    match deliver(stock("A", 1000), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("is on 2 Shopify inventory items"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    let fake = FakeHost::new()
        .config(config(json!({"skip_unknown_skus": true})))
        .kv("sku:B", ITEM.as_bytes())
        .respond(200, &[], &items_answer(json!([])))
        .respond(200, &[], &adjusted_answer())
        .install();
    deliver(sale(vec![line(1, "A", 1000), line(2, "B", 1000)]), context()).unwrap();
    let changes = body(&fake.requests()[1])["variables"]["input"]["changes"].clone();
    assert_eq!(changes.as_array().unwrap().len(), 1);
    assert_eq!(changes[0]["inventoryItemId"], ITEM);
}

#[test]
fn events_shopify_cannot_take_are_rejected_before_anything_is_sent() {
    let fake = FakeHost::new()
        .config(json!({"base_url": "http://shop.example", "locations": {}}))
        .install();
    match deliver(stock("A", 1000), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.starts_with("no Shopify location for store `hk-001`"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    drop(fake);
    let fake = host().install();
    match deliver(stock("A", 1500), context()) {
        Err(DeliveryError::Rejected(m)) => assert!(m.contains("whole units"), "{m}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn the_shop_handle_names_the_real_endpoint() {
    let config: ShopifyConfig = serde_json::from_value(json!({"shop": "acme-hk", "locations": {}})).unwrap();
    assert_eq!(
        config.endpoint().unwrap(),
        "https://acme-hk.myshopify.com/admin/api/2026-10/graphql.json"
    );
    assert_eq!(location_gid("gid://shopify/Location/1"), "gid://shopify/Location/1");
}
