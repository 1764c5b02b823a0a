//! Scripted sequences over several days on the fake host: counts, sales, receipts and refunds,
//! one suggestion per crossing, re-arming, cool-down, replays, overrides and the window.

use super::*;
use kaunter_sdk::testing::{FakeHost, Installed};
use serde_json::{Value, json};

const SOURCE: &str = "/t/acme/s/hk-001/p/till-1";

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

fn event(value: Value) -> Event {
    let defaults = kaunter_sdk::Defaults {
        id: "unused".into(),
        now: "2026-11-25T10:00:00+08:00".into(),
    };
    let event = Event::from_json(value, kaunter_sdk::Dialect::Canonical, &defaults).unwrap();
    kaunter_sdk::validate(&event).unwrap();
    event
}

fn date(day: u32) -> String {
    format!("2026-11-{day:02}")
}

/// A sale on 2026-11-`day` of (sku, units) lines at HK$10.00 each.
fn sale(id: &str, day: u32, lines: &[(&str, i64)]) -> Event {
    let total: i64 = lines.iter().map(|(_, q)| q * 1000).sum();
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, q))| {
            json!({"line_no": i + 1, "sku": sku, "quantity_milli": q * 1000, "unit_price": hkd(1000),
                   "gross": hkd(q * 1000), "discount": hkd(0), "net": hkd(q * 1000)})
        })
        .collect();
    event(json!({"id": id, "source": SOURCE, "type": "pos.sale.completed.v1",
        "time": format!("{}T18:00:00+08:00", date(day)),
        "data": {"order_id": format!("O-{id}"), "business_date": date(day), "time_zone": "Asia/Hong_Kong",
                 "tax_mode": "inclusive", "lines": lines, "tenders": [{"method": "cash", "amount": hkd(total)}],
                 "totals": {"gross": hkd(total), "discount": hkd(0), "net": hkd(total), "tax": hkd(0),
                            "total": hkd(total), "tendered": hkd(total), "change": hkd(0)}}}))
}

fn refund(id: &str, day: u32, sku: &str, units: i64, restock: bool) -> Event {
    let amount = -units * 1000;
    event(json!({"id": id, "source": SOURCE, "type": "pos.refund.completed.v1",
        "time": format!("{}T19:00:00+08:00", date(day)),
        "data": {"refund_id": format!("R-{id}"), "original_order_id": "O-x", "business_date": date(day),
                 "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
                 "lines": [{"line": {"line_no": 1, "sku": sku, "quantity_milli": -units * 1000,
                                     "unit_price": hkd(1000), "gross": hkd(amount), "discount": hkd(0),
                                     "net": hkd(amount)}, "restock": restock}],
                 "tenders": [{"method": "cash", "amount": hkd(amount)}],
                 "totals": {"gross": hkd(amount), "discount": hkd(0), "net": hkd(amount), "tax": hkd(0),
                            "total": hkd(amount), "tendered": hkd(amount), "change": hkd(0)}}}))
}

/// A stock count (`on_hand`) or a move (`delta`) on 2026-11-`day`.
fn stock(id: &str, day: u32, sku: &str, on_hand: Option<i64>, delta: i64) -> Event {
    let mut data =
        json!({"sku": sku, "delta_milli": delta * 1000, "reason": if on_hand.is_some() { "count" } else { "receipt" }});
    if let Some(units) = on_hand {
        data["on_hand_milli"] = json!(units * 1000);
    }
    event(json!({"id": id, "source": SOURCE, "type": "pos.stock.adjusted.v1",
                 "time": format!("{}T08:00:00+08:00", date(day)), "data": data}))
}

fn config() -> Value {
    json!({"window_days": 28, "reorder_point_days": 3, "lead_time_days": 2, "target_days": 14, "pack_size": 12})
}

/// Handles an event; returns the derived events (the original always comes first, unchanged).
fn run(event: Event) -> Vec<Event> {
    let mut out = handle(event.clone()).unwrap();
    assert_eq!(out.remove(0), event, "the original passes on unchanged");
    out
}

fn suggestion(derived: &Event) -> &RestockSuggested {
    match &derived.payload {
        Payload::RestockSuggested(r) => r,
        other => panic!("not a suggestion: {other:?}"),
    }
}

fn record(host: &Installed, sku: &str) -> Value {
    serde_json::from_slice(&host.kv(&format!("s/hk-001/{sku}")).expect("a record")).unwrap()
}

/// Counts 100 on day 1, then sells 10 a day; returns what days 1..=`last` derived.
fn ten_a_day(last: u32) -> Vec<(u32, Vec<Event>)> {
    assert!(run(stock("count-1", 1, "PANADOL", Some(100), 0)).is_empty());
    (1..=last)
        .map(|d| (d, run(sale(&format!("s-{d}"), d, &[("PANADOL", 10)]))))
        .collect()
}

