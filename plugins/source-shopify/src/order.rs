//! Shopify's order and refund webhook bodies (REST Admin API shapes, the fields this source reads)
//! and their mapping to kaunter's [`Sale`] and [`Refund`].
//!
//! Amounts are in the shop's currency (`currency` on the order, `shop_money` on refunds), read
//! exactly from Shopify's decimal strings with [`Decimal`].

use crate::decimal::{Decimal, exponent};
use kaunter_sdk::{Money, Refund, RefundLine, Sale, SaleLine, Tax, TaxMode, Tender, TenderMethod, Totals};
use serde::Deserialize;

/// An id Shopify writes as a JSON number (REST) or, in some payloads, a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// `450789469`.
    Number(u64),
    /// `"450789469"`.
    Text(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Text(t) => f.write_str(t),
        }
    }
}

/// The body of `orders/create`.
#[derive(Debug, Deserialize)]
pub struct Order {
    /// The order's id; kaunter's `order_id` (refunds point at it).
    pub id: Id,
    /// RFC 3339 in the shop's time zone; the event time and (its date) the business date.
    pub created_at: String,
    /// The shop currency every amount below is in.
    pub currency: String,
    /// Whether line prices include tax.
    #[serde(default)]
    pub taxes_included: bool,
    /// What the customer pays, all in.
    pub total_price: Decimal,
    /// The order's lines.
    pub line_items: Vec<LineItem>,
    /// Shipping charges, carried as lines so totals add up to `total_price`.
    #[serde(default)]
    pub shipping_lines: Vec<ShippingLine>,
    /// Payments, when the payload carries them (the standard webhook does not).
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    /// Gateways used to pay, e.g. `["shopify_payments"]`.
    #[serde(default)]
    pub payment_gateway_names: Vec<String>,
    /// The customer, if any.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// Shopify POS location the sale was rung at (absent for online orders).
    #[serde(default)]
    pub location_id: Option<Id>,
    /// Staff member who rang a POS order.
    #[serde(default)]
    pub user_id: Option<Id>,
}

/// `line_items[]`.
#[derive(Debug, Deserialize)]
pub struct LineItem {
    /// The line's id.
    pub id: Id,
    /// The merchant's SKU; may be empty or null.
    #[serde(default)]
    pub sku: Option<String>,
    /// Product and variant title.
    #[serde(default)]
    pub name: Option<String>,
    /// Product title (used when `name` is absent).
    #[serde(default)]
    pub title: Option<String>,
    /// The variant, used as SKU when the merchant set none.
    #[serde(default)]
    pub variant_id: Option<Id>,
    /// Units (Shopify quantities are whole).
    pub quantity: i64,
    /// Price of one unit.
    pub price: Decimal,
    /// Discount on the whole line (older field; `discount_allocations` wins when present).
    #[serde(default)]
    pub total_discount: Option<Decimal>,
    /// Discounts allocated to this line.
    #[serde(default)]
    pub discount_allocations: Vec<DiscountAllocation>,
    /// Taxes on the whole line.
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
}

/// `shipping_lines[]`.
#[derive(Debug, Deserialize)]
pub struct ShippingLine {
    /// Method name, e.g. `Standard`.
    #[serde(default)]
    pub title: Option<String>,
    /// Shipping price before discounts.
    pub price: Decimal,
    /// Discounts on shipping.
    #[serde(default)]
    pub discount_allocations: Vec<DiscountAllocation>,
    /// Taxes on shipping.
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
}

/// `discount_allocations[]`.
#[derive(Debug, Deserialize)]
pub struct DiscountAllocation {
    /// Amount taken off the line.
    pub amount: Decimal,
}

/// `tax_lines[]`.
#[derive(Debug, Deserialize)]
pub struct TaxLine {
    /// Tax name, e.g. `GST`; kaunter's tax code.
    #[serde(default)]
    pub title: Option<String>,
    /// Tax amount for the whole line.
    pub price: Decimal,
    /// Rate as a fraction (`0.08875`).
    #[serde(default)]
    pub rate: Option<Decimal>,
}

