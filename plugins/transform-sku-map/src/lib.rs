//! `transform-sku-map`: rewrites POS SKU codes to the merchant's unified SKUs.
//!
//! Configuration (`[plugins.config]`):
//! - `table`: POS SKU → unified SKU.
//! - `prefix_strip` (optional): prefixes removed before looking a SKU up (`LEGACY-4891…`).
//!
//! Every mapped line keeps its original code in the `sku.original` attribute. A SKU with no entry
//! is never dropped: the line keeps its code and gets `sku.unmapped = "true"`, and the event gets
//! the extension `skuunmapped` with the number of such lines, so a sink or an operator can chase
//! the missing mapping. Sales, refunds, stock adjustments and restock suggestions are mapped;
//! other events pass through untouched.

use kaunter_sdk::{Event, Payload, PluginConfig, PluginError, SaleLine, host};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuMapConfig {
    /// POS SKU → unified SKU.
    pub table: BTreeMap<String, String>,
    /// Prefixes stripped before lookup.
    #[serde(default)]
    pub prefix_strip: Vec<String>,
}

impl SkuMapConfig {
    /// The unified SKU for a POS SKU, if the table has one.
    pub fn lookup(&self, sku: &str) -> Option<&str> {
        if let Some(hit) = self.table.get(sku) {
            return Some(hit);
        }
        self.prefix_strip
            .iter()
            .filter_map(|prefix| sku.strip_prefix(prefix.as_str()))
            .find_map(|rest| self.table.get(rest).map(String::as_str))
    }

    /// Maps one SKU field in place; returns whether it was mapped.
    fn map_sku(&self, sku: &mut String) -> bool {
        match self.lookup(sku) {
            Some(unified) => {
                *sku = unified.to_owned();
                true
            }
            None => false,
        }
    }

    /// Maps one line; returns whether it stayed unmapped.
    fn map_line(&self, line: &mut SaleLine) -> bool {
        let original = line.sku.clone();
        if self.map_sku(&mut line.sku) {
            line.set_attribute("sku.original", &original);
            false
        } else {
            line.set_attribute("sku.unmapped", "true");
            true
        }
    }

    /// Maps every SKU in the event; returns the number of unmapped lines or fields.
    pub fn map_event(&self, event: &mut Event) -> usize {
        let unmapped = match &mut event.payload {
            Payload::Sale(sale) => sale.lines.iter_mut().map(|l| self.map_line(l)).filter(|&u| u).count(),
            Payload::Refund(refund) => refund
                .lines
                .iter_mut()
                .map(|l| self.map_line(&mut l.line))
                .filter(|&u| u)
                .count(),
            Payload::StockAdjusted(s) => usize::from(!self.map_sku(&mut s.sku)),
            Payload::RestockSuggested(r) => usize::from(!self.map_sku(&mut r.sku)),
            _ => 0,
        };
        if unmapped > 0 {
            event.extensions.retain(|(k, _)| k != "skuunmapped");
            event.extensions.push(("skuunmapped".into(), unmapped.to_string()));
        }
        unmapped
    }
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<SkuMapConfig> = PluginConfig::new();

/// Maps the SKUs of one event; the event always passes on.
#[kaunter_sdk::transform]
fn handle(mut event: Event) -> Result<Event, PluginError> {
    let unmapped = CONFIG.get()?.map_event(&mut event);
    if unmapped > 0 {
        host::debug(&format!("{unmapped} SKU(s) without a mapping in event {}", event.id));
    }
    Ok(event)
}
kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SkuMapConfig {
        serde_json::from_value(serde_json::json!({
            "table": {"111": "PANADOL-500"}, "prefix_strip": ["LEGACY-"]
        }))
        .unwrap()
    }

    #[test]
    fn the_exported_function_maps_with_the_configured_table() {
        let fake = kaunter_sdk::testing::FakeHost::new()
            .config(serde_json::json!({ "table": {"4891234500017": "PANADOL-500-20"} }))
            .install();
        let text = include_str!("../../../samples/sale.json");
        let defaults = kaunter_sdk::Defaults {
            id: "unused".into(),
            now: "2026-11-25T00:00:00Z".into(),
        };
        let event = Event::from_json(
            serde_json::from_str(text).unwrap(),
            kaunter_sdk::Dialect::Canonical,
            &defaults,
        )
        .unwrap();
        let mapped = handle(event).unwrap();
        let Payload::Sale(sale) = &mapped.payload else {
            panic!("not a sale")
        };
        assert_eq!(sale.lines[0].sku, "PANADOL-500-20");
        assert_eq!(sale.lines[0].attribute("sku.original"), Some("4891234500017"));
        assert!(fake.logs().is_empty());
    }

    #[test]
    fn lookup_strips_prefixes() {
        let c = config();
        assert_eq!(c.lookup("111"), Some("PANADOL-500"));
        assert_eq!(c.lookup("LEGACY-111"), Some("PANADOL-500"));
        assert_eq!(c.lookup("222"), None);
    }
}
