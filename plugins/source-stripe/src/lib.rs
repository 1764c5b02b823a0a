//! `source-stripe`: turns Stripe webhooks into kaunter `pos.payment.settled.v1` events.
//!
//! - `payment_intent.succeeded` → a settlement of `amount_received` (settlement id: the latest
//!   charge).
//! - `charge.succeeded` → a settlement of `amount_captured` (settlement id: the charge); an
//!   uncaptured (authorised only) charge stores nothing.
//! - `charge.refunded` → a settlement reversal: the same event type with a negative tender of the
//!   amount this refund added (`amount_refunded` minus `previous_attributes.amount_refunded`).
//! - `refund.created` → a settlement reversal of the refund's amount when its status is
//!   `succeeded` (settlement id: the refund); other statuses store nothing.
//! - Any other type is acknowledged and stores nothing.
//!
//! A payment shows up in both `payment_intent.succeeded` and `charge.succeeded`, a refund in both
//! `charge.refunded` and `refund.created`, as different Stripe events: subscribe the endpoint to
//! one of each pair (the README says which), or the payment settles twice.
//!
//! Every webhook is checked first: `Stripe-Signature` (`t=…,v1=…`, possibly several `v1`) must
//! carry a v1 signature equal to HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint's signing
//! secret, checked by the host in constant time ([`host::verify_hmac_sha256`]; the secret never
//! enters the plugin), and `t` must be at most `tolerance_secs` (300) older than the host clock.
//! The event id is Stripe's `evt_…` id, so a redelivery is dropped by the host's de-duplication.
//! The source is `/t/{tenant}/s/{store}/p/stripe`.

mod objects;

use kaunter_sdk::{DecodeError, Event, PAYMENT_SETTLED, Payload, PaymentSettled, PluginConfig, WebhookRequest, host};
use objects::{Charge, PaymentIntent, StripeEvent, StripeRefund};
use serde::Deserialize;

/// The plugin's configuration (`[plugins.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StripeConfig {
    /// Tenant in the event source.
    tenant: String,
    /// Store in the event source.
    store: String,
    /// Name of the host secret holding the endpoint's signing secret.
    #[serde(default = "default_secret")]
    secret: String,
    /// How old a signature timestamp may be, in seconds (Stripe's libraries use 300).
    #[serde(default = "default_tolerance")]
    tolerance_secs: i64,
    /// Metadata key holding the merchant's order id (else the PaymentIntent id is the order id).
    #[serde(default = "default_order_key")]
    order_id_metadata: String,
}

fn default_secret() -> String {
    "stripe".into()
}

fn default_tolerance() -> i64 {
    300
}

fn default_order_key() -> String {
    "order_id".into()
}

/// The configuration, parsed on the first webhook and kept for the life of the instance.
static CONFIG: PluginConfig<StripeConfig> = PluginConfig::new();

/// The event types this source maps.
const MAPPED: [&str; 4] = [
    "payment_intent.succeeded",
    "charge.succeeded",
    "charge.refunded",
    "refund.created",
];

/// Verifies the webhook, then maps payment and refund events; other types store nothing.
#[kaunter_sdk::source]
fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError> {
    let config = CONFIG
        .get()
        .map_err(|e| DecodeError::Unavailable(format!("source-stripe is misconfigured: {e:?}")))?;
    verify(&request, config)?;
    let stripe: StripeEvent = request.json()?;
    if !MAPPED.contains(&stripe.ty.as_str()) {
        host::debug(&format!(
            "Stripe event type `{}` is not mapped; acknowledged without events",
            stripe.ty
        ));
        return Ok(Vec::new());
    }
    let ty = stripe.ty.as_str();
    let object = stripe.data.object;
    let key = &config.order_id_metadata;
    let settled = match ty {
        "payment_intent.succeeded" => Some(parse::<PaymentIntent>(ty, "PaymentIntent", object)?.settled(key)),
        "charge.succeeded" => parse::<Charge>(ty, "Charge", object)?.settled(key),
        "charge.refunded" => {
            parse::<Charge>(ty, "Charge", object)?.reversed(stripe.data.previous_attributes.as_ref(), key)
        }
        _ => parse::<StripeRefund>(ty, "Refund", object)?.reversed(key),
    };
    let Some(settled) = settled else {
        host::info(&format!(
            "{ty} {}: nothing settled or refunded; acknowledged without events",
            stripe.id
        ));
        return Ok(Vec::new());
    };
    Ok(vec![new_event(config, stripe.id, ty, stripe.created, settled)])
}

