//! TEST ONLY. Panics on every event (a trap); only its own events may fail.

use kaunter_sdk::{Event, PluginError, Transform};

struct Broken;

impl Transform for Broken {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        let lines: Vec<u32> = Vec::new();
        let index = std::hint::black_box(event.id.len());
        Ok(vec![Event {
            subject: Some(lines[index].to_string()),
            ..event
        }])
    }
}

kaunter_sdk::export_transform!(Broken);
