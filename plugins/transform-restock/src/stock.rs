//! One store's view of one SKU, kept in kv under `s/{store}/{sku}`: on hand, daily sales buckets
//! within the velocity window, whether a suggestion is out, and the last events applied. Field
//! names are short because every byte counts against the plugin's kv quota.
//!
//! Velocity is a rolling window of day buckets by business date: the units sold over the last
//! `window_days` days (ending at the latest day seen), divided by the days in the window, or by
//! the days since the SKU was first seen when that is fewer. All arithmetic is integer, in
//! thousandths of a unit; cover comparisons are cross-multiplied, so nothing is divided early.

use crate::config::Rule;
use serde::{Deserialize, Serialize};

/// A suggestion as made (kept with the event that made it, so a replay makes the same one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// On hand when suggested, thousandths.
    #[serde(rename = "oh")]
    pub on_hand_milli: i64,
    /// Suggested quantity, thousandths (whole packs).
    #[serde(rename = "q")]
    pub suggested_milli: i64,
    /// The reason, with the numbers.
    #[serde(rename = "why")]
    pub reason: String,
}

/// An event applied to this SKU, and the suggestion it made, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Event id.
    #[serde(rename = "e")]
    pub event: String,
    /// What it suggested.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
}

/// `s/{store}/{sku}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// On hand, thousandths; unknown until a stock event says.
    #[serde(rename = "oh", default, skip_serializing_if = "Option::is_none")]
    pub on_hand_milli: Option<i64>,
    /// Day number the SKU was first seen.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub first_day: Option<i64>,
    /// Latest day number seen.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub latest_day: Option<i64>,
    /// (day number, units sold in thousandths), ascending, within the window.
    #[serde(rename = "d", default)]
    pub days: Vec<(i64, i64)>,
    /// Day a suggestion went out while under the point; `None` once above it again.
    #[serde(rename = "sd", default, skip_serializing_if = "Option::is_none")]
    pub suggested_day: Option<i64>,
    /// The last events applied, oldest first.
    #[serde(rename = "r", default)]
    pub recent: Vec<Applied>,
}

impl Stock {
    /// Moves the clock to `day` (the event's date): keeps the latest day and drops buckets that
    /// fell out of the window.
    pub fn see_day(&mut self, day: i64, window_days: i64) {
        self.first_day = Some(self.first_day.map_or(day, |f| f.min(day)));
        let latest = self.latest_day.map_or(day, |l| l.max(day));
        self.latest_day = Some(latest);
        self.days.retain(|(d, _)| latest - d < window_days);
    }

    /// Counts units sold on `day` (if it is still within the window) and takes them off hand.
    pub fn sell(&mut self, day: i64, units_milli: i64, window_days: i64) {
        if let Some(on_hand) = &mut self.on_hand_milli {
            *on_hand -= units_milli;
        }
        if self.latest_day.is_some_and(|latest| latest - day >= window_days) {
            return;
        }
        match self.days.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => self.days[i].1 += units_milli,
            Err(i) => self.days.insert(i, (day, units_milli)),
        }
    }

    /// Units sold in the window and the days they are spread over (`None` before any day).
    pub fn velocity(&self, window_days: i64) -> Option<(i64, i64)> {
        let latest = self.latest_day?;
        let first = self.first_day?;
        let days = (latest - first + 1).clamp(1, window_days);
        Some((self.days.iter().map(|(_, u)| u).sum(), days))
    }

    /// Checks the cover after a change; returns a suggestion when one is due: on crossing under
    /// the point, or again after the cool-down while still under. Above the point, re-arms.
    pub fn check(&mut self, rule: &Rule, window_days: i64) -> Option<Suggestion> {
        let on_hand = self.on_hand_milli?;
        let (sold, days) = self.velocity(window_days)?;
        let today = self.latest_day?;
        // cover = on_hand × days / sold < trigger, cross-multiplied (sold > 0).
        let under =
            sold > 0 && i128::from(on_hand) * i128::from(days) < i128::from(rule.trigger_days()) * i128::from(sold);
        if !under {
            self.suggested_day = None;
            return None;
        }
        let due = match self.suggested_day {
            None => true,
            Some(at) => rule.cooldown_days > 0 && today - at >= rule.cooldown_days,
        };
        if !due {
            return None;
        }
        self.suggested_day = Some(today);
        Some(suggest(rule, on_hand, sold, days))
    }

    /// The suggestion an event made to this SKU before, if it was applied recently.
    pub fn applied(&self, event: &str) -> Option<&Applied> {
        self.recent.iter().find(|a| a.event == event)
    }

    /// Remembers an applied event, forgetting the oldest beyond `bound`.
    pub fn remember(&mut self, applied: Applied, bound: usize) {
        self.recent.push(applied);
        let excess = self.recent.len().saturating_sub(bound);
        self.recent.drain(..excess);
    }
}

/// The order that brings cover up to lead time + target, in whole packs (at least one).
fn suggest(rule: &Rule, on_hand: i64, sold: i64, days: i64) -> Suggestion {
    let pack = i128::from(rule.pack_size) * 1000;
    let want = ceil_div(i128::from(sold) * i128::from(rule.order_up_to_days()), i128::from(days));
    let need = (want - i128::from(on_hand)).max(1);
    let packs = ceil_div(need, pack);
    let suggested = i64::try_from(packs * pack).unwrap_or(i64::MAX);
    let cover_tenths = i128::from(on_hand) * i128::from(days) * 10 / i128::from(sold);
    let per_day_milli = i64::try_from(i128::from(sold) / i128::from(days)).unwrap_or(i64::MAX);
    let reason = format!(
        "{} days of cover (on hand {}, selling {} a day over {}) is under the reorder point of {} days ({} safety + {} lead time); order {} ({packs} x {}) for {} days of cover",
        tenths(cover_tenths),
        units(on_hand),
        units(per_day_milli),
        if days == 1 {
            "1 day".to_owned()
        } else {
            format!("the last {days} days")
        },
        rule.trigger_days(),
        rule.reorder_point_days,
        rule.lead_time_days,
        units(suggested),
        rule.pack_size,
        rule.order_up_to_days(),
    );
    Suggestion {
        on_hand_milli: on_hand,
        suggested_milli: suggested,
        reason,
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

/// Thousandths as a decimal: `12`, `12.5`, `-0.25`.
pub fn units(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    let fraction = format!("{:03}", abs % 1000);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{sign}{}", abs / 1000)
    } else {
        format!("{sign}{}.{fraction}", abs / 1000)
    }
}

/// Tenths as a decimal with one place: `1.8`, `-0.5` (truncated toward zero).
fn tenths(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{}", abs / 10, abs % 10)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (the first ten characters of an RFC 3339 time
/// also do), `None` if it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    let date = date.get(..10)?;
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
    fn numbers_read_as_people_write_them() {
        assert_eq!(units(12_000), "12");
        assert_eq!(units(12_500), "12.5");
        assert_eq!(units(-250), "-0.25");
        assert_eq!(tenths(18), "1.8");
        assert_eq!(tenths(-5), "-0.5");
        assert_eq!(ceil_div(7, 2), 4);
        assert_eq!(ceil_div(-7, 2), -3);
        assert_eq!(day_number("1970-01-02T00:00:00Z"), Some(1));
        assert_eq!(day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(), 2);
        assert_eq!(day_number("soon"), None);
    }
}