/// `transactions[]` of an order or a refund.
#[derive(Debug, Deserialize)]
pub struct Transaction {
    /// The transaction's id (the tender's processor reference).
    pub id: Id,
    /// `sale`, `capture`, `authorization`, `refund`, `void`, ...
    pub kind: String,
    /// `success`, `pending`, `failure`, `error`.
    #[serde(default)]
    pub status: Option<String>,
    /// Amount in the shop currency.
    pub amount: Decimal,
    /// Gateway, e.g. `shopify_payments`, `cash`, `gift_card`.
    #[serde(default)]
    pub gateway: Option<String>,
    /// ISO 4217 currency of `amount`.
    #[serde(default)]
    pub currency: Option<String>,
}

/// `customer`.
#[derive(Debug, Deserialize)]
pub struct Customer {
    /// The customer's id; kaunter's `member_id`.
    pub id: Id,
}

/// The body of `refunds/create`.
#[derive(Debug, Deserialize)]
pub struct ShopifyRefund {
    /// The refund's id.
    pub id: Id,
    /// The refunded order.
    pub order_id: Id,
    /// RFC 3339, shop time zone.
    pub created_at: String,
    /// Staff note: kaunter's `reason`.
    #[serde(default)]
    pub note: Option<String>,
    /// Staff member who refunded.
    #[serde(default)]
    pub user_id: Option<Id>,
    /// Refunded lines (empty for refunds of shipping or adjustments only).
    #[serde(default)]
    pub refund_line_items: Vec<RefundLineItem>,
    /// Money returned.
    #[serde(default)]
    pub transactions: Vec<Transaction>,
}

/// `refund_line_items[]`.
#[derive(Debug, Deserialize)]
pub struct RefundLineItem {
    /// Units refunded.
    pub quantity: i64,
    /// The order line refunded.
    pub line_item: LineItem,
    /// `return`, `cancel`, `legacy_restock` (back in stock) or `no_restock`.
    #[serde(default)]
    pub restock_type: Option<String>,
    /// Where restocked goods go (a POS location).
    #[serde(default)]
    pub location_id: Option<Id>,
    /// Line amount refunded, after discounts, before tax.
    #[serde(default)]
    pub subtotal: Option<Decimal>,
    /// Same, with currencies.
    #[serde(default)]
    pub subtotal_set: Option<MoneyBag>,
    /// Tax refunded on the line.
    #[serde(default)]
    pub total_tax: Option<Decimal>,
    /// Same, with currencies.
    #[serde(default)]
    pub total_tax_set: Option<MoneyBag>,
}

/// A `*_set` amount: shop and presentment currency.
#[derive(Debug, Deserialize)]
pub struct MoneyBag {
    /// In the shop currency.
    pub shop_money: ShopMoney,
}

/// `shop_money`.
#[derive(Debug, Deserialize)]
pub struct ShopMoney {
    /// Decimal string.
    pub amount: Decimal,
    /// ISO 4217.
    pub currency_code: String,
}

/// Money in one currency, with errors naming the field they came from.
struct Currency {
    code: String,
    exponent: u8,
}

impl Currency {
    fn new(code: &str) -> Currency {
        let code = code.trim().to_ascii_uppercase();
        Currency {
            exponent: exponent(&code),
            code,
        }
    }

    fn money(&self, amount: &Decimal, at: &str) -> Result<Money, String> {
        let minor = amount.minor_units(self.exponent).map_err(|e| format!("`{at}`: {e}"))?;
        Ok(Money::new(minor, &self.code, self.exponent))
    }

    fn zero(&self) -> Money {
        Money::zero(&self.code, self.exponent)
    }

    fn sum<'a>(&self, amounts: impl IntoIterator<Item = &'a Money>, at: &str) -> Result<Money, String> {
        Money::sum(&self.code, self.exponent, amounts).ok_or_else(|| format!("`{at}`: the sum overflows"))
    }
}

/// Which payment method a Shopify gateway name stands for.
pub fn gateway_method(gateway: &str) -> TenderMethod {
    let name = gateway.trim().to_ascii_lowercase();
    match name.as_str() {
        "shopify_payments" => TenderMethod::Card,
        "gift_card" => TenderMethod::Voucher,
        "octopus" => TenderMethod::Octopus,
        "fps" => TenderMethod::Fps,
        _ if name == "cash" || name.starts_with("cash ") => TenderMethod::Cash,
        _ => TenderMethod::Other(name),
    }
}

/// The SKU of a line: the merchant's, else the variant id, else the line id.
fn sku(item: &LineItem) -> String {
    match item.sku.as_deref().map(str::trim) {
        Some(sku) if !sku.is_empty() => sku.to_owned(),
        _ => match &item.variant_id {
            Some(variant) => format!("shopify-variant-{variant}"),
            None => format!("shopify-line-{}", item.id),
        },
    }
}

