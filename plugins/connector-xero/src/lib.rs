//! `connector-xero`: books POS sales and refunds in Xero through the Xero Accounting API.
//!
//! - `pos.sale.completed.v1` → `PUT {base_url}/Invoices`: one `ACCREC` invoice, `AUTHORISED`,
//!   numbered from the `document_number` template (default `{store}-{order}`, see [`kaunter_sdk::documents`]), one line item per receipt line (description, decimal quantity
//!   from `quantity_milli`, unit amount, the configured account code and tax type, the line's
//!   discount as `DiscountAmount`), `LineAmountTypes` from the sale's tax mode. Then
//!   `PUT {base_url}/Payments`: one payment per tender against that invoice, into the account
//!   configured for the tender's method (change given is taken off the tenders, so the payments
//!   add up to the invoice total).
//! - `pos.refund.completed.v1` → `PUT {base_url}/CreditNotes`: one `ACCRECCREDIT` credit note,
//!   `AUTHORISED`, numbered the same way from the refund id, with positive quantities and amounts (Xero credit
//!   notes take no discounts, so a refunded line's discount is a line of its own with a negative
//!   amount); then `PUT {base_url}/Payments`: one refund payment per tender against the credit note.
//! - Any other event type is skipped (a receipt with no status and a debug log line).
//!
//! Xero has no request that creates an invoice together with its payments, so a sale is two
//! requests. Each carries its own `Idempotency-Key`, derived from the delivery's key
//! (`{key}:invoice` or `{key}:credit-note`, then `{key}:payments`), so a retry after a failed
//! payment step gets the stored answer of the document step instead of a second invoice. Once
//! Xero has forgotten the key (a dead letter replayed later), it refuses the document because its
//! number is taken; the connector then finds it by number (`GET /Invoices?InvoiceNumbers=…`,
//! `GET /CreditNotes?where=CreditNoteNumber=="…"`) and pays only what is still due on it
//! (`AmountDue`, `RemainingCredit`): nothing, when it is paid already.
//!
//! Every request carries `xero-tenant-id` from the configuration. The plugin never handles
//! tokens: the operator grants a host-run OAuth 2.0 credential and the host adds `Authorization`.
//! The receipt's `remote_id` is the `InvoiceID` or `CreditNoteID` (created or found). Answers are
//! mapped in [`answer`].

pub mod answer;
pub mod body;

use answer::Verb;
use body::{
    AccountRef, Contact, CreditNoteRef, CreditNotes, CreditNotesAnswer, Decimal, Document, FoundAnswer, FoundDocument,
    InvoiceRef, Invoices, InvoicesAnswer, LineItem, Payment, Payments, minor_units,
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
    /// How invoices and credit notes are numbered (see [`kaunter_sdk::documents`]), default `{store}-{order}`.
    #[serde(default = "default_document_number")]
    pub document_number: String,
}

fn default_document_number() -> String {
    kaunter_sdk::documents::DEFAULT_TEMPLATE.into()
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

/// Xero takes `InvoiceNumber` and `CreditNoteNumber` of at most this many characters.
const MAX_NUMBER_LEN: usize = 255;

/// Posts a sale as an invoice and its payments, a refund as a credit note and its refund payments.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid Xero config: {e:?}")))?;
    match &event.payload {
        Payload::Sale(sale) => post_sale(config, &event, sale, &context.idempotency_key),
        Payload::Refund(refund) => post_refund(config, &event, refund, &context.idempotency_key),
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

/// The two kinds of document this connector books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An `ACCREC` invoice, for a sale.
    Invoice,
    /// An `ACCRECCREDIT` credit note, for a refund.
    CreditNote,
}

impl Kind {
    /// For messages.
    fn noun(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::CreditNote => "credit note",
        }
    }

    /// The Accounting API resource.
    fn resource(self) -> &'static str {
        match self {
            Kind::Invoice => "Invoices",
            Kind::CreditNote => "CreditNotes",
        }
    }

    /// The suffix of the document step's idempotency key.
    fn step(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::CreditNote => "credit-note",
        }
    }
}

/// One sale or refund to book: its document, and what the payments need.
struct Booking<'a> {
    kind: Kind,
    /// The document's number (from the `document_number` template).
    number: String,
    /// The POS order or refund id, for payment references.
    pos_id: &'a str,
    business_date: &'a str,
    total: &'a Money,
    tenders: &'a [Tender],
}

/// The document's number for an event whose POS id is `pos_id`.
fn document_number(config: &XeroConfig, event: &Event, pos_id: &str) -> Result<String, DeliveryError> {
    kaunter_sdk::documents::document_number(
        "document_number",
        &config.document_number,
        event,
        pos_id,
        MAX_NUMBER_LEN,
    )
    .map_err(|e| DeliveryError::Rejected(format!("cannot number the Xero document: {e}")))
}

