//! `connector-quickbooks`: books POS sales and refunds in QuickBooks Online through the Accounting
//! API v3.
//!
//! - `pos.sale.completed.v1` → `POST {base_url}/v3/company/{realm_id}/salesreceipt?requestid=…&minorversion=…`:
//!   one `SalesReceipt` numbered from the `document_number` template (`DocNumber`, default
//!   `{store}-{order}`, at most 21 characters, see [`kaunter_sdk::documents`]), the business date as `TxnDate`, one
//!   `SalesItemLineDetail` line per receipt line (`ItemRef` per SKU from config, `Qty` from
//!   `quantity_milli`, `UnitPrice`, `Amount` = the line's gross, `TaxCodeRef` from config), then one
//!   fixed-amount `DiscountLineDetail` line with the sum of the line discounts, and
//!   `GlobalTaxCalculation` `TaxInclusive` or `TaxExcluded` from the sale's tax mode.
//! - `pos.refund.completed.v1` → `POST …/refundreceipt?…`: one `RefundReceipt`, the same shape
//!   with positive quantities and amounts, numbered the same way from the refund id.
//! - Any other event type is skipped (a receipt with no status and a debug log line).
//!
//! A receipt has one payment method and one deposit account. They come from the configuration for
//! the tender's method; when a sale was paid with several methods, from `split_tender` if set, else
//! from the tender that paid the most. Every tender is listed in `PrivateNote`.
//!
//! `requestid` is the delivery's idempotency key, so QuickBooks answers a repeated request with the
//! stored response instead of booking twice. QuickBooks accepts at most 50 characters; a longer key
//! is replaced by the first 32 hex digits of its SHA-256 (stable across retries).
//!
//! The plugin never handles tokens: the operator grants a host-run OAuth 2.0 credential and the
//! host adds `Authorization`. The receipt's `remote_id` is QuickBooks' `Id` of the new receipt.
//! Answers are mapped in [`answer`].

pub mod answer;
pub mod body;

use body::{Created, Decimal, DiscountLineDetail, Line, Ref, SalesItemLineDetail};
use kaunter_sdk::http::{self, Request};
use kaunter_sdk::{
    DeliveryContext, DeliveryError, Event, Money, Payload, PluginConfig, Receipt, SaleLine, TaxMode, Tender,
    TenderMethod, Totals, host,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickBooksConfig {
    /// The API host, default `https://quickbooks.api.intuit.com` (sandbox:
    /// `https://sandbox-quickbooks.api.intuit.com`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The company (realm id).
    pub realm_id: String,
    /// `minorversion` sent with every request.
    #[serde(default = "default_minor_version")]
    pub minor_version: u32,
    /// The item every line is booked to unless `items` names one for its SKU.
    pub item: String,
    /// Item id per SKU.
    #[serde(default)]
    pub items: BTreeMap<String, String>,
    /// Tax code for every line (e.g. `TAX`, `NON`, or a tax code id).
    #[serde(default)]
    pub tax_code: Option<String>,
    /// Tax code per POS tax code (a line's first tax), overriding `tax_code`.
    #[serde(default)]
    pub tax_codes: BTreeMap<String, String>,
    /// Account for the discount line; unset, QuickBooks uses the company's discount account.
    #[serde(default)]
    pub discount_account: Option<String>,
    /// A walk-in customer to book receipts to; unset, receipts have no customer.
    #[serde(default)]
    pub customer: Option<String>,
    /// Payment method and deposit account per tender method (`cash`, `card`, `octopus`, `fps`,
    /// `alipay_hk`, `wechat_pay`, `voucher`, `points`, the name of an `other` method; `other`
    /// catches the rest).
    pub tenders: BTreeMap<String, TenderRefs>,
    /// Used for sales paid with more than one method; unset, the method that paid the most.
    #[serde(default)]
    pub split_tender: Option<TenderRefs>,
    /// How receipts are numbered (`DocNumber`, see [`kaunter_sdk::documents`]), default `{store}-{order}`.
    #[serde(default = "default_document_number")]
    pub document_number: String,
}

fn default_document_number() -> String {
    kaunter_sdk::documents::DEFAULT_TEMPLATE.into()
}

/// Where a tender's money goes in QuickBooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenderRefs {
    /// `PaymentMethod` id.
    pub payment_method: String,
    /// `Account` id to deposit to (or refund from).
    pub deposit_account: String,
}

fn default_base_url() -> String {
    "https://quickbooks.api.intuit.com".into()
}

