//! `transform-restock`: per-store, per-SKU sales velocity and on-hand stock, and restock
//! suggestions when days of cover run low.
//!
//! - `pos.stock.adjusted.v1` sets on hand (`on_hand_milli`, a count) or moves it (`delta_milli`).
//! - `pos.sale.completed.v1` takes each line's quantity off hand and counts it in the day bucket
//!   of the sale's business date.
//! - `pos.refund.completed.v1` puts lines marked `restock` back on hand (velocity is unchanged).
//!
//! After each change the SKU's cover (on hand ÷ daily velocity) is compared with its reorder
//! point (safety days + lead time). On crossing under it, the plugin derives
//! `pos.restock.suggested.v1` (id `{event id}:restock:{sku}`, the triggering event's `source`,
//! extension `causationid`) with a quantity that brings cover up to lead time + target days,
//! in whole packs. It does not suggest again for that store and SKU until cover is back above
//! the point, or until the cool-down has passed. The triggering event always passes on,
//! unchanged. Time comes from the events (business date, or the date of `time`), never the clock.
//!
//! [`config`] holds the configuration, [`stock`] the per-SKU record and its arithmetic.

pub mod config;
pub mod stock;

use config::RestockConfig;
use kaunter_sdk::{Event, Payload, PluginConfig, PluginError, RESTOCK_SUGGESTED, RestockSuggested, host};
use serde::{Serialize, de::DeserializeOwned};
use stock::{Applied, Stock, Suggestion, day_number};

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<RestockConfig> = PluginConfig::new();

/// What one event does to one SKU.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Sold this many thousandths.
    Sold(i64),
    /// This many thousandths came back to the shelf.
    Returned(i64),
    /// Counted: on hand is now this.
    Counted(i64),
    /// Moved by this much.
    Moved(i64),
}

/// Applies stock-moving events; passes every event on, plus any suggestions.
#[kaunter_sdk::transform]
fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
    let config = CONFIG.get()?;
    config.check()?;
    let (date, mut changes) = changes(&event);
    changes.retain(|(sku, _)| !config.ignores(sku));
    if changes.is_empty() {
        return Ok(vec![event]);
    }
    let Some(day) = day_number(date) else {
        return Err(PluginError::Rejected(format!(
            "`{date}` is not a date; restock needs the event's business date or time"
        )));
    };
    let store = event.store().unwrap_or(&event.source).to_owned();
    let mut derived = Vec::new();
    for (sku, change) in changes {
        if let Some(suggestion) = apply(config, &event.id, &store, &sku, day, change)? {
            derived.push(suggested(&event, &sku, suggestion));
        }
    }
    derived.insert(0, event);
    Ok(derived)
}

/// The date the event happened on, and what it does to which SKU (lines of one SKU summed, in
/// the order they first appear).
fn changes(event: &Event) -> (&str, Vec<(String, Change)>) {
    let mut out: Vec<(String, Change)> = Vec::new();
    let mut add = |sku: &str, change: Change| match (out.iter_mut().find(|(s, _)| s == sku), change) {
        (Some((_, Change::Sold(a))), Change::Sold(b)) => *a += b,
        (Some((_, Change::Returned(a))), Change::Returned(b)) => *a += b,
        (None, change) => out.push((sku.to_owned(), change)),
        _ => {}
    };
    let date = match &event.payload {
        Payload::Sale(sale) => {
            for line in &sale.lines {
                add(&line.sku, Change::Sold(line.quantity_milli));
            }
            sale.business_date.as_str()
        }
        Payload::Refund(refund) => {
            for line in refund.restocked_lines() {
                add(&line.sku, Change::Returned(line.quantity_milli.saturating_abs()));
            }
            refund.business_date.as_str()
        }
        Payload::StockAdjusted(s) => {
            add(
                &s.sku,
                s.on_hand_milli.map_or(Change::Moved(s.delta_milli), Change::Counted),
            );
            event.time.as_str()
        }
        _ => "",
    };
    (date, out)
}

/// Applies one change to one SKU's record (once per event id) and checks its cover.
fn apply(
    config: &RestockConfig,
    event_id: &str,
    store: &str,
    sku: &str,
    day: i64,
    change: Change,
) -> Result<Option<Suggestion>, PluginError> {
    let key = format!("s/{store}/{sku}");
    let mut stock: Stock = get(&key)?.unwrap_or_default();
    if let Some(applied) = stock.applied(event_id) {
        return Ok(applied.suggestion.clone());
    }
    let window = config.window_days;
    stock.see_day(day, window);
    match change {
        Change::Sold(units) => stock.sell(day, units, window),
        Change::Returned(units) => {
            if let Some(on_hand) = &mut stock.on_hand_milli {
                *on_hand += units;
            }
        }
        Change::Counted(units) => stock.on_hand_milli = Some(units),
        Change::Moved(units) => match &mut stock.on_hand_milli {
            Some(on_hand) => *on_hand += units,
            None => host::debug(&format!(
                "{sku} at {store}: a move of {units} thousandths with no count yet; on hand stays unknown"
            )),
        },
    }
    let suggestion = stock.check(&config.rule(sku), window);
    stock.remember(
        Applied {
            event: event_id.to_owned(),
            suggestion: suggestion.clone(),
        },
        config.remember_events,
    );
    put(&key, &stock)?;
    if let Some(s) = &suggestion {
        host::info(&format!("restock {sku} at {store}: {}", s.reason));
    }
    Ok(suggestion)
}

/// `pos.restock.suggested.v1` derived from `event` for one SKU.
fn suggested(event: &Event, sku: &str, suggestion: Suggestion) -> Event {
    let mut derived = Event {
        id: format!("{}:restock:{sku}", event.id),
        source: event.source.clone(),
        ty: RESTOCK_SUGGESTED.into(),
        time: event.time.clone(),
        subject: Some(sku.to_owned()),
        partition_key: String::new(),
        extensions: vec![("causationid".into(), event.id.clone())],
        payload: Payload::RestockSuggested(RestockSuggested {
            sku: sku.to_owned(),
            on_hand_milli: suggestion.on_hand_milli,
            suggested_milli: suggestion.suggested_milli,
            reason: suggestion.reason,
        }),
    };
    derived.partition_key = derived.default_partition_key();
    derived
}

/// Reads a JSON record; one that does not parse is reported, not silently replaced.
fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
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
fn put<T: Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
    let bytes = serde_json::to_vec(value).map_err(|e| PluginError::Rejected(format!("cannot encode `{key}`: {e}")))?;
    host::kv_set(key, &bytes).map_err(kv_error)
}

/// A full quota is the operator's to fix; an unavailable store is worth retrying.
fn kv_error(e: host::KvError) -> PluginError {
    match e {
        host::KvError::QuotaExceeded(m) => PluginError::Rejected(format!(
            "kv quota exceeded ({m}); raise limits.kv_quota_bytes or lower window_days / remember_events"
        )),
        host::KvError::Unavailable(m) => PluginError::Transient(format!("kv unavailable: {m}")),
    }
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