/// `data.object` read as the object its event type carries.
fn parse<T: serde::de::DeserializeOwned>(ty: &str, kind: &str, object: serde_json::Value) -> Result<T, DecodeError> {
    serde_json::from_value(object)
        .map_err(|e| DecodeError::Malformed(format!("{ty}: `data.object` is not a Stripe {kind}: {e}")))
}

/// Checks `Stripe-Signature`: a v1 HMAC of `"{t}.{body}"` that matches, and a recent `t`.
fn verify(request: &WebhookRequest, config: &StripeConfig) -> Result<(), DecodeError> {
    let unauthorized = |reason: String| DecodeError::Unauthorized(reason);
    let header = request
        .header("stripe-signature")
        .ok_or_else(|| unauthorized("the Stripe-Signature header is missing".into()))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let t_text = timestamp.ok_or_else(|| unauthorized("Stripe-Signature has no timestamp (t=)".into()))?;
    let t: i64 = t_text
        .parse()
        .map_err(|_| unauthorized(format!("Stripe-Signature timestamp `{t_text}` is not a number")))?;
    if signatures.is_empty() {
        return Err(unauthorized("Stripe-Signature has no v1 signature".into()));
    }
    let mut signed = format!("{t_text}.").into_bytes();
    signed.extend_from_slice(&request.body);
    let mut matched = false;
    for signature in signatures {
        let Some(mac) = kaunter_sdk::hex_decode(signature) else {
            continue;
        };
        match host::verify_hmac_sha256(&config.secret, &signed, &mac) {
            Ok(ok) => matched |= ok,
            // The operator's configuration, not the vendor: 503, so the vendor retries once fixed.
            Err(host::CryptoError::UnknownSecret(reason)) => {
                return Err(DecodeError::Unavailable(format!(
                    "cannot check the signature: {reason}"
                )));
            }
        }
    }
    if !matched {
        return Err(unauthorized(
            "no v1 signature in Stripe-Signature matches the body (is the secret this endpoint's signing secret, stored as the README says?)"
                .into(),
        ));
    }
    let now = host::now_ms();
    if now <= 0 {
        // An ungranted clock reads 0: refuse rather than accept a signature of unknown age.
        return Err(DecodeError::Unavailable(
            "cannot check the signature's age: the host clock is not granted (grant clock = true)".into(),
        ));
    }
    let age = now.div_euclid(1000) - t;
    if age > config.tolerance_secs {
        return Err(unauthorized(format!(
            "Stripe-Signature timestamp {t} is {age} s old, beyond the {} s tolerance (a replay, or the host clock is off)",
            config.tolerance_secs
        )));
    }
    Ok(())
}

/// An event from this source: id `evt_…`, source `/t/{tenant}/s/{store}/p/stripe`, extension
/// `vendorevent` naming the Stripe event type.
fn new_event(config: &StripeConfig, id: String, ty: &str, created: i64, settled: PaymentSettled) -> Event {
    let mut event = Event {
        id,
        source: format!("/t/{}/s/{}/p/stripe", config.tenant, config.store),
        ty: PAYMENT_SETTLED.to_owned(),
        time: objects::rfc3339(created),
        subject: Some(settled.order_id.clone()),
        partition_key: String::new(),
        extensions: vec![("vendorevent".into(), ty.to_owned())],
        payload: Payload::PaymentSettled(settled),
    };
    event.partition_key = event.default_partition_key();
    event
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
