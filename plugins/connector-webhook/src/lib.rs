//! `connector-webhook`: POSTs each event, as a structured CloudEvent JSON body, to one URL,
//! signed per the Standard Webhooks specification.
//!
//! Configuration (`[plugins.config]`):
//! - `url`: where to POST.
//! - `secret` (optional): name of a host secret (`whsec_…`) to sign with; without it requests are
//!   unsigned.
//! - `headers` (optional): extra static headers.
//!
//! Headers sent: `content-type: application/json`, `webhook-id` (the delivery's idempotency key,
//! stable across retries), `webhook-timestamp` (seconds), `webhook-signature: v1,<base64>`, and
//! `idempotency-key` (same as `webhook-id`). Response handling follows
//! [`kaunter_sdk::http::delivery_outcome`]: 410 disables the sink, 429/5xx retry honouring
//! `Retry-After`, other 4xx dead-letter.

use kaunter_sdk::http::{self, Request};
use kaunter_sdk::{DeliveryContext, DeliveryError, Event, PluginConfig, Receipt, host, webhooks};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookConfig {
    url: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<WebhookConfig> = PluginConfig::new();

/// POSTs the event, signed, with the idempotency key as `webhook-id`.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid webhook config: {e:?}")))?;
    let mut request = Request::post_json(&config.url, &event).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
    for (name, value) in &config.headers {
        request = request.header(name, value);
    }
    request = request.header("idempotency-key", &context.idempotency_key);
    let now = host::now_ms();
    match &config.secret {
        Some(secret) => {
            let signed = webhooks::signature_headers(secret, &context.idempotency_key, now / 1000, &request.body)
                .map_err(|e| DeliveryError::Rejected(format!("cannot sign with secret `{secret}`: {e}")))?;
            request.headers.extend(signed);
        }
        None => request = request.header("webhook-id", &context.idempotency_key),
    }
    http::delivery_outcome(http::send(&request), now)
}
kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use kaunter_sdk::testing::FakeHost;

    fn sale() -> Event {
        let text = include_str!("../../../samples/sale.json");
        let defaults = kaunter_sdk::Defaults {
            id: "unused".into(),
            now: "2026-11-25T00:00:00Z".into(),
        };
        Event::from_json(
            serde_json::from_str(text).unwrap(),
            kaunter_sdk::Dialect::Canonical,
            &defaults,
        )
        .unwrap()
    }

    fn context() -> DeliveryContext {
        DeliveryContext {
            idempotency_key: "e1:erp".into(),
            sink: "erp".into(),
            attempt: 1,
        }
    }

    fn host() -> FakeHost {
        FakeHost::new()
            .config(serde_json::json!({ "url": "http://erp.example/hooks", "secret": "erp" }))
            .secret("erp", b"key")
            .clock(1_764_000_000_000)
    }

    #[test]
    fn posts_the_event_signed_with_the_idempotency_key() {
        let fake = host().respond(204, &[], "").install();
        let receipt = deliver(sale(), context()).unwrap();
        assert_eq!(receipt.status, Some(204));
        let sent = &fake.requests()[0];
        assert_eq!(
            (sent.method.as_str(), sent.url.as_str()),
            ("POST", "http://erp.example/hooks")
        );
        let header = |name: &str| sent.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("webhook-id"), Some("e1:erp"));
        assert_eq!(header("idempotency-key"), Some("e1:erp"));
        assert_eq!(header("webhook-timestamp"), Some("1764000000"));
        assert!(header("webhook-signature").unwrap().starts_with("v1,"));
    }

    #[test]
    fn a_429_throttles_with_the_retry_after_hint() {
        let _fake = host().respond(429, &[("retry-after", "7")], "slow down").install();
        match deliver(sale(), context()) {
            Err(DeliveryError::Throttled(hint)) => assert_eq!(hint.after_ms, Some(7000)),
            other => panic!("expected throttled, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_config_is_rejected_with_the_field() {
        let _fake = FakeHost::new().config(serde_json::json!({ "uri": "x" })).install();
        match deliver(sale(), context()) {
            Err(DeliveryError::Rejected(m)) => assert!(m.contains("unknown field `uri`"), "{m}"),
            other => panic!("expected rejected, got {other:?}"),
        }
    }
}
