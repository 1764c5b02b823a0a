//! `connector-xero`: books POS sales and refunds in Xero through the Xero Accounting API.
//!
//! - `pos.sale.completed.v1` → `PUT {base_url}/Invoices`: one `ACCREC` invoice, `AUTHORISED`,
//!   numbered with the order id, one line item per receipt line (description, decimal quantity
//!   from `quantity_milli`, unit amount, the configured account code and tax type, the line's
//!   discount as `DiscountAmount`), `LineAmountTypes` from the sale's tax mode. Then
//!   `PUT {base_url}/Payments`: one payment per tender against that invoice, into the account
//!   configured for the tender's method (change given is taken off the tenders, so the payments
//!   add up to the invoice total).
//! - `pos.refund.completed.v1` → `PUT {base_url}/CreditNotes`: one `ACCRECCREDIT` credit note,
//!   `AUTHORISED`, numbered with the refund id, with positive quantities and amounts (Xero credit
//!   notes take no discounts, so a refunded line's discount is a line of its own with a negative
//!   amount); then `PUT {base_url}/Payments`: one refund payment per tender against the credit note.
//! - Any other event type is skipped (a receipt with no status and a debug log line).
//!
//! Xero has no request that creates an invoice together with its payments, so a sale is two
//! requests. Each carries its own `Idempotency-Key`, derived from the delivery's key
//! (`{key}:invoice` or `{key}:credit-note`, then `{key}:payments`), so a retry after a failed
//! payment step gets the stored answer of the document step instead of a second invoice.
//!
//! Every request carries `xero-tenant-id` from the configuration. The plugin never handles
//! tokens: the operator grants a host-run OAuth 2.0 credential and the host adds `Authorization`.
//! The receipt's `remote_id` is the `InvoiceID` or `CreditNoteID`. Answers are mapped in [`answer`].

pub mod answer;
pub mod body;

