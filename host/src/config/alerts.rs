//! `[alerts]`: the host's own SOP alerts (`kaunter.alert.v1`), raised when a condition starts
//! and resolved when it ends. Per-sink freshness thresholds live on each sink
//! (`freshness_threshold_secs`), per-store silence on the store registry (`[stores.ID]`) and the
//! disk threshold on `[server] disk_low_mib`; this section holds the rest.
//!
//! ```toml
//! [alerts]
//! check_interval_secs = 10     # how often conditions are checked
//! sink_failures = 5            # consecutive failed attempts before a sink is failing
//! resolve_after_secs = 60      # a condition must stay clear this long before `resolved`
//! window_secs = 300            # window of dlq-growing and plugin-failing
//! dlq_growth = 1               # new dead letters in the window that make the DLQ growing
//! plugin_failures = 5          # failed calls of one plugin version in the window
//! runbook_base = "https://git.example.com/acme/kaunter/blob/main/docs/operators.md"
//! ```

use serde::{Deserialize, Serialize};

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Whether the host raises alerts at all.
    pub enabled: bool,
    /// Seconds between two checks of every condition.
    pub check_interval_secs: u64,
    /// Consecutive failed delivery attempts after which a sink is `sink-failing`.
    pub sink_failures: u64,
    /// Seconds a condition must stay clear before its `resolved` alert is raised (so a condition
    /// that flaps raises one alert, not one per flap).
    pub resolve_after_secs: u64,
    /// The window, in seconds, over which dead letters and plugin failures are counted (at most
    /// 3600).
    pub window_secs: u64,
    /// New dead letters of one sink (or of failed routes) within the window that raise
    /// `dlq-growing`.
    pub dlq_growth: u64,
    /// Failed calls of one plugin version within the window that raise `plugin-failing`.
    pub plugin_failures: u64,
    /// Where the SOPs are: each alert links `{runbook_base}#sop-{kind}`. Point it at the copy of
    /// docs/operators.md your operators read (an intranet or repository URL).
    pub runbook_base: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            check_interval_secs: 10,
            sink_failures: 5,
            resolve_after_secs: 60,
            window_secs: 300,
            dlq_growth: 1,
            plugin_failures: 5,
            runbook_base: "docs/operators.md".into(),
        }
    }
}

impl AlertsConfig {
    /// What is wrong with the section, as `(field, message)` pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut at_least_one = |field: &str, value: u64, what: &str| {
            if value == 0 {
                out.push((
                    format!("alerts.{field}"),
                    format!("{field} must be at least 1 ({what})"),
                ));
            }
        };
        at_least_one(
            "check_interval_secs",
            self.check_interval_secs,
            "seconds between checks",
        );
        at_least_one("sink_failures", self.sink_failures, "consecutive failed attempts");
        at_least_one("window_secs", self.window_secs, "seconds");
        at_least_one("dlq_growth", self.dlq_growth, "new dead letters in the window");
        at_least_one("plugin_failures", self.plugin_failures, "failed calls in the window");
        if self.window_secs > 3600 {
            out.push((
                "alerts.window_secs".into(),
                format!(
                    "window_secs is {}; at most 3600 (one hour) is counted",
                    self.window_secs
                ),
            ));
        }
        out
    }

    /// The SOP link of an alert kind.
    pub fn runbook(&self, kind: &str) -> String {
        format!("{}#sop-{kind}", self.runbook_base)
    }
}
