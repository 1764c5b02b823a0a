//! `connector-shopify-inventory`: applies POS stock changes to Shopify inventory with the GraphQL
//! Admin API mutation `inventoryAdjustQuantities` (quantity name `available`).
//!
//! What it maps:
//! - `pos.stock.adjusted.v1`: `delta_milli / 1000` units of the SKU, with a Shopify reason chosen
//!   from the POS reason ([`reason_for`]).
//! - `pos.sale.completed.v1` (config `sales`, default on): each line takes its quantity out of
//!   `available` (reason `correction`); lines of one SKU are summed.
//! - `pos.refund.completed.v1` (config `refunds`, default on): each line with `restock = true` puts
//!   its quantity back (reason `restock`); lines without `restock` leave stock alone.
//! - Anything else is skipped on purpose: `Ok` with no status and no remote id, and a debug log.
//!
//! The store (from the event `source`) picks the Shopify location in `locations`. SKUs become
//! inventory item ids through one `inventoryItems(query: "sku:…")` lookup, cached in the plugin's
//! kv under `sku:{sku}`. The delivery's idempotency key goes in the `@idempotent(key:)` directive,
//! which Shopify enforces, and in the `referenceDocumentUri` (`gid://kaunter/Delivery/{key}`) for
//! the inventory history. The directive exists from API version `2026-01` (required from
//! `2026-04`), so older `api_version`s are refused as invalid configuration: without it a retry
//! after a lost answer would adjust stock twice. [`graphql`] maps Shopify's answers (HTTP status,
//! top-level `errors`, `userErrors`) to what the host should do.

pub mod graphql;

use graphql::{Adjustment, Change};
use kaunter_sdk::{DeliveryContext, DeliveryError, Event, Payload, PluginConfig, Receipt, StockReason, host};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyConfig {
    /// The shop's handle: `acme-hk` for `https://acme-hk.myshopify.com`.
    #[serde(default)]
    pub shop: Option<String>,
    /// Overrides the URL built from `shop` (tests point it at a local fake).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Admin API version, e.g. `2026-10`: `2026-01` or later, or `unstable` ([`ShopifyConfig::check`]).
    #[serde(default = "default_version")]
    pub api_version: String,
    /// Store id (from the event source) → Shopify location id (`gid://shopify/Location/…` or the
    /// bare number).
    pub locations: BTreeMap<String, String>,
    /// Whether sales take stock out.
    #[serde(default = "yes")]
    pub sales: bool,
    /// Whether refunded lines marked `restock` put stock back.
    #[serde(default = "yes")]
    pub refunds: bool,
    /// Leave out (with a warning) SKUs Shopify does not know, instead of dead-lettering the event.
    #[serde(default)]
    pub skip_unknown_skus: bool,
}

fn default_version() -> String {
    "2026-10".into()
}

fn yes() -> bool {
    true
}

impl ShopifyConfig {
    /// Refuses an `api_version` before `2026-01` (or not an API version at all): those versions
    /// have no `@idempotent` directive, so a retry after a lost answer would adjust stock twice.
    pub fn check(&self) -> Result<(), DeliveryError> {
        if graphql::supported_version(&self.api_version) {
            return Ok(());
        }
        Err(DeliveryError::Rejected(format!(
            "invalid shopify config: `api_version` = \"{}\" is not supported: inventory adjustments need the @idempotent key, which Shopify takes from API version {} on (without it a retry after a lost answer adjusts stock twice); set `api_version` to \"{}\" or later (the default is \"{}\"), in the format YYYY-MM",
            self.api_version,
            graphql::FIRST_IDEMPOTENT_VERSION,
            graphql::FIRST_IDEMPOTENT_VERSION,
            default_version(),
        )))
    }

    /// `{base}/admin/api/{version}/graphql.json`.
    pub fn endpoint(&self) -> Result<String, DeliveryError> {
        let base = match (&self.base_url, &self.shop) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(shop)) => format!("https://{shop}.myshopify.com"),
            (None, None) => {
                return Err(DeliveryError::Rejected(
                    "invalid shopify config: set `shop` (or `base_url`)".into(),
                ));
            }
        };
        Ok(format!("{base}/admin/api/{}/graphql.json", self.api_version))
    }
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<ShopifyConfig> = PluginConfig::new();

