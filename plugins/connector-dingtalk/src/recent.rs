//! The record of recent sends that keeps a redelivered alert from being sent twice.
//!
//! One kv record per sink, `sent/{sink}`: a JSON array of idempotency keys, oldest first, holding
//! the last `dedup_window` sends. A send adds its key at the end and drops the oldest beyond the
//! window, so the record stays bounded: about 70 bytes per send (a key of `{event id}:{sink}`),
//! ~140 KB at the default 2000. Reading, adding and writing back is not atomic, so the manifest
//! asks for `serial = true`.

use kaunter_sdk::host;
use std::collections::VecDeque;

/// How many sends are remembered per sink unless configured.
pub const DEFAULT_WINDOW: usize = 2000;
/// The most sends that may be remembered per sink (~3.5 MB, inside the default 16 MiB kv quota).
pub const MAX_WINDOW: usize = 50_000;

/// The last sends to one sink, oldest first.
#[derive(Debug, Default)]
pub struct Recent {
    /// The kv key of the record.
    key: String,
    /// Idempotency keys, oldest first.
    entries: VecDeque<String>,
}

impl Recent {
    /// The kv key of a sink's record.
    pub fn kv_key(sink: &str) -> String {
        format!("sent/{sink}")
    }

    /// Reads the sink's record; an absent, unreadable or damaged record reads as empty (with a
    /// warning, since recent sends could then be sent again).
    pub fn load(sink: &str) -> Recent {
        let key = Recent::kv_key(sink);
        let entries = match host::kv_get(&key) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                host::warn(&format!(
                    "the record of recent sends `{key}` is damaged ({e}); starting a new one"
                ));
                VecDeque::new()
            }),
            Ok(None) => VecDeque::new(),
            Err(e) => {
                host::warn(&format!("cannot read the record of recent sends `{key}`: {e:?}"));
                VecDeque::new()
            }
        };
        Recent { key, entries }
    }

    /// Whether an idempotency key was among the recent sends.
    pub fn contains(&self, idempotency_key: &str) -> bool {
        self.entries.iter().any(|key| key == idempotency_key)
    }

    /// Records a send and drops the oldest beyond `window`.
    pub fn add(&mut self, idempotency_key: &str, window: usize) {
        self.entries.push_back(idempotency_key.to_owned());
        while self.entries.len() > window {
            self.entries.pop_front();
        }
    }

    /// Writes the record back.
    pub fn save(&self) -> Result<(), host::KvError> {
        let bytes = serde_json::to_vec(&self.entries).unwrap_or_default();
        host::kv_set(&self.key, &bytes)
    }
}
