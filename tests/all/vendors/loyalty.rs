//! `transform-loyalty` in the real host: member sales and refunds run through the component on a
//! route before a `connector-webhook` sink pointing at a recording receiver, which must get the
//! loyalty extensions on the delivered events, the derived tier changes (routed to the same sink
//! by their type), and a non-member sale untouched. A first delivery answered 503 is retried with
//! the same body: the points were counted once, before the outbox.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};

const HOOK: &str = "/hooks/loyalty";

/// A webhook receiver: `204 No Content` for every signed POST to the hook, `404` elsewhere;
/// the first delivery of the member sale is answered `503` (the receiver is briefly down).
fn receiver() -> impl Fn(&Call) -> Reply + Send + Sync + 'static {
    let down_once = AtomicBool::new(true);
    move |call: &Call| {
        if call.method != "POST" || call.path != HOOK || !call.header("webhook-signature").starts_with("v1,") {
            return Reply::json(404, &json!({"error": "no such hook"}));
        }
        if call.json()["id"] == "loy-sale-1" && down_once.swap(false, Ordering::SeqCst) {
            return Reply::text(503, "upstream unavailable");
        }
        Reply::text(204, "")
    }
}

fn config(fake: &VendorFake) -> String {
    host_config(&format!(
        r#"
[secrets]
crm-signing = {{ value = "{WEBHOOK_SECRET}" }}

[[plugins]]
name = "loyalty"
kind = "transform"
path = {loyalty:?}
[plugins.grants]
emits = ["pos.member.updated.v1"]
[plugins.config]
currency = "HKD"
exclude_tenders = ["voucher"]
emit_tier_changes = true
[plugins.config.category_multipliers_percent]
beauty = 200
[[plugins.config.tiers]]
name = "Classic"
threshold = 0
[[plugins.config.tiers]]
name = "Gold"
threshold = 100
multiplier_percent = 150

[[plugins]]
name = "crm-hook"
kind = "connector"
path = {webhook:?}
secrets = ["crm-signing"]
[plugins.config]
url = "{url}{HOOK}"
secret = "crm-signing"
[plugins.grants]
http = ["POST {url}{HOOK}"]
clock = true

[[sinks]]
name = "crm"
connector = "crm-hook"
backoff_base_ms = 50
backoff_max_ms = 200

[[routes]]
name = "members"
types = ["pos.sale.*", "pos.refund.*", "pos.member.*"]
transforms = ["loyalty"]
sinks = ["crm"]
"#,
        loyalty = kaunter_tests::plugins::TRANSFORM_LOYALTY,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        url = fake.url,
    ))
}

/// A member sale: 2 × Panadol HK$39.90 and a beauty-category lipstick HK$12.35.
fn member_sale() -> Value {
    let mut sale = sale(
        "loy-sale-1",
        "hk-001",
        "HK001-LOY-1",
        &[("4891234500017", 2, 3990), ("BTY-LIP-01", 1, 1235)],
    );
    sale["data"]["member_id"] = json!("M-000042");
    sale["data"]["lines"][1]["attributes"] = json!({"category": "beauty"});
    sale
}

/// One Panadol back, restocked.
fn partial_refund() -> Value {
    let line = json!({"line_no": 1, "sku": "4891234500017", "quantity_milli": -1000, "unit_price": hkd(3990),
                      "gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "taxes": []});
    json!({
        "id": "loy-refund-1",
        "source": "/t/acme/s/hk-001/p/till-1",
        "type": "pos.refund.completed.v1",
        "time": "2026-11-26T12:00:00+08:00",
        "data": {
            "refund_id": "HK001-R-0001", "original_order_id": "HK001-LOY-1", "business_date": "2026-11-26",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": line, "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "octopus", "amount": hkd(-3990)}],
            "totals": {"gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "tax": hkd(0),
                       "total": hkd(-3990), "tendered": hkd(-3990), "change": hkd(0)},
            "member_id": "M-000042"
        }
    })
}

