//! The SOP conditions that hold now, read from what the host already measures: the health report
//! (sinks, freshness, disk), recent dead letters and plugin failures, refused credentials and the
//! store registry. Pure: the same observations give the same conditions, so each rule is tested
//! without a running host.

use crate::audit::anchor::rfc3339;
use crate::config::{AlertsConfig, StoreConfig};
use crate::credentials::Refusal;
use crate::pipeline::health::HealthReport;
use kaunter_model::{Evidence, Severity};
use std::collections::BTreeMap;

/// Every kind of condition the host raises alerts for.
pub const KINDS: [&str; 7] = [
    "sink-failing",
    "sync-delayed",
    "store-silent",
    "dlq-growing",
    "plugin-failing",
    "credential-failing",
    "disk-low",
];

/// One SOP condition that holds now. Its `key` is the alert's dedup key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Condition {
    /// `sink-failing`, `sync-delayed`, `store-silent`, `dlq-growing`, `plugin-failing`,
    /// `credential-failing` or `disk-low`.
    pub kind: String,
    /// `{kind}:{what}`, e.g. `sink-failing:xero`.
    pub key: String,
    /// What it is about, e.g. `sink xero`.
    pub target: String,
    /// How serious.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What holds and what to do.
    pub message: String,
    /// The facts behind it.
    pub evidence: Vec<Evidence>,
    /// When it started, when the observations say (ms since the epoch).
    pub since_ms: Option<i64>,
}

/// Everything the conditions are read from.
pub struct Observations<'a> {
    /// Now (ms since the epoch).
    pub now_ms: i64,
    /// `[alerts]`.
    pub config: &'a AlertsConfig,
    /// The host's health (sinks with freshness, dead letters, disk).
    pub health: &'a HealthReport,
    /// The store registry.
    pub stores: &'a BTreeMap<String, StoreConfig>,
    /// When each registered store last sent an accepted event (`None`: not since the host started).
    pub store_last_seen_ms: BTreeMap<String, Option<i64>>,
    /// When the host started watching (a store not seen since is silent from then).
    pub watching_since_ms: i64,
    /// New dead letters within the window by sink (`""`: failed routes), alert events not counted.
    pub recent_dead_letters: BTreeMap<String, u64>,
    /// Failed calls within the window by `plugin@version`, calls on alert events not counted.
    pub recent_plugin_failures: BTreeMap<String, u64>,
    /// Credentials the authorization server refuses.
    pub refusals: Vec<Refusal>,
}

fn condition(kind: &str, what: &str, target: String, severity: Severity) -> Condition {
    Condition {
        kind: kind.to_owned(),
        key: format!("{kind}:{what}"),
        target,
        severity,
        title: String::new(),
        message: String::new(),
        evidence: Vec::new(),
        since_ms: None,
    }
}

fn secs(seconds: f64) -> String {
    format!("{seconds:.0} s")
}