/// `YYYY-MM-DD` from an RFC 3339 time written in the shop's zone.
pub fn business_date(time: &str, at: &str) -> Result<String, String> {
    let date = time.get(..10).unwrap_or("");
    let b = date.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if shaped {
        Ok(date.to_owned())
    } else {
        Err(format!("`{at}` is not an RFC 3339 time: {time:?}"))
    }
}

/// Taxes of a sale line, in kaunter's form.
fn taxes(lines: &[TaxLine], currency: &Currency, at: &str) -> Result<Vec<Tax>, String> {
    lines
        .iter()
        .enumerate()
        .map(|(j, t)| {
            Ok(Tax {
                code: t.title.clone().unwrap_or_else(|| "TAX".into()),
                rate_ppm: match &t.rate {
                    Some(rate) => rate
                        .parts_per_million()
                        .map_err(|e| format!("`{at}.tax_lines[{j}].rate`: {e}"))?,
                    None => 0,
                },
                amount: currency.money(&t.price, &format!("{at}.tax_lines[{j}].price"))?,
            })
        })
        .collect()
}

/// Sum of the discount allocations, or `fallback` when there are none.
fn discount(
    allocations: &[DiscountAllocation],
    fallback: Option<&Decimal>,
    currency: &Currency,
    at: &str,
) -> Result<Money, String> {
    if allocations.is_empty() {
        return match fallback {
            Some(total) => currency.money(total, &format!("{at}.total_discount")),
            None => Ok(currency.zero()),
        };
    }
    let amounts = allocations
        .iter()
        .enumerate()
        .map(|(j, d)| currency.money(&d.amount, &format!("{at}.discount_allocations[{j}].amount")))
        .collect::<Result<Vec<_>, _>>()?;
    currency.sum(&amounts, &format!("{at}.discount_allocations"))
}

/// One sale line from its parts (positive amounts).
#[allow(clippy::too_many_arguments)]
fn sale_line(
    line_no: u32,
    sku: String,
    name: Option<String>,
    quantity: i64,
    unit_price: Money,
    discount: Money,
    taxes: Vec<Tax>,
    attributes: Vec<(String, String)>,
    at: &str,
) -> Result<SaleLine, String> {
    let quantity_milli = quantity
        .checked_mul(1000)
        .ok_or_else(|| format!("`{at}.quantity` is out of range"))?;
    let gross = unit_price
        .times_milli(quantity_milli)
        .ok_or_else(|| format!("`{at}`: price × quantity overflows"))?;
    let net = gross
        .checked_sub(&discount)
        .ok_or_else(|| format!("`{at}`: discount is in another currency"))?;
    Ok(SaleLine {
        line_no,
        sku,
        name,
        quantity_milli,
        unit_price,
        gross,
        discount,
        net,
        taxes,
        attributes,
    })
}

/// Totals of a set of lines and tenders.
fn totals(lines: &[&SaleLine], tenders: &[Tender], mode: TaxMode, currency: &Currency) -> Result<Totals, String> {
    let gross = currency.sum(lines.iter().map(|l| &l.gross), "lines.gross")?;
    let discount = currency.sum(lines.iter().map(|l| &l.discount), "lines.discount")?;
    let net = currency.sum(lines.iter().map(|l| &l.net), "lines.net")?;
    let tax = currency.sum(
        lines.iter().flat_map(|l| l.taxes.iter().map(|t| &t.amount)),
        "lines.taxes",
    )?;
    let total = match mode {
        TaxMode::Inclusive => net.clone(),
        TaxMode::Exclusive => currency.sum([&net, &tax], "total")?,
    };
    let tendered = currency.sum(tenders.iter().map(|t| &t.amount), "tenders")?;
    Ok(Totals {
        gross,
        discount,
        net,
        tax,
        total,
        tendered,
        change: currency.zero(),
    })
}