use body::{
    AccountRef, Contact, CreditNoteRef, CreditNotes, CreditNotesAnswer, Decimal, Document, InvoiceRef, Invoices,
    InvoicesAnswer, LineItem, Payment, Payments,
};
use kaunter_sdk::http::{self, Request};
use kaunter_sdk::{
    DeliveryContext, DeliveryError, Event, Money, Payload, PluginConfig, Receipt, Refund, Sale, SaleLine, TaxMode,
    Tender, TenderMethod, host,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XeroConfig {
    /// The Accounting API root, default `https://api.xero.com/api.xro/2.0`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The organisation to post to (`xero-tenant-id`).
    pub tenant_id: String,
    /// Revenue account code for every line, e.g. `200`.
    pub sales_account: String,
    /// Xero tax type for every line (e.g. `OUTPUT`, `NONE`); unset, Xero uses the account's.
    #[serde(default)]
    pub tax_type: Option<String>,
    /// Tax type per POS tax code (a line's first tax), overriding `tax_type`.
    #[serde(default)]
    pub tax_types: BTreeMap<String, String>,
    /// An existing contact to book sales to; unset, `contact_name` is used.
    #[serde(default)]
    pub contact_id: Option<String>,
    /// Contact name when no `contact_id` is set (Xero finds or creates it).
    #[serde(default = "default_contact_name")]
    pub contact_name: String,
    /// Account code per tender method (`cash`, `card`, `octopus`, `fps`, `alipay_hk`,
    /// `wechat_pay`, `voucher`, `points`, or the name of an `other` method; `other` catches the rest).
    pub payment_accounts: BTreeMap<String, String>,
}

fn default_base_url() -> String {
    "https://api.xero.com/api.xro/2.0".into()
}

fn default_contact_name() -> String {
    "POS walk-in customer".into()
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<XeroConfig> = PluginConfig::new();

/// Xero keeps idempotency keys of at most this many characters.
const MAX_KEY_LEN: usize = 128;

/// Posts a sale as an invoice and its payments, a refund as a credit note and its refund payments.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid Xero config: {e:?}")))?;
    let store = event.store().unwrap_or("unknown store").to_owned();
    match &event.payload {
        Payload::Sale(sale) => post_sale(config, sale, &store, &context.idempotency_key),
        Payload::Refund(refund) => post_refund(config, refund, &store, &context.idempotency_key),
        _ => {
            host::debug(&format!(
                "{} is not a sale or a refund: nothing to book in Xero",
                event.ty
            ));
            Ok(Receipt {
                status: None,
                remote_id: None,
            })
        }
    }
}

/// `PUT /Invoices`, then `PUT /Payments` against the new invoice.
fn post_sale(config: &XeroConfig, sale: &Sale, store: &str, key: &str) -> Result<Receipt, DeliveryError> {
    let paid = tenders_paid(&sale.tenders, &sale.totals.total);
    let accounts = payment_accounts(config, &paid)?;
    let invoice = Document {
        kind: "ACCREC",
        contact: contact(config),
        date: sale.business_date.clone(),
        due_date: Some(sale.business_date.clone()),
        invoice_number: Some(sale.order_id.clone()),
        credit_note_number: None,
        reference: format!("POS {store}"),
        currency_code: sale.totals.total.currency.clone(),
        status: "AUTHORISED",
        line_amount_types: line_amount_types(sale.tax_mode),
        line_items: sale.lines.iter().map(|l| line_item(config, l, true)).collect(),
    };
    let what = format!("invoice {}", sale.order_id);
    let body = Invoices {
        invoices: vec![invoice],
    };
    let response = put(config, "Invoices", &body, &derived_key(key, "invoice"), &what, true)?;
    let answer: InvoicesAnswer = parse(&response, &what)?;
    let invoice_id = answer
        .invoices
        .into_iter()
        .next()
        .map(|i| i.invoice_id)
        .ok_or_else(|| DeliveryError::Rejected(format!("Xero created the {what} but answered without an InvoiceID")))?;
    let payments = paid
        .iter()
        .zip(accounts)
        .map(|((tender, amount), account)| Payment {
            invoice: Some(InvoiceRef {
                invoice_id: invoice_id.clone(),
            }),
            credit_note: None,
            account: AccountRef { code: account },
            date: sale.business_date.clone(),
            amount: Decimal::amount(amount),
            reference: payment_reference(&sale.order_id, tender),
        })
        .collect();
    post_payments(config, payments, key, &what)?;
    Ok(Receipt {
        status: Some(response.status),
        remote_id: Some(invoice_id),
    })
}

/// `PUT /CreditNotes`, then `PUT /Payments` refunding it.
fn post_refund(config: &XeroConfig, refund: &Refund, store: &str, key: &str) -> Result<Receipt, DeliveryError> {
    let paid = tenders_paid(&refund.tenders, &refund.totals.total);
    let accounts = payment_accounts(config, &paid)?;
    let mut line_items = Vec::new();
    for line in refund.lines.iter().map(|l| &l.line) {
        line_items.push(line_item(config, line, false));
        if line.discount.amount_minor != 0 {
            line_items.push(LineItem {
                description: format!("Discount on {}", describe(line)),
                quantity: Decimal::quantity(1000),
                unit_amount: Decimal::negative_amount(&line.discount),
                account_code: config.sales_account.clone(),
                tax_type: tax_type(config, line),
                discount_amount: None,
            });
        }
    }
    let reason = refund.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let credit_note = Document {
        kind: "ACCRECCREDIT",
        contact: contact(config),
        date: refund.business_date.clone(),
        due_date: None,
        invoice_number: None,
        credit_note_number: Some(refund.refund_id.clone()),
        reference: format!("POS {store} refund of {}{reason}", refund.original_order_id),
        currency_code: refund.totals.total.currency.clone(),
        status: "AUTHORISED",
        line_amount_types: line_amount_types(refund.tax_mode),
        line_items,
    };
    let what = format!("credit note {}", refund.refund_id);
    let body = CreditNotes {
        credit_notes: vec![credit_note],
    };
    let response = put(
        config,
        "CreditNotes",
        &body,
        &derived_key(key, "credit-note"),
        &what,
        true,
    )?;
    let answer: CreditNotesAnswer = parse(&response, &what)?;
    let credit_note_id = answer
        .credit_notes
        .into_iter()
        .next()
        .map(|c| c.credit_note_id)
        .ok_or_else(|| {
            DeliveryError::Rejected(format!("Xero created the {what} but answered without a CreditNoteID"))
        })?;
    let payments = paid
        .iter()
        .zip(accounts)
        .map(|((tender, amount), account)| Payment {
            invoice: None,
            credit_note: Some(CreditNoteRef {
                credit_note_id: credit_note_id.clone(),
            }),
            account: AccountRef { code: account },
            date: refund.business_date.clone(),
            amount: Decimal::amount(amount),
            reference: payment_reference(&refund.refund_id, tender),
        })
        .collect();
    post_payments(config, payments, key, &what)?;
    Ok(Receipt {
        status: Some(response.status),
        remote_id: Some(credit_note_id),
    })
}

/// `PUT /Payments` with every payment of one document, unless there is none.
fn post_payments(config: &XeroConfig, payments: Vec<Payment>, key: &str, what: &str) -> Result<(), DeliveryError> {
    if payments.is_empty() {
        return Ok(());
    }
    let body = Payments { payments };
    let what = format!("payments for the {what}");
    put(config, "Payments", &body, &derived_key(key, "payments"), &what, false)?;
    Ok(())
}

/// One `PUT` to the Accounting API with the Xero headers: the successful response, or what the
/// host should do (see [`answer::check`]).
fn put(
    config: &XeroConfig,
    resource: &str,
    body: &impl serde::Serialize,
    idempotency_key: &str,
    what: &str,
    duplicate_is_success: bool,
) -> Result<http::Response, DeliveryError> {
    let url = format!("{}/{resource}", config.base_url.trim_end_matches('/'));
    let request = Request::json("PUT", &url, body)
        .map_err(|e| DeliveryError::Rejected(format!("cannot encode the {what}: {e}")))?
        .header("accept", "application/json")
        .header("xero-tenant-id", &config.tenant_id)
        .header("idempotency-key", idempotency_key);
    answer::check(http::send(&request), what, duplicate_is_success)
}

/// The body of a success. One that does not parse is rejected rather than retried: the retry
/// would get the same stored answer.
fn parse<A: serde::de::DeserializeOwned>(response: &http::Response, what: &str) -> Result<A, DeliveryError> {
    response
        .json::<A>()
        .map_err(|e| DeliveryError::Rejected(format!("Xero accepted the {what} but its answer is unexpected: {e}")))
}

/// `{key}:{step}`; a key too long for Xero is replaced by its SHA-256 (hex) first.
fn derived_key(key: &str, step: &str) -> String {
    let full = format!("{key}:{step}");
    if full.len() <= MAX_KEY_LEN {
        return full;
    }
    format!("{}:{step}", kaunter_sdk::hex_encode(&host::sha256(key.as_bytes())))
}

fn contact(config: &XeroConfig) -> Contact {
    match &config.contact_id {
        Some(id) => Contact {
            contact_id: Some(id.clone()),
            name: None,
        },
        None => Contact {
            contact_id: None,
            name: Some(config.contact_name.clone()),
        },
    }
}

fn line_amount_types(mode: TaxMode) -> &'static str {
    match mode {
        TaxMode::Inclusive => "Inclusive",
        TaxMode::Exclusive => "Exclusive",
    }
}

