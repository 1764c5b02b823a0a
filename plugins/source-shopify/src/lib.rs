//! `source-shopify`: turns Shopify webhooks into kaunter events.
//!
//! - `orders/create` → `pos.sale.completed.v1`: each line item becomes a sale line (SKU, quantity
//!   × 1000, unit price, discounts and taxes in minor units read exactly from Shopify's decimal
//!   strings), shipping lines become lines with SKU `shipping`, `taxes_included` gives the tax
//!   mode, transactions (or, when the payload has none, `payment_gateway_names` with the order
//!   total) give the tenders, and the customer id becomes `member_id`.
//! - `refunds/create` → `pos.refund.completed.v1`: each refund line item becomes a refund line with
//!   negative quantity and amounts, `restock` from `restock_type`, and the refund transactions
//!   become negative tenders. A refund of no line (shipping or an adjustment only) stores nothing.
//! - Any other topic is acknowledged and stores nothing (`Ok(vec![])`), so Shopify does not retry
//!   it; subscribe only to the two topics above.
//!
//! Every webhook is checked first: `X-Shopify-Hmac-Sha256` must be the base64 HMAC-SHA256 of the
//! raw body under the app's client secret, which the host holds (the plugin names it, in
//! constant time through [`host::verify_hmac_sha256`]). The MAC covers the body and nothing
//! else, so what the body is and its event id come from the body alone: an order (it has
//! `line_items`) is `order:{id}`, a refund (it has `order_id` and `refund_line_items`) is
//! `refund:{id}`. The unsigned headers may only narrow: `X-Shopify-Topic` drops topics this source
//! does not map and must agree with the body, and `X-Shopify-Event-Id` (else
//! `X-Shopify-Webhook-Id`) travels as extension `vendoreventid`, for tracing only. So a signed body
//! re-sent with fresh headers keeps its id and the host's de-duplication on source and id stores
//! it once. Shopify signs no timestamp, so there is no replay window to check: the
//! signed identity is what stops a replay. The event source is `/t/{tenant}/s/{store}/p/shopify`,
//! the store being the configured one for the Shopify POS location, or `store` for online orders.

mod decimal;
mod order;

use base64::Engine as _;
use kaunter_sdk::{
    DecodeError, Event, Payload, PluginConfig, REFUND_COMPLETED, SALE_COMPLETED, TaxMode, WebhookRequest, host,
};
use order::{Id, Order, ShopifyRefund};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopifyConfig {
    /// Tenant in the event source.
    tenant: String,
    /// Store id for online orders and for POS locations not listed in `locations`.
    store: String,
    /// Shopify POS location id → store id.
    #[serde(default)]
    locations: BTreeMap<String, String>,
    /// The shop's IANA time zone (Shopify writes times in it; the business date is their date).
    time_zone: String,
    /// Name of the host secret holding the app's client secret.
    #[serde(default = "default_secret")]
    secret: String,
    /// Whether the shop's prices include tax (refund bodies do not say; orders do).
    #[serde(default)]
    prices_include_tax: bool,
    /// The shop currency, used for a refund whose body names none.
    #[serde(default)]
    currency: Option<String>,
}

fn default_secret() -> String {
    "shopify".into()
}

/// The configuration, parsed on the first webhook and kept for the life of the instance.
static CONFIG: PluginConfig<ShopifyConfig> = PluginConfig::new();

/// The topics this source maps, and the kind of body each carries.
const MAPPED: [(&str, BodyKind); 2] = [("orders/create", BodyKind::Order), ("refunds/create", BodyKind::Refund)];

/// What a signed body is, told by the body itself (never by the unsigned topic header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// An order: it has `line_items`.
    Order,
    /// A refund: it has `order_id` and `refund_line_items`.
    Refund,
}

impl BodyKind {
    /// `an order` or `a refund`, for messages.
    fn described(self) -> &'static str {
        match self {
            BodyKind::Order => "an order",
            BodyKind::Refund => "a refund",
        }
    }
}

/// The top-level keys that tell an order body from a refund body.
#[derive(Deserialize)]
struct Shape {
    line_items: Option<serde::de::IgnoredAny>,
    refund_line_items: Option<serde::de::IgnoredAny>,
    order_id: Option<serde::de::IgnoredAny>,
}

impl Shape {
    /// The kind the body proves, or `None` when it is neither or both.
    fn kind(&self) -> Option<BodyKind> {
        match (&self.line_items, &self.refund_line_items, &self.order_id) {
            (Some(_), None, _) => Some(BodyKind::Order),
            (None, Some(_), Some(_)) => Some(BodyKind::Refund),
            _ => None,
        }
    }
}

