//! Typed payload records, one per modelled POS event type, mirroring `wit/types.wit` field by field.

use serde::{Deserialize, Serialize};

/// `pos.sale.completed.v1`.
pub const SALE_COMPLETED: &str = "pos.sale.completed.v1";
/// `pos.refund.completed.v1`.
pub const REFUND_COMPLETED: &str = "pos.refund.completed.v1";
/// `pos.sale.voided.v1`.
pub const SALE_VOIDED: &str = "pos.sale.voided.v1";
/// `pos.payment.settled.v1`.
pub const PAYMENT_SETTLED: &str = "pos.payment.settled.v1";
/// `pos.stock.adjusted.v1`.
pub const STOCK_ADJUSTED: &str = "pos.stock.adjusted.v1";
/// `pos.member.updated.v1`.
pub const MEMBER_UPDATED: &str = "pos.member.updated.v1";
/// `pos.restock.suggested.v1`.
pub const RESTOCK_SUGGESTED: &str = "pos.restock.suggested.v1";
/// `pos.anomaly.detected.v1`.
pub const ANOMALY_DETECTED: &str = "pos.anomaly.detected.v1";
/// `kaunter.alert.v1`.
pub const ALERT: &str = "kaunter.alert.v1";

/// An amount in minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Signed count of minor units.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `HKD`.
    pub currency: String,
    /// Decimal places of the minor unit.
    pub exponent: u8,
}

impl Money {
    /// A zero amount in the given currency.
    pub fn zero(currency: &str, exponent: u8) -> Self {
        Self {
            amount_minor: 0,
            currency: currency.to_owned(),
            exponent,
        }
    }

    /// Adds two amounts of the same currency; `None` on a currency mismatch or overflow.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency || self.exponent != other.exponent {
            return None;
        }
        Some(Money {
            amount_minor: self.amount_minor.checked_add(other.amount_minor)?,
            currency: self.currency.clone(),
            exponent: self.exponent,
        })
    }
}

/// Whether line prices include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    /// Prices include tax.
    Inclusive,
    /// Tax is added on top.
    Exclusive,
}

/// One tax on a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tax {
    /// Merchant tax code.
    pub code: String,
    /// Rate in parts per million.
    pub rate_ppm: u32,
    /// Tax amount.
    pub amount: Money,
}

/// One receipt line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleLine {
    /// Position on the receipt, from 1.
    pub line_no: u32,
    /// SKU as the POS (or a mapping transform) names it.
    pub sku: String,
    /// Item name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Quantity in thousandths.
    pub quantity_milli: i64,
    /// Price of one unit.
    pub unit_price: Money,
    /// Before discount.
    pub gross: Money,
    /// Discount.
    pub discount: Money,
    /// After discount.
    pub net: Money,
    /// Taxes.
    #[serde(default)]
    pub taxes: Vec<Tax>,
    /// Free-form attributes (`sku.original`, `sku.unmapped`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "pairs")]
    pub attributes: Vec<(String, String)>,
}

impl SaleLine {
    /// The value of a line attribute, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets (or replaces) a line attribute.
    pub fn set_attribute(&mut self, key: &str, value: &str) {
        match self.attributes.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.attributes.push((key.to_owned(), value.to_owned())),
        }
    }
}

/// How a tender was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenderMethod {
    /// Notes and coins.
    Cash,
    /// Credit or debit card.
    Card,
    /// Octopus card.
    Octopus,
    /// Faster Payment System.
    Fps,
    /// AlipayHK.
    AlipayHk,
    /// WeChat Pay HK.
    WechatPay,
    /// Gift card or voucher.
    Voucher,
    /// Loyalty points.
    Points,
    /// Anything else.
    Other(String),
}

/// One payment toward a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tender {
    /// Method.
    pub method: TenderMethod,
    /// Amount.
    pub amount: Money,
    /// Processor reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_ref: Option<String>,
}

/// Receipt totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Sum of line gross.
    pub gross: Money,
    /// Sum of line discounts.
    pub discount: Money,
    /// Sum of line net.
    pub net: Money,
    /// Sum of taxes.
    pub tax: Money,
    /// What the customer owes.
    pub total: Money,
    /// Sum of tenders.
    pub tendered: Money,
    /// Change given.
    pub change: Money,
}

