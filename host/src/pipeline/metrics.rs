//! Counters and a latency histogram for the progress line, `/metrics` and benchmarks.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Live counters of the pipeline. Cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    /// Events accepted (new, not duplicates).
    pub accepted: AtomicU64,
    /// Re-sent events answered as duplicates.
    pub duplicates: AtomicU64,
    /// Re-sent ids whose content differed from what was stored (answered 409, original kept).
    pub conflicts: AtomicU64,
    /// Deliveries confirmed.
    pub delivered: AtomicU64,
    /// Attempts that failed and were scheduled again.
    pub retried: AtomicU64,
    /// Deliveries and route runs dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Events derived by transforms.
    pub derived: AtomicU64,
    /// Events accepted but not yet routed.
    pub pending: AtomicI64,
    /// Finished events pruned by `[retention]`.
    pub pruned: Arc<AtomicU64>,
    latency_us: Mutex<Option<Histogram<u64>>>,
    /// Failed plugin calls by `plugin@version`, then by kind (`trap`, `deadline`, `limit`, ...).
    plugin_failures: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Snapshot {
    /// See [`Metrics::accepted`].
    pub accepted: u64,
    /// See [`Metrics::duplicates`].
    pub duplicates: u64,
    /// See [`Metrics::conflicts`].
    pub conflicts: u64,
    /// See [`Metrics::delivered`].
    pub delivered: u64,
    /// See [`Metrics::retried`].
    pub retried: u64,
    /// See [`Metrics::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`Metrics::derived`].
    pub derived: u64,
    /// See [`Metrics::pending`].
    pub pending: i64,
    /// See [`Metrics::pruned`].
    pub pruned: u64,
    /// Ingest → delivered, 50th percentile, microseconds.
    pub p50_us: u64,
    /// Ingest → delivered, 99th percentile, microseconds.
    pub p99_us: u64,
}

impl Metrics {
    /// Records one ingest → delivered latency.
    pub fn record_latency_us(&self, us: u64) {
        if let Ok(mut h) = self.latency_us.lock() {
            if h.is_none() {
                *h = Histogram::new(3).ok();
            }
            if let Some(h) = h.as_mut() {
                let _ = h.record(us.max(1));
            }
        }
    }

    /// Copies the counters (and the latency percentiles since the last reset).
    pub fn snapshot(&self) -> Snapshot {
        let (p50_us, p99_us) = self
            .latency_us
            .lock()
            .ok()
            .and_then(|h| {
                h.as_ref()
                    .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
            })
            .unwrap_or((0, 0));
        Snapshot {
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            derived: self.derived.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            pruned: self.pruned.load(Ordering::Relaxed),
            p50_us,
            p99_us,
        }
    }

    /// Counts one failed call of a plugin.
    pub fn count_failure(&self, plugin: &str, kind: &'static str) {
        if let Ok(mut map) = self.plugin_failures.lock() {
            *map.entry(plugin.to_owned()).or_default().entry(kind).or_default() += 1;
        }
    }

    /// Failed calls per plugin and kind.
    pub fn plugin_failures(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        self.plugin_failures.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Clears the latency histogram (each progress interval reports its own percentiles).
    pub fn reset_latency(&self) {
        if let Ok(mut h) = self.latency_us.lock()
            && let Some(h) = h.as_mut()
        {
            h.reset();
        }
    }
}
