//! The Xero Accounting API documents this connector writes (`Invoices`, `CreditNotes`,
//! `Payments`) and the parts of Xero's answers it reads, as serde types named like Xero's fields.
//!
//! Amounts and quantities are [`Decimal`]s: exact decimal text (`79.80`, `1.5`) written into the
//! JSON as numbers, so no amount ever passes through a float. Amounts read back (`AmountDue`,
//! `RemainingCredit`) are taken as raw JSON text and turned into minor units by [`minor_units`].

use kaunter_sdk::Money;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// A decimal number written into JSON exactly as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(String);

impl Decimal {
    /// The amount in major units (`Money::new(7980, "HKD", 2)` is `79.80`), sign dropped: Xero
    /// documents carry positive amounts, the document type says which way the money goes.
    pub fn amount(money: &Money) -> Decimal {
        let text = money.to_decimal();
        Decimal(text.trim_start_matches('-').to_owned())
    }

    /// The amount's magnitude with a minus sign (`-7.98`), for a line that takes money off.
    pub fn negative_amount(money: &Money) -> Decimal {
        Decimal(format!("-{}", Decimal::amount(money).0))
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

/// `{"Invoices": [...]}`, the body of `PUT /Invoices`.
#[derive(Debug, Serialize)]
pub struct Invoices {
    /// The one invoice for the sale.
    #[serde(rename = "Invoices")]
    pub invoices: Vec<Document>,
}

/// `{"CreditNotes": [...]}`, the body of `PUT /CreditNotes`.
#[derive(Debug, Serialize)]
pub struct CreditNotes {
    /// The one credit note for the refund.
    #[serde(rename = "CreditNotes")]
    pub credit_notes: Vec<Document>,
}

/// An `ACCREC` invoice or an `ACCRECCREDIT` credit note: the two share every field this connector
/// writes except their number's name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    /// `ACCREC` or `ACCRECCREDIT`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// Who bought (a configured walk-in contact).
    pub contact: Contact,
    /// The business date, `YYYY-MM-DD`.
    pub date: String,
    /// Invoices only: due the same day (it is paid at the counter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// Invoices only: the POS order id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
    /// Credit notes only: the POS refund id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_note_number: Option<String>,
    /// Where it came from (store, and for a refund the original order and reason).
    pub reference: String,
    /// ISO 4217 code.
    pub currency_code: String,
    /// `AUTHORISED`: the sale happened, so it is booked straight away.
    pub status: &'static str,
    /// `Inclusive` or `Exclusive`, from the sale's tax mode.
    pub line_amount_types: &'static str,
    /// One per receipt line (plus, on credit notes, one per discount).
    pub line_items: Vec<LineItem>,
}

/// A Xero contact reference: by id when configured, else by name (Xero finds or creates it).
#[derive(Debug, Serialize)]
pub struct Contact {
    /// An existing contact's id.
    #[serde(rename = "ContactID", skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// A contact name.
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One line of an invoice or credit note.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LineItem {
    /// The item's name, else its SKU.
    pub description: String,
    /// Decimal quantity.
    pub quantity: Decimal,
    /// Price of one unit, in the document's `LineAmountTypes`.
    pub unit_amount: Decimal,
    /// Revenue account code.
    pub account_code: String,
    /// Xero tax type, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
    /// The line's discount as an amount (ACCREC invoices only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount_amount: Option<Decimal>,
}

/// `{"Payments": [...]}`, the body of `PUT /Payments`.
#[derive(Debug, Serialize)]
pub struct Payments {
    /// One per tender.
    #[serde(rename = "Payments")]
    pub payments: Vec<Payment>,
}

/// A payment against an invoice, or a refund payment against a credit note.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    /// The invoice paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice: Option<InvoiceRef>,
    /// The credit note refunded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_note: Option<CreditNoteRef>,
    /// The account the money went into (or came out of).
    pub account: AccountRef,
    /// The business date.
    pub date: String,
    /// How much.
    pub amount: Decimal,
    /// Order or refund id, tender method and processor reference.
    pub reference: String,
}

/// `{"InvoiceID": ...}`.
#[derive(Debug, Serialize)]
pub struct InvoiceRef {
    /// Xero's id of the invoice.
    #[serde(rename = "InvoiceID")]
    pub invoice_id: String,
}

/// `{"CreditNoteID": ...}`.
#[derive(Debug, Serialize)]
pub struct CreditNoteRef {
    /// Xero's id of the credit note.
    #[serde(rename = "CreditNoteID")]
    pub credit_note_id: String,
}

/// `{"Code": ...}`.
#[derive(Debug, Serialize)]
pub struct AccountRef {
    /// The account code, e.g. `090`.
    #[serde(rename = "Code")]
    pub code: String,
}

/// What `PUT /Invoices` answers (only the id is read).
#[derive(Debug, Deserialize)]
pub struct InvoicesAnswer {
    /// The invoices created.
    #[serde(rename = "Invoices")]
    pub invoices: Vec<CreatedInvoice>,
}

/// One created invoice.
#[derive(Debug, Deserialize)]
pub struct CreatedInvoice {
    /// Xero's id.
    #[serde(rename = "InvoiceID")]
    pub invoice_id: String,
}

/// What `PUT /CreditNotes` answers (only the id is read).
#[derive(Debug, Deserialize)]
pub struct CreditNotesAnswer {
    /// The credit notes created.
    #[serde(rename = "CreditNotes")]
    pub credit_notes: Vec<CreatedCreditNote>,
}

/// One created credit note.
#[derive(Debug, Deserialize)]
pub struct CreatedCreditNote {
    /// Xero's id.
    #[serde(rename = "CreditNoteID")]
    pub credit_note_id: String,
}

/// What `GET /Invoices?InvoiceNumbers=…` or `GET /CreditNotes?where=…` answers (only what is
/// needed to carry on with the payments is read).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FoundAnswer {
    /// The invoices found.
    #[serde(rename = "Invoices")]
    pub invoices: Vec<FoundDocument>,
    /// The credit notes found.
    #[serde(rename = "CreditNotes")]
    pub credit_notes: Vec<FoundDocument>,
}

