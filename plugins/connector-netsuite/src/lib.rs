//! `connector-netsuite`: books POS sales in NetSuite as **cash sales** and POS refunds as **cash
//! refunds**, with the SuiteTalk REST record API's upsert:
//! `PUT {base}/services/rest/record/v1/cashSale/eid:{externalId}?replace=item` (and `…/cashRefund/…`).
//!
//! What it maps ([`transaction`]):
//! - the external id ([`external_id`]): `{store}-{order}` by default (the store from the event
//!   source, the POS order id for a sale or refund id for a refund), from the `external_id`
//!   template; it names the record in the URL, so NetSuite keeps one cash sale per POS order.
//! - `memo` names the POS document (and, for a refund, the order); `tranDate`: the business date;
//!   `entity`, `subsidiary`, `account`: from the config; `location`: the store's NetSuite location.
//! - `item.items[]`: one line per receipt line: `item.id` from the SKU (`items`), `quantity` as a
//!   decimal (thousandths kept) and `amount`, the line net of discount, excluding tax, written from
//!   minor units (never a float). No `rate` is sent: the POS unit price is before discount (and,
//!   in inclusive mode, includes tax), so it would not match `amount`. Refund lines are sent as
//!   positive quantities and amounts.
//! - Other event types are skipped on purpose: `Ok` with no status and no remote id, and a debug log.
//!
//! Idempotency: NetSuite's upsert creates the record the first time and updates the same record
//! on every later request with the same external id, and `replace=item` makes the item lines
//! exactly the request's; so a retry, a replay or a resent POS document leaves one record as the
//! POS describes it. The delivery's idempotency key is not sent: NetSuite's
//! `X-NetSuite-Idempotency-Key` applies to asynchronous requests only and is ignored on
//! synchronous ones. [`outcome`] maps NetSuite's answers to what the host should do. The plugin
//! sends no credentials: the host's OAuth 2.0 client (client credentials with a JWT assertion)
//! adds `Authorization`.

