//! `transform-anomaly`: watches sales, refunds and voids and derives `pos.anomaly.detected.v1`
//! events for what a store manager should look at:
//!
//! - `refund_void_spike`: too many refunds/voids (or too much refunded) by one cashier or one
//!   store within a sliding window of event time ([`spike`], state in kv);
//! - `large_discount`: a line or sale discount over a share of gross, or over an amount;
//! - `outside_trading_hours`: a sale rung up outside the store's opening hours, in local time
//!   ([`clock`] explains how local time is found without a time-zone database);
//! - `tender_mismatch`: tenders that do not add up to total + change, or change without cash.
//!
//! The input event always passes on unchanged, first. Each alert is a derived event with id
//! `{input id}:anomaly:{kind}:{cashier|store}`, the input's `source` (so it carries the store),
//! the input's `time`, extension `causationid` = the input id and extension `evidence` = the
//! numbers as compact JSON; the payload's `description` says the same in words. After an alert,
//! the same kind for the same cashier (or store, when the event names no cashier) stays quiet for
//! `cooldown_minutes` of event time, so a spike gives one chat message, not fifty. The cool-down
//! record remembers which event fired, so handling that event again (after a crash, on replay)
//! derives the same alert again, with the same id, which the log stores once.

pub mod checks;
pub mod clock;
pub mod config;
pub mod spike;

use config::AnomalyConfig;
use kaunter_sdk::host::{self, KvError};
use kaunter_sdk::{ANOMALY_DETECTED, AnomalyDetected, Event, Payload, PluginConfig, PluginError, Severity};
use serde::{Deserialize, Serialize};

/// Kind of a refund/void spike alert.
pub const REFUND_VOID_SPIKE: &str = "refund_void_spike";
/// Kind of a large discount alert.
pub const LARGE_DISCOUNT: &str = "large_discount";
/// Kind of a sale outside trading hours.
pub const OUTSIDE_TRADING_HOURS: &str = "outside_trading_hours";
/// Kind of a tender mismatch.
pub const TENDER_MISMATCH: &str = "tender_mismatch";

/// Who an alert is about: a cashier in a store, or a whole store. The cool-down is per scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `cashier` or `store` (the last part of the derived id).
    pub label: &'static str,
    /// Store id.
    pub store: String,
    /// Cashier id, for a cashier scope.
    pub cashier: Option<String>,
}

impl Scope {
    /// A cashier in a store.
    pub fn cashier(store: &str, cashier: &str) -> Scope {
        Scope {
            label: "cashier",
            store: store.to_owned(),
            cashier: Some(cashier.to_owned()),
        }
    }

    /// A whole store.
    pub fn store(store: &str) -> Scope {
        Scope {
            label: "store",
            store: store.to_owned(),
            cashier: None,
        }
    }

    /// The cashier when known, else the store.
    pub fn of(store: &str, cashier: Option<&str>) -> Scope {
        cashier.map_or_else(|| Scope::store(store), |c| Scope::cashier(store, c))
    }

    /// `Cashier c-07 at store hk-001` or `Store hk-001`.
    pub fn describe(&self) -> String {
        match &self.cashier {
            Some(cashier) => format!("Cashier {cashier} at store {}", self.store),
            None => format!("Store {}", self.store),
        }
    }

    fn key(&self) -> String {
        match &self.cashier {
            Some(cashier) => format!("{}:{cashier}", self.store),
            None => self.store.clone(),
        }
    }
}

/// One thing a detector saw, before the cool-down decides whether it becomes an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// One of the kind constants.
    pub kind: &'static str,
    /// Who it is about.
    pub scope: Scope,
    /// The evidence in words.
    pub description: String,
    /// The evidence as numbers.
    pub evidence: serde_json::Value,
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<AnomalyConfig> = PluginConfig::new();

/// Passes the event on and appends an alert for each finding out of its cool-down.
#[kaunter_sdk::transform]
fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
    let config = CONFIG.get()?;
    let at = clock::parse_rfc3339(&event.time);
    if at.is_none() && !matches!(event.payload, Payload::Custom(_)) {
        host::warn(&format!(
            "event time `{}` is not RFC 3339; spikes, trading hours and cool-downs skip this event",
            event.time
        ));
    }
    let mut alerts = Vec::new();
    for (finding, severity, cooldown) in detect(config, &event, at)? {
        let fire = match at {
            Some(at) => cooled_down(&finding, &event.id, at.epoch_ms, cooldown)?,
            None => true,
        };
        if fire {
            alerts.push(derive(&event, finding, severity));
        }
    }
    let mut out = Vec::with_capacity(1 + alerts.len());
    out.push(event);
    out.extend(alerts);
    Ok(out)
}

