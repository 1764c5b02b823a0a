//! The QuickBooks Online documents this connector writes (`SalesReceipt`, `RefundReceipt`: the
//! same shape) and the part of the answer it reads, as serde types named like QuickBooks' fields.
//!
//! Amounts and quantities are [`Decimal`]s: exact decimal text (`79.80`, `1.5`) written into the
//! JSON as numbers, so no amount ever passes through a float.

use kaunter_sdk::Money;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// A decimal number written into JSON exactly as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(String);

impl Decimal {
    /// The amount's magnitude in major units (`Money::new(-7980, "HKD", 2)` is `79.80`): receipts
    /// carry positive amounts, the document type says which way the money goes.
    pub fn amount(money: &Money) -> Decimal {
        Decimal(money.to_decimal().trim_start_matches('-').to_owned())
    }

    /// A quantity in thousandths as a decimal (`2000` is `2`, `1500` is `1.5`), sign dropped.
    pub fn quantity(milli: i64) -> Decimal {
        let abs = milli.unsigned_abs();
        let (whole, frac) = (abs / 1000, abs % 1000);
        if frac == 0 {
            return Decimal(whole.to_string());
        }
        let frac = format!("{frac:03}");
        Decimal(format!("{whole}.{}", frac.trim_end_matches('0')))
    }

    /// The text, e.g. `79.80`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// `{"value": ...}`: a reference to a QuickBooks entity by id.
#[derive(Debug, Clone, Serialize)]
pub struct Ref {
    /// The entity's id (or, for currencies and tax codes, its code).
    pub value: String,
}

impl Ref {
    /// A reference to `value`.
    pub fn to(value: &str) -> Ref {
        Ref {
            value: value.to_owned(),
        }
    }
}

/// A `SalesReceipt` or a `RefundReceipt` (the fields written are the same).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Receipt {
    /// The document number from the `document_number` template (`{store}-{order}`), at most 21
    /// characters.
    pub doc_number: String,
    /// The business date, `YYYY-MM-DD`.
    pub txn_date: String,
    /// ISO 4217 code.
    pub currency_ref: Ref,
    /// The configured walk-in customer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_ref: Option<Ref>,
    /// `TaxInclusive` or `TaxExcluded`, from the sale's tax mode.
    pub global_tax_calculation: &'static str,
    /// One sales item line per receipt line, then one discount line if anything was discounted.
    pub line: Vec<Line>,
    /// How the customer paid (or was paid back).
    pub payment_method_ref: Ref,
    /// Where the money went (or came from).
    pub deposit_to_account_ref: Ref,
    /// The processor reference of the tender, when it fits QuickBooks' 21 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_ref_num: Option<String>,
    /// Store, order, and every tender with its amount.
    pub private_note: String,
}

/// One receipt line: a sales item or the discount.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Line {
    /// Position, from 1 (sales item lines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_num: Option<u32>,
    /// The item's name, else its SKU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `UnitPrice × Qty` for an item; the discount's amount for the discount line.
    pub amount: Decimal,
    /// `SalesItemLineDetail` or `DiscountLineDetail`.
    pub detail_type: &'static str,
    /// Set for item lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_item_line_detail: Option<SalesItemLineDetail>,
    /// Set for the discount line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount_line_detail: Option<DiscountLineDetail>,
}

/// What was sold on a line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SalesItemLineDetail {
    /// The QuickBooks item.
    pub item_ref: Ref,
    /// Decimal quantity.
    pub qty: Decimal,
    /// Price of one unit.
    pub unit_price: Decimal,
    /// Tax code, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_code_ref: Option<Ref>,
}

/// A fixed-amount discount on the receipt.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscountLineDetail {
    /// Always `false`: the POS gives amounts.
    pub percent_based: bool,
    /// The discount account, when configured (else the company's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount_account_ref: Option<Ref>,
}

/// The part of an answer read: `{"SalesReceipt": {"Id": ...}}` or `{"RefundReceipt": {...}}`.
#[derive(Debug, Deserialize)]
pub struct Created {
    /// A created sales receipt.
    #[serde(rename = "SalesReceipt")]
    pub sales_receipt: Option<CreatedId>,
    /// A created refund receipt.
    #[serde(rename = "RefundReceipt")]
    pub refund_receipt: Option<CreatedId>,
}

/// An entity's id.
#[derive(Debug, Deserialize)]
pub struct CreatedId {
    /// QuickBooks' id.
    #[serde(rename = "Id")]
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_text() {
        assert_eq!(Decimal::amount(&Money::new(-7980, "HKD", 2)).as_str(), "79.80");
        assert_eq!(Decimal::amount(&Money::new(5, "HKD", 2)).as_str(), "0.05");
        assert_eq!(Decimal::quantity(2000).as_str(), "2");
        assert_eq!(Decimal::quantity(-1500).as_str(), "1.5");
        assert_eq!(Decimal::quantity(1250).as_str(), "1.25");
        let text = serde_json::to_string(&vec![Decimal::amount(&Money::new(3990, "HKD", 2))]).unwrap();
        assert_eq!(text, "[39.90]");
    }
}