use kaunter_sdk::http::{self, Request, Response};
use kaunter_sdk::{
    DeliveryContext, DeliveryError, Event, Money, Payload, PluginConfig, Receipt, RetryHint, SaleLine, TaxMode, host,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSuiteConfig {
    /// The NetSuite account id (`1234567`, or `1234567_SB1` for a sandbox).
    #[serde(default)]
    pub account_id: Option<String>,
    /// Overrides the URL built from `account_id` (tests point it at a local fake).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Internal id of the customer the POS sales are booked to (e.g. a "Walk-in" customer).
    pub entity: String,
    /// Internal id of the subsidiary (OneWorld accounts).
    #[serde(default)]
    pub subsidiary: Option<String>,
    /// Internal id of the account the cash is deposited to (else NetSuite's default).
    #[serde(default)]
    pub account: Option<String>,
    /// Store id (from the event source) → NetSuite location internal id.
    pub locations: BTreeMap<String, String>,
    /// POS SKU → NetSuite item internal id.
    pub items: BTreeMap<String, String>,
    /// The external id template: `{store}`, `{tenant}` and `{order}` (the POS order id, or the
    /// refund id for a refund); default `{store}-{order}`. `{order}` alone is right only when
    /// order ids are unique across stores.
    #[serde(default)]
    pub external_id: Option<String>,
}

impl NetSuiteConfig {
    /// `https://{account}.suitetalk.api.netsuite.com` (or `base_url`).
    pub fn base(&self) -> Result<String, DeliveryError> {
        match (&self.base_url, &self.account_id) {
            (Some(url), _) => Ok(url.trim_end_matches('/').to_owned()),
            (None, Some(account)) => Ok(format!(
                "https://{}.suitetalk.api.netsuite.com",
                account.to_ascii_lowercase().replace('_', "-")
            )),
            (None, None) => Err(DeliveryError::Rejected(
                "invalid netsuite config: set `account_id` (or `base_url`)".into(),
            )),
        }
    }
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<NetSuiteConfig> = PluginConfig::new();

/// Books a sale as a cash sale, a refund as a cash refund, by upsert on the external id.
#[kaunter_sdk::connector]
fn deliver(event: Event, _context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid netsuite config: {e:?}")))?;
    let Some(upsert) = transaction(&event, config)? else {
        host::debug(&format!("`{}` is not booked in NetSuite; skipped", event.ty));
        return Ok(Receipt {
            status: None,
            remote_id: None,
        });
    };
    let url = format!(
        "{}/services/rest/record/v1/{}/eid:{}?replace=item",
        config.base()?,
        upsert.record,
        upsert.external_id
    );
    let request = Request::json("PUT", &url, &upsert.body)
        .map_err(|e| DeliveryError::Rejected(e.to_string()))?
        .header("accept", "application/json");
    outcome(http::send(&request), &upsert.external_id)
}

/// What one event becomes: the record type, its external id and the body to upsert.
#[derive(Debug)]
pub struct Upsert {
    /// `cashSale` or `cashRefund`.
    pub record: &'static str,
    /// The external id the record is upserted on (letters, digits, `_` and `-` only).
    pub external_id: String,
    /// The record's fields.
    pub body: Transaction,
}

/// A reference to another record by internal id.
#[derive(Debug, Serialize, PartialEq)]
pub struct Ref {
    /// Internal id.
    pub id: String,
}

/// A cash sale or cash refund, as the REST record API takes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// What the record is, in words.
    pub memo: String,
    /// `YYYY-MM-DD`.
    pub tran_date: String,
    /// The customer.
    pub entity: Ref,
    /// The subsidiary, if configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsidiary: Option<Ref>,
    /// The store's location.
    pub location: Ref,
    /// The deposit account, if configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Ref>,
    /// The item sublist.
    pub item: Sublist,
}

/// A sublist (`{"items": [...]}`).
#[derive(Debug, Serialize)]
pub struct Sublist {
    /// Lines.
    pub items: Vec<Line>,
}

/// One item line; numbers are JSON number literals written from integers.
#[derive(Debug, Serialize)]
pub struct Line {
    /// The item.
    pub item: Ref,
    /// Quantity, decimal.
    pub quantity: Box<RawValue>,
    /// The line's amount: net of discount, excluding tax, decimal. No `rate` goes with it (the
    /// POS unit price is before discount, so rate × quantity would not be this amount).
    pub amount: Box<RawValue>,
    /// The POS item name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The record to upsert for the event, or `None` for events not booked in NetSuite.
pub fn transaction(event: &Event, config: &NetSuiteConfig) -> Result<Option<Upsert>, DeliveryError> {
    let (record, document, memo, date, mode, lines) = match &event.payload {
        Payload::Sale(s) => (
            "cashSale",
            &s.order_id,
            format!("POS order {}", s.order_id),
            &s.business_date,
            s.tax_mode,
            s.lines.iter().collect::<Vec<_>>(),
        ),
        Payload::Refund(r) => (
            "cashRefund",
            &r.refund_id,
            match &r.reason {
                Some(reason) => format!("POS refund {} of order {} ({reason})", r.refund_id, r.original_order_id),
                None => format!("POS refund {} of order {}", r.refund_id, r.original_order_id),
            },
            &r.business_date,
            r.tax_mode,
            r.lines.iter().map(|l| &l.line).collect(),
        ),
        _ => return Ok(None),
    };
    let store = event.store().unwrap_or_default();
    let location = config.locations.get(store).ok_or_else(|| {
        DeliveryError::Rejected(format!(
            "no NetSuite location for store `{store}`: add it to `locations` in the plugin config"
        ))
    })?;
    let external_id = external_id(
        config.external_id.as_deref().unwrap_or(DEFAULT_EXTERNAL_ID),
        event,
        document,
    )?;
    let items = lines
        .into_iter()
        .map(|l| line(l, mode, config, record == "cashRefund"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Upsert {
        record,
        external_id,
        body: Transaction {
            memo,
            tran_date: date.clone(),
            entity: Ref {
                id: config.entity.clone(),
            },
            subsidiary: config.subsidiary.clone().map(|id| Ref { id }),
            location: Ref { id: location.clone() },
            account: config.account.clone().map(|id| Ref { id }),
            item: Sublist { items },
        },
    }))
}

/// The default external id template: order ids are often unique only within a store.
pub const DEFAULT_EXTERNAL_ID: &str = kaunter_sdk::documents::DEFAULT_TEMPLATE;

/// Fills the external id template (see [`kaunter_sdk::documents`]). NetSuite takes letters,
/// digits, `_` and `-` in an external id, so anything else is rejected rather than changed (a
/// changed id could name another document's record).
pub fn external_id(template: &str, event: &Event, order: &str) -> Result<String, DeliveryError> {
    let out = kaunter_sdk::documents::document_number("external_id", template, event, order, usize::MAX)
        .map_err(|why| DeliveryError::Rejected(format!("invalid netsuite config: {why}")))?;
    if out.is_empty() || !out.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(DeliveryError::Rejected(format!(
            "external id `{out}` (from `{template}`) has characters NetSuite does not take in an external id (letters, digits, `_` and `-` only): change `external_id` in the plugin config"
        )));
    }
    Ok(out)
}

fn line(l: &SaleLine, mode: TaxMode, config: &NetSuiteConfig, positive: bool) -> Result<Line, DeliveryError> {
    let item = config.items.get(&l.sku).ok_or_else(|| {
        DeliveryError::Rejected(format!(
            "SKU `{}` has no NetSuite item: add it to `items` in the plugin config",
            l.sku
        ))
    })?;
    let amount = l.amount_excluding_tax(mode).ok_or_else(|| {
        DeliveryError::Rejected(format!(
            "line {} mixes currencies; cannot compute its amount",
            l.line_no
        ))
    })?;
    let sign = |value: i64| if positive { value.abs() } else { value };
    let money = |m: &Money| Money::new(sign(m.amount_minor), &m.currency, m.exponent).to_decimal();
    Ok(Line {
        item: Ref { id: item.clone() },
        quantity: number(milli_to_decimal(sign(l.quantity_milli)))?,
        amount: number(money(&amount))?,
        description: l.name.clone(),
    })
}

/// A JSON number from its decimal text.
fn number(text: String) -> Result<Box<RawValue>, DeliveryError> {
    RawValue::from_string(text).map_err(|e| DeliveryError::Rejected(format!("cannot write a number: {e}")))
}

/// Thousandths as a decimal: `2000` → `2`, `1500` → `1.5`, `-250` → `-0.25`.
pub fn milli_to_decimal(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    let (whole, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// NetSuite's error details (`o:errorDetails[]`) as (`o:errorCode`, `detail`).
pub fn error_details(response: &Response) -> Vec<(String, String)> {
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    body["o:errorDetails"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|d| {
                    (
                        d["o:errorCode"].as_str().unwrap_or_default().to_owned(),
                        d["detail"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Maps NetSuite's answer to an upsert to what the host should do:
///
/// | NetSuite answers | host does |
/// |---|---|
/// | 2xx (204 on create and on update) with `Location: …/cashSale/{id}` | delivered; `remote_id` = `{id}` |
/// | 2xx without `Location` | delivered; `remote_id` = `eid:{externalId}` (works wherever the id does) |
/// | 401 | retry (the host renews its token) |
/// | 429 (concurrency limit) | throttled (`Retry-After` if sent) |
/// | 408, 409, 5xx, no answer | retry (upserting again is safe) |
/// | 400 `USER_ERROR`, `INVALID_*`, 403, other 4xx | rejected with NetSuite's codes and details |
///
/// Nothing counts as "already there": the upsert itself makes a second request land on the same
/// record, so no answer needs reading as a duplicate.
pub fn outcome(result: Result<Response, http::HttpError>, external_id: &str) -> Result<Receipt, DeliveryError> {
    let response = result.map_err(|e| retry(None, format!("no response from NetSuite: {e}")))?;
    let status = response.status;
    if (200..300).contains(&status) {
        let id = response
            .header("location")
            .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map_or_else(|| format!("eid:{external_id}"), str::to_owned);
        return Ok(Receipt {
            status: Some(status),
            remote_id: Some(id),
        });
    }
    let details = error_details(&response);
    let text = if details.is_empty() {
        response.body_snippet(300)
    } else {
        details
            .iter()
            .map(|(code, detail)| format!("{code}: {detail}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let after = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000));
    match status {
        401 => Err(retry(
            None,
            format!("HTTP 401 (the host renews its token before the next attempt): {text}"),
        )),
        429 => Err(DeliveryError::Throttled(RetryHint {
            after_ms: after,
            reason: format!("HTTP 429: {text}"),
        })),
        408 | 409 | 500..=599 => Err(retry(after, format!("HTTP {status}: {text}"))),
        _ => Err(DeliveryError::Rejected(format!("HTTP {status}: {text}"))),
    }
}

fn retry(after_ms: Option<u64>, reason: String) -> DeliveryError {
    DeliveryError::Retry(RetryHint { after_ms, reason })
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