fn default_minor_version() -> u32 {
    75
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<QuickBooksConfig> = PluginConfig::new();

/// QuickBooks takes `requestid`s of at most this many characters.
const MAX_REQUEST_ID: usize = 50;
/// QuickBooks takes `DocNumber` and `PaymentRefNum` of at most this many characters.
const MAX_DOC_NUMBER: usize = 21;

/// What one sale or refund becomes, whichever the document.
struct Booking<'a> {
    /// `salesreceipt` or `refundreceipt`.
    entity: &'static str,
    /// For messages: `sales receipt hk-001-HK001-000124`.
    what: String,
    /// `DocNumber`, from the `document_number` template.
    number: String,
    business_date: &'a str,
    tax_mode: TaxMode,
    lines: Vec<&'a SaleLine>,
    tenders: &'a [Tender],
    totals: &'a Totals,
    note: String,
}

/// Posts a sale as a sales receipt, a refund as a refund receipt.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid QuickBooks config: {e:?}")))?;
    let store = event.store().unwrap_or("unknown store");
    let number = |pos_id: &str| {
        kaunter_sdk::documents::document_number(
            "document_number",
            &config.document_number,
            &event,
            pos_id,
            MAX_DOC_NUMBER,
        )
        .map_err(|e| DeliveryError::Rejected(format!("cannot number the QuickBooks receipt: {e}")))
    };
    let booking = match &event.payload {
        Payload::Sale(sale) => {
            let number = number(&sale.order_id)?;
            Booking {
                entity: "salesreceipt",
                what: format!("sales receipt {number}"),
                number,
                business_date: &sale.business_date,
                tax_mode: sale.tax_mode,
                lines: sale.lines.iter().collect(),
                tenders: &sale.tenders,
                totals: &sale.totals,
                note: format!("POS {store} order {}", sale.order_id),
            }
        }
        Payload::Refund(refund) => {
            let number = number(&refund.refund_id)?;
            Booking {
                entity: "refundreceipt",
                what: format!("refund receipt {number}"),
                number,
                business_date: &refund.business_date,
                tax_mode: refund.tax_mode,
                lines: refund.lines.iter().map(|l| &l.line).collect(),
                tenders: &refund.tenders,
                totals: &refund.totals,
                note: format!(
                    "POS {store} refund {} of order {}{}",
                    refund.refund_id,
                    refund.original_order_id,
                    refund.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                ),
            }
        }
        _ => {
            host::debug(&format!(
                "{} is not a sale or a refund: nothing to book in QuickBooks",
                event.ty
            ));
            return Ok(Receipt {
                status: None,
                remote_id: None,
            });
        }
    };
    post(config, &booking, &context.idempotency_key)
}

/// Builds the receipt and sends it.
fn post(config: &QuickBooksConfig, booking: &Booking, key: &str) -> Result<Receipt, DeliveryError> {
    let paid = tenders_paid(booking.tenders, &booking.totals.total);
    let (refs, main) = payment_refs(config, &paid, booking.tenders)?;
    let tender_note: Vec<String> = paid
        .iter()
        .map(|(t, amount)| match &t.processor_ref {
            Some(r) => format!("{} {} ({r})", method_name(&t.method), Decimal::amount(amount).as_str()),
            None => format!("{} {}", method_name(&t.method), Decimal::amount(amount).as_str()),
        })
        .collect();
    let receipt = body::Receipt {
        doc_number: booking.number.clone(),
        txn_date: booking.business_date.to_owned(),
        currency_ref: Ref::to(&booking.totals.total.currency),
        customer_ref: config.customer.as_deref().map(Ref::to),
        global_tax_calculation: match booking.tax_mode {
            TaxMode::Inclusive => "TaxInclusive",
            TaxMode::Exclusive => "TaxExcluded",
        },
        line: lines(config, &booking.lines)?,
        payment_method_ref: Ref::to(&refs.payment_method),
        deposit_to_account_ref: Ref::to(&refs.deposit_account),
        payment_ref_num: main
            .and_then(|t| t.processor_ref.clone())
            .filter(|r| r.len() <= MAX_DOC_NUMBER),
        private_note: format!("{}; paid {}", booking.note, tender_note.join(", ")),
    };
    let url = format!(
        "{}/v3/company/{}/{}?requestid={}&minorversion={}",
        config.base_url.trim_end_matches('/'),
        http::form_encode(&config.realm_id),
        booking.entity,
        http::form_encode(&request_id(key)),
        config.minor_version
    );
    let request = Request::post_json(&url, &receipt)
        .map_err(|e| DeliveryError::Rejected(format!("cannot encode the {}: {e}", booking.what)))?
        .header("accept", "application/json");
    let response = answer::check(http::send(&request), &booking.what)?;
    let created: Created = response.json().map_err(|e| {
        DeliveryError::Rejected(format!(
            "QuickBooks accepted the {} but its answer is unexpected: {e}",
            booking.what
        ))
    })?;
    let id = created
        .sales_receipt
        .or(created.refund_receipt)
        .map(|c| c.id)
        .ok_or_else(|| {
            DeliveryError::Rejected(format!(
                "QuickBooks created the {} but answered without an Id",
                booking.what
            ))
        })?;
    Ok(Receipt {
        status: Some(response.status),
        remote_id: Some(id),
    })
}