/// `PUT /Invoices`, then `PUT /Payments` against the invoice.
fn post_sale(config: &XeroConfig, event: &Event, sale: &Sale, key: &str) -> Result<Receipt, DeliveryError> {
    let store = event.store().unwrap_or("unknown store");
    let booking = Booking {
        kind: Kind::Invoice,
        number: document_number(config, event, &sale.order_id)?,
        pos_id: &sale.order_id,
        business_date: &sale.business_date,
        total: &sale.totals.total,
        tenders: &sale.tenders,
    };
    let invoice = Document {
        kind: "ACCREC",
        contact: contact(config),
        date: sale.business_date.clone(),
        due_date: Some(sale.business_date.clone()),
        invoice_number: Some(booking.number.clone()),
        credit_note_number: None,
        reference: format!("POS {store}"),
        currency_code: sale.totals.total.currency.clone(),
        status: "AUTHORISED",
        line_amount_types: line_amount_types(sale.tax_mode),
        line_items: sale.lines.iter().map(|l| line_item(config, l, true)).collect(),
    };
    let body = Invoices {
        invoices: vec![invoice],
    };
    book(config, &booking, &body, key)
}

/// `PUT /CreditNotes`, then `PUT /Payments` refunding it.
fn post_refund(config: &XeroConfig, event: &Event, refund: &Refund, key: &str) -> Result<Receipt, DeliveryError> {
    let store = event.store().unwrap_or("unknown store");
    let booking = Booking {
        kind: Kind::CreditNote,
        number: document_number(config, event, &refund.refund_id)?,
        pos_id: &refund.refund_id,
        business_date: &refund.business_date,
        total: &refund.totals.total,
        tenders: &refund.tenders,
    };
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
        credit_note_number: Some(booking.number.clone()),
        reference: format!("POS {store} refund of {}{reason}", refund.original_order_id),
        currency_code: refund.totals.total.currency.clone(),
        status: "AUTHORISED",
        line_amount_types: line_amount_types(refund.tax_mode),
        line_items,
    };
    let body = CreditNotes {
        credit_notes: vec![credit_note],
    };
    book(config, &booking, &body, key)
}

/// Creates the document (or, when Xero says its number is taken, finds it), then pays what is
/// still due on it. The receipt's `remote_id` is the document's id.
fn book(
    config: &XeroConfig,
    booking: &Booking,
    body: &impl serde::Serialize,
    key: &str,
) -> Result<Receipt, DeliveryError> {
    let kind = booking.kind;
    let what = format!("{} {}", kind.noun(), booking.number);
    let total = booking.total.amount_minor.unsigned_abs();
    // Every tender needs an account before anything is sent, so a missing mapping never leaves
    // an unpaid document behind.
    payment_accounts(config, &tenders_paid(booking.tenders, total))?;
    let result = send_put(config, kind.resource(), body, &derived_key(key, kind.step()), &what)?;
    let (id, due, status) = match result.as_ref().ok().and_then(answer::number_taken) {
        Some(message) => {
            host::info(&format!(
                "Xero already has the {what} ({message}): looking it up to pay what is still due"
            ));
            let (id, due, status) = find(config, booking, &what)?;
            (id, due.min(total), status)
        }
        None => {
            let response = answer::check(result, &what, Verb::Create)?;
            (created_id(kind, &response, &what)?, total, response.status)
        }
    };
    let paid = tenders_paid(booking.tenders, due);
    let accounts = payment_accounts(config, &paid)?;
    let payments = paid
        .iter()
        .zip(accounts)
        .map(|((tender, amount), account)| Payment {
            invoice: (kind == Kind::Invoice).then(|| InvoiceRef { invoice_id: id.clone() }),
            credit_note: (kind == Kind::CreditNote).then(|| CreditNoteRef {
                credit_note_id: id.clone(),
            }),
            account: AccountRef { code: account },
            date: booking.business_date.to_owned(),
            amount: Decimal::amount(amount),
            reference: payment_reference(booking.pos_id, tender),
        })
        .collect();
    post_payments(config, payments, key, &what)?;
    Ok(Receipt {
        status: Some(status),
        remote_id: Some(id),
    })
}

/// The new document's id from the answer to its `PUT`.
fn created_id(kind: Kind, response: &http::Response, what: &str) -> Result<String, DeliveryError> {
    let id = match kind {
        Kind::Invoice => parse::<InvoicesAnswer>(response, what)?
            .invoices
            .into_iter()
            .next()
            .map(|i| i.invoice_id),
        Kind::CreditNote => parse::<CreditNotesAnswer>(response, what)?
            .credit_notes
            .into_iter()
            .next()
            .map(|c| c.credit_note_id),
    };
    id.ok_or_else(|| DeliveryError::Rejected(format!("Xero created the {what} but answered without its id")))
}