/// Every condition that holds in `o`.
pub fn conditions(o: &Observations<'_>) -> Vec<Condition> {
    let mut out = Vec::new();
    let window = o.config.window_secs;
    for sink in &o.health.sinks {
        let last_error = sink.last_failure.as_ref().map(|f| f.failure.error.clone());
        let failing = sink.recent.consecutive_failures >= o.config.sink_failures;
        if sink.paused || failing {
            let mut c = condition(
                "sink-failing",
                &sink.name,
                format!("sink {}", sink.name),
                Severity::Critical,
            );
            if sink.paused {
                c.title = format!("Sink {} is paused", sink.name);
                c.message = format!(
                    "Deliveries to `{}` wait: an operator paused it, or its endpoint answered 410 Gone and the connector disabled it. Fix the target, then `kaunter sink resume {}`; nothing is lost meanwhile.",
                    sink.name, sink.name
                );
                c.evidence.push(Evidence::new("paused", "true"));
            } else {
                c.title = format!("Sink {} is failing", sink.name);
                c.message = format!(
                    "{} delivery attempts to `{}` have failed in a row. Deliveries wait in the log and are retried; check the target and the last error (`kaunter status`, `kaunter sink list`).",
                    sink.recent.consecutive_failures, sink.name
                );
                c.since_ms = sink.recent.failing_since_ms;
            }
            c.evidence
                .push(Evidence::new("consecutive-failures", sink.recent.consecutive_failures));
            c.evidence.push(Evidence::new(
                "attempts-last-5-min",
                format!("{} failed, {} delivered", sink.recent.failed, sink.recent.delivered),
            ));
            c.evidence.push(Evidence::new("open-deliveries", sink.open));
            if let Some(error) = &last_error {
                c.evidence.push(Evidence::new("last-error", error));
            }
            out.push(c);
        }
        if let Some(age) = sink
            .oldest_undelivered_age_secs
            .filter(|age| *age > sink.freshness_threshold_secs as f64)
        {
            let threshold = sink.freshness_threshold_secs;
            let mut c = condition(
                "sync-delayed",
                &sink.name,
                format!("sink {}", sink.name),
                Severity::Warning,
            );
            c.title = format!("Sync to {} is delayed", sink.name);
            c.message = format!(
                "The oldest event not yet delivered to `{}` was acknowledged {} ago, over its {threshold} s threshold (freshness_threshold_secs). {} deliveries wait; see whether the sink is failing or the backlog is draining (`kaunter status`).",
                sink.name,
                secs(age),
                sink.open
            );
            c.since_ms = Some(o.now_ms - ((age - threshold as f64) * 1000.0) as i64);
            c.evidence.push(Evidence::new("oldest-undelivered-age", secs(age)));
            c.evidence.push(Evidence::new("threshold", format!("{threshold} s")));
            c.evidence.push(Evidence::new("open-deliveries", sink.open));
            if let Some(error) = &last_error {
                c.evidence.push(Evidence::new("last-error", error));
            }
            out.push(c);
        }
    }
    for (sink, new) in &o.recent_dead_letters {
        if *new < o.config.dlq_growth {
            continue;
        }
        let filter = if sink.is_empty() { "transform" } else { sink.as_str() };
        let (what, target, total) = if sink.is_empty() {
            let total: u64 = o.health.dead_letters
                - o.health
                    .sinks
                    .iter()
                    .map(|s| s.dead_letters)
                    .sum::<u64>()
                    .min(o.health.dead_letters);
            ("routes".to_owned(), "failed routes".to_owned(), total)
        } else {
            let total = o
                .health
                .sinks
                .iter()
                .find(|s| &s.name == sink)
                .map_or(0, |s| s.dead_letters);
            (sink.clone(), format!("sink {sink}"), total)
        };
        let mut c = condition("dlq-growing", &what, target.clone(), Severity::Warning);
        c.title = format!("Dead letters growing: {target}");
        c.message = format!(
            "{new} new dead letter(s) for {target} in the last {window} s, {total} waiting in all. Find the cause (`kaunter dlq list --sink {filter}`), fix it, then `kaunter dlq replay`."
        );
        c.evidence.push(Evidence::new("new-in-window", new));
        c.evidence.push(Evidence::new("window", format!("{window} s")));
        c.evidence.push(Evidence::new("waiting", total));
        out.push(c);
    }
    for (plugin, failures) in &o.recent_plugin_failures {
        if *failures < o.config.plugin_failures {
            continue;
        }
        let mut c = condition("plugin-failing", plugin, format!("plugin {plugin}"), Severity::Warning);
        c.title = format!("Plugin {plugin} is failing");
        c.message = format!(
            "{failures} calls of `{plugin}` failed in the last {window} s (traps, deadlines, limits or denials). Read its failures (`kaunter stats`, the host log), then roll back (`kaunter plugin rollback`) or fix its configuration."
        );
        c.evidence.push(Evidence::new("failures-in-window", failures));
        c.evidence.push(Evidence::new("window", format!("{window} s")));
        if let Some(kinds) = o.health.failing_plugins.iter().find(|p| &p.plugin == plugin) {
            let kinds: Vec<String> = kinds.failures.iter().map(|(k, n)| format!("{k} {n}")).collect();
            c.evidence.push(Evidence::new("since-start", kinds.join(", ")));
        }
        out.push(c);
    }
    for refusal in &o.refusals {
        let name = &refusal.credential;
        let mut c = condition(
            "credential-failing",
            name,
            format!("credential {name}"),
            Severity::Critical,
        );
        c.title = format!("Credential {name} is refused");
        c.message = format!(
            "The authorization server refuses credential `{name}`, so its connectors cannot deliver: {}. Re-authorise it (a new refresh token or client secret), then `kaunter sink resume` its sinks if they paused.",
            refusal.error
        );
        c.since_ms = Some(refusal.since_ms);
        c.evidence.push(Evidence::new("refusals", refusal.count));
        c.evidence.push(Evidence::new("last-error", &refusal.error));
        out.push(c);
    }
    if let Some(free) = o.health.disk_free_bytes.filter(|free| *free < o.health.disk_low_bytes) {
        let (free_mib, low_mib) = (free / (1024 * 1024), o.health.disk_low_bytes / (1024 * 1024));
        let mut c = condition(
            "disk-low",
            "data",
            "the data directory's disk".into(),
            Severity::Critical,
        );
        c.title = "Disk low on the data directory".into();
        c.message = format!(
            "{free_mib} MiB free, under {low_mib} MiB (server.disk_low_mib). When the disk fills, ingest refuses events: free space, shorten [retention] or grow the disk."
        );
        c.evidence.push(Evidence::new("free", format!("{free_mib} MiB")));
        c.evidence.push(Evidence::new("threshold", format!("{low_mib} MiB")));
        out.push(c);
    }
    let now = chrono::DateTime::from_timestamp_millis(o.now_ms).unwrap_or_default();
    for (id, store) in o.stores {
        let last = o.store_last_seen_ms.get(id).copied().flatten();
        let from_ms = last.unwrap_or(o.watching_since_ms);
        let from = chrono::DateTime::from_timestamp_millis(from_ms).unwrap_or_default();
        let silent = store.open_secs_between(from, now, store.silent_after_secs);
        if silent < store.silent_after_secs {
            continue;
        }
        let mut c = condition("store-silent", id, format!("store {id}"), Severity::Warning);
        c.title = format!("Store {id} is silent");
        let last_text = match last {
            Some(at) => format!("its last event came at {}", rfc3339(at)),
            None => format!(
                "it has sent nothing since the host started at {}",
                rfc3339(o.watching_since_ms)
            ),
        };
        c.message = format!(
            "Store `{id}` has sent no event for {silent} s of opening hours (threshold {} s); {last_text}. Check the store's tills and its link to head office.",
            store.silent_after_secs
        );
        c.evidence.push(Evidence::new(
            "last-event",
            last.map_or_else(|| "none since start".to_owned(), rfc3339),
        ));
        c.evidence
            .push(Evidence::new("silent-while-open", format!("{silent} s")));
        c.evidence
            .push(Evidence::new("threshold", format!("{} s", store.silent_after_secs)));
        if let Some(quiet) = &store.quiet_hours {
            c.evidence
                .push(Evidence::new("quiet-hours", format!("{quiet} {}", store.time_zone)));
        }
        out.push(c);
    }
    out
}