/// `pos.sale.completed.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sale {
    /// POS order number.
    pub order_id: String,
    /// `YYYY-MM-DD`.
    pub business_date: String,
    /// IANA zone.
    pub time_zone: String,
    /// Tax mode.
    pub tax_mode: TaxMode,
    /// Lines.
    pub lines: Vec<SaleLine>,
    /// Tenders.
    pub tenders: Vec<Tender>,
    /// Totals.
    pub totals: Totals,
    /// Loyalty member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// Cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
}

/// One refunded line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    /// The item, negative quantity and amounts.
    pub line: SaleLine,
    /// Line number on the original sale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_line_no: Option<u32>,
    /// Whether the goods go back to stock.
    pub restock: bool,
}

/// `pos.refund.completed.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// Refund number.
    pub refund_id: String,
    /// The order refunded.
    pub original_order_id: String,
    /// `YYYY-MM-DD`.
    pub business_date: String,
    /// IANA zone.
    pub time_zone: String,
    /// Tax mode.
    pub tax_mode: TaxMode,
    /// Lines.
    pub lines: Vec<RefundLine>,
    /// Money returned.
    pub tenders: Vec<Tender>,
    /// Totals.
    pub totals: Totals,
    /// Reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// Cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
}

/// `pos.sale.voided.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidSale {
    /// The voided order.
    pub order_id: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
}

/// `pos.payment.settled.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettled {
    /// The order.
    pub order_id: String,
    /// The tender.
    pub tender: Tender,
    /// Settlement id.
    pub settlement_id: String,
    /// Processor fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Money>,
}

/// Why stock changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockReason {
    /// Received.
    Receipt,
    /// Stock take correction.
    Count,
    /// Damaged or lost.
    Shrinkage,
    /// Sent to another store.
    TransferOut,
    /// Arrived from another store.
    TransferIn,
    /// Other.
    Other,
}

/// `pos.stock.adjusted.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockAdjusted {
    /// SKU.
    pub sku: String,
    /// Change in thousandths.
    pub delta_milli: i64,
    /// Why.
    pub reason: StockReason,
    /// On hand after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_hand_milli: Option<i64>,
}

/// `pos.member.updated.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdated {
    /// Member id.
    pub member_id: String,
    /// Tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_balance: Option<i64>,
    /// Name (personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone (personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email (personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `pos.restock.suggested.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestockSuggested {
    /// SKU.
    pub sku: String,
    /// On hand.
    pub on_hand_milli: i64,
    /// Suggested order.
    pub suggested_milli: i64,
    /// Why.
    pub reason: String,
}

/// Severity of anomalies and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Look today.
    Warning,
    /// Look now.
    Critical,
}

/// `pos.anomaly.detected.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyDetected {
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// What was seen.
    pub description: String,
    /// Triggering event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_event_id: Option<String>,
}

/// Whether an alert's condition has begun or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds.
    #[default]
    Firing,
    /// The condition has ended.
    Resolved,
}

/// One fact behind an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// What the fact is (kebab-case).
    pub name: String,
    /// Its value.
    pub value: String,
}

impl Evidence {
    /// A fact named `name` with the text of `value`.
    pub fn new(name: &str, value: impl ToString) -> Evidence {
        Evidence {
            name: name.to_owned(),
            value: value.to_string(),
        }
    }
}

/// `kaunter.alert.v1`. The fields after `message` came in WIT 0.2.0 and may be absent in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// Details.
    pub message: String,
    /// Firing or resolved.
    #[serde(default)]
    pub state: AlertState,
    /// The condition's identity.
    #[serde(default)]
    pub dedup_key: String,
    /// What it is about.
    #[serde(default)]
    pub target: String,
    /// When the condition started (RFC 3339).
    #[serde(default)]
    pub since: String,
    /// The facts behind it.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Link to its SOP.
    #[serde(default)]
    pub runbook: String,
}

