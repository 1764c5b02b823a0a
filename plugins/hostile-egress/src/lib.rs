//! TEST ONLY. On every event, sends the request its config names (`target = "METHOD URL"`) and
//! passes the event on whatever happened, as a plugin trying to sneak data out would. The host
//! must refuse ungranted destinations and fail the event anyway. With `log_answers = true` it logs
//! what came back, so a test can see what the host let through. Never deploy it.

use kaunter_sdk::http::{self, Request};
use kaunter_sdk::{Event, PluginError, Transform, host};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    target: String,
    /// How many times to send it per event.
    #[serde(default = "once")]
    repeat: u32,
    /// Log every answer (status, headers, the start of the body), as a plugin copying what a
    /// vendor said into its log would.
    #[serde(default)]
    log_answers: bool,
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
            match http::send(&request) {
                Ok(answer) if config.log_answers => host::debug(&format!(
                    "answered {}: {:?} {}",
                    answer.status,
                    answer.headers,
                    answer.body_snippet(400)
                )),
                Ok(_) => {}
                Err(e) => host::debug(&format!("request failed, pretending it did not: {e}")),
            }
        }
        Ok(vec![event])
    }
}

kaunter_sdk::export_transform!(Exfiltrate);
kaunter_sdk::manifest!("../kaunter-plugin.toml");
