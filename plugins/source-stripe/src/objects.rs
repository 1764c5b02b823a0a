//! The Stripe objects this source reads (the fields it needs, as the API documents them) and
//! their mapping to kaunter's [`PaymentSettled`].
//!
//! Stripe amounts are integers in the currency's smallest unit as Stripe counts it, so they are
//! used as they are, with Stripe's exponent for the currency ([`exponent`]).

use kaunter_sdk::{Money, PaymentSettled, Tender, TenderMethod};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The event envelope: `{"id": "evt_…", "type": "…", "created": …, "data": {"object": …}}`.
#[derive(Debug, Deserialize)]
pub struct StripeEvent {
    /// `evt_…`: the kaunter event id, so a redelivery is stored once.
    pub id: String,
    /// `payment_intent.succeeded`, `charge.refunded`, ...
    #[serde(rename = "type")]
    pub ty: String,
    /// When the event happened, seconds since the Unix epoch.
    pub created: i64,
    /// The object, and for changes the attributes it had before.
    pub data: EventData,
}

/// `data`.
#[derive(Debug, Deserialize)]
pub struct EventData {
    /// The object the event is about.
    pub object: serde_json::Value,
    /// For `charge.refunded`: the charge's `amount_refunded` before this refund.
    #[serde(default)]
    pub previous_attributes: Option<serde_json::Value>,
}

/// An id, or the object it names when the webhook expanded it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    /// `"ch_…"`.
    Id(String),
    /// `{"id": "ch_…", …}`.
    Object {
        /// The object's id.
        id: String,
    },
}

impl Expandable {
    fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

/// A PaymentIntent (`payment_intent.succeeded`).
#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    /// `pi_…`.
    pub id: String,
    /// Amount intended to be collected.
    pub amount: i64,
    /// Amount received (what settled).
    #[serde(default)]
    pub amount_received: Option<i64>,
    /// Lower-case ISO 4217.
    pub currency: String,
    /// The charge that succeeded.
    #[serde(default)]
    pub latest_charge: Option<Expandable>,
    /// Merchant metadata (the order id, under the configured key).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Payment method types, e.g. `["card"]`.
    #[serde(default)]
    pub payment_method_types: Vec<String>,
}

/// A Charge (`charge.succeeded`, `charge.refunded`).
#[derive(Debug, Deserialize)]
pub struct Charge {
    /// `ch_…`.
    pub id: String,
    /// Amount charged.
    pub amount: i64,
    /// Amount captured (less than `amount` after a partial capture).
    #[serde(default)]
    pub amount_captured: Option<i64>,
    /// Amount refunded so far (cumulative).
    #[serde(default)]
    pub amount_refunded: i64,
    /// Whether the charge was captured (false: only authorised).
    #[serde(default = "yes")]
    pub captured: bool,
    /// Lower-case ISO 4217.
    pub currency: String,
    /// The PaymentIntent it belongs to.
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// Merchant metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// How it was paid.
    #[serde(default)]
    pub payment_method_details: Option<MethodDetails>,
    /// Its refunds, newest first, when the payload includes them.
    #[serde(default)]
    pub refunds: Option<RefundList>,
}

fn yes() -> bool {
    true
}

/// `payment_method_details` / `destination_details`: only the type is read.
#[derive(Debug, Deserialize)]
pub struct MethodDetails {
    /// `card`, `card_present`, `wechat_pay`, ...
    #[serde(rename = "type")]
    pub kind: String,
}

/// `refunds` of a charge.
#[derive(Debug, Deserialize)]
pub struct RefundList {
    /// Newest first.
    pub data: Vec<StripeRefund>,
}

/// A Refund (`refund.created`, and inside `charge.refunds`).
#[derive(Debug, Deserialize)]
pub struct StripeRefund {
    /// `re_…`.
    pub id: String,
    /// Amount refunded.
    pub amount: i64,
    /// Lower-case ISO 4217.
    pub currency: String,
    /// The refunded charge.
    #[serde(default)]
    pub charge: Option<Expandable>,
    /// The refunded PaymentIntent.
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// `succeeded`, `pending`, `requires_action`, `failed`, `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Merchant metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Where the money goes back to.
    #[serde(default)]
    pub destination_details: Option<MethodDetails>,
}

/// Decimal places of Stripe's smallest unit for a currency (Stripe's zero- and three-decimal
/// currency lists; two otherwise, including ISK, HUF and TWD, which Stripe counts in hundredths).
pub fn exponent(currency: &str) -> u8 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX" | "VND" | "VUV"
        | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `amount` of a lower-case Stripe currency as kaunter money.
