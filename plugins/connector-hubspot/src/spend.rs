//! The running lifetime spend per member, kept in the plugin's kv.
//!
//! HubSpot cannot add to a property, and one event does not know what a member spent before, so
//! the plugin keeps the total itself: kv key `spend/{member id}` holds the currency, the total in
//! minor units and a short fingerprint (first 8 bytes of the SHA-256 of the event id, in hex) of
//! each of the member's last [`REMEMBERED`] counted events. An event already fingerprinted is not
//! counted again, so retries, redeliveries and replays of recent events leave the total alone.
//!
//! The entry is read, changed and written back, and kv has no compare-and-swap, so the manifest
//! asks the host for serial calls (`serial = true`): two purchases by one member (different orders,
//! so different partition keys) are never counted at the same moment.

use kaunter_sdk::{DeliveryError, Money, RetryHint, host};
use serde::{Deserialize, Serialize};

/// How many counted events are remembered per member.
pub const REMEMBERED: usize = 32;

/// One member's kv entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Spend {
    /// ISO 4217 code of the total.
    currency: String,
    /// Its minor-unit exponent.
    exponent: u8,
    /// The total, in minor units.
    total_minor: i64,
    /// Fingerprints of the last counted events, oldest first.
    counted: Vec<String>,
}

/// The kv key of a member's total.
pub fn key(member_id: &str) -> String {
    format!("spend/{member_id}")
}

/// Adds `amount` (negative for a refund) to the member's total unless event `event_id` was counted
/// already; returns the total after. `None` when the amount cannot be added (a different currency
/// than the total, or an overflow): the total is then left as it was and not sent.
pub fn count(member_id: &str, event_id: &str, amount: &Money) -> Result<Option<Money>, DeliveryError> {
    let key = key(member_id);
    let stored = host::kv_get(&key).map_err(kv_error)?;
    let mut spend = match stored.as_deref().map(serde_json::from_slice::<Spend>) {
        Some(Ok(spend)) => spend,
        Some(Err(e)) => {
            host::warn(&format!(
                "the stored lifetime spend is unreadable ({e}); starting again from this event"
            ));
            fresh(amount)
        }
        None => fresh(amount),
    };
    let total = Money::new(spend.total_minor, &spend.currency, spend.exponent);
    let fingerprint = kaunter_sdk::hex_encode(&host::sha256(event_id.as_bytes())[..8]);
    if spend.counted.contains(&fingerprint) {
        return Ok(Some(total));
    }
    let Some(after) = total.checked_add(amount) else {
        host::warn(&format!(
            "lifetime spend is kept in {} (exponent {}); an amount in {} (exponent {}) is not added",
            spend.currency, spend.exponent, amount.currency, amount.exponent
        ));
        return Ok(None);
    };
    spend.total_minor = after.amount_minor;
    spend.counted.push(fingerprint);
    if spend.counted.len() > REMEMBERED {
        spend.counted.remove(0);
    }
    let bytes = serde_json::to_vec(&spend).map_err(|e| DeliveryError::Rejected(format!("encoding spend: {e}")))?;
    host::kv_set(&key, &bytes).map_err(kv_error)?;
    Ok(Some(after))
}

fn fresh(amount: &Money) -> Spend {
    Spend {
        currency: amount.currency.clone(),
        exponent: amount.exponent,
        total_minor: 0,
        counted: Vec::new(),
    }
}

fn kv_error(e: host::KvError) -> DeliveryError {
    match e {
        host::KvError::QuotaExceeded(m) => DeliveryError::Rejected(format!(
            "cannot keep the lifetime spend: kv quota exceeded ({m}); raise limits.kv_quota_bytes for this plugin"
        )),
        other => DeliveryError::Retry(RetryHint {
            after_ms: None,
            reason: format!("cannot read or write the lifetime spend: {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaunter_sdk::testing::FakeHost;

    fn hkd(minor: i64) -> Money {
        Money::new(minor, "HKD", 2)
    }

    #[test]
    fn an_event_is_counted_once() {
        let _host = FakeHost::new().install();
        assert_eq!(count("M-1", "e1", &hkd(7980)).unwrap(), Some(hkd(7980)));
        assert_eq!(count("M-1", "e1", &hkd(7980)).unwrap(), Some(hkd(7980)));
        assert_eq!(count("M-1", "e2", &hkd(-1000)).unwrap(), Some(hkd(6980)));
        assert_eq!(
            count("M-2", "e1", &hkd(5)).unwrap(),
            Some(hkd(5)),
            "totals are per member"
        );
    }

    #[test]
    fn only_the_last_events_are_remembered() {
        let host = FakeHost::new().install();
        for i in 0..=REMEMBERED {
            count("M-1", &format!("e{i}"), &hkd(1)).unwrap();
        }
        let stored: Spend = serde_json::from_slice(&host.kv("spend/M-1").unwrap()).unwrap();
        assert_eq!(stored.counted.len(), REMEMBERED);
        assert_eq!(stored.total_minor, REMEMBERED as i64 + 1);
    }

    #[test]
    fn another_currency_is_not_added() {
        let _host = FakeHost::new().install();
        count("M-1", "e1", &hkd(100)).unwrap();
        assert_eq!(count("M-1", "e2", &Money::new(100, "USD", 2)).unwrap(), None);
        assert_eq!(count("M-1", "e3", &hkd(1)).unwrap(), Some(hkd(101)));
    }
}
