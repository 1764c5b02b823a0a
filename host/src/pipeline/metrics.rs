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
    /// Replayed deliveries, from the replay to delivered: kept apart, so a replay of old events
    /// does not make live traffic look late.
    replay_latency_us: Mutex<Option<Histogram<u64>>>,
    /// Failed plugin calls by `plugin@version`, then by kind (`trap`, `deadline`, `limit`, ...):
    /// the plugin's own faults only.
    plugin_failures: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// Undelivered attempts a connector reported about its target, by sink, then by outcome
    /// (`retry`, `throttled`, `rejected`, `disabled`, `credential`): a vendor's trouble, not the
    /// plugin's.
    delivery_outcomes: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// Per sink, delivered and failed attempts over the last [`SINK_WINDOW_SECS`].
    sink_windows: Mutex<BTreeMap<String, SinkWindow>>,
    /// Dead letters of the last hour by sink (`""`: a failed route), alert events not counted.
    recent_dead_letters: Mutex<BTreeMap<String, Ring>>,
    /// Failed plugin calls of the last hour by `plugin@version`, calls on alert events not counted.
    recent_plugin_failures: Mutex<BTreeMap<String, Ring>>,
    /// When each store last sent an accepted event (ms since the epoch), since this host started.
    store_last_seen_ms: Mutex<BTreeMap<String, i64>>,
    /// When the counters started (ms since the epoch): they count since this host started.
    pub started_at_ms: std::sync::OnceLock<i64>,
}

/// How far back a sink's error rate looks.
pub const SINK_WINDOW_SECS: u64 = 300;
const BUCKET_SECS: u64 = 10;
const BUCKETS: usize = (SINK_WINDOW_SECS / BUCKET_SECS) as usize;

/// One sink's recent attempts, in 10-second buckets (a ring), and how the last ones went.
#[derive(Debug, Clone, Default)]
struct SinkWindow {
    /// `(bucket start in seconds, delivered, failed)`.
    buckets: Vec<(u64, u64, u64)>,
    last_failed: bool,
    /// Failed attempts since the last delivered one.
    consecutive_failed: u64,
    /// When the first of those failed (ms since the epoch).
    failing_since_ms: Option<i64>,
}

/// How far back [`Metrics::recent_dead_letters`] and [`Metrics::recent_plugin_failures`] look at
/// most.
pub const RECENT_MAX_SECS: u64 = 3600;

/// Counts in 10-second buckets over the last [`RECENT_MAX_SECS`] (a ring).
#[derive(Debug, Clone, Default)]
struct Ring {
    /// `(bucket start in seconds, count)`.
    buckets: Vec<(u64, u64)>,
}

impl Ring {
    const LEN: usize = (RECENT_MAX_SECS / BUCKET_SECS) as usize;

    fn add(&mut self, now_secs: u64, n: u64) {
        if self.buckets.len() < Self::LEN {
            self.buckets.resize(Self::LEN, (0, 0));
        }
        let start = now_secs - now_secs % BUCKET_SECS;
        let slot = &mut self.buckets[((start / BUCKET_SECS) as usize) % Self::LEN];
        if slot.0 != start {
            *slot = (start, 0);
        }
        slot.1 += n;
    }

    fn sum(&self, now_secs: u64, window_secs: u64) -> u64 {
        let oldest = now_secs.saturating_sub(window_secs.min(RECENT_MAX_SECS));
        self.buckets
            .iter()
            .filter(|(start, _)| *start + BUCKET_SECS > oldest)
            .map(|(_, n)| n)
            .sum()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A sink's attempts over the last [`SINK_WINDOW_SECS`] (since start, if that is more recent).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SinkRecent {
    /// Attempts that delivered.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Whether the latest attempt failed.
    pub last_failed: bool,
    /// Failed attempts since the last delivered one.
    pub consecutive_failures: u64,
    /// When the first of those failed (ms since the epoch).
    pub failing_since_ms: Option<i64>,
}

impl SinkRecent {
    /// Failed attempts as a share of all attempts (0 when there were none).
    pub fn error_rate(&self) -> f64 {
        let all = self.delivered + self.failed;
        if all == 0 { 0.0 } else { self.failed as f64 / all as f64 }
    }
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
    /// Replayed deliveries, replay → delivered, 50th percentile, microseconds.
    pub replay_p50_us: u64,
    /// Replayed deliveries, replay → delivered, 99th percentile, microseconds.
    pub replay_p99_us: u64,
}

fn record_into(histogram: &Mutex<Option<Histogram<u64>>>, us: u64) {
    if let Ok(mut h) = histogram.lock() {
        if h.is_none() {
            *h = Histogram::new(3).ok();
        }
        if let Some(h) = h.as_mut() {
            let _ = h.record(us.max(1));
        }
    }
}

fn percentiles(histogram: &Mutex<Option<Histogram<u64>>>) -> (u64, u64) {
    histogram
        .lock()
        .ok()
        .and_then(|h| {
            h.as_ref()
                .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
        })
        .unwrap_or((0, 0))
}

impl Metrics {
    /// Records one ingest → delivered latency of live traffic.
    pub fn record_latency_us(&self, us: u64) {
        record_into(&self.latency_us, us);
    }

    /// Records one replay → delivered latency of a replayed delivery.
    pub fn record_replay_latency_us(&self, us: u64) {
        record_into(&self.replay_latency_us, us);
    }

    /// Copies the counters (and the latency percentiles since the last reset).
    pub fn snapshot(&self) -> Snapshot {
        let (p50_us, p99_us) = percentiles(&self.latency_us);
        let (replay_p50_us, replay_p99_us) = percentiles(&self.replay_latency_us);
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
            replay_p50_us,
            replay_p99_us,
        }
    }

