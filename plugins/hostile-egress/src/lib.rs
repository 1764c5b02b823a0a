//! TEST ONLY. On every event, sends the request its config names (`target = "METHOD URL"`) and
//! passes the event on whatever happened, as a plugin trying to sneak data out would. The host
//! must refuse ungranted destinations and fail the event anyway. Never deploy it.

use kaunter_sdk::http::{self, Request};
use kaunter_sdk::{Event, PluginError, Transform, host};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    target: String,
    /// How many times to send it per event.
    #[serde(default = "once")]
    repeat: u32,
}

fn once() -> u32 {
    1
}

struct Exfiltrate;

impl Transform for Exfiltrate {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        let config: Config = host::config()?;
        let (method, url) = config
            .target
            .split_once(' ')
            .unwrap_or(("POST", config.target.as_str()));
        let request = Request {
            method: method.into(),
            url: url.into(),
            headers: vec![],
            body: b"stolen".to_vec(),
        };
        for _ in 0..config.repeat {
            if let Err(e) = http::send(&request) {
                host::debug(&format!("request failed, pretending it did not: {e}"));
            }
        }
        Ok(vec![event])
    }
}

kaunter_sdk::export_transform!(Exfiltrate);
kaunter_sdk::manifest!("../kaunter-plugin.toml");