/// The idempotency key as QuickBooks' `requestid`: itself when it fits, else a stable hash.
fn request_id(key: &str) -> String {
    if key.len() <= MAX_REQUEST_ID {
        return key.to_owned();
    }
    let mut hex = kaunter_sdk::hex_encode(&host::sha256(key.as_bytes()));
    hex.truncate(32);
    hex
}

/// One item line per receipt line, then the discount line.
fn lines(config: &QuickBooksConfig, sale_lines: &[&SaleLine]) -> Result<Vec<Line>, DeliveryError> {
    let mut out = Vec::new();
    for (i, line) in sale_lines.iter().enumerate() {
        let tax_code = line
            .taxes
            .first()
            .and_then(|t| config.tax_codes.get(&t.code))
            .or(config.tax_code.as_ref());
        out.push(Line {
            line_num: Some(u32::try_from(i + 1).unwrap_or(u32::MAX)),
            description: Some(line.name.clone().unwrap_or_else(|| line.sku.clone())),
            amount: Decimal::amount(&line.gross),
            detail_type: "SalesItemLineDetail",
            sales_item_line_detail: Some(SalesItemLineDetail {
                item_ref: Ref::to(config.items.get(&line.sku).unwrap_or(&config.item)),
                qty: Decimal::quantity(line.quantity_milli),
                unit_price: Decimal::amount(&line.unit_price),
                tax_code_ref: tax_code.map(|c| Ref::to(c)),
            }),
            discount_line_detail: None,
        });
    }
    let Some(first) = sale_lines.first() else {
        return Ok(out);
    };
    let discounts = sale_lines.iter().map(|l| abs(&l.discount));
    let discount = Money::sum(
        &first.discount.currency,
        first.discount.exponent,
        &discounts.collect::<Vec<_>>(),
    )
    .ok_or_else(|| DeliveryError::Rejected("the line discounts do not add up in one currency".into()))?;
    if discount.amount_minor != 0 {
        out.push(Line {
            line_num: None,
            description: None,
            amount: Decimal::amount(&discount),
            detail_type: "DiscountLineDetail",
            sales_item_line_detail: None,
            discount_line_detail: Some(DiscountLineDetail {
                percent_based: false,
                discount_account_ref: config.discount_account.as_deref().map(Ref::to),
            }),
        });
    }
    Ok(out)
}

fn abs(money: &Money) -> Money {
    Money::new(money.amount_minor.saturating_abs(), &money.currency, money.exponent)
}

/// The tenders with what each actually paid toward `total`: in order, each capped at what is
/// still due (change handed back is not income), zero amounts left out.
fn tenders_paid<'a>(tenders: &'a [Tender], total: &Money) -> Vec<(&'a Tender, Money)> {
    let mut due = total.amount_minor.unsigned_abs();
    let mut paid = Vec::new();
    for tender in tenders {
        let amount = tender.amount.amount_minor.unsigned_abs().min(due);
        due -= amount;
        if amount > 0 {
            let amount = i64::try_from(amount).unwrap_or(i64::MAX);
            paid.push((
                tender,
                Money::new(amount, &tender.amount.currency, tender.amount.exponent),
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

/// The payment method and deposit account for the receipt, and the tender that decided them
/// (`None` for `split_tender`). Nothing paid (a fully discounted sale) falls back to the first
/// tender.
fn payment_refs<'a>(
    config: &'a QuickBooksConfig,
    paid: &[(&'a Tender, Money)],
    tenders: &'a [Tender],
) -> Result<(&'a TenderRefs, Option<&'a Tender>), DeliveryError> {
    let lookup = |tender: &Tender| {
        let name = method_name(&tender.method);
        config
            .tenders
            .get(name)
            .or_else(|| config.tenders.get("other"))
            .ok_or_else(|| {
                DeliveryError::Rejected(format!(
                    "no QuickBooks payment method for tender method `{name}`: add [tenders.{name}] (or [tenders.other]) to the config"
                ))
            })
    };
    let mut methods: Vec<&str> = paid.iter().map(|(t, _)| method_name(&t.method)).collect();
    methods.sort_unstable();
    methods.dedup();
    if methods.len() > 1
        && let Some(split) = &config.split_tender
    {
        return Ok((split, None));
    }
    // The tender that paid the most (the first of equals).
    let main = paid
        .iter()
        .fold(None::<&(&Tender, Money)>, |best, p| match best {
            Some(b) if b.1.amount_minor >= p.1.amount_minor => Some(b),
            _ => Some(p),
        })
        .map(|(t, _)| *t)
        .or_else(|| tenders.first())
        .ok_or_else(|| DeliveryError::Rejected("no tender: a receipt needs a payment method".into()))?;
    Ok((lookup(main)?, Some(main)))
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