    /// Counts one failed call of a plugin on the event `event_id` (a failure on a host alert
    /// counts since start, never towards the `plugin-failing` alert: see [`Metrics::recent_plugin_failures`]).
    pub fn count_failure(&self, plugin: &str, kind: &'static str, event_id: &str) {
        crate::telemetry::prom::metrics().count_plugin_failure(plugin, kind);
        if let Ok(mut map) = self.plugin_failures.lock() {
            *map.entry(plugin.to_owned()).or_default().entry(kind).or_default() += 1;
        }
        if !kaunter_model::is_host_alert(event_id)
            && let Ok(mut map) = self.recent_plugin_failures.lock()
        {
            map.entry(plugin.to_owned()).or_default().add(now_secs(), 1);
        }
    }

    /// Counts a dead letter of `sink` (`None`: a failed route) for the event `event_id`.
    pub fn count_dead_letter(&self, sink: Option<&str>, event_id: &str) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        if !kaunter_model::is_host_alert(event_id)
            && let Ok(mut map) = self.recent_dead_letters.lock()
        {
            map.entry(sink.unwrap_or_default().to_owned())
                .or_default()
                .add(now_secs(), 1);
        }
    }

    /// Dead letters over the last `window_secs` (at most [`RECENT_MAX_SECS`]) by sink (`""`: failed
    /// routes). Those of alert events are not counted: an alert sink that is down must not
    /// raise alerts about the alerts it could not take.
    pub fn recent_dead_letters(&self, window_secs: u64) -> BTreeMap<String, u64> {
        sums(&self.recent_dead_letters, window_secs)
    }

    /// Failed calls over the last `window_secs` (at most [`RECENT_MAX_SECS`]) by `plugin@version`,
    /// calls on alert events not counted.
    pub fn recent_plugin_failures(&self, window_secs: u64) -> BTreeMap<String, u64> {
        sums(&self.recent_plugin_failures, window_secs)
    }

    /// Notes that `store` sent an accepted event now.
    pub fn saw_store(&self, store: &str) {
        if let Ok(mut map) = self.store_last_seen_ms.lock() {
            let now = crate::store::now_ms();
            match map.get_mut(store) {
                Some(at) => *at = now,
                None => {
                    map.insert(store.to_owned(), now);
                }
            }
        }
    }

    /// When `store` last sent an accepted event (ms since the epoch), since this host started.
    pub fn store_last_seen_ms(&self, store: &str) -> Option<i64> {
        self.store_last_seen_ms.lock().ok()?.get(store).copied()
    }

    /// Counts one attempt at `sink` in its recent window.
    pub fn count_attempt(&self, sink: &str, delivered: bool) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let start = now - now % BUCKET_SECS;
        if let Ok(mut map) = self.sink_windows.lock() {
            let window = map.entry(sink.to_owned()).or_default();
            if window.buckets.len() < BUCKETS {
                window.buckets.resize(BUCKETS, (0, 0, 0));
            }
            let slot = &mut window.buckets[((start / BUCKET_SECS) as usize) % BUCKETS];
            if slot.0 != start {
                *slot = (start, 0, 0);
            }
            if delivered {
                slot.1 += 1;
            } else {
                slot.2 += 1;
            }
            window.last_failed = !delivered;
            if delivered {
                window.consecutive_failed = 0;
                window.failing_since_ms = None;
            } else {
                window.consecutive_failed += 1;
                window.failing_since_ms.get_or_insert_with(crate::store::now_ms);
            }
        }
    }

    /// A sink's attempts over the last [`SINK_WINDOW_SECS`].
    pub fn sink_recent(&self, sink: &str) -> SinkRecent {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let oldest = now.saturating_sub(SINK_WINDOW_SECS);
        let Ok(map) = self.sink_windows.lock() else {
            return SinkRecent::default();
        };
        let Some(window) = map.get(sink) else {
            return SinkRecent::default();
        };
        let mut recent = SinkRecent {
            last_failed: window.last_failed,
            consecutive_failures: window.consecutive_failed,
            failing_since_ms: window.failing_since_ms,
            ..SinkRecent::default()
        };
        for (start, delivered, failed) in &window.buckets {
            if *start + BUCKET_SECS > oldest {
                recent.delivered += delivered;
                recent.failed += failed;
            }
        }
        recent
    }
}

fn sums(rings: &Mutex<BTreeMap<String, Ring>>, window_secs: u64) -> BTreeMap<String, u64> {
    let now = now_secs();
    let Ok(map) = rings.lock() else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(key, ring)| (key.clone(), ring.sum(now, window_secs)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

impl Metrics {
    /// Counts one attempt a connector reported as not delivered (its target's trouble).
    pub fn count_delivery_outcome(&self, sink: &str, outcome: &'static str) {
        if let Ok(mut map) = self.delivery_outcomes.lock() {
            *map.entry(sink.to_owned()).or_default().entry(outcome).or_default() += 1;
        }
    }

    /// Undelivered attempts per sink and outcome.
    pub fn delivery_outcomes(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        self.delivery_outcomes.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Failed calls per plugin and kind.
    pub fn plugin_failures(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        self.plugin_failures.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Clears the latency histogram (each progress interval reports its own percentiles).
    pub fn reset_latency(&self) {
        for histogram in [&self.latency_us, &self.replay_latency_us] {
            if let Ok(mut h) = histogram.lock()
                && let Some(h) = h.as_mut()
            {
                h.reset();
            }
        }
    }
}
