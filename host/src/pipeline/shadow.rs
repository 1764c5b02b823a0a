//! Shadow comparisons: a shadow version gets the same live events as the version it shadows,
//! with its side effects captured, and each pair of results is compared here.
//!
//! The log keeps, per plugin, counts (compared, identical, different, shadow failures) and the
//! most recent differences with the exact paths that differ, for `kaunter shadow report`.

use crate::egress::CapturedRequest;
use crate::engine::{CallError, LoadedPlugin};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Differences kept per plugin.
const KEPT_DIFFERENCES: usize = 20;
/// Shadow calls running at once, host-wide; beyond it comparisons are skipped (and counted), so
/// a slow shadow cannot pile up work on the live path's host.
const MAX_SHADOW_CALLS: usize = 64;
/// Paths listed per difference.
const MAX_PATHS: usize = 40;
/// Groups of identical differences kept per plugin.
const MAX_GROUPS: usize = 20;

/// What one version did with one event: its outcome and the requests it made.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// `{"events": [...]}`, `{"delivered": true}` or `{"error": kind, "message": ...}`.
    pub outcome: Value,
    /// Outbound requests (the live version's recorded, the shadow's captured).
    pub requests: Vec<CapturedRequest>,
}

impl Observed {
    /// The observation of a call: what it returned (as JSON) or how it failed.
    pub fn of(result: Result<Value, CallError>, requests: Vec<CapturedRequest>) -> Observed {
        let outcome = match result {
            Ok(value) => value,
            Err(e) => json!({ "error": e.kind(), "message": e.to_string() }),
        };
        Observed { outcome, requests }
    }

    /// The view compared: credentials (never visible on the live side) and response statuses
    /// (real for live, canned for the shadow) are left out.
    fn comparable(&self) -> Value {
        let requests: Vec<Value> = self
            .requests
            .iter()
            .map(|r| {
                let headers: BTreeMap<String, &str> = r
                    .headers
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
                    .collect();
                let body = serde_json::from_str::<Value>(&r.body).unwrap_or_else(|_| Value::String(r.body.clone()));
                json!({ "method": r.method, "url": r.url, "headers": headers, "body": body })
            })
            .collect();
        json!({ "outcome": self.outcome, "requests": requests })
    }
}

/// One event on which the shadow differed from the live version.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowDifference {
    /// The event.
    pub event_id: String,
    /// When (RFC 3339).
    pub at: Value,
    /// The live version compared against.
    pub live_version: String,
    /// `path: live → shadow`, one per difference.
    pub differences: Vec<String>,
    /// What the live version did.
    pub live: Observed,
    /// What the shadow did.
    pub shadow: Observed,
}

/// The running comparison for one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// Plugin name.
    pub plugin: String,
    /// The shadow version.
    pub shadow_version: String,
    /// Live versions it was compared with.
    pub live_versions: Vec<String>,
    /// Since when (RFC 3339).
    pub since: Value,
    /// Events compared.
    pub compared: u64,
    /// Same outcome and same requests.
    pub identical: u64,
    /// Something differed.
    pub different: u64,
    /// Of those, how many the shadow failed (trap, deadline, denial, ...) while live did not.
    pub shadow_failed: u64,
    /// Events not compared because too many shadow calls were already running.
    pub skipped_busy: u64,
    /// The most recent differences, newest last.
    pub recent_differences: VecDeque<ShadowDifference>,
    /// Every difference seen, grouped by what differed (numbers folded, so the same change on
    /// many events is one group), largest first; at most 20 groups.
    pub groups: Vec<DifferenceGroup>,
}

/// Events on which the shadow differed in the same way.
#[derive(Debug, Clone, Serialize)]
pub struct DifferenceGroup {
    /// What differed, `path: live → shadow`, digits folded to `#`.
    pub differences: Vec<String>,
    /// How many events.
    pub events: u64,
    /// The latest of them.
    pub example_event_id: String,
}

/// Comparisons of every shadowed plugin.
pub struct ShadowLog {
    permits: Arc<tokio::sync::Semaphore>,
    /// By (plugin, shadow version): comparisons still in flight from a replaced shadow cannot
    /// mix with the new one's.
    reports: Mutex<BTreeMap<(String, String), ShadowReport>>,
}

impl Default for ShadowLog {
    fn default() -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_SHADOW_CALLS)),
            reports: Mutex::default(),
        }
    }
}