#[test]
fn crossing_the_reorder_point_suggests_once_with_the_numbers() {
    let host = FakeHost::new().config(config()).install();
    let days = ten_a_day(8);
    // Cover is 9, 8, 7, 6, 5 days after days 1-5 (not under 3 + 2), 4 days after day 6.
    for (day, derived) in &days {
        assert_eq!(derived.len(), usize::from(*day == 6), "day {day}: {derived:?}");
    }
    let derived = &days[5].1[0];
    assert_eq!(derived.id, "s-6:restock:PANADOL");
    assert_eq!(derived.ty, "pos.restock.suggested.v1");
    assert_eq!(derived.source, SOURCE);
    assert_eq!(derived.time, "2026-11-06T18:00:00+08:00");
    assert_eq!(derived.extension("causationid"), Some("s-6"));
    assert_eq!(derived.partition_key, "hk-001:PANADOL");
    kaunter_sdk::validate(derived).unwrap();
    // 10 a day × (14 target + 2 lead) = 160 wanted, 40 on hand: 120 = 10 packs of 12.
    assert_eq!(
        suggestion(derived),
        &RestockSuggested {
            sku: "PANADOL".into(),
            on_hand_milli: 40_000,
            suggested_milli: 120_000,
            reason: "4.0 days of cover (on hand 40, selling 10 a day over the last 6 days) is under the reorder point of 5 days (3 safety + 2 lead time); order 120 (10 x 12) for 16 days of cover".into(),
        }
    );
    assert_eq!(record(&host, "PANADOL")["oh"], 20_000);
}

#[test]
fn stock_back_above_the_point_re_arms_the_suggestion() {
    let _host = FakeHost::new().config(config()).install();
    ten_a_day(7);
    // A count finds 60: 6 days of cover, above the point again.
    assert!(run(stock("count-2", 8, "PANADOL", Some(60), 0)).is_empty());
    assert!(run(sale("s-8", 8, &[("PANADOL", 10)])).is_empty()); // 50: exactly 5 days, not under
    let derived = run(sale("s-9", 9, &[("PANADOL", 10)]));
    assert_eq!(derived.len(), 1);
    assert_eq!(suggestion(&derived[0]).on_hand_milli, 40_000);
    // A receipt (a move, not a count) and a restocking refund re-arm it too.
    assert!(run(stock("rcv-1", 10, "PANADOL", None, 120)).is_empty()); // 160
    assert_eq!(run(sale("s-10", 10, &[("PANADOL", 120)])).len(), 1); // 40, velocity up too
}

#[test]
fn under_the_point_it_suggests_again_only_after_the_cool_down() {
    let mut config = config();
    config["cooldown_days"] = json!(3);
    let _host = FakeHost::new().config(config).install();
    let days = ten_a_day(10);
    let suggested: Vec<u32> = days
        .iter()
        .filter(|(_, d)| !d.is_empty())
        .map(|(day, _)| *day)
        .collect();
    assert_eq!(suggested, vec![6, 9]);
    // On day 9: 10 on hand, 160 wanted: 150 → 13 packs of 12.
    assert_eq!(suggestion(&days[8].1[0]).suggested_milli, 156_000);
    assert_eq!(days[8].1[0].id, "s-9:restock:PANADOL");
}

#[test]
fn a_replay_applies_nothing_twice_and_repeats_its_suggestion() {
    let host = FakeHost::new().config(config()).install();
    let days = ten_a_day(7);
    let before = record(&host, "PANADOL");
    // The crossing sale again: the same derived event (the log keeps one), stock untouched.
    assert_eq!(run(sale("s-6", 6, &[("PANADOL", 10)])), days[5].1);
    // An earlier sale and the count again: nothing.
    assert!(run(sale("s-3", 3, &[("PANADOL", 10)])).is_empty());
    assert!(run(stock("count-1", 1, "PANADOL", Some(100), 0)).is_empty());
    assert_eq!(record(&host, "PANADOL"), before);
    assert_eq!(before["oh"], 30_000);
}

#[test]
fn refunds_put_back_only_what_is_restocked() {
    let host = FakeHost::new().config(config()).install();
    ten_a_day(6); // suggested at 40
    assert!(run(refund("r-1", 7, "PANADOL", 2, false)).is_empty());
    assert_eq!(record(&host, "PANADOL")["oh"], 40_000);
    assert!(run(refund("r-2", 7, "PANADOL", 20, true)).is_empty());
    assert_eq!(record(&host, "PANADOL")["oh"], 60_000); // 6 days: re-armed
    assert_eq!(run(sale("s-7", 7, &[("PANADOL", 20)])).len(), 1);
}

#[test]
fn without_a_count_on_hand_is_unknown_and_nothing_is_suggested() {
    let host = FakeHost::new().config(config()).install();
    for d in 1..=10 {
        assert!(run(sale(&format!("s-{d}"), d, &[("VITC", 10)])).is_empty());
    }
    assert!(run(stock("rcv-1", 10, "VITC", None, 5)).is_empty());
    assert!(record(&host, "VITC").get("oh").is_none());
    // The first count makes it known: 30 on hand at 10 a day over 11 days is 3.3 days of cover.
    assert_eq!(run(stock("count-1", 11, "VITC", Some(30), 0)).len(), 1);
}

