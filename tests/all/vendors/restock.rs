//! `transform-restock` in the real host: a stock count and sales run through the component on a
//! route before a `connector-webhook` sink; the restock suggestion it derives is logged, routed
//! by its own type to a second sink (a buyers' hook on the same recording receiver) and delivered
//! once, with its derived id and `causationid`, although that sink first answers 429. A later
//! sale under the point suggests nothing more.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

const STOCK_HOOK: &str = "/hooks/stock";
const BUYERS_HOOK: &str = "/hooks/buyers";
const PANADOL: &str = "4891234500017";

/// A webhook receiver: `204 No Content` for signed POSTs to either hook, `404` elsewhere; the
/// buyers' hook answers its first call `429` with `Retry-After: 1`.
fn receiver() -> impl Fn(&Call) -> Reply + Send + Sync + 'static {
    let busy_once = AtomicBool::new(true);
    move |call: &Call| {
        let known = call.path == STOCK_HOOK || call.path == BUYERS_HOOK;
        if call.method != "POST" || !known || !call.header("webhook-signature").starts_with("v1,") {
            return Reply::json(404, &json!({"error": "no such hook"}));
        }
        if call.path == BUYERS_HOOK && busy_once.swap(false, Ordering::SeqCst) {
            return Reply::json(429, &json!({"error": "slow down"})).with_header("retry-after", "1");
        }
        Reply::text(204, "")
    }
}

fn webhook(name: &str, url: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "{name}"
kind = "connector"
path = {webhook:?}
secrets = ["ops-signing"]
[plugins.config]
url = "{url}"
secret = "ops-signing"
[plugins.grants]
http = ["POST {url}"]
clock = true

[[sinks]]
name = "{name}"
connector = "{name}"
backoff_base_ms = 50
backoff_max_ms = 200
"#,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
    )
}

fn config(fake: &VendorFake) -> String {
    host_config(&format!(
        r#"
[secrets]
ops-signing = {{ value = "{WEBHOOK_SECRET}" }}

[[plugins]]
name = "restock"
kind = "transform"
path = {restock:?}
[plugins.grants]
emits = ["pos.restock.suggested.v1"]
[plugins.config]
window_days = 28
reorder_point_days = 3
lead_time_days = 2
target_days = 14
pack_size = 12
{stock}{buyers}
[[routes]]
name = "stock"
types = ["pos.sale.*", "pos.stock.*"]
transforms = ["restock"]
sinks = ["stock-feed"]

[[routes]]
name = "suggestions"
types = ["pos.restock.*"]
sinks = ["buyers"]
"#,
        restock = kaunter_tests::plugins::TRANSFORM_RESTOCK,
        stock = webhook("stock-feed", &format!("{}{STOCK_HOOK}", fake.url)),
        buyers = webhook("buyers", &format!("{}{BUYERS_HOOK}", fake.url)),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_under_the_reorder_point_derives_one_suggestion_routed_to_the_buyers() {
    let fake = VendorFake::start(receiver()).await;
    let host = Host::start(&config(&fake));
    let count = json!({
        "id": "rs-count-1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.stock.adjusted.v1",
        "time": "2026-11-25T08:00:00+08:00",
        "data": {"sku": PANADOL, "delta_milli": -2000, "reason": "count", "on_hand_milli": 8000}
    });
    // Each event is delivered before the next is posted: they have different partition keys, and
    // the count must be on hand before the sales take from it.
    assert_eq!(host.post_json(&count).await.0, 202);
    wait_for_state(&host, "rs-count-1", "stock-feed", "delivered").await;

    // The buyers' hook is busy the first time: the suggestion waits and is delivered once.
    let first = sale("rs-sale-1", "hk-001", "HK001-RS-1", &[(PANADOL, 2, 3990)]);
    assert_eq!(host.post_json(&first).await.0, 202);
    let derived_id = format!("rs-sale-1:restock:{PANADOL}");
    wait_for_state(&host, "rs-sale-1", "stock-feed", "delivered").await;
    wait_for_state(&host, &derived_id, "buyers", "delivered").await;

    let second = sale("rs-sale-2", "hk-001", "HK001-RS-2", &[(PANADOL, 1, 3990)]);
    assert_eq!(host.post_json(&second).await.0, 202);
    wait_for_state(&host, "rs-sale-2", "stock-feed", "delivered").await;

    // The second sale derived nothing: it is routed (delivered to the stock feed, in the same
    // commit that would have stored a derived event), and the host has no suggestion for it.
    let (status, _) = host
        .get(&format!("/v1/events/rs-sale-2:restock:{PANADOL}"), ADMIN_KEY)
        .await;
    assert_eq!(status, 404, "the second sale must not derive a suggestion");
    // 8 counted, 2 sold on one day: 3 days of cover, under 3 + 2. Up to 2 a day × 16 days = 32,
    // less 6 on hand = 26, in packs of 12: 36.
    let buyers = fake.calls_to("POST", BUYERS_HOOK);
    assert_eq!(
        buyers.len(),
        2,
        "one 429, one delivery, and nothing for the second sale"
    );
    assert_eq!(buyers[0].body, buyers[1].body);
    assert_eq!(buyers[1].header("webhook-id"), host.key_of(&derived_id, "buyers").await);
    let suggestion = buyers[1].json();
    assert_eq!(suggestion["id"], derived_id);
    assert_eq!(suggestion["type"], "pos.restock.suggested.v1");
    // In the plugin's own namespace under the till's source: the store is still hk-001.
    assert_eq!(suggestion["source"], "/t/acme/s/hk-001/p/till-1/x/restock");
    assert_eq!(suggestion["causationid"], "rs-sale-1");
    assert_eq!(suggestion["subject"], PANADOL);
    assert_eq!(
        suggestion["data"],
        json!({"sku": PANADOL, "on_hand_milli": 6000, "suggested_milli": 36000,
               "reason": "3.0 days of cover (on hand 6, selling 2 a day over 1 day) is under the reorder point of 5 days (3 safety + 2 lead time); order 36 (3 x 12) for 16 days of cover"})
    );
    // The host keeps the lineage: the derived event is in the log with its own id.
    let logged = host.event(&derived_id).await;
    assert_eq!(logged["event"]["causationid"], "rs-sale-1", "{logged}");
    assert_eq!(logged["parent_seq"], host.event("rs-sale-1").await["seq"]);

    // The stock feed got the originals, unchanged, and not the suggestion.
    let feed: Vec<String> = fake
        .calls_to("POST", STOCK_HOOK)
        .iter()
        .map(|c| c.json()["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(feed, ["rs-count-1", "rs-sale-1", "rs-sale-2"]);
    let delivered = fake.calls_to("POST", STOCK_HOOK)[1].json();
    assert_eq!(delivered["data"], first["data"]);
}
