//! The two GraphQL Admin API calls this plugin makes, and how Shopify's answers map to what the
//! host should do.
//!
//! GraphQL answers most failures with HTTP 200: a top-level `errors` list (`THROTTLED` in
//! `extensions.code` when the cost bucket is empty, with `extensions.cost.throttleStatus` saying
//! how fast it refills) or the mutation's own `userErrors`. The mapping:
//!
//! | Shopify answers | host does |
//! |---|---|
//! | 200, `inventoryAdjustmentGroup` | delivered; `remote_id` = the group's id |
//! | 200, `errors` with `THROTTLED` | throttled, for the time the bucket needs to refill |
//! | 200, `errors` with `ACCESS_DENIED` | rejected (a missing scope will not fix itself) |
//! | 200, `errors` refusing the document or its variables ([`is_invalid_request`]) | rejected with Shopify's message (the same request fails the same way) |
//! | 200, other `errors` (`INTERNAL_SERVER_ERROR`, unknown codes), or no mutation result | retry |
//! | 200, `userErrors` `IDEMPOTENCY_CONCURRENT_REQUEST`, `ADJUST_QUANTITIES_FAILED`, `SERVICE_UNAVAILABLE` | retry |
//! | 200, `userErrors` `INVALID_INVENTORY_ITEM` for a cached item id | cache entries dropped, retry |
//! | 200, other `userErrors` | rejected with Shopify's messages |
//! | 401 | retry (the host renews its token) |
//! | 403, other 4xx | rejected |
//! | 429 | throttled (`Retry-After`, else the cost data) |
//! | 408, 5xx, no answer | retry |

use kaunter_sdk::http::{self, Request, Response};
use kaunter_sdk::{DeliveryError, Receipt, RetryHint, host};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// One SKU's change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The POS SKU (for messages).
    pub sku: String,
    /// Units, signed.
    pub delta: i64,
    /// `gid://shopify/InventoryItem/…`.
    pub inventory_item_id: String,
}

/// One `inventoryAdjustQuantities` call.
#[derive(Debug, Clone)]
pub struct Adjustment {
    /// Shopify reason (`correction`, `restock`, `received`, ...).
    pub reason: &'static str,
    /// `gid://shopify/Location/…`.
    pub location_id: String,
    /// The changes, one per SKU.
    pub changes: Vec<Change>,
    /// The delivery's idempotency key.
    pub idempotency_key: String,
}

/// Inventory item ids by SKU, and which of them came from the kv cache.
#[derive(Debug, Default)]
pub struct Items {
    /// SKU → `gid://shopify/InventoryItem/…`.
    pub ids: BTreeMap<String, String>,
    /// SKUs whose id was read from the cache rather than looked up now.
    pub cached: BTreeSet<String>,
}

/// The kv key caching a SKU's inventory item id.
pub fn cache_key(sku: &str) -> String {
    format!("sku:{sku}")
}

/// The first API version whose `inventoryAdjustQuantities` takes the `@idempotent` directive.
/// Older versions have no way to deduplicate a retried adjustment, so they are refused.
pub const FIRST_IDEMPOTENT_VERSION: &str = "2026-01";

/// Whether `version` is an Admin API version this plugin can use: `YYYY-MM` from
/// [`FIRST_IDEMPOTENT_VERSION`] on, or `unstable`.
pub fn supported_version(version: &str) -> bool {
    if version == "unstable" {
        return true;
    }
    let bytes = version.as_bytes();
    let shaped =
        bytes.len() == 7 && bytes[4] == b'-' && bytes.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit());
    shaped && version >= FIRST_IDEMPOTENT_VERSION
}

/// Whether the API version requires `changeFromQuantity` on each change (2026-04 on).
pub fn requires_change_from_quantity(version: &str) -> bool {
    version == "unstable" || version >= "2026-04"
}

/// The query that finds inventory items by SKU.
pub const ITEMS_QUERY: &str = "query InventoryItemsBySku($query: String!, $first: Int!) { inventoryItems(first: $first, query: $query) { nodes { id sku } } }";

