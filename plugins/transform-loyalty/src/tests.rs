//! Scripted event sequences on the fake host: earning, replays, refunds, voids, tiers, pruning.

use super::*;
use kaunter_sdk::testing::FakeHost;
use serde_json::{Value, json};

fn hkd(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "HKD", "exponent": 2})
}

/// A line: (sku, quantity in units, unit price in minor units, category attribute).
type Line<'a> = (&'a str, i64, i64, Option<&'a str>);

fn lines_json(lines: &[Line], sign: i64) -> (Vec<Value>, i64) {
    let mut total = 0;
    let lines = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, qty, price, category))| {
            let amount = sign * qty * price;
            total += amount;
            let mut line = json!({"line_no": i + 1, "sku": sku, "quantity_milli": sign * qty * 1000,
                "unit_price": hkd(*price), "gross": hkd(amount), "discount": hkd(0), "net": hkd(amount)});
            if let Some(c) = category {
                line["attributes"] = json!({"category": c});
            }
            line
        })
        .collect();
    (lines, total)
}

fn totals(total: i64) -> Value {
    json!({"gross": hkd(total), "discount": hkd(0), "net": hkd(total), "tax": hkd(0),
           "total": hkd(total), "tendered": hkd(total), "change": hkd(0)})
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

/// A sale paid by `tenders` (method, minor units); by Octopus in full when empty.
fn sale_paid(
    id: &str,
    order: &str,
    date: &str,
    member: Option<&str>,
    lines: &[Line],
    tenders: &[(&str, i64)],
) -> Event {
    let (lines, total) = lines_json(lines, 1);
    let tenders: Vec<Value> = if tenders.is_empty() {
        vec![json!({"method": "octopus", "amount": hkd(total)})]
    } else {
        tenders
            .iter()
            .map(|(m, a)| json!({"method": m, "amount": hkd(*a)}))
            .collect()
    };
    let mut data = json!({"order_id": order, "business_date": date, "time_zone": "Asia/Hong_Kong",
        "tax_mode": "inclusive", "lines": lines, "tenders": tenders, "totals": totals(total)});
    if let Some(m) = member {
        data["member_id"] = json!(m);
    }
    event(
        json!({"id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.completed.v1",
                 "time": format!("{date}T10:15:00+08:00"), "data": data}),
    )
}

fn sale(id: &str, order: &str, member: Option<&str>, lines: &[Line]) -> Event {
    sale_paid(id, order, "2026-11-25", member, lines, &[])
}

/// A refund of (original line no, sku, quantity, unit price).
fn refund(id: &str, order: &str, member: Option<&str>, returned: &[(u32, &str, i64, i64)]) -> Event {
    let lines: Vec<Line> = returned.iter().map(|(_, sku, q, p)| (*sku, *q, *p, None)).collect();
    let (lines, total) = lines_json(&lines, -1);
    let lines: Vec<Value> = lines
        .into_iter()
        .zip(returned)
        .map(|(line, (n, ..))| json!({"line": line, "original_line_no": n, "restock": true}))
        .collect();
    let mut data = json!({"refund_id": format!("R-{id}"), "original_order_id": order, "business_date": "2026-11-26",
        "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive", "lines": lines,
        "tenders": [{"method": "octopus", "amount": hkd(total)}], "totals": totals(total)});
    if let Some(m) = member {
        data["member_id"] = json!(m);
    }
    event(
        json!({"id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
                 "time": "2026-11-26T12:00:00+08:00", "data": data}),
    )
}

fn config() -> Value {
    json!({
        "currency": "HKD",
        "unit_minor": 100,
        "points_per_unit": 1,
        "category_multipliers_percent": {"beauty": 200, "tobacco": 0},
        "category_by_sku_prefix": {"BTY-": "beauty"},
        "exclude_skus": ["GIFTCARD-*"],
        "exclude_tenders": ["voucher", "points"],
        "tiers": [
            {"name": "Classic", "threshold": 0},
            {"name": "Gold", "threshold": 1000, "multiplier_percent": 150}
        ],
        "emit_tier_changes": true
    })
}

fn ext<'a>(event: &'a Event, name: &str) -> &'a str {
    event
        .extension(name)
        .unwrap_or_else(|| panic!("no `{name}` on {event:?}"))
}

