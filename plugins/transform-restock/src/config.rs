//! The plugin's configuration (`[plugins.config]`): the velocity window, the reorder point and
//! target in days of cover, lead time, pack size and cool-down, with per-SKU overrides.

use kaunter_sdk::PluginError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Everything the operator configures. See the README for an example table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestockConfig {
    /// Days of sales (by business date) the velocity is measured over.
    #[serde(default = "default_window_days")]
    pub window_days: i64,
    /// Default [`Rule::reorder_point_days`].
    #[serde(default = "default_reorder_point_days")]
    pub reorder_point_days: i64,
    /// Default [`Rule::lead_time_days`].
    #[serde(default)]
    pub lead_time_days: i64,
    /// Default [`Rule::target_days`].
    #[serde(default = "default_target_days")]
    pub target_days: i64,
    /// Default [`Rule::pack_size`].
    #[serde(default = "default_pack_size")]
    pub pack_size: i64,
    /// Default [`Rule::cooldown_days`].
    #[serde(default)]
    pub cooldown_days: i64,
    /// Events remembered per store and SKU, so a replay does not count a sale twice.
    #[serde(default = "default_remember_events")]
    pub remember_events: usize,
    /// SKUs that are not stock (gift cards, bag levies, services): exact codes, or prefixes
    /// ending in `*`. Nothing is kept or suggested for them.
    #[serde(default)]
    pub ignore_skus: Vec<String>,
    /// Per-SKU overrides of the rules; fields left out take the defaults.
    #[serde(default)]
    pub skus: BTreeMap<String, Override>,
}

/// The rules for one SKU, in whole days and units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Suggest when cover falls under this many days beyond the lead time (safety cover).
    pub reorder_point_days: i64,
    /// Days from order to shelf.
    pub lead_time_days: i64,
    /// Days of cover a suggestion brings the SKU up to once it arrives.
    pub target_days: i64,
    /// Suggestions are whole packs of this many units.
    pub pack_size: i64,
    /// Suggest again after this many days under the point (0: once per crossing only).
    pub cooldown_days: i64,
}

/// A per-SKU override: any field of [`Rule`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// See [`Rule::reorder_point_days`].
    pub reorder_point_days: Option<i64>,
    /// See [`Rule::lead_time_days`].
    pub lead_time_days: Option<i64>,
    /// See [`Rule::target_days`].
    pub target_days: Option<i64>,
    /// See [`Rule::pack_size`].
    pub pack_size: Option<i64>,
    /// See [`Rule::cooldown_days`].
    pub cooldown_days: Option<i64>,
}

fn default_window_days() -> i64 {
    28
}
fn default_remember_events() -> usize {
    32
}
fn default_reorder_point_days() -> i64 {
    3
}
fn default_target_days() -> i64 {
    14
}
fn default_pack_size() -> i64 {
    1
}

impl Rule {
    /// Days of cover under which a suggestion is made: safety cover plus lead time.
    pub fn trigger_days(&self) -> i64 {
        self.reorder_point_days + self.lead_time_days
    }

    /// Days of cover a suggestion aims for, counted from now: lead time plus target.
    pub fn order_up_to_days(&self) -> i64 {
        self.target_days + self.lead_time_days
    }

    fn check(&self, at: &str) -> Result<(), PluginError> {
        let bad = |m: String| Err(PluginError::InvalidConfig(format!("{at}{m}")));
        for (name, value) in [
            ("reorder_point_days", self.reorder_point_days),
            ("lead_time_days", self.lead_time_days),
            ("cooldown_days", self.cooldown_days),
        ] {
            if !(0..=3650).contains(&value) {
                return bad(format!("{name} must be 0 to 3650, got {value}"));
            }
        }
        if self.target_days <= self.reorder_point_days || self.target_days > 3650 {
            return bad(format!(
                "target_days ({}) must be above reorder_point_days ({}) and at most 3650",
                self.target_days, self.reorder_point_days
            ));
        }
        if !(1..=1_000_000).contains(&self.pack_size) {
            return bad(format!("pack_size must be 1 to 1000000 units, got {}", self.pack_size));
        }
        Ok(())
    }
}

impl RestockConfig {
    /// Checks what serde cannot, for the defaults and every override.
    pub fn check(&self) -> Result<(), PluginError> {
        if !(1..=366).contains(&self.window_days) {
            return Err(PluginError::InvalidConfig(format!(
                "window_days must be 1 to 366, got {}",
                self.window_days
            )));
        }
        if self.remember_events == 0 || self.remember_events > 1024 {
            return Err(PluginError::InvalidConfig(format!(
                "remember_events must be 1 to 1024, got {}",
                self.remember_events
            )));
        }
        self.defaults().check("")?;
        for sku in self.skus.keys() {
            self.rule(sku).check(&format!("skus.{sku}: "))?;
        }
        Ok(())
    }

    /// Whether a SKU is not tracked.
    pub fn ignores(&self, sku: &str) -> bool {
        self.ignore_skus.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => sku.starts_with(prefix),
            None => sku == pattern,
        })
    }

    /// The rules for SKUs without an override.
    pub fn defaults(&self) -> Rule {
        Rule {
            reorder_point_days: self.reorder_point_days,
            lead_time_days: self.lead_time_days,
            target_days: self.target_days,
            pack_size: self.pack_size,
            cooldown_days: self.cooldown_days,
        }
    }

    /// The rules for a SKU: its override over the defaults.
    pub fn rule(&self, sku: &str) -> Rule {
        let d = self.defaults();
        let Some(o) = self.skus.get(sku) else {
            return d;
        };
        Rule {
            reorder_point_days: o.reorder_point_days.unwrap_or(d.reorder_point_days),
            lead_time_days: o.lead_time_days.unwrap_or(d.lead_time_days),
            target_days: o.target_days.unwrap_or(d.target_days),
            pack_size: o.pack_size.unwrap_or(d.pack_size),
            cooldown_days: o.cooldown_days.unwrap_or(d.cooldown_days),
        }
    }
}
