//! Refund/void spikes: a sliding window of refunds and voids per cashier and per store, kept in kv.
//!
//! Key `w:s:{store}` holds the store's window and `w:c:{store}:{cashier}` a cashier's, each a
//! JSON list of [`Entry`] (event id, event time, amount refunded). Time is the event's `time`, so
//! the window is the same on every run; an event already in the window (a run after a crash, a
//! replay) is not counted twice. On every write, entries older than the window (measured from the
//! newest time seen) are dropped and at most `max_entries` are kept, the oldest going first, so a
//! key never holds more than `max_entries` × ~90 bytes; a window left empty is deleted.

use crate::config::{SpikeConfig, Threshold};
use crate::{Finding, Scope};
use kaunter_sdk::{Event, Money, Payload, PluginError, host};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One refund or void in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Event id.
    pub id: String,
    /// Event time, ms since the epoch.
    pub t: i64,
    /// Amount refunded (positive minor units; 0 for a void).
    pub a: i64,
    /// Currency of `a` (empty for a void).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub c: String,
    /// Exponent of `a`.
    #[serde(default)]
    pub e: u8,
    /// Whether it was a void.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub v: bool,
}

/// The refund or void an event is, with its cashier; `None` for other events.
pub fn entry_of(event: &Event, epoch_ms: i64) -> Option<(Entry, Option<&str>)> {
    match &event.payload {
        Payload::Refund(refund) => {
            let amount = refund
                .amount_refunded()
                .unwrap_or_else(|| Money::zero(&refund.totals.total.currency, refund.totals.total.exponent));
            let entry = Entry {
                id: event.id.clone(),
                t: epoch_ms,
                a: amount.amount_minor,
                c: amount.currency,
                e: amount.exponent,
                v: false,
            };
            Some((entry, refund.cashier_id.as_deref()))
        }
        Payload::VoidSale(void) => {
            let entry = Entry {
                id: event.id.clone(),
                t: epoch_ms,
                a: 0,
                c: String::new(),
                e: 0,
                v: true,
            };
            Some((entry, void.cashier_id.as_deref()))
        }
        _ => None,
    }
}

/// Adds the event to its cashier's and store's windows; a finding for each window at or over its
/// threshold.
pub fn observe(config: &SpikeConfig, event: &Event, epoch_ms: i64, store: &str) -> Result<Vec<Finding>, PluginError> {
    let Some((entry, cashier)) = entry_of(event, epoch_ms) else {
        return Ok(Vec::new());
    };
    let mut findings = Vec::new();
    if let Some(cashier) = cashier {
        let scope = Scope::cashier(store, cashier);
        let key = format!("w:c:{store}:{cashier}");
        findings.extend(observe_one(config, &config.per_cashier, &key, &entry, scope)?);
    }
    let key = format!("w:s:{store}");
    findings.extend(observe_one(
        config,
        &config.per_store,
        &key,
        &entry,
        Scope::store(store),
    )?);
    Ok(findings)
}

fn observe_one(
    config: &SpikeConfig,
    threshold: &Threshold,
    key: &str,
    entry: &Entry,
    scope: Scope,
) -> Result<Option<Finding>, PluginError> {
    let window_ms = i64::from(config.window_minutes) * 60_000;
    let mut entries = load(key)?;
    if !entries.iter().any(|e| e.id == entry.id) {
        entries.push(entry.clone());
    }
    let newest = entries.iter().map(|e| e.t).max().unwrap_or(entry.t);
    entries.retain(|e| e.t > newest - window_ms);
    entries.sort_by(|a, b| (a.t, &a.id).cmp(&(b.t, &b.id)));
    let excess = entries.len().saturating_sub(config.max_entries.max(1));
    entries.drain(..excess);
    store(key, &entries)?;

    // The window as of this event: (t - window, t].
    let in_window: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.t > entry.t - window_ms && e.t <= entry.t)
        .collect();
    let count = in_window.len();
    let voids = in_window.iter().filter(|e| e.v).count();
    let refunds = count - voids;
    let (currency, exponent) = if entry.v {
        in_window
            .iter()
            .find(|e| !e.v)
            .map_or((String::new(), 0), |e| (e.c.clone(), e.e))
    } else {
        (entry.c.clone(), entry.e)
    };
    let amount: i64 = in_window
        .iter()
        .filter(|e| !e.v && e.c == currency && e.e == exponent)
        .map(|e| e.a)
        .fold(0i64, i64::saturating_add);
    let over_count = threshold.count.is_some_and(|n| count >= n as usize);
    let over_amount = threshold.amount_minor.is_some_and(|n| refunds > 0 && amount >= n);
    if !over_count && !over_amount {
        return Ok(None);
    }
    let money = |minor: i64| Money::new(minor, &currency, exponent);
    let mut limits = Vec::new();
    if let Some(n) = threshold.count {
        limits.push(format!("{n} refunds/voids"));
    }
    if let Some(n) = threshold.amount_minor {
        limits.push(money(n).to_string());
    }
    let description = format!(
        "{}: {count} refunds/voids ({refunds} refund{}, {voids} void{}) totalling {} within {} minutes, at or over the threshold of {}",
        scope.describe(),
        plural(refunds),
        plural(voids),
        money(amount),
        config.window_minutes,
        limits.join(" or "),
    );
    let ids: Vec<&str> = in_window.iter().rev().take(20).map(|e| e.id.as_str()).collect();
    let evidence = json!({
        "scope": scope.label,
        "store": scope.store,
        "cashier": scope.cashier,
        "window_minutes": config.window_minutes,
        "count": count,
        "refunds": refunds,
        "voids": voids,
        "amount_minor": amount,
        "currency": currency,
        "exponent": exponent,
        "threshold_count": threshold.count,
        "threshold_amount_minor": threshold.amount_minor,
        "events": ids,
    });
    Ok(Some(Finding {
        kind: crate::REFUND_VOID_SPIKE,
        scope,
        description,
        evidence,
    }))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The window under `key` (empty when absent or unreadable: a damaged value starts afresh).
fn load(key: &str) -> Result<Vec<Entry>, PluginError> {
    match host::kv_get(key).map_err(crate::kv_error)? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            host::warn(&format!("kv `{key}` is not a refund window ({e}); starting it afresh"));
            Vec::new()
        })),
        None => Ok(Vec::new()),
    }
}

fn store(key: &str, entries: &[Entry]) -> Result<(), PluginError> {
    if entries.is_empty() {
        return host::kv_delete(key).map_err(crate::kv_error);
    }
    let bytes = serde_json::to_vec(entries).map_err(|e| PluginError::Transient(format!("encoding {key}: {e}")))?;
    crate::kv_set(key, &bytes)
}
