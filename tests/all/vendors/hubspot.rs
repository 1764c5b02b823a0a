//! `connector-hubspot` in the real host against a fake of HubSpot's CRM v3 API, answering as HubSpot
//! documents it: `POST /crm/v3/objects/contacts/batch/upsert` with `inputs[{idProperty, id,
//! properties}]` creating or updating the contact whose unique property has that value (`200`
//! `{"status": "COMPLETE", "results": [...]}`); `POST /crm/v3/objects/notes` with associations
//! (`201`); a bearer token required (`401 INVALID_AUTHENTICATION` without); properties the portal does
//! not define refused with `400 VALIDATION_ERROR` (`PROPERTY_DOESNT_EXIST`); an email that already
//! belongs to another contact refused with `409 CONFLICT` ("Contact already exists. Existing ID:
//! …") and nothing written; and `429` with the `X-HubSpot-RateLimit-*` headers and `policyName`.
//! Tokens come from a real OAuth 2.0 server through a host `[credentials.hubspot]` (client
//! credentials).

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

/// The contact properties the fake portal defines (the custom ones with the `kaunter_` prefix).
const PROPERTIES: &[&str] = &[
    "kaunter_member_id",
    "kaunter_last_purchase_date",
    "kaunter_last_purchase_store",
    "kaunter_last_purchase_order_id",
    "kaunter_last_purchase_amount",
    "kaunter_last_purchase_currency",
    "kaunter_last_refund_date",
    "kaunter_last_refund_store",
    "kaunter_last_refund_amount",
    "kaunter_last_refund_currency",
    "kaunter_lifetime_spend",
    "kaunter_loyalty_points_earned",
    "kaunter_loyalty_balance",
    "kaunter_loyalty_tier",
    "firstname",
    "phone",
    "email",
];

/// The portal as the fake keeps it.
#[derive(Default)]
pub(super) struct Portal {
    /// Contacts: (id, properties).
    pub(super) contacts: Vec<(String, Map<String, Value>)>,
    /// Notes: (id, body as sent).
    notes: Vec<(String, Value)>,
}

fn error(status: u16, category: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"status": "error", "message": message, "correlationId": "4d8b5a52-7c1e-4e0f-9b1d-2f6a8c3e5d70",
                "category": category}),
    )
}

pub(super) fn hubspot(portal: Arc<Mutex<Portal>>) -> impl Fn(&Call) -> Reply + Send + Sync + 'static {
    move |call: &Call| {
        if !call.header("authorization").starts_with("Bearer ") {
            return error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            );
        }
        let mut portal = portal.lock().unwrap();
        match (call.method.as_str(), call.path.as_str()) {
            ("POST", "/crm/v3/objects/contacts/batch/upsert") => upsert(&mut portal, &call.json()),
            ("POST", "/crm/v3/objects/notes") => note(&mut portal, call.json()),
            _ => error(404, "OBJECT_NOT_FOUND", "Resource not found"),
        }
    }
}