impl ShadowLog {
    /// A slot for one shadow call, or `None` (counted as skipped) when too many are running.
    pub fn permit(&self, live: &LoadedPlugin, shadow: &LoadedPlugin) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = self.permits.clone().try_acquire_owned().ok();
        if permit.is_none()
            && let Ok(mut reports) = self.reports.lock()
        {
            Self::report(&mut reports, live, shadow).skipped_busy += 1;
        }
        permit
    }

    fn report<'a>(
        reports: &'a mut BTreeMap<(String, String), ShadowReport>,
        live: &LoadedPlugin,
        shadow: &LoadedPlugin,
    ) -> &'a mut ShadowReport {
        reports
            .entry((live.name.clone(), shadow.version.clone()))
            .or_insert_with(|| ShadowReport {
                plugin: live.name.clone(),
                shadow_version: shadow.version.clone(),
                live_versions: Vec::new(),
                since: crate::store::rfc3339(Some(crate::store::now_ms())),
                compared: 0,
                identical: 0,
                different: 0,
                shadow_failed: 0,
                skipped_busy: 0,
                recent_differences: VecDeque::new(),
                groups: Vec::new(),
            })
    }

    /// Records one comparison.
    pub fn record(&self, live: &LoadedPlugin, shadow: &LoadedPlugin, event_id: &str, a: Observed, b: Observed) {
        let mut differences = Vec::new();
        diff("$", &a.comparable(), &b.comparable(), &mut differences);
        let Ok(mut reports) = self.reports.lock() else { return };
        let report = Self::report(&mut reports, live, shadow);
        if !report.live_versions.contains(&live.version) {
            report.live_versions.push(live.version.clone());
        }
        report.compared += 1;
        if differences.is_empty() {
            report.identical += 1;
            return;
        }
        report.different += 1;
        if b.outcome.get("error").is_some() && a.outcome.get("error").is_none() {
            report.shadow_failed += 1;
        }
        let folded: Vec<String> = differences.iter().map(|d| crate::text::fold_digits(d)).collect();
        let full = report.groups.len() >= MAX_GROUPS;
        match report.groups.iter_mut().find(|g| g.differences == folded) {
            Some(group) => {
                group.events += 1;
                group.example_event_id = event_id.to_owned();
            }
            None if !full => report.groups.push(DifferenceGroup {
                differences: folded,
                events: 1,
                example_event_id: event_id.to_owned(),
            }),
            None => {}
        }
        report.groups.sort_by_key(|g| std::cmp::Reverse(g.events));
        if report.recent_differences.len() == KEPT_DIFFERENCES {
            report.recent_differences.pop_front();
        }
        report.recent_differences.push_back(ShadowDifference {
            event_id: event_id.to_owned(),
            at: crate::store::rfc3339(Some(crate::store::now_ms())),
            live_version: live.version.clone(),
            differences,
            live: a,
            shadow: b,
        });
    }

    /// Reports, for one plugin or all.
    pub fn reports(&self, plugin: Option<&str>) -> Vec<ShadowReport> {
        let Ok(reports) = self.reports.lock() else {
            return Vec::new();
        };
        reports
            .values()
            .filter(|r| plugin.is_none_or(|p| p == r.plugin))
            .cloned()
            .collect()
    }

    /// Forgets a plugin's comparisons (its shadow was removed or replaced).
    pub fn reset(&self, plugin: &str) {
        if let Ok(mut reports) = self.reports.lock() {
            reports.retain(|(name, _), _| name != plugin);
        }
    }
}

/// Lists the paths where `a` and `b` differ, as `path: a → b` (`(absent)` for a side without
/// it), at most 40: shadow comparisons and configuration diffs.
pub fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_PATHS {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => diff(&p, va, vb, out),
                    None => out.push(format!("{p}: {} → (absent)", short(va))),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: (absent) → {}", short(vb)));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => diff(&p, va, vb, out),
                    (Some(va), None) => out.push(format!("{p}: {} → (absent)", short(va))),
                    (None, Some(vb)) => out.push(format!("{p}: (absent) → {}", short(vb))),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(format!("{path}: {} → {}", short(a), short(b))),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 120 {
        let mut cut = 117;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &text[..cut])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_paths() {
        let a = json!({"outcome": {"events": [{"sku": "A", "qty": 1}]}, "requests": []});
        let b = json!({"outcome": {"events": [{"sku": "B", "qty": 1, "extra": true}]}, "requests": [{"url": "x"}]});
        let mut out = Vec::new();
        diff("$", &a, &b, &mut out);
        assert_eq!(
            out,
            vec![
                "$.outcome.events[0].sku: \"A\" → \"B\"",
                "$.outcome.events[0].extra: (absent) → true",
                "$.requests[0]: (absent) → {\"url\":\"x\"}",
            ]
        );
    }
}
