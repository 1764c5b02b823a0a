//! `source-square`: turns Square payment and refund webhooks into kaunter
//! `pos.payment.settled.v1` events.
//!
//! - `payment.created` / `payment.updated` with the payment `COMPLETED` → a settlement of
//!   `total_money` (tip included), with Square's processing fee when reported.
//! - `refund.created` / `refund.updated` with the refund `COMPLETED` → a settlement reversal: the
//!   same event type with a negative tender of the refunded amount.
//! - Other statuses and other types are acknowledged and store nothing.
//!
//! Square sends `payment.updated` again for later changes to a completed payment (its fee, a
//! refund against it), each with a new `event_id`. So the event id is the object's —
//! `payment:{payment id}` or `refund:{refund id}` — and the host's de-duplication on source and
//! id stores each settlement once, however many notifications describe it (a redelivery
//! included). Square's `event_id` travels as extension `vendoreventid`.
//!
//! Every webhook is checked first: `x-square-hmacsha256-signature` must be the base64
//! HMAC-SHA256 of the configured notification URL followed by the raw body, under the
//! subscription's signature key, checked by the host in constant time
//! ([`host::verify_hmac_sha256`]; the key never enters the plugin). The source is
//! `/t/{tenant}/s/{store}/p/square`, the store being the one configured for the Square location.

mod objects;

use base64::Engine as _;
use kaunter_sdk::{DecodeError, Event, PAYMENT_SETTLED, Payload, PaymentSettled, PluginConfig, WebhookRequest, host};
use objects::{Notification, Payment, SquareRefund};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SquareConfig {
    /// Tenant in the event source.
    tenant: String,
    /// Store for locations not listed in `locations`.
    store: String,
    /// Square location id → store id.
    #[serde(default)]
    locations: BTreeMap<String, String>,
    /// The subscription's notification URL exactly as Square has it (it is signed).
    notification_url: String,
    /// Name of the host secret holding the subscription's signature key.
    #[serde(default = "default_secret")]
    secret: String,
}

fn default_secret() -> String {
    "square".into()
}

/// The configuration, parsed on the first webhook and kept for the life of the instance.
static CONFIG: PluginConfig<SquareConfig> = PluginConfig::new();

/// Verifies the webhook, then maps completed payments and refunds; anything else stores nothing.
#[kaunter_sdk::source]
fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError> {
    let config = CONFIG
        .get()
        .map_err(|e| DecodeError::Unavailable(format!("source-square is misconfigured: {e:?}")))?;
    verify(&request, config)?;
    let notification: Notification = request.json()?;
    let ty = notification.ty.as_str();
    let mapped = match ty {
        "payment.created" | "payment.updated" => {
            let payment: Payment = object(ty, &notification.data.object, "payment")?;
            payment.settled().map(|settled| {
                let id = format!("payment:{}", payment.id);
                (id, payment.location_id, payment.updated_at, settled)
            })
        }
        "refund.created" | "refund.updated" => {
            let refund: SquareRefund = object(ty, &notification.data.object, "refund")?;
            refund.reversed().map(|settled| {
                let id = format!("refund:{}", refund.id);
                (id, refund.location_id, refund.updated_at, settled)
            })
        }
        other => {
            host::debug(&format!(
                "Square event type `{other}` is not mapped; acknowledged without events"
            ));
            return Ok(Vec::new());
        }
    };
    let Some((id, location, time, settled)) = mapped else {
        host::debug(&format!(
            "{ty} {}: not completed; acknowledged without events",
            notification.event_id
        ));
        return Ok(Vec::new());
    };
    let store = location
        .as_deref()
        .and_then(|l| config.locations.get(l))
        .unwrap_or(&config.store);
    let time = time.unwrap_or(notification.created_at);
    Ok(vec![new_event(
        config,
        store,
        id,
        time,
        &notification.event_id,
        ty,
        settled,
    )])
}

/// `data.object.{field}` read as the object its type carries.
fn object<T: serde::de::DeserializeOwned>(ty: &str, object: &serde_json::Value, field: &str) -> Result<T, DecodeError> {
    let value = object
        .get(field)
        .ok_or_else(|| DecodeError::Malformed(format!("{ty}: `data.object.{field}` is missing")))?;
    T::deserialize(value).map_err(|e| DecodeError::Malformed(format!("{ty}: `data.object.{field}`: {e}")))
}

/// Checks `x-square-hmacsha256-signature` against HMAC-SHA256(notification URL ++ body).
fn verify(request: &WebhookRequest, config: &SquareConfig) -> Result<(), DecodeError> {
    let header = request
        .header("x-square-hmacsha256-signature")
        .ok_or_else(|| DecodeError::Unauthorized("the x-square-hmacsha256-signature header is missing".into()))?;
    let mac = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| DecodeError::Unauthorized("x-square-hmacsha256-signature is not base64".into()))?;
    let mut signed = config.notification_url.clone().into_bytes();
    signed.extend_from_slice(&request.body);
    match host::verify_hmac_sha256(&config.secret, &signed, &mac) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DecodeError::Unauthorized(
            "x-square-hmacsha256-signature does not match (is `notification_url` exactly the subscription's URL, and the secret its signature key?)"
                .into(),
        )),
        // The operator's configuration, not the vendor: 503, so the vendor retries once it is fixed.
        Err(host::CryptoError::UnknownSecret(reason)) => Err(DecodeError::Unavailable(format!(
            "cannot check the signature: {reason}"
        ))),
    }
}

/// An event from this source: source `/t/{tenant}/s/{store}/p/square`, extensions `vendorevent`
/// (the Square type) and `vendoreventid` (Square's `event_id`).
fn new_event(
    config: &SquareConfig,
    store: &str,
    id: String,
    time: String,
    event_id: &str,
    ty: &str,
    settled: PaymentSettled,
) -> Event {
    let mut event = Event {
        id,
        source: format!("/t/{}/s/{store}/p/square", config.tenant),
        ty: PAYMENT_SETTLED.to_owned(),
        time,
        subject: Some(settled.order_id.clone()),
        partition_key: String::new(),
        extensions: vec![
            ("vendorevent".into(), ty.to_owned()),
            ("vendoreventid".into(), event_id.to_owned()),
        ],
        payload: Payload::PaymentSettled(settled),
    };
    event.partition_key = event.default_partition_key();
    event
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
