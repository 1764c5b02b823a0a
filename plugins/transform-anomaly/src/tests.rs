//! Native tests on the fake host: scripted sequences of events, in event time.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn event(value: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    let event = Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap();
    kaunter_sdk::validate(&event).unwrap();
    event
}

/// A refund of `minor` (positive) by `cashier` at hk-001, at `time`.
fn refund(id: &str, time: &str, cashier: &str, minor: i64) -> Event {
    event(json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1", "time": time,
        "data": {
            "refund_id": format!("R-{id}"), "original_order_id": "HK001-000100", "business_date": "2026-11-25",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": "4891234500017", "quantity_milli": -1000,
                "unit_price": hkd(minor), "gross": hkd(-minor), "discount": hkd(0), "net": hkd(-minor)},
                "restock": true}],
            "tenders": [{"method": "cash", "amount": hkd(-minor)}],
            "totals": {"gross": hkd(-minor), "discount": hkd(0), "net": hkd(-minor), "tax": hkd(0),
                       "total": hkd(-minor), "tendered": hkd(-minor), "change": hkd(0)},
            "reason": "changed mind", "cashier_id": cashier
        }
    }))
}

fn void(id: &str, time: &str, cashier: &str) -> Event {
    event(json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.voided.v1", "time": time,
        "data": {"order_id": format!("O-{id}"), "reason": "wrong item", "cashier_id": cashier}
    }))
}

/// A one-line sale at `store` and `time`: gross, discount, tenders as (method, amount), change.
fn sale(id: &str, store: &str, time: &str, gross: i64, discount: i64, tenders: &[(&str, i64)], change: i64) -> Event {
    let net = gross - discount;
    let tendered: i64 = tenders.iter().map(|t| t.1).sum();
    let tenders: Vec<Value> = tenders
        .iter()
        .map(|(m, a)| json!({"method": m, "amount": hkd(*a)}))
        .collect();
    event(json!({
        "id": id, "source": format!("/t/acme/s/{store}/p/till-1"), "type": "pos.sale.completed.v1", "time": time,
        "data": {
            "order_id": format!("O-{id}"), "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
            "tax_mode": "inclusive",
            "lines": [{"line_no": 1, "sku": "4891234500017", "quantity_milli": 1000, "unit_price": hkd(gross),
                       "gross": hkd(gross), "discount": hkd(discount), "net": hkd(net)}],
            "tenders": tenders,
            "totals": {"gross": hkd(gross), "discount": hkd(discount), "net": hkd(net), "tax": hkd(0),
                       "total": hkd(net), "tendered": hkd(tendered), "change": hkd(change)},
            "cashier_id": "c-07"
        }
    }))
}

/// Only the spike detector, per cashier: 3 refunds/voids in 30 minutes, cool-down 60.
fn spike_only() -> Value {
    json!({
        "cooldown_minutes": 60,
        "refund_void_spike": {"window_minutes": 30, "per_cashier": {"count": 3}, "per_store": {}},
        "large_discount": {"enabled": false},
        "outside_trading_hours": {"enabled": false},
        "tender_mismatch": {"enabled": false},
    })
}

/// The alerts (derived events) of one call; asserts the input passed first and unchanged.
fn alerts(input: Event) -> Vec<Event> {
    let mut out = handle(input.clone()).unwrap();
    assert_eq!(out.remove(0), input, "the input must pass on unchanged, first");
    out
}

fn anomaly(event: &Event) -> &AnomalyDetected {
    match &event.payload {
        Payload::AnomalyDetected(a) => a,
        other => panic!("not an anomaly: {other:?}"),
    }
}

fn evidence(event: &Event) -> Value {
    serde_json::from_str(event.extension("evidence").unwrap()).unwrap()
}

