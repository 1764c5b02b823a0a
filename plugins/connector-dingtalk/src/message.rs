//! What a DingTalk message says about one alert-like event, and its DingTalk form.
//!
//! [`Alert::of`] reads the three alert-like payloads (`pos.anomaly.detected.v1`,
//! `pos.restock.suggested.v1`, `kaunter.alert.v1`) into one shape; [`Alert::markdown`] and
//! [`Alert::text`] render it as a robot message body: a severity emoji, the store, what happened
//! and the evidence. The message adds no links and no `at` list, so it notifies nobody by name.

use kaunter_sdk::{Event, Payload, Severity};
use serde_json::{Value, json};

/// One alert-like event, as a message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// How urgent (restock suggestions are `Info`).
    pub severity: Severity,
    /// Whether it is a restock suggestion (shown with a parcel).
    pub restock: bool,
    /// What kind of thing happened, e.g. `Anomaly: refund_spike`.
    pub headline: String,
    /// What happened, in a sentence.
    pub detail: String,
    /// Store id from the event source, when it names one.
    pub store: Option<String>,
    /// `key: value` pairs from the `evidence` extension (raw text as one pair with an empty key).
    pub evidence: Vec<(String, String)>,
    /// The event id.
    pub event_id: String,
    /// When it happened (RFC 3339).
    pub time: String,
    /// A `kaunter.alert.v1` whose condition has ended.
    pub resolved: bool,
    /// The alert's SOP link (`kaunter.alert.v1` only), shown as text.
    pub runbook: Option<String>,
}

impl Alert {
    /// The alert an event describes, or `None` when its type is not alert-like.
    pub fn of(event: &Event) -> Option<Alert> {
        let (severity, restock, headline, detail) = match &event.payload {
            Payload::AnomalyDetected(a) => (a.severity, false, format!("Anomaly: {}", a.kind), a.description.clone()),
            Payload::RestockSuggested(r) => (
                Severity::Info,
                true,
                "Restock suggested".to_owned(),
                format!(
                    "SKU {}: {} on hand, suggest ordering {} ({})",
                    r.sku,
                    milli(r.on_hand_milli),
                    milli(r.suggested_milli),
                    r.reason
                ),
            ),
            Payload::Alert(a) => (a.severity, false, a.title.clone(), a.message.clone()),
            _ => return None,
        };
        let facts = kaunter_sdk::alerts::alert_facts(event);
        let (resolved, runbook, evidence) = (facts.resolved, facts.runbook, facts.evidence);
        let headline = if resolved {
            format!("Resolved: {headline}")
        } else {
            headline
        };
        Some(Alert {
            severity,
            restock,
            headline,
            detail,
            store: event.store().map(str::to_owned),
            evidence,
            event_id: event.id.clone(),
            time: event.time.clone(),
            resolved,
            runbook,
        })
    }

    /// The severity emoji.
    pub fn emoji(&self) -> &'static str {
        if self.resolved {
            return "✅";
        }
        match self.severity {
            Severity::Critical => "🚨",
            Severity::Warning => "⚠️",
            Severity::Info if self.restock => "📦",
            Severity::Info => "ℹ️",
        }
    }

    /// The one-line title (DingTalk shows it in the chat list and notifications); `keyword`, when
    /// the robot requires one, leads it.
    pub fn title(&self, keyword: Option<&str>) -> String {
        let mut title = String::new();
        if let Some(keyword) = keyword {
            title.push_str(&format!("[{keyword}] "));
        }
        title.push_str(&format!("{} {}", self.emoji(), self.headline));
        if let Some(store) = &self.store {
            title.push_str(&format!(" at store {store}"));
        }
        title
    }

    /// A `markdown` message body.
    pub fn markdown(&self, keyword: Option<&str>) -> Value {
        let mut text = format!("### {}\n\n", self.title(keyword));
        text.push_str(&format!("{}\n\n", self.detail));
        if !self.evidence.is_empty() {
            text.push_str("**Evidence**\n\n");
            for (k, v) in &self.evidence {
                match k.is_empty() {
                    true => text.push_str(&format!("- {v}\n")),
                    false => text.push_str(&format!("- {k}: {v}\n")),
                }
            }
            text.push('\n');
        }
        if let Some(runbook) = &self.runbook {
            text.push_str(&format!("SOP: {runbook}\n\n"));
        }
        text.push_str(&format!(
            "> {} · {} · event {}",
            severity_name(self.severity),
            self.time,
            self.event_id
        ));
        json!({ "msgtype": "markdown", "markdown": { "title": self.title(keyword), "text": text } })
    }

    /// A `text` message body.
    pub fn text(&self, keyword: Option<&str>) -> Value {
        let mut content = format!("{}\n{}", self.title(keyword), self.detail);
        if !self.evidence.is_empty() {
            let pairs: Vec<String> = self
                .evidence
                .iter()
                .map(|(k, v)| if k.is_empty() { v.clone() } else { format!("{k}: {v}") })
                .collect();
            content.push_str(&format!("\nEvidence: {}", pairs.join(", ")));
        }
        if let Some(runbook) = &self.runbook {
            content.push_str(&format!("\nSOP: {runbook}"));
        }
        content.push_str(&format!(
            "\n{} · {} · event {}",
            severity_name(self.severity),
            self.time,
            self.event_id
        ));
        json!({ "msgtype": "text", "text": { "content": content } })
    }
}

/// The lower-case name of a severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// 0 for info, 1 for warning, 2 for critical.
pub fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

/// A quantity in thousandths as a decimal: `2000` → `2`, `1500` → `1.5`.
pub fn milli(quantity: i64) -> String {
    let sign = if quantity < 0 { "-" } else { "" };
    let abs = quantity.unsigned_abs();
    let fraction = abs % 1000;
    if fraction == 0 {
        return format!("{sign}{}", abs / 1000);
    }
    let digits = format!("{fraction:03}");
    format!("{sign}{}.{}", abs / 1000, digits.trim_end_matches('0'))
}