/// Inventory item ids for `skus`: from the cache, else from one `inventoryItems` query (whose
/// answers are cached). SKUs Shopify does not know are absent; a SKU on two items is rejected.
pub fn inventory_items<'a>(endpoint: &str, skus: impl Iterator<Item = &'a str>) -> Result<Items, DeliveryError> {
    let mut items = Items::default();
    let mut missing = Vec::new();
    for sku in skus {
        match host::kv_get(&cache_key(sku))
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
        {
            Some(id) => {
                items.ids.insert(sku.to_owned(), id);
                items.cached.insert(sku.to_owned());
            }
            None => missing.push(sku),
        }
    }
    if missing.is_empty() {
        return Ok(items);
    }
    let search = missing
        .iter()
        .map(|sku| format!("sku:\"{}\"", sku.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" OR ");
    let first = (missing.len() * 2).clamp(2, 250);
    let body = json!({ "query": ITEMS_QUERY, "variables": { "query": search, "first": first } });
    let (_, data) = call(endpoint, &body)?;
    let nodes = data["inventoryItems"]["nodes"].as_array().cloned().unwrap_or_default();
    for sku in missing {
        let ids: BTreeSet<&str> = nodes
            .iter()
            .filter(|n| n["sku"].as_str() == Some(sku))
            .filter_map(|n| n["id"].as_str())
            .collect();
        match ids.len() {
            0 => {}
            1 => {
                let id = ids.into_iter().next().unwrap_or_default().to_owned();
                if let Err(e) = host::kv_set(&cache_key(sku), id.as_bytes()) {
                    host::warn(&format!("cannot cache the inventory item of SKU `{sku}`: {e:?}"));
                }
                items.ids.insert(sku.to_owned(), id);
            }
            _ => {
                return Err(DeliveryError::Rejected(format!(
                    "SKU `{sku}` is on {} Shopify inventory items ({}); make it unique in Shopify",
                    ids.len(),
                    ids.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    Ok(items)
}

/// The `inventoryAdjustQuantities` request body for `version` (a [`supported_version`]): the
/// delivery's key in `@idempotent(key:)`, and in `referenceDocumentUri` for the inventory history.
pub fn adjust_body(version: &str, adjustment: &Adjustment) -> Value {
    // A GraphQL string literal: JSON string escaping is valid GraphQL string syntax.
    let key = serde_json::to_string(&adjustment.idempotency_key).unwrap_or_default();
    let query = format!(
        "mutation AdjustInventory($input: InventoryAdjustQuantitiesInput!) {{ inventoryAdjustQuantities(input: $input) @idempotent(key: {key}) {{ inventoryAdjustmentGroup {{ id reason referenceDocumentUri changes {{ name delta }} }} userErrors {{ field message code }} }} }}"
    );
    let changes: Vec<Value> = adjustment
        .changes
        .iter()
        .map(|c| {
            let mut change = json!({
                "delta": c.delta,
                "inventoryItemId": c.inventory_item_id,
                "locationId": adjustment.location_id,
            });
            if requires_change_from_quantity(version) {
                // The POS knows the change, not Shopify's count: opt out of compare-and-swap.
                change["changeFromQuantity"] = Value::Null;
            }
            change
        })
        .collect();
    json!({
        "query": query,
        "variables": { "input": {
            "reason": adjustment.reason,
            "name": "available",
            "referenceDocumentUri": format!("gid://kaunter/Delivery/{}", http::form_encode(&adjustment.idempotency_key)),
            "changes": changes,
        }},
    })
}

/// Sends the adjustment and maps Shopify's answer.
pub fn adjust(endpoint: &str, version: &str, adjustment: &Adjustment, items: &Items) -> Result<Receipt, DeliveryError> {
    let (status, data) = call(endpoint, &adjust_body(version, adjustment))?;
    let payload = &data["inventoryAdjustQuantities"];
    if !payload.is_object() {
        return Err(retry(None, "Shopify answered without the mutation's result".into()));
    }
    let errors = payload["userErrors"].as_array().cloned().unwrap_or_default();
    if errors.is_empty() {
        return Ok(Receipt {
            status: Some(status),
            remote_id: payload["inventoryAdjustmentGroup"]["id"].as_str().map(str::to_owned),
        });
    }
    let codes: Vec<&str> = errors.iter().filter_map(|e| e["code"].as_str()).collect();
    let messages = user_error_messages(&errors);
    if codes.iter().any(|c| {
        matches!(
            *c,
            "IDEMPOTENCY_CONCURRENT_REQUEST" | "ADJUST_QUANTITIES_FAILED" | "SERVICE_UNAVAILABLE"
        )
    }) {
        return Err(retry(None, format!("Shopify asks to try again: {messages}")));
    }
    let stale: Vec<&str> = adjustment
        .changes
        .iter()
        .filter(|c| items.cached.contains(&c.sku))
        .map(|c| c.sku.as_str())
        .collect();
    if codes.contains(&"INVALID_INVENTORY_ITEM") && !stale.is_empty() {
        for sku in &stale {
            let _ = host::kv_delete(&cache_key(sku));
        }
        return Err(retry(
            None,
            format!(
                "{messages}; the cached inventory items of {} were forgotten and are looked up again",
                stale.join(", ")
            ),
        ));
    }
    Err(DeliveryError::Rejected(format!(
        "Shopify refused the adjustment: {messages}"
    )))
}

/// `message (CODE at a.b)` for each user error, joined.
fn user_error_messages(errors: &[Value]) -> String {
    errors
        .iter()
        .map(|e| {
            let message = e["message"].as_str().unwrap_or("(no message)");
            let code = e["code"].as_str().unwrap_or("no code");
            let field = e["field"]
                .as_array()
                .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."))
                .unwrap_or_default();
            if field.is_empty() {
                format!("{message} ({code})")
            } else {
                format!("{message} ({code} at {field})")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// POSTs one GraphQL document and returns the HTTP status and `data`, or what the host should do.
/// The plugin sends no credentials: the host adds `Authorization` for the granted credential.
pub fn call(endpoint: &str, body: &Value) -> Result<(u16, Value), DeliveryError> {
    let request = Request::post_json(endpoint, body)
        .map_err(|e| DeliveryError::Rejected(e.to_string()))?
        .header("accept", "application/json");
    let response = http::send(&request).map_err(|e| retry(None, format!("no response from Shopify: {e}")))?;
    let status = response.status;
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let snippet = || response.body_snippet(300);
    match status {
        200..=299 => {}
        401 => {
            return Err(retry(
                None,
                format!(
                    "HTTP 401 (the host renews its token before the next attempt): {}",
                    snippet()
                ),
            ));
        }
        429 => {
            let after = retry_after(&response).or_else(|| body.as_ref().and_then(throttle_wait_ms));
            return Err(DeliveryError::Throttled(RetryHint {
                after_ms: after,
                reason: format!("HTTP 429: {}", snippet()),
            }));
        }
        408 | 500..=599 => return Err(retry(retry_after(&response), format!("HTTP {status}: {}", snippet()))),
        _ => return Err(DeliveryError::Rejected(format!("HTTP {status}: {}", snippet()))),
    }
    let Some(body) = body else {
        return Err(retry(
            None,
            format!("HTTP {status} without the JSON GraphQL answer: {}", snippet()),
        ));
    };
    if let Some(errors) = top_level_errors(&body) {
        let text = errors.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
        if errors.iter().any(|(code, _)| code == "THROTTLED") {
            return Err(DeliveryError::Throttled(RetryHint {
                after_ms: throttle_wait_ms(&body),
                reason: format!("Shopify throttled the query: {text}"),
            }));
        }
        if errors.iter().any(|(code, _)| code == "ACCESS_DENIED") {
            return Err(DeliveryError::Rejected(format!(
                "Shopify denied access (does the app have the read_inventory and write_inventory scopes?): {text}"
            )));
        }
        let invalid: Vec<String> = list_errors(&body)
            .iter()
            .filter(|e| is_invalid_request(e))
            .map(|e| {
                let message = e["message"].as_str().unwrap_or("(no message)");
                match e["extensions"]["code"].as_str() {
                    Some(code) => format!("{message} ({code})"),
                    None => message.to_owned(),
                }
            })
            .collect();
        if !invalid.is_empty() {
            return Err(DeliveryError::Rejected(format!(
                "Shopify refused the request as invalid: {}",
                invalid.join("; ")
            )));
        }
        return Err(retry(None, format!("Shopify answered errors: {text}")));
    }
    Ok((status, body["data"].clone()))
}

/// Codes of top-level errors that refuse the request itself, so sending it again fails the same
/// way: a malformed request, and a query costing more than a single query may.
const INVALID_REQUEST_CODES: &[&str] = &["BAD_REQUEST", "MAX_COST_EXCEEDED"];

/// Whether a top-level GraphQL error refuses the document or its variables: a parse error, a
/// query validation error (unknown field, argument or directive, arguments of the wrong type,
/// undefined variables: GraphQL validation reports these with camelCase codes such as
/// `undefinedField` or `argumentLiteralsIncompatible`), a variable whose value does not fit its
/// type (`extensions.problems`), or one of [`INVALID_REQUEST_CODES`]. Shopify's own operational
/// codes are upper case (`THROTTLED`, `INTERNAL_SERVER_ERROR`, `SHOP_INACTIVE`, ...); those and
/// errors without a code are not taken as invalid requests.
pub fn is_invalid_request(error: &Value) -> bool {
    let message = error["message"].as_str().unwrap_or_default();
    match error["extensions"]["code"].as_str() {
        Some(code) if INVALID_REQUEST_CODES.contains(&code) => true,
        Some(code) => code.starts_with(|c: char| c.is_ascii_lowercase()),
        None => {
            error["extensions"]["problems"].is_array()
                || message.starts_with("Parse error")
                || message.starts_with("Variable $")
        }
    }
}

/// The objects in the top-level `errors` list (none when it is missing or a string).
fn list_errors(body: &Value) -> Vec<Value> {
    body["errors"].as_array().cloned().unwrap_or_default()
}

/// Top-level GraphQL errors as (extensions.code, message); `None` when there are none.
fn top_level_errors(body: &Value) -> Option<Vec<(String, String)>> {
    match &body["errors"] {
        Value::Array(list) if !list.is_empty() => Some(
            list.iter()
                .map(|e| {
                    let code = e["extensions"]["code"].as_str().unwrap_or_default().to_owned();
                    let message = e["message"].as_str().unwrap_or("(no message)").to_owned();
                    (code, message)
                })
                .collect(),
        ),
        Value::String(message) => Some(vec![(String::new(), message.clone())]),
        _ => None,
    }
}

/// How long until the bucket holds the query's cost: (requested − available) / restore rate.
pub fn throttle_wait_ms(body: &Value) -> Option<u64> {
    let cost = &body["extensions"]["cost"];
    let requested = cost["requestedQueryCost"].as_f64()?;
    let available = cost["throttleStatus"]["currentlyAvailable"].as_f64()?;
    let rate = cost["throttleStatus"]["restoreRate"].as_f64()?;
    if rate <= 0.0 {
        return None;
    }
    let seconds = (requested - available).max(0.0) / rate;
    Some((seconds * 1000.0).ceil() as u64)
}

/// `Retry-After` in seconds (Shopify sends `2.0`), as milliseconds.
fn retry_after(response: &Response) -> Option<u64> {
    let seconds: f64 = response.header("retry-after")?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).ceil() as u64)
}

fn retry(after_ms: Option<u64>, reason: String) -> DeliveryError {
    DeliveryError::Retry(RetryHint { after_ms, reason })
}
