//! The bundled demo chain, end to end against the vendor fakes: the demo's own configuration
//! (`kaunter demo --print-config`) with its simulator URLs pointed at this module's fakes, then a
//! scripted morning at one store. Till events run sku-map → loyalty → restock → anomaly and fan out
//! to head office, Xero, Shopify inventory and HubSpot; the derived restock suggestion and refund
//! spike alert go through redact to Slack and DingTalk. Every system must receive the right thing,
//! exactly once.

use super::{Call, Reply, VendorFake};
use crate::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The demo configuration with every simulated vendor replaced by a fake, the harness API keys
/// added and the plugins taken from this build. Two changes make redaction testable: the alerts
/// route also carries the members' tier changes (which hold a member id) to a third chat sink, a
/// generic webhook that receives the whole event; and Silver starts at 150 points, so the second
/// member sale is a tier change. With `redact` false the alerts route runs no transform at all,
/// which must put the member id in front of chat.
fn chain_config(urls: &[(&str, String)], chat_url: &str, redact: bool) -> String {
    let mut text = include_str!("../../../host/src/config/demo.toml").to_owned();
    let alerts = "types = [\"pos.restock.suggested.v1\", \"pos.anomaly.detected.v1\"]\ntransforms = [\"redact\"]\nsinks = [\"alerts-slack\", \"alerts-dingtalk\"]";
    assert!(text.contains(alerts), "the demo config's alerts route changed");
    let transforms = if redact { "[\"redact\"]" } else { "[]" };
    text = text.replace(
        alerts,
        &format!(
            "types = [\"pos.restock.suggested.v1\", \"pos.anomaly.detected.v1\", \"pos.member.updated.v1\"]\ntransforms = {transforms}\nsinks = [\"alerts-slack\", \"alerts-dingtalk\", \"alerts-chat\"]"
        ),
    );
    assert!(
        text.contains("threshold = 2000"),
        "the demo config's Silver tier changed"
    );
    text = text.replace("threshold = 2000", "threshold = 150");
    text.push_str(&format!(
        r#"
[[plugins]]
name = "chat-webhook"
kind = "connector"
path = "connector_webhook.wasm"
secrets = ["demo-webhook"]
[plugins.config]
url = "{chat_url}/hooks/chat"
secret = "demo-webhook"
[plugins.grants]
http = ["POST {chat_url}/hooks/chat"]
clock = true

[[sinks]]
name = "alerts-chat"
connector = "chat-webhook"
"#
    ));
    for (simulated, fake) in urls {
        assert!(text.contains(simulated), "the demo config no longer has {simulated}");
        text = text.replace(simulated, fake);
    }
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/wasm32-wasip2/release");
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kaunter-compile-cache");
    text = text.replacen(
        "plugin_dir = \"plugins/target/wasm32-wasip2/release\"",
        &format!(
            "plugin_dir = {:?}\ncache_dir = {:?}",
            plugins.display().to_string(),
            cache.display().to_string()
        ),
        1,
    );
    format!(
        "{text}\n[[api_keys]]\nname = \"test-pos\"\nkey = {{ value = \"{POS_KEY}\" }}\nstores = [\"*\"]\n\n[[api_keys]]\nname = \"test-ops\"\nkey = {{ value = \"{ADMIN_KEY}\" }}\nadmin = true\n"
    )
}

/// Two Panadol at HK$39.90 by member `M-1001`, rung up by cashier `c-07`.
fn member_sale(n: u32) -> Value {
    let mut sale = sale(
        &format!("ch-sale-{n}"),
        "hk-001",
        &format!("HK001-0007{n:02}"),
        &[("4891234500017", 2, 3990)],
    );
    sale["data"]["member_id"] = json!("M-1001");
    sale["data"]["cashier_id"] = json!("c-07");
    sale["time"] = json!(format!("2026-11-25T10:{:02}:00+08:00", n));
    sale
}

/// One of the two Panadol of sale `n` back, restocked, by the same cashier: six of these in a few
/// minutes are a refund spike.
fn refund(n: u32) -> Value {
    json!({
        "id": format!("ch-refund-{n}"), "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
        "time": format!("2026-11-25T10:{:02}:00+08:00", 20 + n),
        "data": {
            "refund_id": format!("R-HK001-0007{n:02}"), "original_order_id": format!("HK001-0007{n:02}"),
            "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20",
                                "quantity_milli": -1000, "unit_price": hkd(3990), "gross": hkd(-3990),
                                "discount": hkd(0), "net": hkd(-3990), "taxes": []},
                       "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "cash", "amount": hkd(-3990)}],
            "totals": {"gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "tax": hkd(0),
                       "total": hkd(-3990), "tendered": hkd(-3990), "change": hkd(0)},
            "member_id": "M-1001", "cashier_id": "c-07", "reason": "changed mind"
        }
    })
}