/// The bodies the receiver got for one event id, in arrival order.
fn received(fake: &VendorFake, id: &str) -> Vec<Call> {
    fake.calls_to("POST", HOOK)
        .into_iter()
        .filter(|c| c.json()["id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn member_sales_and_refunds_reach_the_sink_with_points_balance_and_tier() {
    // The sale's first delivery meets a 503; the retry must carry the same points.
    let fake = VendorFake::start(receiver()).await;
    let host = Host::start(&config(&fake));

    assert_eq!(host.post_json(&member_sale()).await.0, 202);
    wait_for_state(&host, "loy-sale-1", "crm", "delivered").await;
    // The refund goes after the sale is counted (same order, so the same partition anyway).
    assert_eq!(host.post_json(&partial_refund()).await.0, 202);
    let plain = sale("loy-sale-2", "hk-001", "HK001-LOY-2", &[("4891234500017", 1, 3990)]);
    assert_eq!(host.post_json(&plain).await.0, 202);
    for id in ["loy-refund-1", "loy-sale-2", "loy-sale-1:tier", "loy-refund-1:tier"] {
        wait_for_state(&host, id, "crm", "delivered").await;
    }

    // 79.80 + 12.35 × 200 % = 104.50 points, floored once: 104, and Gold from 100.
    let sale_calls = received(&fake, "loy-sale-1");
    assert_eq!(sale_calls.len(), 2, "one 503, one delivery");
    assert_eq!(
        sale_calls[0].body, sale_calls[1].body,
        "the retry carries the same points"
    );
    assert_eq!(
        sale_calls[1].header("webhook-id"),
        host.key_of("loy-sale-1", "crm").await
    );
    let delivered = sale_calls[1].json();
    assert_eq!(
        (
            &delivered["loyaltypoints"],
            &delivered["loyaltybalance"],
            &delivered["loyaltytier"]
        ),
        (&json!("104"), &json!("104"), &json!("Gold"))
    );
    assert_eq!(delivered["data"], member_sale()["data"], "the sale itself is untouched");

    // One of two Panadol back: the order stands at floor(39.90 + 24.70) = 64, so -40; Classic again.
    let refund = received(&fake, "loy-refund-1");
    assert_eq!(refund.len(), 1);
    let refund = refund[0].json();
    assert_eq!(
        (
            &refund["loyaltypoints"],
            &refund["loyaltybalance"],
            &refund["loyaltytier"]
        ),
        (&json!("-40"), &json!("64"), &json!("Classic"))
    );

    // Each tier change is derived, routed by its type to the same sink, and points at its cause.
    for (id, cause, tier, balance) in [
        ("loy-sale-1:tier", "loy-sale-1", "Gold", 104),
        ("loy-refund-1:tier", "loy-refund-1", "Classic", 64),
    ] {
        let calls = received(&fake, id);
        assert_eq!(calls.len(), 1, "{id}");
        let update = calls[0].json();
        assert_eq!(update["type"], "pos.member.updated.v1");
        assert_eq!(update["source"], "/t/acme/s/hk-001/p/till-1/x/loyalty");
        assert_eq!(update["causationid"], cause);
        assert_eq!(
            update["data"],
            json!({"member_id": "M-000042", "tier": tier, "points_balance": balance})
        );
        assert_eq!(calls[0].header("webhook-id"), host.key_of(id, "crm").await);
    }

    // A sale without a member passes through with no loyalty extensions.
    let plain = received(&fake, "loy-sale-2");
    assert_eq!(plain.len(), 1);
    let plain = plain[0].json();
    for name in ["loyaltypoints", "loyaltybalance", "loyaltytier"] {
        assert!(plain.get(name).is_none(), "{name} on a non-member sale: {plain}");
    }
    assert_eq!(fake.calls_to("POST", HOOK).len(), 6);
}

/// A plain member sale of `amount` minor units (one line, no category), order `order`.
fn plain_member_sale(id: &str, store: &str, member: &str, amount: i64) -> Value {
    let mut sale = sale(id, store, id, &[("4891234500017", 1, amount)]);
    sale["data"]["member_id"] = json!(member);
    sale
}

/// The balance loyalty attached to the delivered event `id`.
fn delivered_balance(fake: &VendorFake, id: &str) -> i64 {
    let call = fake
        .calls_to("POST", HOOK)
        .into_iter()
        .find(|c| c.json()["id"] == id)
        .unwrap_or_else(|| panic!("{id} not delivered"));
    call.json()["loyaltybalance"].as_str().unwrap().parse().unwrap()
}

/// Two versions of the stateful plugin live at once — v2 on the pilot store, v1 on the rest —
/// share one kv: a member buying at both kinds of store keeps one balance, and each sale records
/// the version that counted it.
#[tokio::test(flavor = "multi_thread")]
async fn two_live_versions_of_loyalty_share_the_members_balance() {
    let fake = VendorFake::start(|_| Reply::text(204, "")).await;
    let host = Host::start(&format!("{}\n[store_groups]\npilot = [\"hk-001\"]\n", config(&fake)));
    let builds = tempfile::tempdir().unwrap();
    let v1 = kaunter_tests::version_of(std::path::Path::new(kaunter_tests::plugins::TRANSFORM_LOYALTY));
    let b2 = kaunter_tests::variant(kaunter_tests::plugins::TRANSFORM_LOYALTY, 2, builds.path());
    let v2 = kaunter_tests::version_of(&b2);
    assert_eq!(host.upload("loyalty", &b2).await.0, 201);
    let (status, body) = host
        .admin_post(
            "/v1/admin/plugins/loyalty/deploy",
            &json!({"version": v2, "group": "pilot"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // HK$10.00 a sale, 10 points each (Classic), alternating pilot and other stores.
    let mut expected = 0;
    for n in 0..6 {
        let store = if n % 2 == 0 { "hk-001" } else { "hk-002" };
        let id = format!("two-{n}");
        assert_eq!(
            host.post_json(&plain_member_sale(&id, store, "M-TWO", 1000)).await.0,
            202
        );
        wait_for_state(&host, &id, "crm", "delivered").await;
        expected += if expected >= 100 { 15 } else { 10 };
        assert_eq!(delivered_balance(&fake, &id), expected, "{id} at {store}");
        let handled_by = host.event(&id).await["sinks"][0]["handled_by"].clone();
        let version = if store == "hk-001" { &v2 } else { &v1 };
        assert_eq!(handled_by, json!([format!("loyalty@{version}")]), "{id} at {store}");
    }
}

/// Concurrent orders of one member through the serial, stateful transform: 24 sales posted at
/// once from four tills each add their points exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_orders_of_one_member_each_count_once() {
    let fake = VendorFake::start(|_| Reply::text(204, "")).await;
    let host = Host::start(&config(&fake));
    let mut posts = tokio::task::JoinSet::new();
    for till in 0..4 {
        let events: Vec<Value> = (0..6)
            .map(|n| plain_member_sale(&format!("conc-{till}-{n}"), "hk-003", "M-CONC", 500))
            .collect();
        let request = host
            .http
            .post(format!("{}/v1/events", host.url))
            .bearer_auth(POS_KEY)
            .json(&events);
        posts.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    let ids: Vec<String> = (0..4)
        .flat_map(|till| (0..6).map(move |n| format!("conc-{till}-{n}")))
        .collect();
    for id in &ids {
        wait_for_state(&host, id, "crm", "delivered").await;
    }
    // 5 points a sale until Gold at 100 (after the 20th), then 7 (×1.5, rounded down): the
    // balances seen are exactly the running totals, each once.
    let mut balances: Vec<i64> = ids.iter().map(|id| delivered_balance(&fake, id)).collect();
    balances.sort();
    let mut running = 0;
    let expected: Vec<i64> = (0..24)
        .map(|_| {
            running += if running >= 100 { 7 } else { 5 };
            running
        })
        .collect();
    assert_eq!(balances, expected);
}

/// The whole of `plain_member_sale(order, …, amount)` refunded.
fn full_refund(id: &str, order: &str, member: &str, amount: i64) -> Value {
    let line = json!({"line_no": 1, "sku": "4891234500017", "quantity_milli": -1000, "unit_price": hkd(amount),
                      "gross": hkd(-amount), "discount": hkd(0), "net": hkd(-amount), "taxes": []});
    json!({
        "id": id, "source": "/t/acme/s/hk-005/p/till-1", "type": "pos.refund.completed.v1",
        "time": "2026-11-26T12:00:00+08:00",
        "data": {
            "refund_id": id, "original_order_id": order, "business_date": "2026-11-26",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": line, "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "octopus", "amount": hkd(-amount)}],
            "totals": {"gross": hkd(-amount), "discount": hkd(0), "net": hkd(-amount), "tax": hkd(0),
                       "total": hkd(-amount), "tendered": hkd(-amount), "change": hkd(0)},
            "member_id": member
        }
    })
}

/// Derived events keep their order per key: a member moving between Gold and Classic (sales and
/// full refunds of HK$100 across three orders, posted at once) gets the derived tier changes —
/// one partition key, the member's — delivered in the order loyalty derived them (the log's
/// order), so the CRM ends on the last one.
#[tokio::test(flavor = "multi_thread")]
async fn derived_tier_changes_are_delivered_in_the_order_they_were_derived() {
    let fake = VendorFake::start(|_| Reply::text(204, "")).await;
    let host = Host::start(&config(&fake));
    let member = "M-ORDER";
    let mut events = Vec::new();
    for n in 0..3 {
        let order = format!("ORD-TIER-{n}");
        let mut sale = plain_member_sale(&format!("tier-sale-{n}"), "hk-005", member, 10_000);
        sale["data"]["order_id"] = json!(order);
        events.push(sale);
        if n < 2 {
            events.push(full_refund(&format!("tier-refund-{n}"), &order, member, 10_000));
        }
    }
    let (status, body) = host.post_json(&json!(events)).await;
    assert_eq!(status, 202, "{body}");
    for event in &events {
        wait_for_state(&host, event["id"].as_str().unwrap(), "crm", "delivered").await;
    }
    // The tier changes in the log, in the order they were derived.
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let derived: Vec<String> = db
        .prepare("SELECT id FROM events WHERE type = 'pos.member.updated.v1' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Orders run in parallel, so how the sales and refunds interleave (and so how many tier
    // changes there are, and which) varies; there is at least one.
    assert!(!derived.is_empty(), "{derived:?}");
    for id in &derived {
        wait_for_state(&host, id, "crm", "delivered").await;
    }
    let arrived: Vec<(String, String)> = fake
        .calls_to("POST", HOOK)
        .iter()
        .map(Call::json)
        .filter(|e| e["type"] == "pos.member.updated.v1")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["data"]["tier"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ids: Vec<&String> = arrived.iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        derived.iter().collect::<Vec<_>>(),
        "delivered in the order derived"
    );
    // The CRM ends on the tier of the last change loyalty derived.
    let last = db
        .query_row(
            "SELECT id FROM events WHERE type = 'pos.member.updated.v1' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert_eq!(arrived.last().map(|(id, _)| id), Some(&last));
}
