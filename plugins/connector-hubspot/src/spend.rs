//! The per-member record in the plugin's kv: the running lifetime spend, the POS documents counted
//! into it, and which sinks made a timeline note for each.
//!
//! HubSpot cannot add to a property, and one event does not know what a member spent before, so
//! the plugin keeps the total itself under `spend/{member id}`: the currency, the total in minor
//! units, and the member's recent documents ([`Document`]: `{store}:{order_id}` for a sale,
//! `{store}:{refund_id}` for a refund, with the business day), sorted by day. A document is
//! counted once, whatever event id carries it: a retry after a failed upsert, a dead-letter replay,
//! `kaunter replay` or the same order sent again under a new event id finds it and sends the
//! current total without adding.
//!
//! The list is bounded the way `transform-loyalty` bounds its order records: documents older than
//! `remember_days` before the member's newest, and the oldest beyond `remember_documents`, are
//! dropped, and the record keeps the newest day dropped (`horizon`). A document not in the list
//! whose day is on or before the horizon may have been counted and forgotten, so it is not counted
//! (with a warning): replays of old history never inflate the total, and a genuinely new sale that
//! arrives that late is left out of it.
//!
//! A full kv quota never stops the contact update: the document is then not counted, the total is
//! left out of that upsert (with a warning), and a replay after the quota is raised counts it.
//!
//! The record is read, changed and written back, and kv has no compare-and-swap, so the manifest
//! asks the host for serial calls (`serial = true`): two purchases by one member (different
//! orders, so different partition keys) are never counted at the same moment.

use kaunter_sdk::{DeliveryError, Money, RetryHint, host};
use serde::{Deserialize, Serialize};

/// One POS document (a sale's order or a refund) as counted into a member's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// `{store}:{order_id}` for a sale, `{store}:{refund_id}` for a refund.
    #[serde(rename = "k")]
    pub key: String,
    /// Whether it is a refund (a refund id may look like an order id).
    #[serde(rename = "r", default, skip_serializing_if = "is_false")]
    pub refund: bool,
    /// Business day, as days since 1970-01-01.
    #[serde(rename = "d")]
    pub day: i64,
    /// Sinks that added a timeline note for it.
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub noted: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Document {
    /// The document a sale or refund stands for. A business date that is not `YYYY-MM-DD` (the
    /// model validates it, so only a hand-made event) counts as day 0.
    pub fn new(store: Option<&str>, number: &str, refund: bool, business_date: &str) -> Document {
        Document {
            key: format!("{}:{number}", store.unwrap_or("")),
            refund,
            day: day_number(business_date).unwrap_or(0),
            noted: Vec::new(),
        }
    }

    fn is(&self, other: &Document) -> bool {
        self.key == other.key && self.refund == other.refund
    }
}

/// How many documents are remembered per member, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Documents older than this many days before the member's newest are dropped.
    pub days: i64,
    /// At most this many documents per member (the oldest go first).
    pub documents: usize,
}

/// One member's kv entry. Field names are short: every byte counts against the kv quota. The
/// long names are what the first version of the record used; such records still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// ISO 4217 code of the total.
    #[serde(rename = "c", alias = "currency")]
    currency: String,
    /// Its minor-unit exponent.
    #[serde(rename = "x", alias = "exponent")]
    exponent: u8,
    /// The total, in minor units.
    #[serde(rename = "t", alias = "total_minor")]
    total_minor: i64,
    /// The newest business day of a dropped document: nothing on or before it is counted again.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    horizon: Option<i64>,
    /// Documents counted, oldest business day first.
    #[serde(rename = "d", default)]
    documents: Vec<Document>,
}

impl Record {
    fn total(&self) -> Money {
        Money::new(self.total_minor, &self.currency, self.exponent)
    }

    fn find(&self, document: &Document) -> Option<&Document> {
        self.documents.iter().find(|d| d.is(document))
    }