fn points(events: &[Event]) -> (String, String, String) {
    (
        ext(&events[0], "loyaltypoints").to_owned(),
        ext(&events[0], "loyaltybalance").to_owned(),
        ext(&events[0], "loyaltytier").to_owned(),
    )
}

fn triple(p: i64, b: i64, t: &str) -> (String, String, String) {
    (p.to_string(), b.to_string(), t.to_owned())
}

fn member_record(host: &kaunter_sdk::testing::Installed, member: &str) -> Value {
    serde_json::from_slice(&host.kv(&format!("m/{member}")).expect("member record")).unwrap()
}

#[test]
fn a_member_sale_earns_per_hkd_with_category_multipliers_floored_once_per_sale() {
    let _host = FakeHost::new().config(config()).install();
    // HK$79.80 (79.80 points) + beauty HK$12.35 at 200 % (24.70) + gift card (nothing)
    // + tobacco (0 %): 104.50 exactly → 104 (one floor for the sale, not per line).
    let event = sale(
        "s-1",
        "HK001-1",
        Some("M-1"),
        &[
            ("4891234500017", 2, 3990, None),
            ("BTY-LIPSTICK", 1, 1235, None),
            ("GIFTCARD-500", 1, 50000, None),
            ("CIG-20", 1, 6500, Some("tobacco")),
        ],
    );
    let out = handle(event.clone()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(points(&out), triple(104, 104, "Classic"));
    // Only the extensions changed; they stay in name order.
    let mut expected = event;
    expected.extensions = vec![
        ("loyaltybalance".into(), "104".into()),
        ("loyaltypoints".into(), "104".into()),
        ("loyaltytier".into(), "Classic".into()),
    ];
    assert_eq!(out[0], expected);
}

#[test]
fn voucher_and_points_tenders_earn_nothing_for_their_share() {
    let host = FakeHost::new().config(config()).install();
    // HK$200.00 paid HK$50 by gift voucher, HK$30 with points, HK$120 by card: 120 points.
    let event = sale_paid(
        "s-1",
        "HK001-1",
        "2026-11-25",
        Some("M-1"),
        &[("SHAMPOO", 1, 20000, None)],
        &[("voucher", 5000), ("points", 3000), ("card", 12000)],
    );
    assert_eq!(points(&handle(event).unwrap()), triple(120, 120, "Classic"));
    assert_eq!(member_record(&host, "M-1")["ls"], 12000);
}

#[test]
fn events_without_a_member_pass_through_untouched_and_keep_nothing() {
    let host = FakeHost::new().config(config()).install();
    let event = sale("s-1", "HK001-1", None, &[("4891234500017", 2, 3990, None)]);
    assert_eq!(handle(event.clone()).unwrap(), vec![event]);
    let stock = event_stock();
    assert_eq!(handle(stock.clone()).unwrap(), vec![stock]);
    assert!(host.kv("o/HK001-1").is_none());
}

fn event_stock() -> Event {
    event(
        json!({"id": "st-1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.stock.adjusted.v1",
                 "data": {"sku": "X", "delta_milli": 1000, "reason": "receipt"}}),
    )
}

#[test]
fn a_replay_of_the_same_event_gives_the_same_numbers_and_adds_nothing() {
    let host = FakeHost::new().config(config()).install();
    let first = sale("s-1", "HK001-1", Some("M-1"), &[("4891234500017", 2, 3990, None)]);
    let second = sale("s-2", "HK001-2", Some("M-1"), &[("4891234500017", 1, 3990, None)]);
    assert_eq!(points(&handle(first.clone()).unwrap()), triple(79, 79, "Classic"));
    assert_eq!(points(&handle(second.clone()).unwrap()), triple(39, 118, "Classic"));
    // Replays (after a crash, `kaunter replay`, a second route): the numbers of the first time.
    assert_eq!(points(&handle(first).unwrap()), triple(79, 79, "Classic"));
    assert_eq!(points(&handle(second).unwrap()), triple(39, 118, "Classic"));
    assert_eq!(member_record(&host, "M-1")["b"], 118);
}

#[test]
fn a_crash_between_the_member_and_the_order_write_is_finished_by_the_replay() {
    let host = FakeHost::new().config(config()).install();
    let sale = sale("s-1", "HK001-1", Some("M-1"), &[("4891234500017", 2, 3990, None)]);
    handle(sale.clone()).unwrap();
    let order = host.kv("o/HK001-1").unwrap();
    // As if the call died after writing the member record and before writing the order.
    kaunter_sdk::host::kv_delete("o/HK001-1").unwrap();
    assert_eq!(points(&handle(sale).unwrap()), triple(79, 79, "Classic"));
    assert_eq!(host.kv("o/HK001-1").unwrap(), order);
    assert_eq!(member_record(&host, "M-1")["b"], 79);
}

#[test]
fn refunds_reverse_what_the_refunded_lines_earned_proportionally() {
    let host = FakeHost::new().config(config()).install();
    // 3 × HK$33.30 (99.90) + beauty 1 × HK$10.05 at 200 % (20.10) = 120.00 points.
    let sale = sale(
        "s-1",
        "HK001-1",
        Some("M-1"),
        &[("VITC-1000", 3, 3330, None), ("BTY-MASK", 1, 1005, None)],
    );
    assert_eq!(points(&handle(sale).unwrap()), triple(120, 120, "Classic"));
    // One of three bottles back: the order stands at floor(66.60 + 20.10) = 86 → -34.
    let r1 = refund("r-1", "HK001-1", Some("M-1"), &[(1, "VITC-1000", 1, 3330)]);
    assert_eq!(points(&handle(r1.clone()).unwrap()), triple(-34, 86, "Classic"));
    // The rest: everything that sale earned is gone, to the point.
    let r2 = refund(
        "r-2",
        "HK001-1",
        Some("M-1"),
        &[(1, "VITC-1000", 2, 3330), (2, "BTY-MASK", 1, 1005)],
    );
    assert_eq!(points(&handle(r2.clone()).unwrap()), triple(-86, 0, "Classic"));
    // Replays of either refund change nothing.
    assert_eq!(points(&handle(r1).unwrap()), triple(-34, 86, "Classic"));
    assert_eq!(points(&handle(r2).unwrap()), triple(-86, 0, "Classic"));
    let member = member_record(&host, "M-1");
    assert_eq!(
        (member["b"].as_i64(), member["lp"].as_i64(), member["ls"].as_i64()),
        (Some(0), Some(0), Some(0))
    );
    // Refunding more than was sold takes back nothing more.
    let r3 = refund("r-3", "HK001-1", Some("M-1"), &[(1, "VITC-1000", 1, 3330)]);
    assert_eq!(points(&handle(r3).unwrap()), triple(0, 0, "Classic"));
}

#[test]
fn a_refund_without_a_member_id_is_charged_to_the_member_who_earned() {
    let _host = FakeHost::new().config(config()).install();
    handle(sale("s-1", "HK001-1", Some("M-1"), &[("SOAP", 2, 1500, None)])).unwrap();
    let r = refund("r-1", "HK001-1", None, &[(1, "SOAP", 1, 1500)]);
    assert_eq!(points(&handle(r).unwrap()), triple(-15, 15, "Classic"));
    // A refund of an order that earned nothing, by no member, passes untouched.
    let other = refund("r-2", "HK001-9", None, &[(1, "SOAP", 1, 1500)]);
    assert_eq!(handle(other.clone()).unwrap(), vec![other]);
}

#[test]
fn a_void_takes_back_what_the_order_still_stands_at() {
    let _host = FakeHost::new().config(config()).install();
    handle(sale("s-1", "HK001-1", Some("M-1"), &[("SOAP", 4, 1500, None)])).unwrap();
    handle(refund("r-1", "HK001-1", Some("M-1"), &[(1, "SOAP", 1, 1500)])).unwrap();
    let void = event(
        json!({"id": "v-1", "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.voided.v1",
                            "data": {"order_id": "HK001-1", "reason": "wrong member"}}),
    );
    assert_eq!(points(&handle(void).unwrap()), triple(-45, 0, "Classic"));
}

#[test]
fn crossing_a_tier_threshold_changes_the_tier_and_derives_a_member_update() {
    let host = FakeHost::new().config(config()).install();
    let first = sale("s-1", "HK001-1", Some("M-1"), &[("TV", 1, 95000, None)]);
    assert_eq!(points(&handle(first).unwrap()), triple(950, 950, "Classic"));
    // 100 more points at the Classic rate: 1050 ≥ 1000, Gold from now on.
    let second = sale("s-2", "HK001-2", Some("M-1"), &[("KETTLE", 1, 10000, None)]);
    let out = handle(second.clone()).unwrap();
    assert_eq!(points(&out), triple(100, 1050, "Gold"));
    assert_eq!(out.len(), 2);
    let derived = &out[1];
    assert_eq!(derived.id, "s-2:tier");
    assert_eq!(derived.ty, "pos.member.updated.v1");
    assert_eq!(derived.source, second.source);
    assert_eq!(derived.extension("causationid"), Some("s-2"));
    assert_eq!(derived.partition_key, "hk-001:M-1");
    assert_eq!(
        derived.payload,
        Payload::MemberUpdated(MemberUpdated {
            member_id: "M-1".into(),
            tier: Some("Gold".into()),
            points_balance: Some(1050),
            name: None,
            phone: None,
            email: None,
        })
    );
    kaunter_sdk::validate(derived).unwrap();
    // The replay derives the same event again (the log keeps it once).
    assert_eq!(handle(second).unwrap(), out);
    // Gold earns 150 %: HK$10.00 → 15 points, no further change derived.
    let third = sale("s-3", "HK001-3", Some("M-1"), &[("SOAP", 1, 1000, None)]);
    let out = handle(third).unwrap();
    assert_eq!((points(&out), out.len()), (triple(15, 1065, "Gold"), 1));
    // Refunding the TV drops the member back to Classic, and says so.
    let back = refund("r-1", "HK001-1", Some("M-1"), &[(1, "TV", 1, 95000)]);
    let out = handle(back).unwrap();
    assert_eq!(points(&out), triple(-950, 115, "Classic"));
    assert_eq!(out[1].id, "r-1:tier");
    assert_eq!(member_record(&host, "M-1")["lp"], 115);
}

#[test]
fn tiers_can_follow_lifetime_spend() {
    let mut config = config();
    config["tier_basis"] = json!("lifetime_spend_minor");
    config["tiers"][1]["threshold"] = json!(50000);
    let _host = FakeHost::new().config(config).install();
    let out = handle(sale("s-1", "HK001-1", Some("M-1"), &[("TV", 1, 50000, None)])).unwrap();
    assert_eq!(points(&out), triple(500, 500, "Gold"));
}

#[test]
fn the_same_order_under_a_new_event_id_earns_nothing_more() {
    let host = FakeHost::new().config(config()).install();
    handle(sale("s-1", "HK001-1", Some("M-1"), &[("SOAP", 2, 1500, None)])).unwrap();
    let resent = sale("s-1-resent", "HK001-1", Some("M-1"), &[("SOAP", 2, 1500, None)]);
    assert_eq!(points(&handle(resent).unwrap()), triple(0, 30, "Classic"));
    assert_eq!(member_record(&host, "M-1")["b"], 30);
}

#[test]
fn order_records_past_the_refund_window_are_dropped() {
    let mut config = config();
    config["refund_window_days"] = json!(30);
    config["max_orders_per_member"] = json!(2);
    let host = FakeHost::new().config(config).install();
    let line = [("SOAP", 1, 1000, None)];
    handle(sale_paid("s-1", "A", "2026-10-01", Some("M-1"), &line, &[])).unwrap();
    handle(sale_paid("s-2", "B", "2026-10-20", Some("M-1"), &line, &[])).unwrap();
    assert!(host.kv("o/A").is_some());
    // 31 days after A: A is past the window.
    handle(sale_paid("s-3", "C", "2026-11-01", Some("M-1"), &line, &[])).unwrap();
    assert!(host.kv("o/A").is_none());
    assert!(host.kv("o/B").is_some());
    // A fourth order within the window: only two are kept per member, B (the oldest) goes.
    handle(sale_paid("s-4", "D", "2026-11-02", Some("M-1"), &line, &[])).unwrap();
    assert!(host.kv("o/B").is_none());
    let orders = &member_record(&host, "M-1")["o"];
    assert_eq!(orders, &json!([["C", "2026-11-01"], ["D", "2026-11-02"]]));
    // A refund of a dropped order reverses nothing and says so with the balance as it is.
    let late = refund("r-1", "A", Some("M-1"), &[(1, "SOAP", 1, 1000)]);
    assert_eq!(points(&handle(late).unwrap()), triple(0, 40, "Classic"));
}

#[test]
fn the_member_remembers_a_bounded_number_of_events() {
    let mut config = config();
    config["remember_events"] = json!(4);
    let host = FakeHost::new().config(config).install();
    for i in 0..40 {
        handle(sale(
            &format!("s-{i}"),
            &format!("O-{i}"),
            Some("M-1"),
            &[("SOAP", 1, 100, None)],
        ))
        .unwrap();
    }
    let member = member_record(&host, "M-1");
    assert_eq!(member["r"].as_array().unwrap().len(), 4);
    assert_eq!(member["b"], 40);
    // An old replay is still recognised by its order record.
    let old = sale("s-0", "O-0", Some("M-1"), &[("SOAP", 1, 100, None)]);
    assert_eq!(points(&handle(old).unwrap()), triple(1, 1, "Classic"));
    assert_eq!(member_record(&host, "M-1")["b"], 40);
}

#[test]
fn sales_in_another_currency_earn_nothing() {
    let mut config = config();
    config["currency"] = json!("MOP");
    let _host = FakeHost::new().config(config).install();
    let out = handle(sale("s-1", "HK001-1", Some("M-1"), &[("SOAP", 2, 1500, None)])).unwrap();
    assert_eq!(points(&out), triple(0, 0, "Classic"));
}

#[test]
fn a_bad_configuration_is_named() {
    let mut config = config();
    config["tiers"] = json!([{"name": "Gold", "threshold": 1000}, {"name": "Classic", "threshold": 0}]);
    let _host = FakeHost::new().config(config).install();
    match handle(sale("s-1", "O", Some("M-1"), &[("SOAP", 1, 100, None)])) {
        Err(PluginError::InvalidConfig(m)) => assert!(m.contains("ascending"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_manifest_samples_are_member_sales_that_earn() {
    let manifest = include_str!("../kaunter-plugin.toml");
    let samples: Vec<&str> = manifest.split("'''").skip(1).step_by(2).collect();
    assert!(!samples.is_empty());
    let _host = FakeHost::new().config(config()).install();
    let out: Vec<Vec<Event>> = samples
        .iter()
        .map(|sample| handle(event(serde_json::from_str(sample).unwrap())).unwrap())
        .collect();
    // HK$195.90 with HK$50 in vouchers: 79.80 and 116.10 earn on 145.90/195.90 of themselves,
    // 59.43 + 86.46 = 145.89 points, floored to 145. Then one of two Panadol comes back.
    assert_eq!(points(&out[0]), triple(145, 145, "Classic"));
    assert_eq!(points(&out[1]), triple(-29, 116, "Classic"));
}