/// Every finding for the event, with its severity and cool-down (minutes).
pub fn detect(
    config: &AnomalyConfig,
    event: &Event,
    at: Option<clock::Instant>,
) -> Result<Vec<(Finding, Severity, u32)>, PluginError> {
    let store = event.store().unwrap_or(event.source.as_str());
    let cooldown = |own: Option<u32>| own.unwrap_or(config.cooldown_minutes);
    let mut found = Vec::new();
    let spike = &config.refund_void_spike;
    if spike.enabled
        && let Some(at) = at
    {
        for finding in spike::observe(spike, event, at.epoch_ms, store)? {
            found.push((finding, spike.severity, cooldown(spike.cooldown_minutes)));
        }
    }
    let tender = &config.tender_mismatch;
    match &event.payload {
        Payload::Sale(sale) => {
            let scope = Scope::of(store, sale.cashier_id.as_deref());
            let discount = &config.large_discount;
            if discount.enabled
                && let Some(f) = checks::large_discount(discount, sale, scope.clone())
            {
                found.push((f, discount.severity, cooldown(discount.cooldown_minutes)));
            }
            let hours = &config.outside_trading_hours;
            if hours.enabled
                && let Some(at) = at
                && let Some(f) = checks::outside_hours(config, hours, sale, at, Scope::store(store))
            {
                found.push((f, hours.severity, cooldown(hours.cooldown_minutes)));
            }
            if tender.enabled
                && let Some(f) =
                    checks::tender_mismatch(&format!("order {}", sale.order_id), &sale.tenders, &sale.totals, scope)
            {
                found.push((f, tender.severity, cooldown(tender.cooldown_minutes)));
            }
        }
        Payload::Refund(refund) if tender.enabled => {
            let scope = Scope::of(store, refund.cashier_id.as_deref());
            let reference = format!("refund {}", refund.refund_id);
            if let Some(f) = checks::tender_mismatch(&reference, &refund.tenders, &refund.totals, scope) {
                found.push((f, tender.severity, cooldown(tender.cooldown_minutes)));
            }
        }
        _ => {}
    }
    Ok(found)
}

/// The last alert of one kind for one scope (kv `cool:{kind}:{scope}`).
#[derive(Debug, Serialize, Deserialize)]
struct LastAlert {
    /// Event time of the alert, ms since the epoch.
    at_ms: i64,
    /// The event that fired it.
    event: String,
}

/// Whether the finding becomes an alert: no alert of its kind and scope within `minutes` of
/// event time, or this very event fired the last one (a repeat run gives the same answer).
fn cooled_down(finding: &Finding, event_id: &str, at_ms: i64, minutes: u32) -> Result<bool, PluginError> {
    let key = format!("cool:{}:{}", finding.kind, finding.scope.key());
    let last: Option<LastAlert> = host::kv_get(&key)
        .map_err(kv_error)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let Some(last) = &last {
        if last.event == event_id {
            return Ok(true);
        }
        if (at_ms - last.at_ms).abs() < i64::from(minutes) * 60_000 {
            host::debug(&format!(
                "{} for {} is cooling down (last alert from {})",
                finding.kind,
                finding.scope.describe(),
                last.event
            ));
            return Ok(false);
        }
    }
    let record = LastAlert {
        at_ms,
        event: event_id.to_owned(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| PluginError::Transient(format!("encoding {key}: {e}")))?;
    kv_set(&key, &bytes)?;
    Ok(true)
}

/// The derived alert event for a finding.
pub fn derive(event: &Event, finding: Finding, severity: Severity) -> Event {
    let mut derived = Event {
        id: format!("{}:anomaly:{}:{}", event.id, finding.kind, finding.scope.label),
        source: event.source.clone(),
        ty: ANOMALY_DETECTED.to_owned(),
        time: event.time.clone(),
        subject: None,
        partition_key: String::new(),
        extensions: vec![
            ("causationid".to_owned(), event.id.clone()),
            ("evidence".to_owned(), finding.evidence.to_string()),
        ],
        payload: Payload::AnomalyDetected(AnomalyDetected {
            kind: finding.kind.to_owned(),
            severity,
            description: finding.description,
            related_event_id: Some(event.id.clone()),
        }),
    };
    derived.partition_key = derived.default_partition_key();
    derived
}

/// A kv failure: the store being unavailable is worth a retry.
pub(crate) fn kv_error(e: KvError) -> PluginError {
    match e {
        KvError::Unavailable(m) | KvError::QuotaExceeded(m) => PluginError::Transient(format!("kv: {m}")),
    }
}

/// Writes kv; over the quota the state is not kept (logged), so detection degrades but sales
/// keep flowing.
pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), PluginError> {
    match host::kv_set(key, value) {
        Err(KvError::QuotaExceeded(m)) => {
            host::warn(&format!(
                "kv quota reached, `{key}` not updated ({m}); raise limits.kv_quota_bytes"
            ));
            Ok(())
        }
        other => other.map_err(kv_error),
    }
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
