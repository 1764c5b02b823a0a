//! Native tests on the fake host: each mode, stable pseudonyms, and configurations that must fail closed.

use super::*;
use kaunter_sdk::Payload;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

const PHONE: &str = "+852 9123 4567";
const EMAIL: &str = "chan.taiman@example.hk";
const NAME: &str = "Chan Tai Man";

fn event(value: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
}

fn member(id: &str, member_id: &str) -> Event {
    event(json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.member.updated.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "data": {"member_id": member_id, "tier": "gold", "points_balance": 1200,
                 "name": NAME, "phone": PHONE, "email": EMAIL}
    }))
}

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn sale(member_id: &str) -> Event {
    let mut value: Value = serde_json::from_str(include_str!("../../../samples/sale.json")).unwrap();
    value["data"]["member_id"] = json!(member_id);
    value["data"]["cashier_id"] = json!("c-07");
    event(value)
}

fn refund(reason: &str) -> Event {
    event(json!({
        "id": "r1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "data": {
            "refund_id": "R-1", "original_order_id": "HK001-000123", "business_date": "2026-11-25",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": "4891234500017", "quantity_milli": -1000,
                "unit_price": hkd(3990), "gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990)}, "restock": true}],
            "tenders": [{"method": "card", "amount": hkd(-3990), "processor_ref": "VISA-4417"}],
            "totals": {"gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "tax": hkd(0),
                       "total": hkd(-3990), "tendered": hkd(-3990), "change": hkd(0)},
            "reason": reason, "member_id": "M-0001"
        }
    }))
}

fn host(config: Value) -> FakeHost {
    FakeHost::new()
        .config(config)
        .secret("pseudonym-key", b"0123456789abcdef0123456789abcdef")
}

fn member_data(event: &Event) -> &kaunter_sdk::MemberUpdated {
    match &event.payload {
        Payload::MemberUpdated(m) => m,
        other => panic!("not a member event: {other:?}"),
    }
}