/// Tenders from successful transactions of the given kinds in the event's currency; `sign` −1
/// for money going back.
fn transaction_tenders(
    transactions: &[Transaction],
    kinds: &[&str],
    sign: i64,
    currency: &Currency,
) -> Result<Vec<Tender>, String> {
    transactions
        .iter()
        .enumerate()
        .filter(|(_, t)| kinds.contains(&t.kind.as_str()) && t.status.as_deref().is_none_or(|s| s == "success"))
        // A transaction in another (presentment) currency cannot be a tender of this event.
        .filter(|(_, t)| {
            t.currency
                .as_deref()
                .is_none_or(|c| c.trim().eq_ignore_ascii_case(&currency.code))
        })
        .map(|(i, t)| {
            let amount = currency.money(&t.amount, &format!("transactions[{i}].amount"))?;
            Ok(Tender {
                method: gateway_method(t.gateway.as_deref().unwrap_or("unknown")),
                amount: Money::new(amount.amount_minor * sign, &amount.currency, amount.exponent),
                processor_ref: Some(t.id.to_string()),
            })
        })
        .collect()
}

impl Order {
    /// The order as a kaunter sale in the given time zone.
    pub fn to_sale(&self, time_zone: &str) -> Result<Sale, String> {
        let currency = Currency::new(&self.currency);
        let tax_mode = if self.taxes_included {
            TaxMode::Inclusive
        } else {
            TaxMode::Exclusive
        };
        let mut lines = Vec::new();
        for (i, item) in self.line_items.iter().enumerate() {
            let at = format!("line_items[{i}]");
            let mut attributes = vec![("shopify.line_item_id".to_owned(), item.id.to_string())];
            if let Some(variant) = &item.variant_id {
                attributes.push(("shopify.variant_id".into(), variant.to_string()));
            }
            lines.push(sale_line(
                line_number(lines.len())?,
                sku(item),
                item.name.clone().or_else(|| item.title.clone()),
                item.quantity,
                currency.money(&item.price, &format!("{at}.price"))?,
                discount(&item.discount_allocations, item.total_discount.as_ref(), &currency, &at)?,
                taxes(&item.tax_lines, &currency, &at)?,
                attributes,
                &at,
            )?);
        }
        for (i, shipping) in self.shipping_lines.iter().enumerate() {
            let at = format!("shipping_lines[{i}]");
            lines.push(sale_line(
                line_number(lines.len())?,
                "shipping".into(),
                shipping.title.clone(),
                1,
                currency.money(&shipping.price, &format!("{at}.price"))?,
                discount(&shipping.discount_allocations, None, &currency, &at)?,
                taxes(&shipping.tax_lines, &currency, &at)?,
                vec![("kind".into(), "shipping".into())],
                &at,
            )?);
        }
        let total_price = currency.money(&self.total_price, "total_price")?;
        let mut tenders = transaction_tenders(&self.transactions, &["sale", "capture"], 1, &currency)?;
        if tenders.is_empty() {
            let method = match self.payment_gateway_names.as_slice() {
                [] => TenderMethod::Other("unknown".into()),
                [one] => gateway_method(one),
                several => TenderMethod::Other(several.join("+")),
            };
            tenders.push(Tender {
                method,
                amount: total_price.clone(),
                processor_ref: None,
            });
        }
        let all: Vec<&SaleLine> = lines.iter().collect();
        let totals = totals(&all, &tenders, tax_mode, &currency)?;
        if totals.total != total_price {
            kaunter_sdk::host::warn(&format!(
                "order {}: lines add up to {} but Shopify's total_price is {}",
                self.id, totals.total, total_price
            ));
        }
        Ok(Sale {
            order_id: self.id.to_string(),
            business_date: business_date(&self.created_at, "created_at")?,
            time_zone: time_zone.to_owned(),
            tax_mode,
            lines,
            tenders,
            totals,
            member_id: self.customer.as_ref().map(|c| c.id.to_string()),
            cashier_id: self.user_id.as_ref().map(Id::to_string),
        })
    }
}

fn line_number(count: usize) -> Result<u32, String> {
    u32::try_from(count + 1).map_err(|_| "too many lines".to_owned())
}

impl ShopifyRefund {
    /// The shop currency of the refund: from the line subtotals or, failing that, the transactions
    /// (`None` when neither says; the caller then uses the configured shop currency).
    fn currency(&self) -> Option<String> {
        self.refund_line_items
            .iter()
            .find_map(|l| l.subtotal_set.as_ref().map(|s| s.shop_money.currency_code.clone()))
            .or_else(|| self.transactions.iter().find_map(|t| t.currency.clone()))
    }