fn upsert(portal: &mut Portal, body: &Value) -> Reply {
    let mut results = Vec::new();
    for input in body["inputs"].as_array().into_iter().flatten() {
        let id_property = input["idProperty"].as_str().unwrap_or("");
        if id_property != "kaunter_member_id" {
            return error(
                400,
                "VALIDATION_ERROR",
                &format!("Property {id_property} is not a unique identifier property"),
            );
        }
        let properties = input["properties"].as_object().cloned().unwrap_or_default();
        let unknown: Vec<String> = properties
            .keys()
            .filter(|k| !PROPERTIES.contains(&k.as_str()))
            .map(|k| {
                json!({"isValid": false, "message": format!("Property \"{k}\" does not exist"),
                       "error": "PROPERTY_DOESNT_EXIST", "name": k})
                .to_string()
            })
            .collect();
        if !unknown.is_empty() {
            return error(
                400,
                "VALIDATION_ERROR",
                &format!("Property values were not valid: [{}]", unknown.join(",")),
            );
        }
        let member = input["id"].clone();
        // Emails are unique across contacts: setting one another contact has writes nothing.
        if let Some(email) = properties.get("email")
            && let Some((owner, _)) = portal
                .contacts
                .iter()
                .find(|(_, p)| p.get("email") == Some(email) && p["kaunter_member_id"] != member)
        {
            return error(
                409,
                "CONFLICT",
                &format!("Contact already exists. Existing ID: {owner}"),
            );
        }
        let found = portal
            .contacts
            .iter()
            .position(|(_, p)| p["kaunter_member_id"] == member);
        let (id, new) = match found {
            Some(i) => (portal.contacts[i].0.clone(), false),
            None => {
                let id = format!("{}", 5101 + portal.contacts.len());
                let mut fresh = Map::new();
                fresh.insert("kaunter_member_id".into(), member);
                portal.contacts.push((id.clone(), fresh));
                (id, true)
            }
        };
        let contact = portal.contacts.iter_mut().find(|(i, _)| *i == id).unwrap();
        contact.1.extend(properties);
        results.push(json!({"id": id, "properties": contact.1, "new": new, "archived": false,
                            "createdAt": "2026-11-25T02:15:00.000Z", "updatedAt": "2026-11-25T02:15:00.000Z"}));
    }
    Reply::json(
        200,
        &json!({"status": "COMPLETE", "results": results, "startedAt": "2026-11-25T02:15:00.000Z",
                "completedAt": "2026-11-25T02:15:00.100Z"}),
    )
}

fn note(portal: &mut Portal, body: Value) -> Reply {
    let contact = body["associations"][0]["to"]["id"].as_str().unwrap_or("").to_owned();
    if !portal.contacts.iter().any(|(id, _)| *id == contact) {
        return error(
            400,
            "VALIDATION_ERROR",
            &format!("One or more associations are invalid: contact {contact} does not exist"),
        );
    }
    let id = format!("{}", 9001 + portal.notes.len());
    portal.notes.push((id.clone(), body.clone()));
    Reply::json(
        201,
        &json!({"id": id, "properties": body["properties"], "archived": false,
                "createdAt": "2026-11-25T02:15:00.000Z", "updatedAt": "2026-11-25T02:15:00.000Z"}),
    )
}

/// The host config: `[credentials.hubspot]` from the OAuth server, the connector granted the fake
/// and the credential, one sink (the manifest's `serial = true` keeps the running total exact).
fn config(fake: &VendorFake, oauth: &OAuthServer, plugin_config: &str) -> String {
    let objects = format!("{}/crm/v3/objects/", fake.url);
    host_config(&format!(
        r#"
[credentials.hubspot]
grant = "client_credentials"
token_url = "{token_url}"
client_id = {{ value = "kaunter-hubspot-app" }}
client_secret = {{ value = "hubspot-client-secret" }}
scope = "crm.objects.contacts.write"
for = ["POST {objects}"]

[[plugins]]
name = "hubspot"
kind = "connector"
path = {path:?}
[plugins.config]
base_url = "{base}"
{plugin_config}
[plugins.grants]
http = ["POST {objects}"]
credentials = ["hubspot"]
clock = true

[[sinks]]
name = "crm"
connector = "hubspot"
concurrency = 4
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400

[[routes]]
name = "members"
types = ["pos.sale.*", "pos.refund.*", "pos.member.*"]
sinks = ["crm"]
"#,
        token_url = oauth.token_url,
        path = kaunter_tests::plugins::CONNECTOR_HUBSPOT,
        base = fake.url,
    ))
}

/// The cashier and the card reference on every sale: personal and payment data the CRM must
/// never receive.
const CASHIER: &str = "cashier-wong-7731";
const CARD_REF: &str = "visa-ref-4242-000871";

