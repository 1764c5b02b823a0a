//! The plugin's configuration (`[plugins.config]`): how points are earned, which SKUs and tenders
//! earn nothing, the tiers, and how long order records are kept for refunds.

use kaunter_sdk::{PluginError, SaleLine, TenderMethod};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Everything the operator configures. See the README for an example table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoyaltyConfig {
    /// ISO 4217 code of the currency points are earned in; sales in another currency earn nothing.
    pub currency: String,
    /// How many minor units make one earning unit (100 = HK$1.00).
    #[serde(default = "default_unit_minor")]
    pub unit_minor: i64,
    /// Points per earning unit of net spend, before multipliers.
    #[serde(default = "default_points_per_unit")]
    pub points_per_unit: i64,
    /// Category → multiplier in percent (200 = double points, 0 = no points); others earn 100 %.
    #[serde(default)]
    pub category_multipliers_percent: BTreeMap<String, i64>,
    /// SKU prefix → category, for lines without a `category` attribute (longest prefix wins).
    #[serde(default)]
    pub category_by_sku_prefix: BTreeMap<String, String>,
    /// SKUs that never earn: exact codes, or prefixes ending in `*` (`GIFTCARD-*`).
    #[serde(default)]
    pub exclude_skus: Vec<String>,
    /// Tender methods whose share of the sale earns nothing (`voucher`, `points`, or an `other` name).
    #[serde(default)]
    pub exclude_tenders: Vec<String>,
    /// Tiers in ascending order of threshold; the first is where every member starts.
    #[serde(default = "default_tiers")]
    pub tiers: Vec<Tier>,
    /// What tier thresholds are compared with.
    #[serde(default)]
    pub tier_basis: TierBasis,
    /// Days (by business date) an order's earnings are kept so refunds can reverse them.
    #[serde(default = "default_refund_window_days")]
    pub refund_window_days: i64,
    /// Most order records kept per member (the oldest go first).
    #[serde(default = "default_max_orders_per_member")]
    pub max_orders_per_member: usize,
    /// Events remembered per member with their results, so a replay of an event whose order
    /// record was not written (a crash or a full quota between the two writes) is recognised.
    #[serde(default = "default_remember_events")]
    pub remember_events: usize,
    /// Derive a `pos.member.updated.v1` event when a member's tier changes.
    #[serde(default)]
    pub emit_tier_changes: bool,
}

/// One tier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Name, as written into `loyaltytier`.
    pub name: String,
    /// Lifetime points (or spend in minor units) from which a member holds this tier.
    pub threshold: i64,
    /// Multiplier on points earned while in this tier, in percent.
    #[serde(default = "default_percent")]
    pub multiplier_percent: i64,
}

/// What tier thresholds measure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierBasis {
    /// Points earned over the membership, net of reversals.
    #[default]
    LifetimePoints,
    /// Eligible net spend over the membership, in minor units, net of refunds.
    LifetimeSpendMinor,
}

fn default_unit_minor() -> i64 {
    100
}
fn default_points_per_unit() -> i64 {
    1
}
fn default_percent() -> i64 {
    100
}
fn default_refund_window_days() -> i64 {
    90
}
fn default_max_orders_per_member() -> usize {
    100
}
fn default_remember_events() -> usize {
    16
}
fn default_tiers() -> Vec<Tier> {
    vec![Tier {
        name: "member".into(),
        threshold: 0,
        multiplier_percent: 100,
    }]
}

/// Largest multiplier accepted (100×), so the integer arithmetic cannot overflow.
const MAX_PERCENT: i64 = 10_000;

impl LoyaltyConfig {
    /// Checks what serde cannot: positive units, sane multipliers, tiers in order.
    pub fn check(&self) -> Result<(), PluginError> {
        let bad = |m: String| Err(PluginError::InvalidConfig(m));
        if self.unit_minor <= 0 {
            return bad(format!("unit_minor must be positive, got {}", self.unit_minor));
        }
        if !(0..=1_000_000).contains(&self.points_per_unit) {
            return bad(format!(
                "points_per_unit must be 0 to 1000000, got {}",
                self.points_per_unit
            ));
        }
        if self.refund_window_days < 0 {
            return bad(format!(
                "refund_window_days must not be negative, got {}",
                self.refund_window_days
            ));
        }
        if !(1..=1024).contains(&self.remember_events) {
            return bad(format!(
                "remember_events must be 1 to 1024, got {}",
                self.remember_events
            ));
        }
        for (category, percent) in &self.category_multipliers_percent {
            if !(0..=MAX_PERCENT).contains(percent) {
                return bad(format!(
                    "category_multipliers_percent.{category} must be 0 to {MAX_PERCENT}, got {percent}"
                ));
            }
        }
        if self.tiers.is_empty() {
            return bad("tiers must name at least one tier".into());
        }
        for pair in self.tiers.windows(2) {
            if pair[1].threshold <= pair[0].threshold {
                return bad(format!(
                    "tiers must be listed in ascending order of threshold: `{}` ({}) comes after `{}` ({})",
                    pair[1].name, pair[1].threshold, pair[0].name, pair[0].threshold
                ));
            }
        }
        for tier in &self.tiers {
            if !(0..=MAX_PERCENT).contains(&tier.multiplier_percent) {
                return bad(format!(
                    "tier `{}`: multiplier_percent must be 0 to {MAX_PERCENT}, got {}",
                    tier.name, tier.multiplier_percent
                ));
            }
        }
        Ok(())
    }

    /// The tier held at a lifetime value: the highest whose threshold it reaches (else the first).
    pub fn tier_at(&self, lifetime: i64) -> &Tier {
        self.tiers
            .iter()
            .rev()
            .find(|t| lifetime >= t.threshold)
            .unwrap_or(&self.tiers[0])
    }

    /// Whether a SKU is excluded from earning.
    pub fn excludes_sku(&self, sku: &str) -> bool {
        self.exclude_skus.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => sku.starts_with(prefix),
            None => sku == pattern,
        })
    }

    /// Whether a tender method is excluded from earning.
    pub fn excludes_tender(&self, method: &TenderMethod) -> bool {
        let name = method_name(method);
        self.exclude_tenders.iter().any(|t| t.eq_ignore_ascii_case(name))
    }

    /// A line's category: its `category` attribute, else the longest matching SKU prefix.
    pub fn category<'a>(&'a self, line: &'a SaleLine) -> Option<&'a str> {
        line.attribute("category").or_else(|| {
            self.category_by_sku_prefix
                .iter()
                .filter(|(prefix, _)| line.sku.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, category)| category.as_str())
        })
    }

    /// The category multiplier for a line, in percent.
    pub fn category_percent(&self, line: &SaleLine) -> i64 {
        self.category(line)
            .and_then(|c| self.category_multipliers_percent.get(c))
            .copied()
            .unwrap_or(100)
    }
}

/// A tender method as configuration names it (the JSON spelling: `cash`, `alipay_hk`, ...).
pub fn method_name(method: &TenderMethod) -> &str {
    match method {
        TenderMethod::Cash => "cash",
        TenderMethod::Card => "card",
        TenderMethod::Octopus => "octopus",
        TenderMethod::Fps => "fps",
        TenderMethod::AlipayHk => "alipay_hk",
        TenderMethod::WechatPay => "wechat_pay",
        TenderMethod::Voucher => "voucher",
        TenderMethod::Points => "points",
        TenderMethod::Other(name) => name,
    }
}
