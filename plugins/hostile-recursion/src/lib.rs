//! TEST ONLY. Recurses without end on every event; the host's stack limit must stop it. The
//! frames hold only scalars, so they live on the engine's stack (not the guest's memory).

use kaunter_sdk::{Event, PluginError, Transform};

#[inline(never)]
fn descend(depth: u64, a: u64, b: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return a;
    }
    descend(depth + 1, b, a.wrapping_add(depth)).wrapping_add(std::hint::black_box(a ^ b))
}

struct Deep;

impl Transform for Deep {
    fn handle(event: Event) -> Result<Vec<Event>, PluginError> {
        std::hint::black_box(descend(0, 1, 2));
        Ok(vec![event])
    }
}

kaunter_sdk::export_transform!(Deep);
