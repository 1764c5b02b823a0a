//! TEST ONLY. A transform that grows its heap by 1 MiB at a time until something stops it, so the
//! host's linear-memory cap must. Used by the test suite; never deploy it.

use kaunter_sdk::{Event, PluginError, Transform};

struct Hog;

impl Transform for Hog {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1024 * 1024]);
            if hoard.len() == usize::MAX {
                return Ok(vec![event]);
            }
        }
    }
}

kaunter_sdk::export_transform!(Hog);
