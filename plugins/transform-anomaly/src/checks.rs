//! The detectors that look at one event alone: large discounts, sales outside trading hours and
//! tender mismatches. Each returns a [`Finding`] with the evidence, or `None`; none touches kv.

use crate::clock::{self, Instant};
use crate::config::{AnomalyConfig, DiscountConfig, HoursConfig};
use crate::{Finding, Scope};
use kaunter_sdk::{Money, Sale, Tender, TenderMethod, Totals};
use serde_json::json;

/// `value × 100 > percent × whole`, in integers (`whole` ≤ 0 never exceeds).
fn over_percent(value: i64, whole: i64, percent: u32) -> bool {
    whole > 0 && i128::from(value) * 100 > i128::from(percent) * i128::from(whole)
}

/// A discount over `line_percent` of a line's gross, `sale_percent` of the sale's gross, or over
/// `amount_minor` for the sale.
pub fn large_discount(config: &DiscountConfig, sale: &Sale, scope: Scope) -> Option<Finding> {
    let mut reasons = Vec::new();
    let mut lines = Vec::new();
    if let Some(percent) = config.line_percent {
        for line in &sale.lines {
            if over_percent(line.discount.amount_minor, line.gross.amount_minor, percent) {
                reasons.push(format!(
                    "line {} ({}) discounted {} of {} gross, over {percent}%",
                    line.line_no, line.sku, line.discount, line.gross
                ));
                lines.push(json!({
                    "line_no": line.line_no, "sku": line.sku,
                    "discount_minor": line.discount.amount_minor, "gross_minor": line.gross.amount_minor,
                }));
            }
        }
    }
    let Totals { gross, discount, .. } = &sale.totals;
    let over_sale_percent = config
        .sale_percent
        .is_some_and(|p| over_percent(discount.amount_minor, gross.amount_minor, p));
    if let (true, Some(percent)) = (over_sale_percent, config.sale_percent) {
        reasons.push(format!(
            "the sale discounted {discount} of {gross} gross, over {percent}%"
        ));
    }
    let over_amount = config.amount_minor.is_some_and(|n| discount.amount_minor > n);
    if let (true, Some(n)) = (over_amount, config.amount_minor) {
        let limit = Money::new(n, &discount.currency, discount.exponent);
        reasons.push(format!("the sale discounted {discount}, over {limit}"));
    }
    if reasons.is_empty() {
        return None;
    }
    lines.truncate(20);
    Some(Finding {
        kind: crate::LARGE_DISCOUNT,
        description: format!(
            "{} on order {}: {}",
            scope.describe(),
            sale.order_id,
            reasons.join("; ")
        ),
        evidence: json!({
            "order_id": sale.order_id,
            "store": scope.store, "cashier": scope.cashier,
            "discount_minor": discount.amount_minor, "gross_minor": gross.amount_minor,
            "currency": discount.currency, "exponent": discount.exponent,
            "line_percent": config.line_percent, "sale_percent": config.sale_percent,
            "threshold_amount_minor": config.amount_minor,
            "lines": lines,
        }),
        scope,
    })
}

/// A sale whose local time (see [`clock`]) is outside its store's hours.
pub fn outside_hours(
    config: &AnomalyConfig,
    hours: &HoursConfig,
    sale: &Sale,
    at: Instant,
    scope: Scope,
) -> Option<Finding> {
    let store_hours = hours.stores.get(&scope.store).unwrap_or(&hours.default);
    let (offset, source) = clock::local_offset(&sale.time_zone, at, &config.utc_offsets);
    let minute = clock::minute_of_day(at, offset);
    if store_hours.contains(minute) {
        return None;
    }
    let (local, open, close) = (
        clock::format_minute(minute),
        clock::format_minute(store_hours.open.0),
        clock::format_minute(store_hours.close.0),
    );
    let sign = if offset < 0 { '-' } else { '+' };
    let offset_text = format!("{sign}{}", clock::format_minute(offset.unsigned_abs()));
    Some(Finding {
        kind: crate::OUTSIDE_TRADING_HOURS,
        description: format!(
            "order {} at store {} was sold at {local} local time ({} UTC{offset_text}), outside trading hours {open}-{close}",
            sale.order_id, scope.store, sale.time_zone
        ),
        evidence: json!({
            "order_id": sale.order_id,
            "store": scope.store, "cashier": scope.cashier,
            "local_time": local, "time_zone": sale.time_zone,
            "utc_offset": offset_text, "offset_from": source.name(),
            "open": open, "close": close,
            "total_minor": sale.totals.total.amount_minor, "currency": sale.totals.total.currency,
        }),
        scope,
    })
}

/// Tenders that do not sum to total + change, change without a cash tender, or change larger
/// than the cash tendered. Works for sales and refunds (whose amounts are negative).
pub fn tender_mismatch(reference: &str, tenders: &[Tender], totals: &Totals, scope: Scope) -> Option<Finding> {
    let Totals { total, change, .. } = totals;
    let mut problems = Vec::new();
    let tendered = Money::sum(&total.currency, total.exponent, tenders.iter().map(|t| &t.amount));
    let expected = total.checked_add(change);
    match (&tendered, &expected) {
        (Some(tendered), Some(expected)) if tendered != expected => problems.push(format!(
            "tenders total {tendered} but total {total} + change {change} is {expected} (off by {})",
            tendered
                .checked_sub(expected)
                .map_or_else(|| "?".into(), |d| d.to_string())
        )),
        (None, _) | (_, None) => problems.push(format!(
            "tenders, total and change are not all in {} (exponent {})",
            total.currency, total.exponent
        )),
        _ => {}
    }
    let cash: Vec<&Money> = tenders
        .iter()
        .filter(|t| t.method == TenderMethod::Cash)
        .map(|t| &t.amount)
        .collect();
    let cash_total = Money::sum(&total.currency, total.exponent, cash.iter().copied());
    if change.amount_minor <= 0 {
        // No change given (refunds pay out negative amounts and give none): nothing to check.
    } else if cash.is_empty() {
        let methods: Vec<String> = tenders.iter().map(|t| method_name(&t.method)).collect();
        problems.push(format!(
            "change of {change} given but no cash was tendered ({})",
            methods.join(", ")
        ));
    } else if let Some(cash_total) = &cash_total
        && change.amount_minor > cash_total.amount_minor
    {
        problems.push(format!(
            "change of {change} is more than the {cash_total} cash tendered"
        ));
    }
    if problems.is_empty() {
        return None;
    }
    let methods: Vec<String> = tenders.iter().map(|t| method_name(&t.method)).collect();
    Some(Finding {
        kind: crate::TENDER_MISMATCH,
        description: format!("{} on {reference}: {}", scope.describe(), problems.join("; ")),
        evidence: json!({
            "reference": reference,
            "store": scope.store, "cashier": scope.cashier,
            "tendered_minor": tendered.map(|m| m.amount_minor),
            "total_minor": total.amount_minor, "change_minor": change.amount_minor,
            "cash_minor": cash_total.map(|m| m.amount_minor),
            "currency": total.currency, "exponent": total.exponent,
            "methods": methods,
        }),
        scope,
    })
}

/// The method as it is written in events (`cash`, `alipay_hk`, ...).
fn method_name(method: &TenderMethod) -> String {
    match method {
        TenderMethod::Other(name) => name.clone(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}