#[test]
fn a_spike_alerts_once_when_it_crosses_the_threshold_then_cools_down() {
    let fake = FakeHost::new().config(spike_only()).install();
    assert!(alerts(refund("r1", "2026-11-25T10:00:00+08:00", "c-07", 12_000)).is_empty());
    assert!(alerts(refund("r2", "2026-11-25T10:05:00+08:00", "c-07", 8_000)).is_empty());
    // A different cashier does not add to c-07's window.
    assert!(alerts(refund("x1", "2026-11-25T10:06:00+08:00", "c-99", 5_000)).is_empty());

    let fired = alerts(void("v3", "2026-11-25T10:10:00+08:00", "c-07"));
    assert_eq!(fired.len(), 1);
    let alert = &fired[0];
    assert_eq!(alert.id, "v3:anomaly:refund_void_spike:cashier");
    assert_eq!(alert.ty, "pos.anomaly.detected.v1");
    assert_eq!(alert.source, "/t/acme/s/hk-001/p/till-1");
    assert_eq!(alert.time, "2026-11-25T10:10:00+08:00");
    assert_eq!(alert.extension("causationid"), Some("v3"));
    kaunter_sdk::validate(alert).unwrap();
    let a = anomaly(alert);
    assert_eq!((a.kind.as_str(), a.severity), ("refund_void_spike", Severity::Warning));
    assert_eq!(a.related_event_id.as_deref(), Some("v3"));
    assert_eq!(
        a.description,
        "Cashier c-07 at store hk-001: 3 refunds/voids (2 refunds, 1 void) totalling HKD 200.00 within 30 minutes, \
         at or over the threshold of 3 refunds/voids"
    );
    let e = evidence(alert);
    assert_eq!(
        (&e["count"], &e["refunds"], &e["voids"], &e["amount_minor"]),
        (&json!(3), &json!(2), &json!(1), &json!(20_000))
    );
    assert_eq!(e["events"], json!(["v3", "r2", "r1"]));
    assert_eq!(e["cashier"], "c-07");

    // Still over the threshold, but inside the cool-down: quiet.
    assert!(alerts(refund("r4", "2026-11-25T10:12:00+08:00", "c-07", 1_000)).is_empty());
    // After the cool-down, alone in a fresh window: under the threshold.
    assert!(alerts(refund("r5", "2026-11-25T11:30:00+08:00", "c-07", 1_000)).is_empty());
    assert!(alerts(refund("r6", "2026-11-25T11:35:00+08:00", "c-07", 1_000)).is_empty());
    let again = alerts(void("v7", "2026-11-25T11:40:00+08:00", "c-07"));
    assert_eq!(again.len(), 1, "a new spike after the cool-down alerts again");
    assert_eq!(evidence(&again[0])["events"], json!(["v7", "r6", "r5"]));

    // The window in kv holds only what is inside 30 minutes of the newest event.
    let window: Vec<spike::Entry> = serde_json::from_slice(&fake.kv("w:c:hk-001:c-07").unwrap()).unwrap();
    let ids: Vec<&str> = window.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["r5", "r6", "v7"]);
}

#[test]
fn handling_the_same_event_again_gives_the_same_alert_and_counts_it_once() {
    let _fake = FakeHost::new().config(spike_only()).install();
    alerts(refund("r1", "2026-11-25T10:00:00+08:00", "c-07", 100));
    alerts(refund("r2", "2026-11-25T10:01:00+08:00", "c-07", 100));
    let first = alerts(refund("r3", "2026-11-25T10:02:00+08:00", "c-07", 100));
    let rerun = alerts(refund("r3", "2026-11-25T10:02:00+08:00", "c-07", 100));
    assert_eq!(first, rerun);
    assert_eq!(evidence(&rerun[0])["count"], 3);
    // Repeating an early event neither counts twice nor fires.
    assert!(alerts(refund("r2", "2026-11-25T10:01:00+08:00", "c-07", 100)).is_empty());
}

#[test]
fn refunds_spread_wider_than_the_window_do_not_alert() {
    let _fake = FakeHost::new().config(spike_only()).install();
    for (i, time) in ["10:00", "10:31", "11:02", "11:33"].iter().enumerate() {
        let at = format!("2026-11-25T{time}:00+08:00");
        assert!(alerts(refund(&format!("r{i}"), &at, "c-07", 100)).is_empty(), "{time}");
    }
}

#[test]
fn a_store_wide_amount_spike_names_the_store() {
    let _fake = FakeHost::new()
        .config(json!({
            "refund_void_spike": {"severity": "critical", "per_cashier": {}, "per_store": {"amount_minor": 100_000}},
            "tender_mismatch": {"enabled": false},
        }))
        .install();
    assert!(alerts(refund("r1", "2026-11-25T10:00:00+08:00", "c-01", 60_000)).is_empty());
    let fired = alerts(refund("r2", "2026-11-25T10:20:00+08:00", "c-02", 45_000));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].id, "r2:anomaly:refund_void_spike:store");
    let a = anomaly(&fired[0]);
    assert_eq!(a.severity, Severity::Critical);
    assert!(
        a.description.starts_with("Store hk-001: 2 refunds/voids"),
        "{}",
        a.description
    );
    assert!(a.description.contains("totalling HKD 1050.00"), "{}", a.description);
    assert_eq!(evidence(&fired[0])["threshold_amount_minor"], 100_000);
}