/// Verifies the webhook, then maps `orders/create` and `refunds/create`; other topics store nothing.
#[kaunter_sdk::source]
fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError> {
    let config = CONFIG
        .get()
        .map_err(|e| DecodeError::Unavailable(format!("source-shopify is misconfigured: {e:?}")))?;
    verify(&request, &config.secret)?;
    // The topic is not signed: it may drop a webhook (a topic not mapped) or refuse one (a topic the
    // body contradicts), never choose what the body is or what its id becomes.
    let topic = request
        .header("x-shopify-topic")
        .ok_or_else(|| DecodeError::Malformed("the X-Shopify-Topic header is missing".into()))?;
    let Some(&(topic, expected)) = MAPPED.iter().find(|(mapped, _)| *mapped == topic) else {
        host::debug(&format!(
            "topic `{}` is not mapped; acknowledged without events",
            topic.escape_debug()
        ));
        return Ok(Vec::new());
    };
    let kind = request.json::<Shape>()?.kind().ok_or_else(|| {
        DecodeError::Malformed(format!(
            "{topic}: the body is neither an order (`line_items`) nor a refund (`order_id` and `refund_line_items`)"
        ))
    })?;
    if kind != expected {
        return Err(DecodeError::Malformed(format!(
            "X-Shopify-Topic is `{topic}` but the signed body is {}; the topic header is not signed, so the webhook is refused",
            kind.described()
        )));
    }
    let malformed = |e: String| DecodeError::Malformed(format!("{topic}: {e}"));
    let mut event = match kind {
        BodyKind::Order => {
            let order: Order = request.json()?;
            let id = signed_id("order", &order.id).map_err(malformed)?;
            let sale = order.to_sale(&config.time_zone).map_err(malformed)?;
            let location = order.location_id.as_ref().map(ToString::to_string);
            let store = store_for(config, location.as_deref());
            new_event(
                config,
                store,
                id,
                SALE_COMPLETED,
                &order.created_at,
                Payload::Sale(sale),
            )
        }
        BodyKind::Refund => {
            let refund: ShopifyRefund = request.json()?;
            let id = signed_id("refund", &refund.id).map_err(malformed)?;
            let mode = if config.prices_include_tax {
                TaxMode::Inclusive
            } else {
                TaxMode::Exclusive
            };
            let Some(mapped) = refund
                .to_refund(&config.time_zone, mode, config.currency.as_deref())
                .map_err(malformed)?
            else {
                host::info(&format!(
                    "refund {} of order {} refunds no line item; acknowledged without events",
                    refund.id, refund.order_id
                ));
                return Ok(Vec::new());
            };
            let store = store_for(config, refund.location().as_deref());
            new_event(
                config,
                store,
                id,
                REFUND_COMPLETED,
                &refund.created_at,
                Payload::Refund(mapped),
            )
        }
    };
    // Unsigned, so for tracing only, and only when they look like what Shopify sends.
    let delivery = request
        .header("x-shopify-event-id")
        .and_then(|v| header_token(v, 64))
        .or_else(|| request.header("x-shopify-webhook-id").and_then(|v| header_token(v, 64)));
    if let Some(delivery) = delivery {
        event.extensions.push(("vendoreventid".into(), delivery));
    }
    if let Some(shop) = request
        .header("x-shopify-shop-domain")
        .and_then(|v| header_token(v, 255))
    {
        event.extensions.push(("shopifyshop".into(), shop));
    }
    Ok(vec![event])
}

/// The event id of a signed body's object: `{kind}:{id}`, the id being Shopify's numeric one.
fn signed_id(kind: &str, id: &Id) -> Result<String, String> {
    let text = id.to_string();
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`id` is not a Shopify numeric id: {text:?}"));
    }
    Ok(format!("{kind}:{text}"))
}

/// An unsigned header value kept for tracing: trimmed, at most `max` bytes of letters, digits and
/// `-._:`; `None` when it is empty or anything else.
fn header_token(value: &str, max: usize) -> Option<String> {
    let value = value.trim();
    let fits = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    fits.then(|| value.to_owned())
}

/// Checks `X-Shopify-Hmac-Sha256` against the raw body, in the host, in constant time.
fn verify(request: &WebhookRequest, secret: &str) -> Result<(), DecodeError> {
    let header = request
        .header("x-shopify-hmac-sha256")
        .ok_or_else(|| DecodeError::Unauthorized("the X-Shopify-Hmac-Sha256 header is missing".into()))?;
    let mac = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| DecodeError::Unauthorized("X-Shopify-Hmac-Sha256 is not base64".into()))?;
    match host::verify_hmac_sha256(secret, &request.body, &mac) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DecodeError::Unauthorized(
            "X-Shopify-Hmac-Sha256 does not match the body (is the secret the app's client secret?)".into(),
        )),
        // The operator's configuration, not the vendor: 503, so the vendor retries once it is fixed.
        Err(host::CryptoError::UnknownSecret(reason)) => Err(DecodeError::Unavailable(format!(
            "cannot check the signature: {reason}"
        ))),
    }
}

/// The store of a POS location, or the configured store.
fn store_for<'a>(config: &'a ShopifyConfig, location: Option<&str>) -> &'a str {
    location.and_then(|l| config.locations.get(l)).unwrap_or(&config.store)
}

/// An event from this source: source `/t/{tenant}/s/{store}/p/shopify`, subject the order id.
fn new_event(config: &ShopifyConfig, store: &str, id: String, ty: &str, time: &str, payload: Payload) -> Event {
    let mut event = Event {
        id,
        source: format!("/t/{}/s/{store}/p/shopify", config.tenant),
        ty: ty.to_owned(),
        time: time.to_owned(),
        subject: None,
        partition_key: String::new(),
        extensions: Vec::new(),
        payload,
    };
    event.subject = event.order_id().map(str::to_owned);
    event.partition_key = event.default_partition_key();
    event
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