/// Applies the event's stock change to the store's Shopify location.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid shopify config: {e:?}")))?;
    config.check()?;
    let Some(StockChanges { reason, deltas }) = stock_changes(&event, config)? else {
        host::debug(&format!("`{}` changes no Shopify stock; skipped", event.ty));
        return Ok(skipped());
    };
    let store = event.store().unwrap_or_default();
    let location = config.locations.get(store).ok_or_else(|| {
        DeliveryError::Rejected(format!(
            "no Shopify location for store `{store}`: add it to `locations` in the plugin config"
        ))
    })?;
    let endpoint = config.endpoint()?;
    let items = graphql::inventory_items(&endpoint, deltas.keys().map(String::as_str))?;
    let mut changes = Vec::new();
    for (sku, delta) in &deltas {
        match items.ids.get(sku) {
            Some(id) => changes.push(Change {
                sku: sku.clone(),
                delta: *delta,
                inventory_item_id: id.clone(),
            }),
            None if config.skip_unknown_skus => host::warn(&format!(
                "SKU `{sku}` is not in Shopify; its change of {delta} is left out"
            )),
            None => {
                return Err(DeliveryError::Rejected(format!(
                    "SKU `{sku}` matches no Shopify inventory item (set `skip_unknown_skus` to leave such lines out)"
                )));
            }
        }
    }
    if changes.is_empty() {
        host::debug("no SKU of this event is in Shopify; nothing to adjust");
        return Ok(skipped());
    }
    let adjustment = Adjustment {
        reason,
        location_id: location_gid(location),
        changes,
        idempotency_key: context.idempotency_key.clone(),
    };
    graphql::adjust(&endpoint, &config.api_version, &adjustment, &items)
}

/// A deliberate skip: delivered, nothing sent.
fn skipped() -> Receipt {
    Receipt {
        status: None,
        remote_id: None,
    }
}

/// What one event does to stock.
#[derive(Debug, PartialEq)]
pub struct StockChanges {
    /// Shopify's reason for the adjustment.
    pub reason: &'static str,
    /// SKU → change in whole units (never zero).
    pub deltas: BTreeMap<String, i64>,
}

/// The Shopify reason and the change per SKU, or `None` when the event changes no stock this
/// plugin handles.
pub fn stock_changes(event: &Event, config: &ShopifyConfig) -> Result<Option<StockChanges>, DeliveryError> {
    let (reason, lines): (&'static str, Vec<(&str, i64)>) = match &event.payload {
        Payload::StockAdjusted(s) => (reason_for(s.reason), vec![(s.sku.as_str(), s.delta_milli)]),
        Payload::Sale(sale) if config.sales => (
            "correction",
            sale.lines.iter().map(|l| (l.sku.as_str(), -l.quantity_milli)).collect(),
        ),
        Payload::Refund(refund) if config.refunds => (
            "restock",
            refund
                .lines
                .iter()
                .filter(|l| l.restock)
                .map(|l| (l.line.sku.as_str(), l.line.quantity_milli.abs()))
                .collect(),
        ),
        _ => return Ok(None),
    };
    let mut milli: BTreeMap<String, i64> = BTreeMap::new();
    for (sku, quantity) in lines {
        *milli.entry(sku.to_owned()).or_default() += quantity;
    }
    let mut units = BTreeMap::new();
    for (sku, quantity) in milli {
        if quantity % 1000 != 0 {
            return Err(DeliveryError::Rejected(format!(
                "SKU `{sku}` changes by {quantity} thousandths; Shopify counts whole units"
            )));
        }
        if quantity != 0 {
            units.insert(sku, quantity / 1000);
        }
    }
    Ok((!units.is_empty()).then_some(StockChanges { reason, deltas: units }))
}

/// Shopify's adjustment reason for a POS stock reason.
pub fn reason_for(reason: StockReason) -> &'static str {
    match reason {
        StockReason::Receipt => "received",
        StockReason::Count => "cycle_count_available",
        StockReason::Shrinkage => "shrinkage",
        StockReason::TransferIn | StockReason::TransferOut => "correction",
        StockReason::Other => "other",
    }
}

/// A location id as a global id (`12345` → `gid://shopify/Location/12345`).
pub fn location_gid(id: &str) -> String {
    if id.starts_with("gid://") {
        id.to_owned()
    } else {
        format!("gid://shopify/Location/{id}")
    }
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
