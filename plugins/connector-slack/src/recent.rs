//! The record of recent posts that keeps a redelivered alert from being posted twice.
//!
//! One kv record per sink, `posted/{sink}`: a JSON array of `[idempotency key, remote id]` pairs,
//! oldest first, holding the last `dedup_window` posts (the remote id is `{channel}/{ts}`, or empty
//! for incoming webhooks, which return none). A post adds its pair at the end and drops the oldest
//! beyond the window, so the record stays bounded: about 100 bytes per post (a key of
//! `{event id}:{sink}` and a remote id of about 30 characters), ~200 KB at the default 2000.
//! Reading, adding and writing back is not atomic, so the manifest asks for `serial = true`.

use kaunter_sdk::host;
use std::collections::VecDeque;

/// How many posts are remembered per sink unless configured.
pub const DEFAULT_WINDOW: usize = 2000;
/// The most posts that may be remembered per sink (~5 MB, inside the default 16 MiB kv quota).
pub const MAX_WINDOW: usize = 50_000;

/// The last posts to one sink, oldest first.
#[derive(Debug, Default)]
pub struct Recent {
    /// The kv key of the record.
    key: String,
    /// (idempotency key, remote id), oldest first.
    entries: VecDeque<(String, String)>,
}

impl Recent {
    /// The kv key of a sink's record.
    pub fn kv_key(sink: &str) -> String {
        format!("posted/{sink}")
    }

    /// Reads the sink's record; an absent, unreadable or damaged record reads as empty (with a
    /// warning, since recent posts could then be posted again).
    pub fn load(sink: &str) -> Recent {
        let key = Recent::kv_key(sink);
        let entries = match host::kv_get(&key) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                host::warn(&format!(
                    "the record of recent posts `{key}` is damaged ({e}); starting a new one"
                ));
                VecDeque::new()
            }),
            Ok(None) => VecDeque::new(),
            Err(e) => {
                host::warn(&format!("cannot read the record of recent posts `{key}`: {e:?}"));
                VecDeque::new()
            }
        };
        Recent { key, entries }
    }

    /// The remote id recorded for an idempotency key already posted (empty when Slack gave none).
    pub fn find(&self, idempotency_key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(key, _)| key == idempotency_key)
            .map(|(_, remote)| remote.as_str())
    }

    /// Records a post and drops the oldest beyond `window`.
    pub fn add(&mut self, idempotency_key: &str, remote_id: &str, window: usize) {
        self.entries
            .push_back((idempotency_key.to_owned(), remote_id.to_owned()));
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
