//! The plugin's configuration (`[plugins.config]`): one table per detector, each with `enabled`,
//! `severity` and an optional `cooldown_minutes`, and defaults that suit a Hong Kong pharmacy
//! chain. Unknown keys are refused, naming the key.

use crate::clock::{ClockTime, UtcOffset};
use kaunter_sdk::Severity;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Everything the detectors read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Minutes after an alert during which the same kind for the same cashier (or store) stays quiet.
    pub cooldown_minutes: u32,
    /// Extra or overriding fixed offsets for IANA zones: `"Asia/Singapore" = "+08:00"`.
    pub utc_offsets: BTreeMap<String, UtcOffset>,
    /// Refunds and voids per cashier and per store in a sliding window.
    pub refund_void_spike: SpikeConfig,
    /// Discounts over a share of gross (or over an amount).
    pub large_discount: DiscountConfig,
    /// Sales outside opening hours.
    pub outside_trading_hours: HoursConfig,
    /// Tenders that do not add up, change without cash.
    pub tender_mismatch: TenderConfig,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            cooldown_minutes: 60,
            utc_offsets: BTreeMap::new(),
            refund_void_spike: SpikeConfig::default(),
            large_discount: DiscountConfig::default(),
            outside_trading_hours: HoursConfig::default(),
            tender_mismatch: TenderConfig::default(),
        }
    }
}

/// Thresholds of one spike scope; reaching either fires.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Refunds plus voids in the window.
    #[serde(default)]
    pub count: Option<u32>,
    /// Sum refunded in the window, minor units of the refunds' currency.
    #[serde(default)]
    pub amount_minor: Option<i64>,
}

/// `[refund_void_spike]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Length of the sliding window, minutes of event time.
    pub window_minutes: u32,
    /// Overrides the top-level cool-down.
    pub cooldown_minutes: Option<u32>,
    /// Per cashier (per store the cashier works in).
    pub per_cashier: Threshold,
    /// Per store.
    pub per_store: Threshold,
    /// Most refunds/voids one window keeps (the oldest go first); bounds the kv per key.
    pub max_entries: usize,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            enabled: true,
            severity: Severity::Warning,
            window_minutes: 60,
            cooldown_minutes: None,
            per_cashier: Threshold {
                count: Some(5),
                amount_minor: Some(300_000),
            },
            per_store: Threshold {
                count: Some(15),
                amount_minor: Some(1_000_000),
            },
            max_entries: 200,
        }
    }
}

/// `[large_discount]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscountConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Overrides the top-level cool-down.
    pub cooldown_minutes: Option<u32>,
    /// A line discount over this percentage of the line's gross.
    pub line_percent: Option<u32>,
    /// The sale's discount over this percentage of the sale's gross.
    pub sale_percent: Option<u32>,
    /// The sale's discount over this amount (minor units of the sale's currency).
    pub amount_minor: Option<i64>,
}

impl Default for DiscountConfig {
    fn default() -> Self {
        DiscountConfig {
            enabled: true,
            severity: Severity::Warning,
            cooldown_minutes: None,
            line_percent: Some(50),
            sale_percent: Some(30),
            amount_minor: None,
        }
    }
}

/// Opening hours of one store: open at `open`, closed from `close` (local time). `close` earlier
/// than `open` runs past midnight; equal means open all day.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    /// Opening time, `HH:MM`.
    pub open: ClockTime,
    /// Closing time, `HH:MM` (`24:00` for midnight).
    pub close: ClockTime,
}

impl Hours {
    /// Whether a minute of the day falls inside the hours.
    pub fn contains(&self, minute: u32) -> bool {
        let (open, close) = (self.open.0, self.close.0);
        match open.cmp(&close) {
            std::cmp::Ordering::Less => open <= minute && minute < close,
            std::cmp::Ordering::Greater => minute >= open || minute < close,
            std::cmp::Ordering::Equal => true,
        }
    }
}

/// `[outside_trading_hours]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoursConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Overrides the top-level cool-down.
    pub cooldown_minutes: Option<u32>,
    /// Hours of every store without its own entry.
    pub default: Hours,
    /// Hours by store id (the `s` segment of the event source).
    pub stores: BTreeMap<String, Hours>,
}

impl Default for HoursConfig {
    fn default() -> Self {
        HoursConfig {
            enabled: true,
            severity: Severity::Warning,
            cooldown_minutes: None,
            default: Hours {
                open: ClockTime(8 * 60),
                close: ClockTime(23 * 60),
            },
            stores: BTreeMap::new(),
        }
    }
}

/// `[tender_mismatch]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenderConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Overrides the top-level cool-down.
    pub cooldown_minutes: Option<u32>,
}

impl Default for TenderConfig {
    fn default() -> Self {
        TenderConfig {
            enabled: true,
            severity: Severity::Critical,
            cooldown_minutes: None,
        }
    }
}