/// A member's sale as `transform-loyalty` leaves it (points in the extensions), rung up by
/// [`CASHIER`] and paid by card [`CARD_REF`].
fn member_sale(id: &str, order: &str, amount: i64, balance: i64) -> Value {
    let mut event = sale(id, "hk-001", order, &[("4891234500017", 1, amount)]);
    event["data"]["member_id"] = json!("M-1001");
    event["data"]["cashier_id"] = json!(CASHIER);
    event["data"]["tenders"][0]["method"] = json!("card");
    event["data"]["tenders"][0]["processor_ref"] = json!(CARD_REF);
    event["loyaltypoints"] = json!((amount / 100).to_string());
    event["loyaltybalance"] = json!(balance.to_string());
    event["loyaltytier"] = json!("gold");
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn member_purchases_upsert_the_contact_with_a_running_total_through_a_rate_limit() {
    let oauth = OAuthServer::start().await;
    let portal = Arc::new(Mutex::new(Portal::default()));
    let fake = VendorFake::start(hubspot(portal.clone())).await;
    // The ten-second window is spent: HubSpot names the window (shortened here to 1 s) and sends
    // no Retry-After.
    fake.script([Reply::json(
        429,
        &json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": "b1c2", "policyName": "TEN_SECONDLY_ROLLING"}),
    )
    .with_header("X-HubSpot-RateLimit-Interval-Milliseconds", "1000")
    .with_header("X-HubSpot-RateLimit-Max", "100")
    .with_header("X-HubSpot-RateLimit-Remaining", "0")]);
    let host = Host::start(&config(&fake, &oauth, "notes = true"));

    host.post_json(&member_sale("hs-1", "HK001-000201", 7980, 1279)).await;
    let entry = wait_for_state(&host, "hs-1", "crm", "delivered").await;
    assert_eq!(entry["attempts"], 2, "throttled once, then upserted: {entry}");
    let upserts = fake.calls_to("POST", "/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(upserts.len(), 2);
    assert_eq!(
        upserts[1].json(),
        json!({"inputs": [{
            "idProperty": "kaunter_member_id", "id": "M-1001", "objectWriteTraceId": host.key_of("hs-1", "crm").await,
            "properties": {
                "kaunter_last_purchase_date": "2026-11-25", "kaunter_last_purchase_store": "hk-001",
                "kaunter_last_purchase_order_id": "HK001-000201", "kaunter_last_purchase_amount": "79.80",
                "kaunter_last_purchase_currency": "HKD", "kaunter_lifetime_spend": "79.80",
                "kaunter_loyalty_points_earned": "79", "kaunter_loyalty_balance": "1279",
                "kaunter_loyalty_tier": "gold"
            }
        }]})
    );
    assert_eq!(
        upserts[0].json(),
        upserts[1].json(),
        "the retry sends the same total: the sale is counted once"
    );

    host.post_json(&member_sale("hs-2", "HK001-000202", 12800, 1407)).await;
    wait_for_state(&host, "hs-2", "crm", "delivered").await;
    // The POS sends order 202 again under a new event id: upserted, but neither added nor noted.
    host.post_json(&member_sale("hs-2-again", "HK001-000202", 12800, 1407))
        .await;
    wait_for_state(&host, "hs-2-again", "crm", "delivered").await;
    host.post_json(&json!({
        "id": "hs-3", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.member.updated.v1",
        "time": "2026-11-25T11:00:00+08:00",
        "data": {"member_id": "M-1001", "tier": "platinum", "points_balance": 1407}
    }))
    .await;
    wait_for_state(&host, "hs-3", "crm", "delivered").await;

    let upserts = fake.calls_to("POST", "/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(
        upserts[3].json()["inputs"][0]["properties"]["kaunter_lifetime_spend"],
        "207.80",
        "the same order under a new event id adds nothing"
    );
    {
        let portal = portal.lock().unwrap();
        let contact = &portal.contacts[0].1;
        assert_eq!(contact["kaunter_lifetime_spend"], "207.80");
        assert_eq!(contact["kaunter_last_purchase_order_id"], "HK001-000202");
        assert_eq!(contact["kaunter_loyalty_tier"], "platinum");
        assert_eq!(contact["kaunter_loyalty_balance"], "1407");
    }

    // An operator replays the history (`kaunter replay --since`): every event is upserted again
    // and none of them adds to the total or makes a second note.
    let since = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let replayed = host.cli(&["replay", "--since", &since, "--route", "members"]);
    assert!(replayed.contains("4/4 events"), "{replayed}");
    wait_for("the replayed upserts", 30, || async {
        (fake.calls_to("POST", "/crm/v3/objects/contacts/batch/upsert").len() == 9).then_some(())
    })
    .await;
    for call in &fake.calls_to("POST", "/crm/v3/objects/contacts/batch/upsert")[5..] {
        let spend = &call.json()["inputs"][0]["properties"]["kaunter_lifetime_spend"];
        assert!(
            spend.is_null() || *spend == "207.80",
            "a replay sends the current total: {spend}"
        );
    }

    let portal = portal.lock().unwrap();
    assert_eq!(
        portal.contacts.len(),
        1,
        "one contact, found by the member id each time"
    );
    let (id, contact) = &portal.contacts[0];
    assert_eq!(id, "5101");
    assert_eq!(contact["kaunter_lifetime_spend"], "207.80");
    // No personal data beyond the member id was sent: the cashier and the card reference on
    // every sale appear in no request, and the contact holds only what the connector maps.
    for call in fake.calls() {
        let text = call.text();
        assert!(
            !text.contains(CASHIER) && !text.contains(CARD_REF),
            "sent to HubSpot: {text}"
        );
    }
    assert!(
        contact.get("email").is_none() && contact.get("phone").is_none(),
        "{contact:?}"
    );
    let notes: Vec<&Value> = portal.notes.iter().map(|(_, n)| n).collect();
    assert_eq!(
        notes.len(),
        2,
        "one note per order, none for the member update, the resent order or the replay"
    );
    assert_eq!(
        *notes[0],
        json!({"properties": {"hs_timestamp": "2026-11-25T10:15:00+08:00",
                              "hs_note_body": "Purchase at store hk-001: order HK001-000201, HKD 79.80 (1 line)"},
               "associations": [{"to": {"id": "5101"},
                                 "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]})
    );
    // Every call carried a token the host got from the OAuth server; the plugin never had it.
    for call in fake.calls() {
        let token = call.header("authorization").strip_prefix("Bearer ").unwrap();
        let claims = jwt_claims(token);
        assert_eq!(claims["iss"], oauth.issuer);
        assert_eq!(claims["scope"], "crm.objects.contacts.write");
        assert_eq!(call.header("content-type"), "application/json");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_property_the_portal_lacks_dead_letters_with_hubspots_message() {
    let oauth = OAuthServer::start().await;
    let portal = Arc::new(Mutex::new(Portal::default()));
    let fake = VendorFake::start(hubspot(portal.clone())).await;
    // The operator named a prefix whose properties were never created in HubSpot.
    let host = Host::start(&config(&fake, &oauth, "property_prefix = \"pos_\""));
    host.post_json(&member_sale("hs-bad", "HK001-000203", 7980, 1279)).await;
    let entry = wait_for_state(&host, "hs-bad", "crm", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains("HubSpot answered HTTP 400 VALIDATION_ERROR: Property values were not valid"),
        "{error}"
    );
    assert!(
        error.contains("Property \\\"pos_last_purchase_date\\\" does not exist"),
        "{error}"
    );
    assert_eq!(entry["attempts"], 1, "a validation error is not retried");
    assert!(portal.lock().unwrap().contacts.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_purchases_by_one_member_each_add_to_the_total() {
    let oauth = OAuthServer::start().await;
    let portal = Arc::new(Mutex::new(Portal::default()));
    let fake = VendorFake::start(hubspot(portal.clone())).await;
    let host = Host::start(&config(&fake, &oauth, ""));
    // Six orders (six partition keys, so six delivery lanes) by the same member at once.
    let ids: Vec<String> = (1..=6).map(|i| format!("hc-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        host.post_json(&member_sale(id, &format!("HK001-0003{i:02}"), 1000, 1000))
            .await;
    }
    for id in &ids {
        wait_for_state(&host, id, "crm", "delivered").await;
    }
    let mut totals: Vec<String> = fake
        .calls_to("POST", "/crm/v3/objects/contacts/batch/upsert")
        .iter()
        .map(|c| {
            c.json()["inputs"][0]["properties"]["kaunter_lifetime_spend"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    totals.sort();
    assert_eq!(
        totals,
        ["10.00", "20.00", "30.00", "40.00", "50.00", "60.00"],
        "each purchase read the total the previous one wrote"
    );
    assert_eq!(portal.lock().unwrap().contacts[0].1["kaunter_lifetime_spend"], "60.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_that_belongs_to_another_contact_dead_letters_with_hubspots_conflict() {
    let oauth = OAuthServer::start().await;
    let portal = Arc::new(Mutex::new(Portal::default()));
    let fake = VendorFake::start(hubspot(portal.clone())).await;
    let host = Host::start(&config(&fake, &oauth, ""));
    let update = |id: &str, member: &str| {
        json!({"id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.member.updated.v1",
               "time": "2026-11-25T11:00:00+08:00",
               "data": {"member_id": member, "tier": "gold", "email": "tm.chan@example.com"}})
    };
    host.post_json(&update("hm-1", "M-1001")).await;
    wait_for_state(&host, "hm-1", "crm", "delivered").await;
    // A second member gives the same email: HubSpot refuses it and writes nothing.
    host.post_json(&update("hm-2", "M-1002")).await;
    let entry = wait_for_state(&host, "hm-2", "crm", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains("HubSpot answered HTTP 409 CONFLICT: Contact already exists. Existing ID: 5101"),
        "{error}"
    );
    assert!(error.contains("belongs to another HubSpot contact"), "{error}");
    assert_eq!(
        entry["attempts"], 1,
        "a conflict is not retried, nor taken as delivered"
    );
    assert_eq!(fake.calls_to("POST", "/crm/v3/objects/contacts/batch/upsert").len(), 2);
    let portal = portal.lock().unwrap();
    assert_eq!(portal.contacts.len(), 1, "no contact for M-1002 was written");
    assert_eq!(portal.contacts[0].1["kaunter_member_id"], "M-1001");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_kv_quota_still_updates_the_contact_without_the_lifetime_spend() {
    let oauth = OAuthServer::start().await;
    let portal = Arc::new(Mutex::new(Portal::default()));
    let fake = VendorFake::start(hubspot(portal.clone())).await;
    // 16 bytes: no member record fits.
    let host = Host::start(&config(
        &fake,
        &oauth,
        "notes = true\n[plugins.limits]\nkv_quota_bytes = 16",
    ));
    host.post_json(&member_sale("hq-1", "HK001-000401", 7980, 1279)).await;
    let entry = wait_for_state(&host, "hq-1", "crm", "delivered").await;
    assert_eq!(entry["attempts"], 1, "{entry}");
    let upserts = fake.calls_to("POST", "/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(upserts.len(), 1);
    let properties = &upserts[0].json()["inputs"][0]["properties"];
    assert_eq!(properties["kaunter_last_purchase_order_id"], "HK001-000401");
    assert!(properties.get("kaunter_lifetime_spend").is_none(), "{properties}");
    assert!(
        fake.calls_to("POST", "/crm/v3/objects/notes").is_empty(),
        "no note that could not be kept to once"
    );
    assert_eq!(
        portal.lock().unwrap().contacts[0].1["kaunter_last_purchase_amount"],
        "79.80"
    );
    let log = host.log();
    assert!(
        log.contains("kv quota exceeded") && log.contains("raise limits.kv_quota_bytes"),
        "the operator is told: {log}"
    );
}