fn invalid_config(config: Value, secrets: bool) -> String {
    let fake = if secrets {
        host(config)
    } else {
        FakeHost::new().config(config)
    };
    let _fake = fake.install();
    match handle(member("e1", "M-0001")) {
        Err(PluginError::InvalidConfig(m)) => m,
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn the_default_policy_removes_contact_details_and_pseudonymises_the_member() {
    let _fake = host(json!({"secret": "pseudonym-key"})).install();
    let input = member("e1", "M-0001");
    assert_eq!(input.partition_key, "hk-001:M-0001");
    let out = handle(input).unwrap();
    let m = member_data(&out);
    assert_eq!((&m.name, &m.phone, &m.email), (&None, &None, &None));
    assert_eq!(m.member_id.len(), 16);
    assert!(m.member_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!((m.tier.as_deref(), m.points_balance), (Some("gold"), Some(1200)));
    assert_eq!(
        out.extension("redacted"),
        Some("member.member_id=hash,member.name=remove,member.phone=remove,member.email=remove")
    );
    // The partition key carried the member id; it now carries the pseudonym.
    assert_eq!(out.partition_key, format!("hk-001:{}", m.member_id));
    let wire = String::from_utf8(out.to_json_bytes()).unwrap();
    for personal in [PHONE, EMAIL, NAME, "M-0001"] {
        assert!(!wire.contains(personal), "{personal} is still in {wire}");
    }
    kaunter_sdk::validate(&out).unwrap();
}

#[test]
fn one_member_gets_one_pseudonym_across_events_and_another_member_another() {
    let _fake = host(json!({"secret": "pseudonym-key", "hash_length": 24})).install();
    let from_member = member_data(&handle(member("e1", "M-0001")).unwrap()).member_id.clone();
    let Payload::Sale(s) = handle(sale("M-0001")).unwrap().payload else {
        panic!("not a sale")
    };
    let from_refund = match handle(refund("x")).unwrap().payload {
        Payload::Refund(r) => r.member_id.unwrap(),
        _ => panic!("not a refund"),
    };
    assert_eq!(from_member.len(), 24);
    assert_eq!(s.member_id.as_deref(), Some(from_member.as_str()));
    assert_eq!(from_refund, from_member);
    let other = member_data(&handle(member("e2", "M-0002")).unwrap()).member_id.clone();
    assert_ne!(other, from_member);
    // The pseudonym is keyed: another secret gives another one.
    let _fake = FakeHost::new()
        .config(json!({"secret": "other-key", "hash_length": 24}))
        .secret("other-key", b"a different key")
        .install();
    assert_ne!(
        member_data(&handle(member("e1", "M-0001")).unwrap()).member_id,
        from_member
    );
}

#[test]
fn mask_keeps_the_last_characters() {
    let _fake = host(json!({"fields": {"member.phone": {"mask": 4}, "member.email": {"mask": 30}}})).install();
    let out = handle(member("e1", "M-0001")).unwrap();
    let m = member_data(&out);
    assert_eq!(m.phone.as_deref(), Some("**********4567"));
    assert_eq!(
        m.email.as_deref(),
        Some("*".repeat(EMAIL.len()).as_str()),
        "too short to keep anything"
    );
    assert_eq!(
        (m.name.as_deref(), m.member_id.as_str()),
        (Some(NAME), "M-0001"),
        "not listed: kept"
    );
    assert_eq!(out.extension("redacted"), Some("member.phone=mask,member.email=mask"));
}

#[test]
fn free_text_payment_references_and_extensions() {
    let _fake = host(json!({
        "secret": "pseudonym-key",
        "fields": {"refund.reason": "remove", "refund.tenders.processor_ref": {"mask": 4}, "member_id": "hash"},
        "extensions": {"loyaltytier": "remove", "loyaltybalance": "hash"}
    }))
    .install();
    let mut input = refund("customer Chan said the box was opened");
    input.extensions = vec![
        ("loyaltybalance".into(), "1200".into()),
        ("loyaltytier".into(), "gold".into()),
        ("traceparent".into(), "00-abc".into()),
    ];
    let out = handle(input).unwrap();
    let Payload::Refund(r) = &out.payload else {
        panic!("not a refund")
    };
    assert_eq!(r.reason, None);
    assert_eq!(r.tenders[0].processor_ref.as_deref(), Some("*****4417"));
    assert_eq!(r.member_id.as_ref().map(String::len), Some(16));
    assert_eq!(out.extension("loyaltytier"), None);
    assert_eq!(out.extension("loyaltybalance").map(str::len), Some(16));
    assert_eq!(out.extension("traceparent"), Some("00-abc"));
    assert_eq!(
        out.extension("redacted"),
        Some(
            "refund.member_id=hash,refund.reason=remove,refund.tenders.processor_ref=mask,extension.loyaltybalance=hash,extension.loyaltytier=remove"
        )
    );
}

#[test]
fn custom_payloads_by_json_pointer_with_wildcards() {
    let _fake = host(json!({
        "secret": "pseudonym-key",
        "fields": {},
        "custom": {"crm.*": {"/contacts/*/phone": {"mask": 3}, "/contacts/*/email": "remove", "/customer_id": "hash"}}
    }))
    .install();
    let input = event(json!({
        "id": "c1", "source": "/t/acme/s/hk-001/p/till-1", "type": "crm.contact.v1", "subject": "customer/C-99812",
        "data": {"customer_id": "C-99812", "contacts": [{"phone": 85291234567u64, "email": EMAIL}, {"phone": "+852 6000 1234"}]}
    }));
    let out = handle(input).unwrap();
    let Payload::Custom(bytes) = &out.payload else {
        panic!("not custom")
    };
    let data: Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(data["contacts"][0], json!({"phone": "********567"}));
    assert_eq!(data["contacts"][1], json!({"phone": "***********234"}));
    let pseudonym = data["customer_id"].as_str().unwrap();
    assert_eq!(out.subject.as_deref(), Some(format!("customer/{pseudonym}").as_str()));
    assert_eq!(
        out.extension("redacted"),
        Some("custom/contacts/*/email=remove,custom/contacts/*/phone=mask,custom/customer_id=hash")
    );
    // Other custom types are not touched.
    let other = event(json!({"id": "c2", "source": "/s", "type": "ops.note.v1", "data": {"customer_id": "C-1"}}));
    assert_eq!(handle(other.clone()).unwrap(), other);
}

#[test]
fn an_event_with_nothing_to_redact_passes_untouched() {
    let _fake = host(json!({"secret": "pseudonym-key"})).install();
    let plain: Event = event(serde_json::from_str(include_str!("../../../samples/sale.json")).unwrap());
    assert_eq!(handle(plain.clone()).unwrap(), plain);
}

#[test]
fn an_unknown_field_fails_closed_naming_it_and_the_known_ones() {
    let m = invalid_config(
        json!({"secret": "pseudonym-key", "fields": {"member.nmae": "remove"}}),
        true,
    );
    assert!(
        m.contains("fields.\"member.nmae\": `member.nmae` is not a field this plugin knows"),
        "{m}"
    );
    assert!(m.contains("member.name, member.phone, member.email"), "{m}");
}

#[test]
fn hashing_without_a_secret_fails_closed_saying_how_to_grant_one() {
    let m = invalid_config(json!({}), false);
    assert!(
        m.contains("fields.\"member.member_id\" uses hash (the default policy hashes member ids)"),
        "{m}"
    );
    assert!(m.contains("set secret = \"NAME\""), "{m}");
    let m = invalid_config(json!({"secret": "pseudonym-key"}), false);
    assert!(
        m.contains("secret = \"pseudonym-key\" (for fields.\"member.member_id\") cannot be used"),
        "{m}"
    );
    assert!(m.contains("add \"pseudonym-key\" to secrets"), "{m}");
}

#[test]
fn other_bad_configurations_fail_closed() {
    let cases = [
        (
            json!({"fields": {"member.name": "delete"}}),
            "fields.\"member.name\" = \"delete\" is not an action",
        ),
        (
            json!({"fields": {"member.member_id": "remove"}}),
            "the event cannot do without `member.member_id`",
        ),
        (
            json!({"fields": {"member_id": "remove"}}),
            "would remove member.member_id",
        ),
        (
            json!({"fields": {}, "custom": {"crm.contact.v1": {"contacts.phone": "remove"}}}),
            "is not a JSON Pointer",
        ),
        (
            json!({"fields": {}, "extensions": {"Loyalty_Tier": "remove"}}),
            "not an extension this plugin can redact",
        ),
        (
            json!({"secret": "pseudonym-key", "hash_length": 4}),
            "hash_length = 4 is out of range",
        ),
        (json!({"field": {}}), "unknown field `field`"),
    ];
    for (config, expected) in cases {
        let m = invalid_config(config, true);
        assert!(m.contains(expected), "expected `{expected}` in: {m}");
    }
}

#[test]
fn masking_counts_characters_not_bytes() {
    assert_eq!(apply::mask("陳大文", 1), "**文");
    assert_eq!(apply::mask("abc", 3), "***");
    assert_eq!(apply::mask("", 2), "");
}
