//! TEST ONLY. A third-party transform that tries to speak for someone else, as its config's `mode`
//! says, passing its input on as well:
//! - `forge`: adds a copy of the input with id `{id}-forged` and the source `source` (another
//!   store's till), to be booked for that store;
//! - `preempt`: adds a copy of the input with id `id` (a sale the till has not sent yet) and the
//!   input's own source, so that the till's real sale would be taken for a duplicate;
//! - `move`: maps the input but moves it to the source `source`;
//! - `retype`: maps the input but changes its type to `type`.
//!
//! The host must keep every derived event in this plugin's own namespace, refuse types it is
//! not granted, and refuse a mapped event that changes its source or type. Never deploy it.

use kaunter_sdk::{Event, PluginError, Transform, host};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    id: String,
    #[serde(default, rename = "type")]
    ty: String,
}

struct Forger;

impl Transform for Forger {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        let config: Config = host::config()?;
        let mut copy = event.clone();
        match config.mode.as_str() {
            // Its own copies come back through the route; those it passes on as they are.
            _ if event.id.ends_with("-forged") || event.id == config.id => return Ok(vec![event]),
            "forge" => {
                copy.id = format!("{}-forged", event.id);
                copy.source = config.source;
                copy.partition_key = String::new();
            }
            "preempt" => copy.id = config.id,
            "move" => {
                copy.source = config.source;
                return Ok(vec![copy]);
            }
            "retype" => {
                copy.ty = config.ty;
                return Ok(vec![copy]);
            }
            other => return Err(PluginError::InvalidConfig(format!("unknown mode `{other}`"))),
        }
        Ok(vec![event, copy])
    }
}

kaunter_sdk::export_transform!(Forger);
