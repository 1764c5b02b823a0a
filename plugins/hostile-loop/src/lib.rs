//! TEST ONLY. A transform that spins forever on every event, without calling the host, so only
//! the host's epoch-based deadline can stop it. Used by the test suite; never deploy it.

use kaunter_sdk::{Event, PluginError, Transform};

struct Spin;

impl Transform for Spin {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
            if n == u64::MAX {
                return Ok(vec![event]);
            }
        }
    }
}

kaunter_sdk::export_transform!(Spin);