fn describe(line: &SaleLine) -> String {
    line.name.clone().unwrap_or_else(|| line.sku.clone())
}

fn tax_type(config: &XeroConfig, line: &SaleLine) -> Option<String> {
    line.taxes
        .first()
        .and_then(|t| config.tax_types.get(&t.code))
        .or(config.tax_type.as_ref())
        .cloned()
}

/// A receipt line as a Xero line item; `with_discount` puts the line's discount in
/// `DiscountAmount` (invoices), otherwise it is left to the caller (credit notes).
fn line_item(config: &XeroConfig, line: &SaleLine, with_discount: bool) -> LineItem {
    LineItem {
        description: describe(line),
        quantity: Decimal::quantity(line.quantity_milli),
        unit_amount: Decimal::amount(&line.unit_price),
        account_code: config.sales_account.clone(),
        tax_type: tax_type(config, line),
        discount_amount: (with_discount && line.discount.amount_minor != 0).then(|| Decimal::amount(&line.discount)),
    }
}

/// The tenders with what each actually paid toward `total`: in order, each capped at what is
/// still due (cash handed back as change is not income), zero amounts left out. Refunds carry
/// negative amounts; the result keeps their sign and the caller writes magnitudes.
fn tenders_paid<'a>(tenders: &'a [Tender], total: &Money) -> Vec<(&'a Tender, Money)> {
    let mut due = total.amount_minor.unsigned_abs();
    let mut paid = Vec::new();
    for tender in tenders {
        let amount = tender.amount.amount_minor.unsigned_abs().min(due);
        due -= amount;
        if amount > 0 {
            let signed = i64::try_from(amount).unwrap_or(i64::MAX) * tender.amount.amount_minor.signum();
            paid.push((
                tender,
                Money::new(signed, &tender.amount.currency, tender.amount.exponent),
            ));
        }
    }
    paid
}

/// The configured tender method name.
fn method_name(method: &TenderMethod) -> &str {
    match method {
        TenderMethod::Cash => "cash",
        TenderMethod::Card => "card",
        TenderMethod::Octopus => "octopus",
        TenderMethod::Fps => "fps",
        TenderMethod::AlipayHk => "alipay_hk",
        TenderMethod::WechatPay => "wechat_pay",
        TenderMethod::Voucher => "voucher",
        TenderMethod::Points => "points",
        TenderMethod::Other(name) => name,
    }
}

/// The account code for each paid tender, checked before anything is sent so a missing mapping
/// never leaves an unpaid invoice behind.
fn payment_accounts(config: &XeroConfig, paid: &[(&Tender, Money)]) -> Result<Vec<String>, DeliveryError> {
    paid.iter()
        .map(|(tender, _)| {
            let name = method_name(&tender.method);
            config
                .payment_accounts
                .get(name)
                .or_else(|| config.payment_accounts.get("other"))
                .cloned()
                .ok_or_else(|| {
                    DeliveryError::Rejected(format!(
                        "no Xero account for tender method `{name}`: add it (or `other`) to payment_accounts"
                    ))
                })
        })
        .collect()
}

fn payment_reference(document: &str, tender: &Tender) -> String {
    let method = method_name(&tender.method);
    match &tender.processor_ref {
        Some(r) => format!("{document} {method} {r}"),
        None => format!("{document} {method}"),
    }
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
