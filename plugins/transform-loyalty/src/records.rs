//! What the plugin keeps in kv, and how it reads and writes it. Field names are short because
//! every byte counts against the plugin's kv quota.
//!
//! - `m/{member}` ([`Member`]): balance, lifetime points and spend, the member's orders still
//!   refundable, and the last `remember_events` events counted with their results.
//! - `o/{order}` ([`Order`]): what each line of a member sale earned, how much of each line was
//!   refunded since, and the result of the sale and of each refund or void against it.

use kaunter_sdk::{PluginError, host};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Refunds and voids remembered per order.
pub const REVERSALS_PER_ORDER: usize = 32;

/// The outcome of one counted event, as written into the extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Event id.
    #[serde(rename = "e")]
    pub event: String,
    /// Points earned (negative for a reversal).
    #[serde(rename = "p")]
    pub points: i64,
    /// Balance after.
    #[serde(rename = "b")]
    pub balance: i64,
    /// Tier after.
    #[serde(rename = "t")]
    pub tier: String,
    /// Tier before.
    #[serde(rename = "pt")]
    pub previous_tier: String,
}

/// `m/{member}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Member {
    /// Points balance.
    #[serde(rename = "b")]
    pub balance: i64,
    /// Points earned over the membership, net of reversals.
    #[serde(rename = "lp")]
    pub lifetime_points: i64,
    /// Eligible spend over the membership (minor units), net of refunds.
    #[serde(rename = "ls")]
    pub lifetime_spend: i64,
    /// Orders with a record in kv: (order id, business date).
    #[serde(rename = "o", default)]
    pub orders: Vec<(String, String)>,
    /// The last events counted, oldest first.
    #[serde(rename = "r", default)]
    pub recent: Vec<Counted>,
}

impl Member {
    /// The recorded result of an event, if it was counted recently.
    pub fn counted(&self, event: &str) -> Option<&Counted> {
        self.recent.iter().find(|c| c.event == event)
    }

    /// Remembers a counted event, forgetting the oldest beyond `bound`.
    pub fn remember(&mut self, counted: Counted, bound: usize) {
        self.recent.push(counted);
        let excess = self.recent.len().saturating_sub(bound);
        self.recent.drain(..excess);
    }
}

/// One line of a counted sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Line number on the sale.
    #[serde(rename = "n")]
    pub line_no: u32,
    /// SKU.
    #[serde(rename = "k")]
    pub sku: String,
    /// Quantity sold, thousandths.
    #[serde(rename = "q")]
    pub quantity_milli: i64,
    /// Points earned by the line, times the order's `den` (exact, before the per-sale floor).
    #[serde(rename = "p")]
    pub points_scaled: i64,
    /// Eligible spend of the line, minor units.
    #[serde(rename = "v")]
    pub spend: i64,
    /// Quantity refunded so far, thousandths.
    #[serde(rename = "rq", default)]
    pub refunded_milli: i64,
}

impl OrderLine {
    /// Scaled points still standing after refunds (refunded share taken proportionally).
    pub fn standing_scaled(&self) -> i128 {
        i128::from(self.points_scaled) - share(self.points_scaled, self.refunded_milli, self.quantity_milli)
    }

    /// Spend still standing after refunds.
    pub fn standing_spend(&self) -> i128 {
        i128::from(self.spend) - share(self.spend, self.refunded_milli, self.quantity_milli)
    }
}

/// `amount × part / whole`, floored; all of it when `whole` is not positive.
fn share(amount: i64, part: i64, whole: i64) -> i128 {
    if whole <= 0 {
        return i128::from(amount);
    }
    (i128::from(amount) * i128::from(part.clamp(0, whole))).div_euclid(i128::from(whole))
}

/// `o/{order}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The member who earned.
    #[serde(rename = "m")]
    pub member: String,
    /// The sale's event id.
    #[serde(rename = "s")]
    pub sale_event: String,
    /// Business date of the sale.
    #[serde(rename = "d")]
    pub business_date: String,
    /// Denominator of the scaled line points: points = floor(Σ scaled / den).
    #[serde(rename = "den")]
    pub den: i64,
    /// Lines.
    #[serde(rename = "l")]
    pub lines: Vec<OrderLine>,
    /// The sale's result.
    #[serde(rename = "c")]
    pub sale: Counted,
    /// Refunds and voids counted against the order.
    #[serde(rename = "rv", default)]
    pub reversals: Vec<Counted>,
}

impl Order {
    /// Points still standing on the order: the per-sale floor of the standing scaled points.
    pub fn standing_points(&self) -> i64 {
        let scaled: i128 = self.lines.iter().map(OrderLine::standing_scaled).sum();
        floor_points(scaled, self.den)
    }

    /// Eligible spend still standing.
    pub fn standing_spend(&self) -> i64 {
        let spend: i128 = self.lines.iter().map(OrderLine::standing_spend).sum();
        i64::try_from(spend).unwrap_or(i64::MAX)
    }

    /// The recorded result of a refund or void, if counted.
    pub fn reversal(&self, event: &str) -> Option<&Counted> {
        self.reversals.iter().find(|c| c.event == event)
    }

    /// Remembers a reversal, forgetting the oldest beyond the bound.
    pub fn remember(&mut self, counted: Counted) {
        self.reversals.push(counted);
        let excess = self.reversals.len().saturating_sub(REVERSALS_PER_ORDER);
        self.reversals.drain(..excess);
    }
}

/// `floor(scaled / den)`, never below zero.
pub fn floor_points(scaled: i128, den: i64) -> i64 {
    if den <= 0 {
        return 0;
    }
    i64::try_from(scaled.div_euclid(i128::from(den)).max(0)).unwrap_or(i64::MAX)
}

/// The kv key of a member.
pub fn member_key(member: &str) -> String {
    format!("m/{member}")
}

/// The kv key of an order.
pub fn order_key(order: &str) -> String {
    format!("o/{order}")
}

/// Reads a JSON record; a record that does not parse is reported, not silently replaced.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    match host::kv_get(key).map_err(kv_error)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            PluginError::Rejected(format!(
                "kv record `{key}` is not readable ({e}); delete it to start it over"
            ))
        }),
    }
}

/// Writes a JSON record.
pub fn put<T: Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
    let bytes = serde_json::to_vec(value).map_err(|e| PluginError::Rejected(format!("cannot encode `{key}`: {e}")))?;
    host::kv_set(key, &bytes).map_err(kv_error)
}

/// Deletes a record.
pub fn delete(key: &str) -> Result<(), PluginError> {
    host::kv_delete(key).map_err(kv_error)
}

/// A full quota is the operator's to fix (dead-letter, replay later); an unavailable store is
/// worth retrying.
fn kv_error(e: host::KvError) -> PluginError {
    match e {
        host::KvError::QuotaExceeded(m) => PluginError::Rejected(format!(
            "kv quota exceeded ({m}); raise limits.kv_quota_bytes or shorten refund_window_days"
        )),
        host::KvError::Unavailable(m) => PluginError::Transient(format!("kv unavailable: {m}")),
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), `None` if it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_count_days() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2026-03-01").unwrap() - day_number("2026-02-28").unwrap(), 1);
        assert_eq!(day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(), 2);
        assert_eq!(day_number("2026-13-01"), None);
    }
}