/// The typed body of an event; which case applies follows from the event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A sale.
    Sale(Sale),
    /// A refund.
    Refund(Refund),
    /// A void.
    VoidSale(VoidSale),
    /// A settlement.
    PaymentSettled(PaymentSettled),
    /// A stock change.
    StockAdjusted(StockAdjusted),
    /// A member change.
    MemberUpdated(MemberUpdated),
    /// A derived restock suggestion.
    RestockSuggested(RestockSuggested),
    /// A derived anomaly.
    AnomalyDetected(AnomalyDetected),
    /// An operational alert.
    Alert(Alert),
    /// Any other type: JSON bytes.
    Custom(Vec<u8>),
}

/// Why the `data` of an event could not be read as its type's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// JSON path inside `data` (`lines[0].quantity_milli`), or `.` for the whole value.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

fn typed<T: serde::de::DeserializeOwned>(data: serde_json::Value) -> Result<T, DataError> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        DataError { path, message }
    })
}

impl Payload {
    /// Reads `data` as the record its event type names; unknown types become `Custom`.
    pub fn from_json(event_type: &str, data: serde_json::Value) -> Result<Payload, DataError> {
        Ok(match event_type {
            SALE_COMPLETED => Payload::Sale(typed(data)?),
            REFUND_COMPLETED => Payload::Refund(typed(data)?),
            SALE_VOIDED => Payload::VoidSale(typed(data)?),
            PAYMENT_SETTLED => Payload::PaymentSettled(typed(data)?),
            STOCK_ADJUSTED => Payload::StockAdjusted(typed(data)?),
            MEMBER_UPDATED => Payload::MemberUpdated(typed(data)?),
            RESTOCK_SUGGESTED => Payload::RestockSuggested(typed(data)?),
            ANOMALY_DETECTED => Payload::AnomalyDetected(typed(data)?),
            ALERT => Payload::Alert(typed(data)?),
            _ => Payload::Custom(data.to_string().into_bytes()),
        })
    }

    /// The payload as JSON (`data` of the CloudEvent).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The event type this payload belongs to, or `None` for `Custom` (any type).
    pub fn event_type(&self) -> Option<&'static str> {
        Some(match self {
            Payload::Sale(_) => SALE_COMPLETED,
            Payload::Refund(_) => REFUND_COMPLETED,
            Payload::VoidSale(_) => SALE_VOIDED,
            Payload::PaymentSettled(_) => PAYMENT_SETTLED,
            Payload::StockAdjusted(_) => STOCK_ADJUSTED,
            Payload::MemberUpdated(_) => MEMBER_UPDATED,
            Payload::RestockSuggested(_) => RESTOCK_SUGGESTED,
            Payload::AnomalyDetected(_) => ANOMALY_DETECTED,
            Payload::Alert(_) => ALERT,
            Payload::Custom(_) => return None,
        })
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Sale(v) => v.serialize(s),
            Payload::Refund(v) => v.serialize(s),
            Payload::VoidSale(v) => v.serialize(s),
            Payload::PaymentSettled(v) => v.serialize(s),
            Payload::StockAdjusted(v) => v.serialize(s),
            Payload::MemberUpdated(v) => v.serialize(s),
            Payload::RestockSuggested(v) => v.serialize(s),
            Payload::AnomalyDetected(v) => v.serialize(s),
            Payload::Alert(v) => v.serialize(s),
            // Custom data is JSON already (it was parsed from JSON or built by a plugin); anything
            // else is carried as a string so nothing is lost.
            Payload::Custom(bytes) => match serde_json::from_slice::<&serde_json::value::RawValue>(bytes) {
                Ok(raw) => raw.serialize(s),
                Err(_) => String::from_utf8_lossy(bytes).serialize(s),
            },
        }
    }
}

/// Serialises `Vec<(String, String)>` as a JSON object, keeping order.
pub(crate) mod pairs {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

    /// Writes the pairs as a JSON object.
    pub fn serialize<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }

    /// Reads a JSON object of strings into pairs.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        map.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => Ok((k, other.to_string())),
            })
            .collect()
    }
}