fn money(amount: i64, currency: &str) -> Money {
    let code = currency.trim().to_ascii_uppercase();
    Money::new(amount, &code, exponent(&code))
}

/// A Stripe payment method type as a tender method.
pub fn method(kind: &str) -> TenderMethod {
    match kind {
        "card" | "card_present" | "interac_present" => TenderMethod::Card,
        other => TenderMethod::Other(other.to_owned()),
    }
}

/// The order a payment belongs to: the merchant's metadata, else the Stripe id given.
fn order_id(metadata: &BTreeMap<String, String>, key: &str, fallback: &str) -> String {
    metadata
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .unwrap_or(fallback)
        .to_owned()
}

impl PaymentIntent {
    /// `payment_intent.succeeded`: the amount received, settled.
    pub fn settled(&self, order_key: &str) -> PaymentSettled {
        let charge = self.latest_charge.as_ref().map(Expandable::id);
        PaymentSettled {
            order_id: order_id(&self.metadata, order_key, &self.id),
            tender: Tender {
                method: method(self.payment_method_types.first().map_or("unknown", String::as_str)),
                amount: money(self.amount_received.unwrap_or(self.amount), &self.currency),
                processor_ref: Some(self.id.clone()),
            },
            settlement_id: charge.unwrap_or(&self.id).to_owned(),
            fee: None,
        }
    }
}

impl Charge {
    fn payment_intent(&self) -> &str {
        self.payment_intent.as_ref().map_or(&self.id, Expandable::id)
    }

    fn method(&self) -> TenderMethod {
        method(
            self.payment_method_details
                .as_ref()
                .map_or("unknown", |d| d.kind.as_str()),
        )
    }

    /// `charge.succeeded`: the captured amount, settled; `None` for an authorisation only.
    pub fn settled(&self, order_key: &str) -> Option<PaymentSettled> {
        if !self.captured {
            return None;
        }
        Some(PaymentSettled {
            order_id: order_id(&self.metadata, order_key, self.payment_intent()),
            tender: Tender {
                method: self.method(),
                amount: money(self.amount_captured.unwrap_or(self.amount), &self.currency),
                processor_ref: Some(self.payment_intent().to_owned()),
            },
            settlement_id: self.id.clone(),
            fee: None,
        })
    }

    /// `charge.refunded`: the amount refunded by this event (the rise of `amount_refunded` over
    /// `previous_attributes.amount_refunded`), reversed; `None` when nothing more was refunded.
    pub fn reversed(&self, previous: Option<&serde_json::Value>, order_key: &str) -> Option<PaymentSettled> {
        let before = previous
            .and_then(|p| p.get("amount_refunded"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let refunded = self.amount_refunded.checked_sub(before).filter(|a| *a > 0)?;
        let settlement_id = match self.refunds.as_ref().and_then(|r| r.data.first()) {
            Some(newest) => newest.id.clone(),
            None => format!("{}:refunded:{}", self.id, self.amount_refunded),
        };
        Some(PaymentSettled {
            order_id: order_id(&self.metadata, order_key, self.payment_intent()),
            tender: Tender {
                method: self.method(),
                amount: money(-refunded, &self.currency),
                processor_ref: Some(self.payment_intent().to_owned()),
            },
            settlement_id,
            fee: None,
        })
    }
}

impl StripeRefund {
    /// `refund.created`: a succeeded refund, reversed; `None` for any other status.
    pub fn reversed(&self, order_key: &str) -> Option<PaymentSettled> {
        if self.status.as_deref() != Some("succeeded") {
            return None;
        }
        let payment = self
            .payment_intent
            .as_ref()
            .or(self.charge.as_ref())
            .map_or(self.id.as_str(), Expandable::id);
        Some(PaymentSettled {
            order_id: order_id(&self.metadata, order_key, payment),
            tender: Tender {
                method: self
                    .destination_details
                    .as_ref()
                    .map_or(TenderMethod::Other("stripe".into()), |d| method(&d.kind)),
                amount: money(-self.amount, &self.currency),
                processor_ref: Some(payment.to_owned()),
            },
            settlement_id: self.id.clone(),
            fee: None,
        })
    }
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2017-04-21T11:36:17Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_become_rfc3339() {
        assert_eq!(rfc3339(1_492_774_577), "2017-04-21T11:36:17Z");
        assert_eq!(rfc3339(1_764_037_800), "2025-11-25T02:30:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn currencies_use_stripes_exponents() {
        assert_eq!(money(7980, "hkd"), Money::new(7980, "HKD", 2));
        assert_eq!(money(1200, "jpy"), Money::new(1200, "JPY", 0));
        assert_eq!(money(1230, "kwd"), Money::new(1230, "KWD", 3));
    }
}