/// An invoice or credit note found by its number.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FoundDocument {
    /// An invoice's id.
    #[serde(rename = "InvoiceID")]
    pub invoice_id: Option<String>,
    /// A credit note's id.
    #[serde(rename = "CreditNoteID")]
    pub credit_note_id: Option<String>,
    /// An invoice's number.
    #[serde(rename = "InvoiceNumber")]
    pub invoice_number: Option<String>,
    /// A credit note's number.
    #[serde(rename = "CreditNoteNumber")]
    pub credit_note_number: Option<String>,
    /// `AUTHORISED`, `PAID`, `DRAFT`, `VOIDED`, …
    #[serde(rename = "Status")]
    pub status: String,
    /// What is still unpaid on an invoice, as JSON number text.
    #[serde(rename = "AmountDue")]
    pub amount_due: Option<Box<RawValue>>,
    /// What is still unrefunded (and unallocated) on a credit note, as JSON number text.
    #[serde(rename = "RemainingCredit")]
    pub remaining_credit: Option<Box<RawValue>>,
}

/// A decimal amount as Xero writes it (`199.82`, `0`, `100.0`) in minor units of `exponent`
/// digits, without a float: `None` for anything else (a sign, an exponent, more non-zero
/// decimals than the currency has).
pub fn minor_units(text: &str, exponent: u8) -> Option<i64> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let exponent = usize::from(exponent);
    let (kept, dropped) = fraction.split_at(fraction.len().min(exponent));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let text = format!("{whole}{kept:0<exponent$}");
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_text() {
        assert_eq!(Decimal::amount(&Money::new(7980, "HKD", 2)).as_str(), "79.80");
        assert_eq!(Decimal::amount(&Money::new(-5, "HKD", 2)).as_str(), "0.05");
        assert_eq!(Decimal::amount(&Money::new(1200, "JPY", 0)).as_str(), "1200");
        assert_eq!(Decimal::quantity(2000).as_str(), "2");
        assert_eq!(Decimal::quantity(-1500).as_str(), "1.5");
        assert_eq!(Decimal::quantity(250).as_str(), "0.25");
        assert_eq!(Decimal::quantity(1001).as_str(), "1.001");
        let text = serde_json::to_string(&AccountRef { code: "090".into() }).unwrap();
        assert_eq!(text, r#"{"Code":"090"}"#);
        let text = serde_json::to_string(&vec![Decimal::amount(&Money::new(3990, "HKD", 2))]).unwrap();
        assert_eq!(text, "[39.90]");
    }

    #[test]
    fn amounts_read_back_become_minor_units() {
        assert_eq!(minor_units("199.82", 2), Some(19982));
        assert_eq!(minor_units("100.0", 2), Some(10000));
        assert_eq!(minor_units("0", 2), Some(0));
        assert_eq!(minor_units("35.9100", 2), Some(3591));
        assert_eq!(minor_units("1200", 0), Some(1200));
        assert_eq!(minor_units("0.005", 2), None);
        assert_eq!(minor_units("-1.00", 2), None);
        assert_eq!(minor_units("1e2", 2), None);
        assert_eq!(minor_units("", 2), None);
    }
}