#[test]
fn a_large_line_discount_alerts_with_the_numbers() {
    let _fake = FakeHost::new()
        .config(json!({"large_discount": {"line_percent": 40, "sale_percent": null}}))
        .install();
    let ok = sale(
        "s1",
        "hk-001",
        "2026-11-25T10:15:00+08:00",
        10_000,
        4_000,
        &[("octopus", 6_000)],
        0,
    );
    assert!(alerts(ok).is_empty(), "40% is not over 40%");
    let big = sale(
        "s2",
        "hk-001",
        "2026-11-25T10:16:00+08:00",
        10_000,
        6_000,
        &[("card", 4_000)],
        0,
    );
    let fired = alerts(big);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].id, "s2:anomaly:large_discount:cashier");
    assert_eq!(
        anomaly(&fired[0]).description,
        "Cashier c-07 at store hk-001 on order O-s2: line 1 (4891234500017) discounted HKD 60.00 of HKD 100.00 gross, over 40%"
    );
    let e = evidence(&fired[0]);
    assert_eq!(
        (&e["discount_minor"], &e["gross_minor"]),
        (&json!(6_000), &json!(10_000))
    );
    assert_eq!(e["lines"][0]["line_no"], 1);
}

#[test]
fn a_sale_discount_over_an_amount_alerts() {
    let _fake = FakeHost::new()
        .config(json!({"large_discount": {"line_percent": null, "sale_percent": null, "amount_minor": 50_000}}))
        .install();
    let fired = alerts(sale(
        "s1",
        "hk-001",
        "2026-11-25T10:15:00+08:00",
        200_000,
        60_000,
        &[("card", 140_000)],
        0,
    ));
    assert!(
        anomaly(&fired[0])
            .description
            .contains("the sale discounted HKD 600.00, over HKD 500.00")
    );
}

#[test]
fn a_sale_after_closing_in_hong_kong_local_time_alerts() {
    let _fake = FakeHost::new()
        .config(json!({
            "outside_trading_hours": {
                "severity": "info",
                "default": {"open": "09:00", "close": "22:00"},
                "stores": {"hk-airport": {"open": "00:00", "close": "24:00"}, "hk-lkf": {"open": "18:00", "close": "03:00"}}
            }
        }))
        .install();
    let paid = [("octopus", 7_980)];
    // 10:15 in Hong Kong: open.
    assert!(alerts(sale("s1", "hk-001", "2026-11-25T10:15:00+08:00", 7_980, 0, &paid, 0)).is_empty());
    // 15:30 UTC is 23:30 in Hong Kong: the till's clock wrote UTC, the store's zone decides.
    let fired = alerts(sale("s2", "hk-001", "2026-11-25T15:30:00Z", 7_980, 0, &paid, 0));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].id, "s2:anomaly:outside_trading_hours:store");
    assert_eq!(
        anomaly(&fired[0]).description,
        "order O-s2 at store hk-001 was sold at 23:30 local time (Asia/Hong_Kong UTC+08:00), outside trading hours 09:00-22:00"
    );
    let e = evidence(&fired[0]);
    assert_eq!(
        (&e["local_time"], &e["offset_from"]),
        (&json!("23:30"), &json!("built_in"))
    );
    // A 24-hour store and a store open past midnight.
    assert!(
        alerts(sale(
            "s3",
            "hk-airport",
            "2026-11-25T03:00:00+08:00",
            7_980,
            0,
            &paid,
            0
        ))
        .is_empty()
    );
    assert!(alerts(sale("s4", "hk-lkf", "2026-11-26T02:30:00+08:00", 7_980, 0, &paid, 0)).is_empty());
    assert_eq!(
        alerts(sale("s5", "hk-lkf", "2026-11-26T04:00:00+08:00", 7_980, 0, &paid, 0)).len(),
        1
    );
}