/// The morning's stock count: 30 Panadol on the shelf.
fn stock_count() -> Value {
    json!({"id": "ch-count-1", "source": "/t/acme/s/hk-001/p/backoffice", "type": "pos.stock.adjusted.v1",
           "time": "2026-11-25T09:00:00+08:00",
           "data": {"sku": "4891234500017", "delta_milli": 0, "reason": "count", "on_hand_milli": 30000}})
}

/// Derived events in the log (id, type), read from the SQLite file.
fn derived(host: &Host) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let mut query = db
        .prepare("SELECT id, type FROM events WHERE parent_seq IS NOT NULL ORDER BY seq")
        .unwrap();
    query
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits until every sink the event was routed to has delivered it; returns those sinks.
async fn delivered_everywhere(host: &Host, id: &str) -> BTreeSet<String> {
    wait_for(&format!("{id} delivered to every sink"), 60, || async {
        let (_, event) = host.get(&format!("/v1/events/{id}"), ADMIN_KEY).await;
        let sinks = event["sinks"].as_array()?;
        let all = !sinks.is_empty() && sinks.iter().all(|s| s["state"] == "delivered");
        all.then(|| sinks.iter().map(|s| s["sink"].as_str().unwrap().to_owned()).collect())
    })
    .await
}

/// The keys (`webhook-id`, `Idempotency-Key`, ...) a fake saw, asserting none came twice.
fn once(calls: &[Call], key: impl Fn(&Call) -> String) -> BTreeSet<String> {
    let keys: Vec<String> = calls.iter().map(key).collect();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "something arrived twice: {keys:?}");
    unique
}

/// Every vendor the demo talks to, faked, and the host running the demo chain against them.
struct Chain {
    _oauth: OAuthServer,
    head_office: VendorFake,
    books: Arc<Mutex<super::xero::Books>>,
    xero: VendorFake,
    shopify: VendorFake,
    portal: Arc<Mutex<super::hubspot::Portal>>,
    _hubspot: VendorFake,
    slack: VendorFake,
    dingtalk: VendorFake,
    chat: VendorFake,
    host: Host,
}

impl Chain {
    async fn start(redact: bool) -> Chain {
        let oauth = OAuthServer::start().await;
        let head_office = VendorFake::start(|_| Reply::text(204, "")).await;
        let books = Arc::new(Mutex::new(super::xero::Books::default()));
        let xero = VendorFake::start(super::xero::xero(books.clone())).await;
        let shopify = VendorFake::start(super::shopify_inventory::shopify).await;
        let portal = Arc::new(Mutex::new(super::hubspot::Portal::default()));
        let hubspot = VendorFake::start(super::hubspot::hubspot(portal.clone())).await;
        let slack = VendorFake::start(super::slack::slack).await;
        let dingtalk = VendorFake::start(super::dingtalk::robot).await;
        let chat = VendorFake::start(|_| Reply::text(204, "")).await;
        let config = chain_config(
            &[
                ("http://127.0.0.1:9091/oauth/token", oauth.token_url.clone()),
                ("http://127.0.0.1:9091/xero", xero.url.clone()),
                ("http://127.0.0.1:9091/shopify", shopify.url.clone()),
                ("http://127.0.0.1:9091/hubspot", hubspot.url.clone()),
                ("http://127.0.0.1:9091/slack", slack.url.clone()),
                ("http://127.0.0.1:9091/dingtalk", dingtalk.url.clone()),
                ("http://127.0.0.1:9090", head_office.url.clone()),
                (
                    "SECdemo4c1f9a7e2b8d3c6f0a5e9b2d7c4f1a8e3b6d9c2f5a0e7b4d1c8f3a6e9b",
                    super::dingtalk::SECRET.to_owned(),
                ),
                ("demo-robot-access-token", super::dingtalk::TOKEN.to_owned()),
            ],
            &chat.url,
            redact,
        );
        let host = Host::start(&config);
        Chain {
            _oauth: oauth,
            head_office,
            books,
            xero,
            shopify,
            portal,
            _hubspot: hubspot,
            slack,
            dingtalk,
            chat,
            host,
        }
    }
}

