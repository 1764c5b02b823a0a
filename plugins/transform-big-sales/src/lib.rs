//! `transform-big-sales`: marks sales whose total reaches a threshold with the extension `bigsale`, so a
//! route or a sink can treat them apart. Configuration (`[plugins.config]`):
//! - `threshold_minor`: the total, in minor units (HK$1,000.00 is 100000).

use kaunter_sdk::{Event, Payload, PluginConfig, PluginError, host};
use serde::Deserialize;

/// The plugin's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    threshold_minor: i64,
}

static CONFIG: PluginConfig<Config> = PluginConfig::new();

/// Tags big sales; every event passes on.
#[kaunter_sdk::transform]
fn handle(mut event: Event) -> Result<Event, PluginError> {
    let threshold = CONFIG.get()?.threshold_minor;
    if let Payload::Sale(sale) = &event.payload
        && sale.totals.total.amount_minor >= threshold
    {
        host::debug(&format!("sale {} is over {threshold}", event.id));
        event.extensions.push(("bigsale".into(), "true".into()));
    }
    Ok(event)
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use kaunter_sdk::testing::FakeHost;

    fn sample() -> Event {
        let defaults = kaunter_sdk::Defaults {
            id: "sample".into(),
            now: "2026-01-01T00:00:00Z".into(),
        };
        let json = serde_json::from_str(include_str!("../samples/sale.json")).unwrap();
        Event::from_json(json, kaunter_sdk::Dialect::Canonical, &defaults).unwrap()
    }

    #[test]
    fn a_sale_over_the_threshold_is_tagged() {
        let _host = FakeHost::new()
            .config(serde_json::json!({ "threshold_minor": 5000 }))
            .install();
        let out = handle(sample()).unwrap();
        assert!(out.extensions.contains(&("bigsale".into(), "true".into())));
    }

    #[test]
    fn a_small_sale_passes_untouched() {
        let _host = FakeHost::new()
            .config(serde_json::json!({ "threshold_minor": 1000000 }))
            .install();
        assert_eq!(handle(sample()).unwrap(), sample());
    }
}
