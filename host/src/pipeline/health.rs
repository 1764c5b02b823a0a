//! The host's health as one report: each sink's state and freshness, dead letters, failing
//! plugins, disk. `/readyz`, `kaunter status`, `GET /v1/admin/sinks` and the scrape of
//! `/metrics` all read it, so they never disagree.
//!
//! Freshness is the age of a sink's oldest acknowledged event not yet delivered. Latency
//! percentiles count only deliveries made, so a stalled sink looks healthy by them; freshness
//! does not.

use super::Pipeline;
use super::metrics::SinkRecent;
use crate::store::{DeadLetterQuery, FailedAttempt, StoreResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// `ok`, or `degraded` with reasons. Ingest may still work when degraded: readiness to take
/// traffic is [`HealthReport::accepting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to report.
    Ok,
    /// Something an operator should look at (see the reasons).
    Degraded,
}

/// Why the host is degraded.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    /// `sink-failing`, `sink-paused`, `sync-delayed`, `disk-low`, `ingest-refused`.
    pub kind: &'static str,
    /// The sink concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// What, in a sentence an operator can act on.
    pub message: String,
}

/// One sink's state.
#[derive(Debug, Clone, Serialize)]
pub struct SinkView {
    /// The sink.
    pub name: String,
    /// `running`, `failing` (its latest attempt failed), `paused` or `delayed` (freshness over
    /// its threshold while attempts succeed).
    pub state: &'static str,
    /// Paused by its endpoint (HTTP 410) or an operator.
    pub paused: bool,
    /// Open deliveries in the log (pending and retrying).
    pub open: u64,
    /// Deliveries parked past `max_backlog`.
    pub parked: u64,
    /// Deliveries its worker holds in memory (queued or in flight).
    pub in_memory: usize,
    /// The most it holds in memory.
    pub window: usize,
    /// Seconds since the oldest open delivery's event was acknowledged (`None`: nothing open).
    pub oldest_undelivered_age_secs: Option<f64>,
    /// `freshness_threshold_secs` of the sink.
    pub freshness_threshold_secs: u64,
    /// Dead letters not yet replayed.
    pub dead_letters: u64,
    /// Attempts over the recent window.
    pub recent: SinkRecent,
    /// Its latest failed attempt.
    pub last_failure: Option<FailedAttempt>,
}

/// A plugin that failed since the host started.
#[derive(Debug, Clone, Serialize)]
pub struct FailingPlugin {
    /// `name@version`.
    pub plugin: String,
    /// Failed calls by kind, since start.
    pub failures: BTreeMap<&'static str, u64>,
}

/// Everything health reads.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `ok` or `degraded`.
    pub status: Status,
    /// Why it is degraded (empty when ok).
    pub reasons: Vec<Reason>,
    /// Whether ingest takes events now (not over `max_pending`, not over the log budget).
    pub accepting: bool,
    /// Each configured sink.
    pub sinks: Vec<SinkView>,
    /// Dead letters not yet replayed, all sinks and failed routes.
    pub dead_letters: u64,
    /// Plugins with failed calls since start.
    pub failing_plugins: Vec<FailingPlugin>,
    /// Events accepted and not yet routed.
    pub unrouted: i64,
    /// Free bytes on the data directory's file system, if readable.
    pub disk_free_bytes: Option<u64>,
    /// The threshold under which the disk counts as low.
    pub disk_low_bytes: u64,
}

/// How much [`Pipeline::health`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything, dead-letter counts included (status, metrics, the sink list).
    Full,
    /// What readiness needs, without counting dead letters: `/readyz` answers anyone, often,
    /// so it must stay cheap however long the dead-letter queue grows. Dead letters read 0.
    Probe,
}

