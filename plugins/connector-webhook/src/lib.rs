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
use kaunter_sdk::{Connector, DeliveryContext, DeliveryError, Event, Receipt, host, webhooks};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

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

struct Webhook;

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: OnceLock<WebhookConfig> = OnceLock::new();

fn config() -> Result<&'static WebhookConfig, DeliveryError> {
    if let Some(config) = CONFIG.get() {
        return Ok(config);
    }
    let parsed: WebhookConfig =
        host::config().map_err(|e| DeliveryError::Rejected(format!("invalid webhook config: {e:?}")))?;
    Ok(CONFIG.get_or_init(|| parsed))
}

impl Connector for Webhook {
    fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
        let config = config()?;
        let mut request =
            Request::post_json(&config.url, &event).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
        for (name, value) in &config.headers {
            request = request.header(name, value);
        }
        request = request.header("idempotency-key", &context.idempotency_key);
        let now = host::now_ms();
        match &config.secret {
            Some(secret) => {
                let signed =
                    webhooks::signature_headers(secret, &context.idempotency_key, now / 1000, &request.body)
                        .map_err(|e| DeliveryError::Rejected(format!("cannot sign with secret `{secret}`: {e}")))?;
                request.headers.extend(signed);
            }
            None => request = request.header("webhook-id", &context.idempotency_key),
        }
        http::delivery_outcome(http::send(&request), now)
    }
}

kaunter_sdk::export_connector!(Webhook);
kaunter_sdk::manifest!("../kaunter-plugin.toml");