#[test]
fn per_sku_overrides_and_lines_of_one_sku_are_summed() {
    let mut config = config();
    config["skus"] = json!({"WATER-6": {"pack_size": 24, "reorder_point_days": 10, "lead_time_days": 0}});
    let _host = FakeHost::new().config(config).install();
    run(stock("c-1", 1, "WATER-6", Some(100), 0));
    run(stock("c-2", 1, "PANADOL", Some(100), 0));
    // Two lines of water (5 + 5) and one of Panadol on the same sale.
    let derived = run(sale("s-1", 1, &[("WATER-6", 5), ("PANADOL", 10), ("WATER-6", 5)]));
    // Water: 90 on hand at 10 a day is 9 days, under its own point of 10 (no lead time);
    // Panadol: 9 days, above 5.
    assert_eq!(derived.len(), 1);
    assert_eq!(derived[0].id, "s-1:restock:WATER-6");
    // 10 a day × 14 = 140 wanted, 90 on hand: 50 → 3 packs of 24.
    assert_eq!(suggestion(&derived[0]).suggested_milli, 72_000);
    assert!(suggestion(&derived[0]).reason.contains("(3 x 24)"));
}

#[test]
fn one_sale_can_cross_for_several_skus() {
    let _host = FakeHost::new().config(config()).install();
    run(stock("c-1", 1, "A", Some(10), 0));
    run(stock("c-2", 1, "B", Some(10), 0));
    let derived = run(sale("s-1", 1, &[("A", 6), ("B", 6)]));
    let ids: Vec<&str> = derived.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["s-1:restock:A", "s-1:restock:B"]);
}

#[test]
fn velocity_is_a_rolling_window_of_day_buckets() {
    let mut config = config();
    config["window_days"] = json!(7);
    let host = FakeHost::new().config(config).install();
    run(stock("c-1", 1, "TEA", Some(1000), 0));
    run(sale("s-1", 1, &[("TEA", 70)]));
    for d in 2..=10 {
        run(sale(&format!("s-{d}"), d, &[("TEA", 1)]));
    }
    // Days 4 to 10 are kept: the big first day fell out of the window.
    let days = &record(&host, "TEA")["d"];
    assert_eq!(days.as_array().unwrap().len(), 7);
    assert_eq!(days[0][0], day_number("2026-11-04").unwrap());
    // A sale dated before the window still leaves the shelf but not the velocity.
    run(sale("s-late", 2, &[("TEA", 5)]));
    let after = record(&host, "TEA");
    assert_eq!(&after["d"], days);
    assert_eq!(after["oh"], (1000 - 70 - 9 - 5) * 1000);
}

#[test]
fn the_record_remembers_a_bounded_number_of_events() {
    let mut config = config();
    config["remember_events"] = json!(4);
    let host = FakeHost::new().config(config).install();
    for d in 1..=9 {
        run(sale(&format!("s-{d}"), d, &[("TEA", 1)]));
    }
    assert_eq!(record(&host, "TEA")["r"].as_array().unwrap().len(), 4);
}

#[test]
fn other_events_pass_through_and_keep_nothing() {
    let host = FakeHost::new().config(config()).install();
    let member = event(json!({"id": "m-1", "source": SOURCE, "type": "pos.member.updated.v1",
                              "data": {"member_id": "M-1", "tier": "Gold"}}));
    assert!(run(member).is_empty());
    assert!(host.kv("s/hk-001/M-1").is_none());
}

#[test]
fn ignored_skus_keep_nothing() {
    let mut config = config();
    config["ignore_skus"] = json!(["GIFTCARD-*", "BAG-LEVY"]);
    let host = FakeHost::new().config(config).install();
    run(stock("c-1", 1, "GIFTCARD-500", Some(1), 0));
    assert!(run(sale("s-1", 1, &[("GIFTCARD-500", 1), ("BAG-LEVY", 1), ("TEA", 1)])).is_empty());
    assert!(host.kv("s/hk-001/GIFTCARD-500").is_none());
    assert!(host.kv("s/hk-001/BAG-LEVY").is_none());
    assert_eq!(
        record(&host, "TEA")["d"],
        json!([[day_number("2026-11-01").unwrap(), 1000]])
    );
}

#[test]
fn a_bad_configuration_is_named() {
    let mut config = config();
    config["skus"] = json!({"TEA": {"target_days": 2}});
    let _host = FakeHost::new().config(config).install();
    match handle(sale("s-1", 1, &[("TEA", 1)])) {
        Err(PluginError::InvalidConfig(m)) => assert!(m.starts_with("skus.TEA: target_days (2)"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_manifest_samples_run_in_order_and_the_sale_crosses() {
    let manifest = include_str!("../kaunter-plugin.toml");
    let samples: Vec<&str> = manifest.split("'''").skip(1).step_by(2).collect();
    assert_eq!(samples.len(), 2);
    let _host = FakeHost::new().config(config()).install();
    assert!(run(event(serde_json::from_str(samples[0]).unwrap())).is_empty());
    let derived = run(event(serde_json::from_str(samples[1]).unwrap()));
    assert_eq!(derived.len(), 1, "{derived:?}");
}