impl Pipeline {
    /// Reads the host's health now. `data_dir` is where the log lives (for free space) and
    /// `disk_low_bytes` the free space below which the host is degraded.
    pub async fn health(&self, data_dir: &Path, disk_low_bytes: u64, detail: Detail) -> StoreResult<HealthReport> {
        let store = self.store();
        let backlogs = store.backlogs().await?;
        let states = self.sink_states();
        let health = store
            .sink_health(states.iter().map(|s| s.name.clone()).collect())
            .await?;
        let letters = match detail {
            Detail::Full => store.dead_letters(DeadLetterQuery::default(), 0, 0).await?,
            Detail::Probe => crate::store::DeadLetterPage::default(),
        };
        let routing = self.routing();
        let now_us = crate::store::now_us();
        let mut reasons = Vec::new();
        let sinks: Vec<SinkView> = states
            .into_iter()
            .map(|s| {
                let backlog = backlogs.iter().find(|b| b.sink == s.name).cloned().unwrap_or_default();
                let health = health.iter().find(|h| h.sink == s.name).cloned().unwrap_or_default();
                let recent = self.metrics().sink_recent(&s.name);
                let threshold = routing
                    .sinks
                    .get(&s.name)
                    .map_or(60, |entry| entry.config.freshness_threshold_secs);
                let age = health
                    .oldest_open_received_us
                    .map(|at| (now_us - at).max(0) as f64 / 1e6);
                let delayed = age.is_some_and(|age| age > threshold as f64);
                let state = if s.paused {
                    "paused"
                } else if recent.last_failed {
                    "failing"
                } else if delayed {
                    "delayed"
                } else {
                    "running"
                };
                if s.paused {
                    reasons.push(Reason {
                        kind: "sink-paused",
                        sink: Some(s.name.clone()),
                        message: format!("sink `{}` is paused; its deliveries wait (kaunter sink resume {})", s.name, s.name),
                    });
                } else if recent.last_failed {
                    reasons.push(Reason {
                        kind: "sink-failing",
                        sink: Some(s.name.clone()),
                        message: format!("sink `{}`: its latest attempt failed ({} failed of {} in the last {} s)", s.name, recent.failed, recent.failed + recent.delivered, super::metrics::SINK_WINDOW_SECS),
                    });
                }
                if let Some(age) = age.filter(|_| delayed) {
                    reasons.push(Reason {
                        kind: "sync-delayed",
                        sink: Some(s.name.clone()),
                        message: format!("sink `{}`: its oldest undelivered event is {age:.1} s old, over its {threshold} s threshold (freshness_threshold_secs)", s.name),
                    });
                }
                SinkView {
                    dead_letters: letters
                        .groups
                        .iter()
                        .filter(|g| g.sink.as_deref() == Some(s.name.as_str()))
                        .map(|g| g.count)
                        .sum(),
                    name: s.name,
                    state,
                    paused: s.paused,
                    open: backlog.open,
                    parked: backlog.parked,
                    in_memory: s.in_memory,
                    window: s.window,
                    oldest_undelivered_age_secs: age,
                    freshness_threshold_secs: threshold,
                    recent,
                    last_failure: health.last_failure,
                }
            })
            .collect();
        let disk_free_bytes = crate::telemetry::prom::disk_free_bytes(data_dir);
        if let Some(free) = disk_free_bytes.filter(|&free| free < disk_low_bytes) {
            reasons.push(Reason {
                kind: "disk-low",
                sink: None,
                message: format!(
                    "{} MiB free on the data directory's disk, under {} MiB (server.disk_low_mib); free space or grow the disk",
                    free / (1024 * 1024),
                    disk_low_bytes / (1024 * 1024)
                ),
            });
        }
        let accepting = match self.check_capacity() {
            Ok(()) => true,
            Err(e) => {
                reasons.push(Reason {
                    kind: "ingest-refused",
                    sink: None,
                    message: e.to_string(),
                });
                false
            }
        };
        let failing_plugins = self
            .metrics()
            .plugin_failures()
            .into_iter()
            .map(|(plugin, failures)| FailingPlugin { plugin, failures })
            .collect();
        Ok(HealthReport {
            status: if reasons.is_empty() {
                Status::Ok
            } else {
                Status::Degraded
            },
            reasons,
            accepting,
            sinks,
            dead_letters: letters.total,
            failing_plugins,
            unrouted: self.metrics().pending.load(std::sync::atomic::Ordering::Relaxed),
            disk_free_bytes,
            disk_low_bytes,
        })
    }
}