    /// Adds a document in business-day order, then drops what is past the bounds.
    fn remember(&mut self, document: Document, bounds: Bounds) {
        let at = self.documents.partition_point(|d| d.day <= document.day);
        self.documents.insert(at, document);
        let newest = self.documents.last().map_or(0, |d| d.day);
        let expired = self.documents.partition_point(|d| newest - d.day > bounds.days);
        let excess = self.documents.len().saturating_sub(bounds.documents.max(1));
        let dropped = expired.max(excess);
        if let Some(last) = self.documents.drain(..dropped).next_back() {
            self.horizon = Some(self.horizon.map_or(last.day, |h| h.max(last.day)));
        }
    }
}

/// What counting a document gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The member's total to send; `None` when the document could not be counted (a full kv
    /// quota): the property is then left out of the update.
    pub total: Option<Money>,
    /// Whether the document is in the member's record now (a note can then be remembered).
    pub remembered: bool,
    /// Whether the sink already added a note for it.
    pub noted: bool,
}

/// The kv key of a member's record.
pub fn key(member_id: &str) -> String {
    format!("spend/{member_id}")
}

/// Counts `document` (adding `amount`, negative for a refund) into the member's total unless it
/// was counted before; returns the total to send. An amount in another currency than the total is
/// not added (with a warning). A full kv quota leaves the document uncounted and the total out;
/// only an unavailable kv store fails the delivery (to be retried before anything was sent).
pub fn count(
    member_id: &str,
    document: &Document,
    amount: &Money,
    sink: &str,
    bounds: Bounds,
) -> Result<Counted, DeliveryError> {
    let key = key(member_id);
    let mut record = match read(&key)? {
        Some(record) => record,
        None => Record {
            currency: amount.currency.clone(),
            exponent: amount.exponent,
            total_minor: 0,
            horizon: None,
            documents: Vec::new(),
        },
    };
    if let Some(found) = record.find(document) {
        return Ok(Counted {
            total: Some(record.total()),
            remembered: true,
            noted: found.noted.iter().any(|s| s == sink),
        });
    }
    if record.horizon.is_some_and(|h| document.day <= h) {
        host::warn(&format!(
            "`{}` is from before the oldest document remembered for member {member_id}; it may have been counted already, so it is not added to the lifetime spend",
            document.key
        ));
        return Ok(Counted {
            total: Some(record.total()),
            remembered: false,
            noted: false,
        });
    }
    match record.total().checked_add(amount) {
        Some(after) => record.total_minor = after.amount_minor,
        None => host::warn(&format!(
            "lifetime spend is kept in {} (exponent {}); `{}` in {} (exponent {}) is not added",
            record.currency, record.exponent, document.key, amount.currency, amount.exponent
        )),
    }
    record.remember(document.clone(), bounds);
    match write(&key, &record) {
        Ok(()) => Ok(Counted {
            total: Some(record.total()),
            // A late document can be past the bounds as soon as it is added.
            remembered: record.find(document).is_some(),
            noted: false,
        }),
        Err(host::KvError::QuotaExceeded(m)) => {
            host::warn(&format!(
                "kv quota exceeded ({m}): `{}` is not counted and the lifetime spend is left out of this update; raise limits.kv_quota_bytes for this plugin and replay the event to count it",
                document.key
            ));
            Ok(Counted {
                total: None,
                remembered: false,
                noted: false,
            })
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// Remembers that `sink` added a note for `document`. A failure only costs a possible second
/// note on a later replay, so it is logged, not returned.
pub fn noted(member_id: &str, document: &Document, sink: &str) {
    let key = key(member_id);
    let result = match read(&key) {
        Ok(Some(mut record)) => match record.documents.iter_mut().find(|d| d.is(document)) {
            Some(found) => {
                found.noted.push(sink.to_owned());
                write(&key, &record).map_err(|e| format!("{e:?}"))
            }
            None => Err("the document is no longer in the member's record".to_owned()),
        },
        Ok(None) => Err("the member has no record".to_owned()),
        Err(e) => Err(format!("{e:?}")),
    };
    if let Err(e) = result {
        host::warn(&format!(
            "note added for `{}`, but not remembered (a replay would add it again): {e}",
            document.key
        ));
    }
}

/// Reads a member's record; one that does not parse is reported and started over.
fn read(key: &str) -> Result<Option<Record>, DeliveryError> {
    let Some(bytes) = host::kv_get(key).map_err(unavailable)? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(record) => Ok(Some(record)),
        Err(e) => {
            host::warn(&format!(
                "kv record `{key}` is unreadable ({e}); the lifetime spend starts again from this event"
            ));
            Ok(None)
        }
    }
}

fn write(key: &str, record: &Record) -> Result<(), host::KvError> {
    let bytes = serde_json::to_vec(record).map_err(|e| host::KvError::Unavailable(format!("encoding `{key}`: {e}")))?;
    #[cfg(test)]
    if quota::FULL.get() {
        return Err(host::KvError::QuotaExceeded(format!(
            "{} bytes more would pass the quota",
            bytes.len()
        )));
    }
    host::kv_set(key, &bytes)
}

/// The fake host has no kv quota: native tests fill it here.
#[cfg(test)]
pub(crate) mod quota {
    thread_local! {
        /// Whether every kv write is refused as over the quota.
        pub static FULL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Refuses (or allows again) every kv write of the record on this thread.
    pub fn fill(full: bool) {
        FULL.set(full);
    }
}

/// kv could not be read or written: worth a retry (nothing was sent yet).
fn unavailable(e: host::KvError) -> DeliveryError {
    DeliveryError::Retry(RetryHint {
        after_ms: None,
        reason: format!("cannot read or write the lifetime spend: {e:?}"),
    })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), `None` if it is not one.
pub fn day_number(date: &str) -> Option<i64> {
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
    use kaunter_sdk::testing::FakeHost;

    const BOUNDS: Bounds = Bounds { days: 30, documents: 4 };

    fn hkd(minor: i64) -> Money {
        Money::new(minor, "HKD", 2)
    }

    fn sale(order: &str, date: &str) -> Document {
        Document::new(Some("hk-001"), order, false, date)
    }

    fn total(member: &str, document: &Document, amount: i64) -> Option<Money> {
        count(member, document, &hkd(amount), "crm", BOUNDS).unwrap().total
    }

    fn stored(host: &kaunter_sdk::testing::Installed, member: &str) -> Record {
        serde_json::from_slice(&host.kv(&key(member)).unwrap()).unwrap()
    }

    #[test]
    fn a_document_is_counted_once_whatever_event_carries_it() {
        let host = FakeHost::new().install();
        let order = sale("HK001-000123", "2026-11-25");
        assert_eq!(total("M-1", &order, 7980), Some(hkd(7980)));
        assert_eq!(total("M-1", &order, 7980), Some(hkd(7980)), "sent again: not added");
        let refund = Document::new(Some("hk-001"), "HK001-000123", true, "2026-11-26");
        assert_eq!(
            total("M-1", &refund, -1000),
            Some(hkd(6980)),
            "a refund numbered like an order is its own document"
        );
        assert_eq!(total("M-1", &refund, -1000), Some(hkd(6980)));
        let elsewhere = Document::new(Some("hk-002"), "HK001-000123", false, "2026-11-26");
        assert_eq!(total("M-1", &elsewhere, 5), Some(hkd(6985)), "documents are per store");
        assert_eq!(total("M-2", &order, 5), Some(hkd(5)), "totals are per member");
        let keys: Vec<String> = stored(&host, "M-1").documents.into_iter().map(|d| d.key).collect();
        assert_eq!(
            keys,
            ["hk-001:HK001-000123", "hk-001:HK001-000123", "hk-002:HK001-000123"]
        );
    }

    #[test]
    fn documents_are_kept_by_age_and_count_and_older_ones_are_never_added() {
        let host = FakeHost::new().install();
        total("M-1", &sale("A", "2026-10-01"), 100);
        total("M-1", &sale("B", "2026-10-20"), 100);
        // 35 days after A: A is past the 30 days and dropped; nothing on or before Oct 1 is added.
        assert_eq!(total("M-1", &sale("C", "2026-11-05"), 100), Some(hkd(300)));
        let record = stored(&host, "M-1");
        assert_eq!((record.documents.len(), record.horizon), (2, day_number("2026-10-01")));
        assert_eq!(
            total("M-1", &sale("A", "2026-10-01"), 100),
            Some(hkd(300)),
            "a replay of A"
        );
        let counted = count("M-1", &sale("A0", "2026-09-30"), &hkd(100), "crm", BOUNDS).unwrap();
        assert_eq!((counted.total, counted.remembered), (Some(hkd(300)), false));
        // A late sale dated after the horizon is still counted, in its place by day.
        assert_eq!(total("M-1", &sale("L", "2026-10-10"), 100), Some(hkd(400)));
        for order in ["D", "E", "F"] {
            total("M-1", &sale(order, "2026-11-06"), 100);
        }
        let record = stored(&host, "M-1");
        let keys: Vec<&str> = record.documents.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            ["hk-001:C", "hk-001:D", "hk-001:E", "hk-001:F"],
            "at most 4, oldest days go"
        );
        assert_eq!((record.total_minor, record.horizon), (700, day_number("2026-10-20")));
        assert_eq!(total("M-1", &sale("B", "2026-10-20"), 100), Some(hkd(700)));
    }

    #[test]
    fn another_currency_is_not_added() {
        let _host = FakeHost::new().install();
        total("M-1", &sale("A", "2026-11-25"), 100);
        let usd = count(
            "M-1",
            &sale("B", "2026-11-25"),
            &Money::new(100, "USD", 2),
            "crm",
            BOUNDS,
        )
        .unwrap();
        assert_eq!(usd.total, Some(hkd(100)));
        assert_eq!(total("M-1", &sale("C", "2026-11-25"), 1), Some(hkd(101)));
    }

    #[test]
    fn a_full_quota_leaves_the_document_uncounted_and_the_total_out() {
        let host = FakeHost::new().install();
        total("M-1", &sale("A", "2026-11-25"), 100);
        quota::fill(true);
        let counted = count("M-1", &sale("B", "2026-11-25"), &hkd(50), "crm", BOUNDS).unwrap();
        quota::fill(false);
        assert_eq!((counted.total, counted.remembered), (None, false));
        assert_eq!(stored(&host, "M-1").total_minor, 100);
        assert_eq!(
            total("M-1", &sale("B", "2026-11-25"), 50),
            Some(hkd(150)),
            "replayed once there is room, it counts"
        );
    }

    #[test]
    fn notes_are_remembered_per_sink() {
        let _host = FakeHost::new().install();
        let order = sale("A", "2026-11-25");
        assert!(!count("M-1", &order, &hkd(1), "crm", BOUNDS).unwrap().noted);
        noted("M-1", &order, "crm");
        assert!(count("M-1", &order, &hkd(1), "crm", BOUNDS).unwrap().noted);
        assert!(!count("M-1", &order, &hkd(1), "crm-2", BOUNDS).unwrap().noted);
    }

    #[test]
    fn a_record_of_the_first_version_still_loads() {
        let old = br#"{"currency":"HKD","exponent":2,"total_minor":7980,"counted":["00112233aabbccdd"]}"#;
        let _host = FakeHost::new().kv("spend/M-1", old).install();
        assert_eq!(total("M-1", &sale("A", "2026-11-25"), 20), Some(hkd(8000)));
    }

    #[test]
    fn day_numbers_count_days() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(), 2);
        assert_eq!(day_number("2026-13-01"), None);
    }
}