/// Finds a document Xero says it already has, by its number: `GET /Invoices?InvoiceNumbers=…`
/// or `GET /CreditNotes?where=CreditNoteNumber=="…"`. Returns its id, what is still due on it
/// (`AmountDue`, `RemainingCredit`) in minor units, and the answer's status. A document that
/// cannot be paid (voided, draft) or cannot be found is rejected: the event needs a person.
fn find(config: &XeroConfig, booking: &Booking, what: &str) -> Result<(String, u64, u16), DeliveryError> {
    let base = config.base_url.trim_end_matches('/');
    let number = &booking.number;
    let url = match booking.kind {
        Kind::Invoice => format!("{base}/Invoices?InvoiceNumbers={}", http::form_encode(number)),
        Kind::CreditNote => format!(
            "{base}/CreditNotes?where={}",
            http::form_encode(&format!("CreditNoteNumber==\"{number}\""))
        ),
    };
    let request = Request::get(&url).header("xero-tenant-id", &config.tenant_id);
    let response = answer::check(http::send(&request), what, Verb::Find)?;
    let found: FoundAnswer = parse(&response, what)?;
    let (documents, number_of): (_, fn(&FoundDocument) -> Option<&String>) = match booking.kind {
        Kind::Invoice => (found.invoices, |d| d.invoice_number.as_ref()),
        Kind::CreditNote => (found.credit_notes, |d| d.credit_note_number.as_ref()),
    };
    let document = documents
        .into_iter()
        .find(|d| number_of(d).is_some_and(|n| n.eq_ignore_ascii_case(number)))
        .ok_or_else(|| {
            DeliveryError::Rejected(format!(
                "Xero says the number of the {what} is taken, but finds no {} with that number",
                booking.kind.noun()
            ))
        })?;
    if !matches!(document.status.as_str(), "AUTHORISED" | "PAID") {
        return Err(DeliveryError::Rejected(format!(
            "Xero already has the {what}, but {}: it cannot be paid, nothing was sent",
            document.status
        )));
    }
    let (id, due) = match booking.kind {
        Kind::Invoice => (document.invoice_id, document.amount_due),
        Kind::CreditNote => (document.credit_note_id, document.remaining_credit),
    };
    let id = id.ok_or_else(|| DeliveryError::Rejected(format!("Xero found the {what} but without its id")))?;
    let due = due
        .and_then(|raw| minor_units(raw.get(), booking.total.exponent))
        .and_then(|minor| u64::try_from(minor).ok())
        .ok_or_else(|| {
            DeliveryError::Rejected(format!("Xero found the {what} but without a readable amount still due"))
        })?;
    Ok((id, due, response.status))
}

/// `PUT /Payments` with every payment of one document, unless there is none (nothing paid, or
/// nothing left due).
fn post_payments(config: &XeroConfig, payments: Vec<Payment>, key: &str, what: &str) -> Result<(), DeliveryError> {
    if payments.is_empty() {
        return Ok(());
    }
    let body = Payments { payments };
    let what = format!("payments for the {what}");
    let result = send_put(config, "Payments", &body, &derived_key(key, "payments"), &what)?;
    answer::check(result, &what, Verb::Create)?;
    Ok(())
}

/// One `PUT` to the Accounting API with the Xero headers; the answer is for the caller to check
/// (see [`answer::check`]).
fn send_put(
    config: &XeroConfig,
    resource: &str,
    body: &impl serde::Serialize,
    idempotency_key: &str,
    what: &str,
) -> Result<Result<http::Response, http::HttpError>, DeliveryError> {
    let url = format!("{}/{resource}", config.base_url.trim_end_matches('/'));
    let request = Request::json("PUT", &url, body)
        .map_err(|e| DeliveryError::Rejected(format!("cannot encode the {what}: {e}")))?
        .header("accept", "application/json")
        .header("xero-tenant-id", &config.tenant_id)
        .header("idempotency-key", idempotency_key);
    Ok(http::send(&request))
}

/// The body of a success. One that does not parse is rejected rather than retried: the retry
/// would get the same stored answer.
fn parse<A: serde::de::DeserializeOwned>(response: &http::Response, what: &str) -> Result<A, DeliveryError> {
    response
        .json::<A>()
        .map_err(|e| DeliveryError::Rejected(format!("Xero answered about the {what}, but not as expected: {e}")))
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

/// The tenders with what each pays toward `due` (minor units): in order, each capped at what is
/// still due (cash handed back as change is not income; a document already partly paid takes
/// only the rest), zero amounts left out. Refunds carry negative amounts; the result keeps their
/// sign and the caller writes magnitudes.
fn tenders_paid(tenders: &[Tender], due: u64) -> Vec<(&Tender, Money)> {
    let mut due = due;
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
