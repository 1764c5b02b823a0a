//! `transform-redact` end to end: the same member events go to two `connector-webhook` sinks, a
//! CRM granted personal data (no redaction) and an analytics sink that is not (the route runs
//! the real redact component first). The analytics fake's raw bodies must never hold the
//! member's name, phone, email or id; the CRM's must. A route whose redact config names a secret
//! the host does not grant dead-letters the event instead of delivering it (fail closed).

use super::{Reply, VendorFake, host_config};
use crate::harness::{ADMIN_KEY, Host, WEBHOOK_SECRET, sale, wait_for, wait_for_state};
use serde_json::{Value, json};

const NAME: &str = "Chan Tai Man";
const PHONE: &str = "+852 9123 4567";
const EMAIL: &str = "chan.taiman@example.hk";
const MEMBER: &str = "M-00012345";

fn hook(name: &str, fake: &VendorFake, path: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "{name}"
kind = "connector"
path = {webhook:?}
secrets = ["hook-signing"]
[plugins.config]
url = "{url}{path}"
secret = "hook-signing"
[plugins.grants]
http = ["POST {url}{path}"]
clock = true
"#,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        url = fake.url,
    )
}

fn config(fake: &VendorFake) -> String {
    host_config(&format!(
        r#"
[secrets]
hook-signing = {{ value = "{WEBHOOK_SECRET}" }}
member-pseudonyms = {{ value = "7b1f0c5e2d9a4e38b6a1c0f2e4d6b8a9" }}

[[plugins]]
name = "redact"
kind = "transform"
path = {redact:?}
secrets = ["member-pseudonyms"]
[plugins.config]
secret = "member-pseudonyms"

# Names a secret it is not granted: must refuse every event.
[[plugins]]
name = "redact-misconfigured"
kind = "transform"
path = {redact:?}
secrets = ["hook-signing"]
[plugins.config]
secret = "member-pseudonyms"
{crm}{bi}{audit}
[[sinks]]
name = "crm"
connector = "crm-hook"

[[sinks]]
name = "bi"
connector = "bi-hook"

[[sinks]]
name = "audit"
connector = "audit-hook"

[[routes]]
name = "to-crm"
types = ["pos.member.*", "pos.sale.*"]
sinks = ["crm"]

[[routes]]
name = "to-bi"
types = ["pos.member.*", "pos.sale.*"]
transforms = ["redact"]
sinks = ["bi"]

[[routes]]
name = "to-audit"
types = ["pos.member.*"]
transforms = ["redact-misconfigured"]
sinks = ["audit"]
"#,
        redact = kaunter_tests::plugins::TRANSFORM_REDACT,
        crm = hook("crm-hook", fake, "/crm"),
        bi = hook("bi-hook", fake, "/bi"),
        audit = hook("audit-hook", fake, "/audit"),
    ))
}

fn member_updated(id: &str) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.member.updated.v1",
        "time": "2026-11-25T10:16:00+08:00",
        "data": {"member_id": MEMBER, "tier": "gold", "points_balance": 1280,
                 "name": NAME, "phone": PHONE, "email": EMAIL}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unprivileged_sink_never_sees_personal_data_and_gets_stable_pseudonyms() {
    let fake = VendorFake::start(|_| Reply::text(200, "ok")).await;
    let host = Host::start(&config(&fake));
    let (status, body) = host.post_json(&member_updated("mem-1")).await;
    assert_eq!(status, 202, "{body}");
    let mut purchase = sale("sale-1", "hk-001", "HK001-000777", &[("4891234500017", 2, 3990)]);
    purchase["data"]["member_id"] = json!(MEMBER);
    let (status, body) = host.post_json(&purchase).await;
    assert_eq!(status, 202, "{body}");
    for (id, sink) in [("mem-1", "crm"), ("mem-1", "bi"), ("sale-1", "crm"), ("sale-1", "bi")] {
        wait_for_state(&host, id, sink, "delivered").await;
    }

    // The CRM is granted personal data: it got all of it.
    let crm = fake.calls_to("POST", "/crm");
    assert_eq!(crm.len(), 2);
    let crm_raw: String = crm.iter().map(|c| c.text()).collect();
    for personal in [NAME, PHONE, EMAIL, MEMBER] {
        assert!(crm_raw.contains(personal), "the CRM should have {personal}");
    }

    // Analytics is not: nothing personal anywhere in what it received, raw.
    let bi = fake.calls_to("POST", "/bi");
    assert_eq!(bi.len(), 2);
    for call in &bi {
        let raw = call.text();
        for personal in [NAME, PHONE, EMAIL, MEMBER] {
            assert!(!raw.contains(personal), "analytics received {personal}: {raw}");
        }
    }
    let member = bi.iter().map(|c| c.json()).find(|e| e["id"] == "mem-1").unwrap();
    let sold = bi.iter().map(|c| c.json()).find(|e| e["id"] == "sale-1").unwrap();
    assert_eq!(
        member["redacted"],
        "member.member_id=hash,member.name=remove,member.phone=remove,member.email=remove"
    );
    assert_eq!(sold["redacted"], "sale.member_id=hash");
    assert_eq!(member["data"]["tier"], "gold");
    assert!(member["data"].get("phone").is_none());
    // One member, one pseudonym, on both events; 16 hex characters by default.
    let pseudonym = member["data"]["member_id"].as_str().unwrap();
    assert_eq!(pseudonym.len(), 16);
    assert!(pseudonym.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(sold["data"]["member_id"], pseudonym);
    assert_eq!(member["partitionkey"], format!("hk-001:{pseudonym}"));

    // The misconfigured route failed closed: dead-lettered with the reason, never delivered.
    let letter = wait_for("the misconfigured redact's dead letter", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"]
            .as_array()?
            .iter()
            .find(|l| l["plugin"] == "redact-misconfigured")
            .cloned()
    })
    .await;
    assert_eq!(letter["event_id"], "mem-1");
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.contains("secret = \"member-pseudonyms\" (for fields.\"member.member_id\") cannot be used"),
        "{letter}"
    );
    assert!(fake.calls_to("POST", "/audit").is_empty());
}