#[test]
fn tenders_that_do_not_add_up_alert() {
    let _fake = FakeHost::new().install();
    // HK$79.80 owed, HK$70.00 tendered by card.
    let short = sale(
        "s1",
        "hk-001",
        "2026-11-25T10:15:00+08:00",
        7_980,
        0,
        &[("card", 7_000)],
        0,
    );
    let fired = alerts(short);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].id, "s1:anomaly:tender_mismatch:cashier");
    let a = anomaly(&fired[0]);
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(
        a.description,
        "Cashier c-07 at store hk-001 on order O-s1: tenders total HKD 70.00 but total HKD 79.80 + change HKD 0.00 is \
         HKD 79.80 (off by HKD -9.80)"
    );
    assert_eq!(evidence(&fired[0])["tendered_minor"], 7_000);
}

#[test]
fn a_balanced_cash_refund_passes_and_change_beyond_the_cash_alerts() {
    let _fake = FakeHost::new().install();
    assert!(alerts(refund("r1", "2026-11-25T10:00:00+08:00", "c-07", 3_990)).is_empty());
    // Sums agree (HK$10 cash + HK$80 card = HK$79.80 + HK$10.20 change), but the change is more
    // than the cash handed over.
    let fired = alerts(sale(
        "s1",
        "hk-001",
        "2026-11-25T10:15:00+08:00",
        7_980,
        0,
        &[("cash", 1_000), ("card", 8_000)],
        1_020,
    ));
    assert_eq!(fired.len(), 1);
    assert!(
        anomaly(&fired[0])
            .description
            .ends_with("change of HKD 10.20 is more than the HKD 10.00 cash tendered"),
        "{}",
        anomaly(&fired[0]).description
    );
}

#[test]
fn change_on_a_card_only_sale_alerts_but_cash_change_does_not() {
    let _fake = FakeHost::new().config(json!({"cooldown_minutes": 0})).install();
    let cash = sale(
        "s1",
        "hk-001",
        "2026-11-25T10:15:00+08:00",
        7_980,
        0,
        &[("cash", 10_000)],
        2_020,
    );
    assert!(alerts(cash).is_empty());
    let card = sale(
        "s2",
        "hk-001",
        "2026-11-25T10:16:00+08:00",
        7_980,
        0,
        &[("card", 10_000)],
        2_020,
    );
    let fired = alerts(card);
    assert!(
        anomaly(&fired[0])
            .description
            .ends_with("change of HKD 20.20 given but no cash was tendered (card)"),
        "{}",
        anomaly(&fired[0]).description
    );
}

#[test]
fn every_kind_can_be_switched_off() {
    let _fake = FakeHost::new()
        .config(json!({
            "refund_void_spike": {"enabled": false, "per_cashier": {"count": 1}},
            "large_discount": {"enabled": false},
            "outside_trading_hours": {"enabled": false},
            "tender_mismatch": {"enabled": false},
        }))
        .install();
    let everything_wrong = sale(
        "s1",
        "hk-001",
        "2026-11-25T03:00:00+08:00",
        10_000,
        9_000,
        &[("card", 5)],
        7,
    );
    assert!(alerts(everything_wrong).is_empty());
    assert!(alerts(refund("r1", "2026-11-25T10:00:00+08:00", "c-07", 100)).is_empty());
}

#[test]
fn other_events_pass_untouched_and_keep_no_state() {
    let fake = FakeHost::new().install();
    let member = event(json!({
        "id": "m1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.member.updated.v1",
        "time": "2026-11-25T03:00:00+08:00", "data": {"member_id": "M-1"}
    }));
    assert!(alerts(member).is_empty());
    assert!(fake.kv("w:s:hk-001").is_none());
}

#[test]
fn an_unknown_config_key_is_an_invalid_config_naming_it() {
    let _fake = FakeHost::new()
        .config(json!({"refund_void_spike": {"window_minute": 5}}))
        .install();
    match handle(refund("r1", "2026-11-25T10:00:00+08:00", "c-07", 100)) {
        Err(PluginError::InvalidConfig(m)) => assert!(m.contains("unknown field `window_minute`"), "{m}"),
        other => panic!("expected invalid config, got {other:?}"),
    }
    let _fake = FakeHost::new()
        .config(json!({"outside_trading_hours": {"default": {"open": "9am", "close": "22:00"}}}))
        .install();
    match handle(refund("r1", "2026-11-25T10:00:00+08:00", "c-07", 100)) {
        Err(PluginError::InvalidConfig(m)) => assert!(m.contains("`9am` is not a time of day"), "{m}"),
        other => panic!("expected invalid config, got {other:?}"),
    }
}
