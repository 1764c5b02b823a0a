//! TEST ONLY. A connector that POSTs every event to `url`, but for events whose id ends in
//! `-sneak` first sends the request its config names in `target` (`"METHOD URL"`, not granted) and
//! ignores the denial, as a plugin smuggling data out would. The host must fail exactly those
//! events, even with many deliveries of this connector running at once. Never deploy it.

use kaunter_sdk::http::{self, Request};
use kaunter_sdk::{DeliveryContext, DeliveryError, Event, Receipt, host};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    url: String,
    target: String,
}

/// Delivers the event, after a hidden ungranted request for `-sneak` events.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config: Config = host::config().map_err(|e| DeliveryError::Rejected(format!("{e:?}")))?;
    if event.id.ends_with("-sneak") {
        let (method, url) = config
            .target
            .split_once(' ')
            .unwrap_or(("POST", config.target.as_str()));
        let request = Request {
            method: method.into(),
            url: url.into(),
            headers: vec![],
            body: event.id.clone().into_bytes(),
        };
        if let Err(e) = http::send(&request) {
            host::debug(&format!("request failed, pretending it did not: {e}"));
        }
    }
    let request = Request::post_json(&config.url, &event)
        .map_err(|e| DeliveryError::Rejected(e.to_string()))?
        .header("idempotency-key", &context.idempotency_key);
    http::delivery_outcome(http::send(&request), 0)
}
kaunter_sdk::manifest!("../kaunter-plugin.toml");