    /// The refund as a kaunter refund (negative quantities and amounts); `None` when it refunds
    /// no line (shipping or an adjustment only), which kaunter does not model as a refund.
    pub fn to_refund(
        &self,
        time_zone: &str,
        tax_mode: TaxMode,
        shop_currency: Option<&str>,
    ) -> Result<Option<Refund>, String> {
        if self.refund_line_items.is_empty() {
            return Ok(None);
        }
        let code = self.currency().or_else(|| shop_currency.map(str::to_owned)).ok_or_else(|| {
            "cannot tell the refund's currency: no `refund_line_items[].subtotal_set` and no `currency` in the plugin config"
                .to_owned()
        })?;
        let currency = Currency::new(&code);
        let mut lines = Vec::new();
        for (i, refunded) in self.refund_line_items.iter().enumerate() {
            let at = format!("refund_line_items[{i}]");
            let item = &refunded.line_item;
            let unit_price = currency.money(&item.price, &format!("{at}.line_item.price"))?;
            let quantity_milli = refunded
                .quantity
                .checked_mul(-1000)
                .ok_or_else(|| format!("`{at}.quantity` is out of range"))?;
            let gross = unit_price
                .times_milli(quantity_milli)
                .ok_or_else(|| format!("`{at}`: price × quantity overflows"))?;
            let net = match (&refunded.subtotal_set, &refunded.subtotal) {
                (Some(set), _) => currency.money(&set.shop_money.amount, &format!("{at}.subtotal_set"))?,
                (None, Some(subtotal)) => currency.money(subtotal, &format!("{at}.subtotal"))?,
                (None, None) => gross.negated().ok_or_else(|| format!("`{at}`: amount out of range"))?,
            };
            let net = net.negated().ok_or_else(|| format!("`{at}`: amount out of range"))?;
            let discount = gross
                .checked_sub(&net)
                .ok_or_else(|| format!("`{at}`: amounts in two currencies"))?;
            let tax = match (&refunded.total_tax_set, &refunded.total_tax) {
                (Some(set), _) => Some(currency.money(&set.shop_money.amount, &format!("{at}.total_tax_set"))?),
                (None, Some(tax)) => Some(currency.money(tax, &format!("{at}.total_tax"))?),
                (None, None) => None,
            };
            let taxes = match tax {
                Some(tax) if tax.amount_minor != 0 => {
                    let first = item.tax_lines.first();
                    vec![Tax {
                        code: first.and_then(|t| t.title.clone()).unwrap_or_else(|| "TAX".into()),
                        rate_ppm: match first.and_then(|t| t.rate.as_ref()) {
                            Some(rate) => rate
                                .parts_per_million()
                                .map_err(|e| format!("`{at}.line_item.tax_lines[0].rate`: {e}"))?,
                            None => 0,
                        },
                        amount: tax.negated().ok_or_else(|| format!("`{at}`: tax out of range"))?,
                    }]
                }
                _ => Vec::new(),
            };
            let restock = match refunded.restock_type.as_deref() {
                Some("no_restock") | None => false,
                Some(_) => true,
            };
            lines.push(RefundLine {
                line: SaleLine {
                    line_no: line_number(lines.len())?,
                    sku: sku(item),
                    name: item.name.clone().or_else(|| item.title.clone()),
                    quantity_milli,
                    unit_price,
                    gross,
                    discount,
                    net,
                    taxes,
                    attributes: vec![("shopify.line_item_id".into(), item.id.to_string())],
                },
                original_line_no: None,
                restock,
            });
        }
        let tenders = transaction_tenders(&self.transactions, &["refund"], -1, &currency)?;
        let refunded: Vec<&SaleLine> = lines.iter().map(|l| &l.line).collect();
        let totals = totals(&refunded, &tenders, tax_mode, &currency)?;
        Ok(Some(Refund {
            refund_id: self.id.to_string(),
            original_order_id: self.order_id.to_string(),
            business_date: business_date(&self.created_at, "created_at")?,
            time_zone: time_zone.to_owned(),
            tax_mode,
            lines,
            tenders,
            totals,
            reason: self.note.clone().filter(|n| !n.trim().is_empty()),
            member_id: None,
            cashier_id: self.user_id.as_ref().map(Id::to_string),
        }))
    }

    /// The POS location goods were restocked at, if any line names one.
    pub fn location(&self) -> Option<String> {
        self.refund_line_items
            .iter()
            .find_map(|l| l.location_id.as_ref().map(Id::to_string))
    }
}
