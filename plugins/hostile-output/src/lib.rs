//! TEST ONLY. Answers each event with 10,000 derived events; the host's output limit must refuse.
//! With `drop_input` in its config it drops the event it was given and returns only the copies,
//! which the output limit must count all the same.

use kaunter_sdk::{Event, PluginError, Transform};

struct Flood;

impl Transform for Flood {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        let drop_input = kaunter_sdk::bindings::transform::kaunter::plugin::config::get().contains("drop_input");
        let mut out = Vec::with_capacity(10_001);
        for i in 0..10_000 {
            let mut copy = event.clone();
            copy.id = format!("{}-copy-{i}", event.id);
            out.push(copy);
        }
        if !drop_input {
            out.push(event);
        }
        Ok(out)
    }
}

kaunter_sdk::export_transform!(Flood);