/// The member pseudonym the demo's redact policy must produce, computed here from the policy's
/// definition (HMAC-SHA256 under the `member-pseudonyms` secret, hex, first 16 characters).
fn pseudonym(member: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"demo-member-pseudonym-key-0123456789abcdef").unwrap();
    mac.update(member.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    hex[..16].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_chain_delivers_every_event_to_every_system_once() {
    let chain = Chain::start(true).await;
    let Chain {
        head_office,
        books,
        xero,
        shopify,
        portal,
        slack,
        dingtalk,
        chat,
        host,
        ..
    } = &chain;

    let mut till_events = vec![stock_count()];
    till_events.extend((1..=6).map(member_sale));
    till_events.extend((1..=6).map(refund));
    for event in &till_events {
        let (status, body) = host.post_json(event).await;
        assert_eq!(status, 202, "{body}");
    }
    let ids: Vec<String> = till_events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        let sinks = delivered_everywhere(host, id).await;
        assert_eq!(
            sinks.iter().map(String::as_str).collect::<Vec<_>>(),
            ["accounting", "crm", "head-office", "inventory"],
            "{id}"
        );
    }
    // Derived: one restock suggestion when cover fell under the reorder point, one refund-spike
    // alert for the cashier, each to the three chat sinks; the member's move to Silver on the
    // second sale, to the CRM and the chat sinks.
    let derived = wait_for("the derived events", 30, || async {
        let d = derived(host);
        let kinds: BTreeSet<&str> = d.iter().map(|(_, t)| t.as_str()).collect();
        (kinds.contains("pos.restock.suggested.v1")
            && kinds.contains("pos.anomaly.detected.v1")
            && kinds.contains("pos.member.updated.v1"))
        .then_some(d)
    })
    .await;
    let tier_changes: Vec<&String> = derived
        .iter()
        .filter(|(_, t)| t == "pos.member.updated.v1")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(tier_changes, ["ch-sale-2:tier"], "{derived:?}");
    let restock: Vec<&String> = derived
        .iter()
        .filter(|(_, t)| t == "pos.restock.suggested.v1")
        .map(|(id, _)| id)
        .collect();
    let anomalies: Vec<&String> = derived
        .iter()
        .filter(|(_, t)| t == "pos.anomaly.detected.v1")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(restock.len(), 1, "{derived:?}");
    assert!(restock[0].ends_with(":restock:PANADOL-500-20"), "{derived:?}");
    assert_eq!(anomalies.len(), 1, "{derived:?}");
    assert!(anomalies[0].starts_with("ch-refund-"), "{derived:?}");
    for (id, _) in &derived {
        let sinks = delivered_everywhere(host, id).await;
        let expected: &[&str] = if id.ends_with(":tier") {
            &["alerts-chat", "alerts-dingtalk", "alerts-slack", "crm"]
        } else {
            &["alerts-chat", "alerts-dingtalk", "alerts-slack"]
        };
        assert_eq!(sinks.iter().map(String::as_str).collect::<Vec<_>>(), expected, "{id}");
    }

    // Head office: every till event once, signed, with its idempotency key.
    let received = once(&head_office.calls(), |c| c.header("webhook-id").to_owned());
    let mut expected = BTreeSet::new();
    for id in &ids {
        expected.insert(host.key_of(id, "head-office").await);
    }
    assert_eq!(received, expected);
    // The loyalty points rode along on the member's sales.
    let first_sale = head_office
        .calls()
        .into_iter()
        .find(|c| c.json()["id"] == "ch-sale-1")
        .unwrap()
        .json();
    assert_eq!(first_sale["loyaltypoints"], "79", "{first_sale}");
    assert_eq!(
        first_sale["data"]["lines"][0]["sku"], "PANADOL-500-20",
        "sku-map ran first"
    );

    // Xero: six invoices and six credit notes, numbered per store, each created once; every
    // request with the host's token, and one Idempotency-Key per request.
    let xero_calls = xero.calls_to("PUT", "/api.xro/2.0/");
    once(&xero_calls, |c| c.header("idempotency-key").to_owned());
    assert!(
        xero_calls
            .iter()
            .all(|c| c.header("authorization").starts_with("Bearer "))
    );
    let numbers: BTreeSet<String> = books
        .lock()
        .unwrap()
        .documents
        .values()
        .map(|d| {
            d["InvoiceNumber"]
                .as_str()
                .or(d["CreditNoteNumber"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut expected: BTreeSet<String> = (1..=6).map(|n| format!("hk-001-HK001-0007{n:02}")).collect();
    expected.extend((1..=6).map(|n| format!("hk-001-R-HK001-0007{n:02}")));
    assert_eq!(numbers, expected);

    // Shopify: the count, the sales and the restocked refunds, each adjusted once (by its
    // @idempotent key), on the store's location, under the merchant's SKU.
    let adjustments: Vec<Call> = shopify
        .calls()
        .into_iter()
        .filter(|c| {
            c.json()["query"]
                .as_str()
                .unwrap_or("")
                .contains("inventoryAdjustQuantities(")
        })
        .collect();
    let keys = once(&adjustments, |c| {
        let query = c.json()["query"].as_str().unwrap().to_owned();
        query
            .split("@idempotent(key: ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .to_owned()
    });
    let mut sales_and_refunds = BTreeSet::new();
    for id in ids.iter().filter(|id| !id.starts_with("ch-count")) {
        sales_and_refunds.insert(format!("\"{}\"", host.key_of(id, "inventory").await));
    }
    assert!(sales_and_refunds.is_subset(&keys), "{keys:?}");
    let net: i64 = adjustments
        .iter()
        .flat_map(|c| c.json()["variables"]["input"]["changes"].as_array().unwrap().clone())
        .map(|change| change["delta"].as_i64().unwrap())
        .sum();
    assert_eq!(net, -6, "12 sold, 6 put back");

    // HubSpot: one contact for the member, upserted per document, with what loyalty computed.
    let contacts = portal.lock().unwrap().contacts.clone();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let properties = &contacts[0].1;
    assert_eq!(properties["kaunter_member_id"], "M-1001");
    assert!(properties.contains_key("kaunter_loyalty_balance"), "{properties:?}");

    // Chat: the suggestion and the alert, once each in each room.
    let posts = slack.calls_to("POST", "/api/chat.postMessage");
    assert_eq!(posts.len(), 2, "{posts:?}");
    let robot = dingtalk.calls_to("POST", "/robot/send");
    assert_eq!(robot.len(), 2);
    // Redact keeps member ids out of chat: the tier change reached the chat webhook whole, with
    // the member id replaced by its pseudonym, and the id appears in no chat sink's traffic.
    let chat_calls = chat.calls_to("POST", "/hooks/chat");
    assert_eq!(chat_calls.len(), 3, "restock, anomaly and the tier change");
    let tier = chat_calls
        .iter()
        .map(Call::json)
        .find(|e| e["type"] == "pos.member.updated.v1")
        .expect("the tier change reached chat");
    assert_eq!(tier["data"]["member_id"], pseudonym("M-1001"), "{tier}");
    assert_eq!(tier["redacted"], "member.member_id=hash", "{tier}");
    for call in posts.iter().chain(&robot).chain(&chat_calls) {
        assert!(
            !call.text().contains("M-1001"),
            "redact keeps member ids out of chat: {}",
            call.text()
        );
    }
    let dead = host.get("/v1/admin/dlq", ADMIN_KEY).await.1;
    assert_eq!(dead["dead_letters"].as_array().map(Vec::len), Some(0), "{dead}");

    // Loyalty's balance, by value: one more sale after everything else has been delivered is the
    // last document the CRM sees, so HubSpot must hold the balance loyalty computed for it, and
    // that balance is the sum of every point the member's events earned or gave back.
    let (status, body) = host.post_json(&member_sale(7)).await;
    assert_eq!(status, 202, "{body}");
    delivered_everywhere(host, "ch-sale-7").await;
    let member_events: Vec<Value> = head_office.calls().iter().map(Call::json).collect();
    let earned: i64 = member_events
        .iter()
        .filter_map(|e| e["loyaltypoints"].as_str())
        .map(|points| points.parse::<i64>().unwrap())
        .sum();
    let last = member_events.iter().find(|e| e["id"] == "ch-sale-7").unwrap();
    assert_eq!(last["loyaltybalance"], earned.to_string(), "{last}");
    let contacts = portal.lock().unwrap().contacts.clone();
    assert_eq!(
        contacts[0].1["kaunter_loyalty_balance"],
        earned.to_string(),
        "{contacts:?}"
    );
    // Orders run in parallel, so which sale came second and which refunds found their sale still
    // remembered (the demo keeps a member's last 3 orders) varies; what each can earn does not.
    // A sale of HK$79.80 earns 79 at Classic and 99 at Silver (×1.25); refunding one of its two
    // Panadol takes back half of what it earned, rounded up, or nothing once it is forgotten.
    let points = |prefix: &str| -> Vec<i64> {
        let mut points: Vec<i64> = member_events
            .iter()
            .filter(|e| e["id"].as_str().unwrap().starts_with(prefix))
            .map(|e| e["loyaltypoints"].as_str().unwrap().parse().unwrap())
            .collect();
        points.sort();
        points
    };
    assert_eq!(points("ch-sale-"), [79, 79, 99, 99, 99, 99, 99]);
    assert!(
        points("ch-refund-").iter().all(|p| [0, -40, -50].contains(p)),
        "{:?}",
        points("ch-refund-")
    );
}

/// The same morning with redact taken off the alerts route: the member id must then reach chat,
/// which is what shows the check above can fail.
#[tokio::test(flavor = "multi_thread")]
async fn without_redact_the_member_id_reaches_chat() {
    let chain = Chain::start(false).await;
    for n in 1..=2 {
        let (status, body) = chain.host.post_json(&member_sale(n)).await;
        assert_eq!(status, 202, "{body}");
    }
    delivered_everywhere(&chain.host, "ch-sale-2:tier").await;
    let calls = chain.chat.calls_to("POST", "/hooks/chat");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].json()["data"]["member_id"], "M-1001");
    assert!(calls[0].json().get("redacted").is_none());
}
