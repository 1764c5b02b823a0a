//! What a Slack message says about one alert-like event, and its Slack form.
//!
//! [`Alert::of`] reads the three alert-like payloads (`pos.anomaly.detected.v1`,
//! `pos.restock.suggested.v1`, `kaunter.alert.v1`) into one shape: severity, headline, detail,
//! store and evidence. [`Alert::text`] and [`Alert::blocks`] render it as Slack `mrkdwn`: a severity
//! emoji, the store, what happened and the evidence. Everything taken from the event is escaped
//! (`&`, `<`, `>`), so an event cannot smuggle a link, a mention (`<!channel>`) or a user ping into
//! the channel; the message adds no links of its own (an alert's SOP link is shown as text).

use kaunter_sdk::{Event, Payload, Severity};
use serde_json::{Value, json};

/// One alert-like event, as a message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// How urgent (restock suggestions are `Info`).
    pub severity: Severity,
    /// What kind of thing happened, e.g. `Anomaly: refund_spike`.
    pub headline: String,
    /// What happened, in a sentence.
    pub detail: String,
    /// Store id from the event source, when it names one.
    pub store: Option<String>,
    /// `key: value` pairs from the `evidence` extension (or its raw text as one pair with an empty key).
    pub evidence: Vec<(String, String)>,
    /// The event id, for looking it up in kaunter.
    pub event_id: String,
    /// When it happened (RFC 3339, as the event has it).
    pub time: String,
    /// A `kaunter.alert.v1` whose condition has ended.
    pub resolved: bool,
    /// The alert's SOP link (`kaunter.alert.v1` only), shown as text.
    pub runbook: Option<String>,
}

impl Alert {
    /// The alert an event describes, or `None` when its type is not alert-like.
    pub fn of(event: &Event) -> Option<Alert> {
        let (severity, headline, detail) = match &event.payload {
            Payload::AnomalyDetected(a) => (a.severity, format!("Anomaly: {}", a.kind), a.description.clone()),
            Payload::RestockSuggested(r) => (
                Severity::Info,
                "Restock suggested".to_owned(),
                format!(
                    "SKU {}: {} on hand, suggest ordering {} ({})",
                    r.sku,
                    milli(r.on_hand_milli),
                    milli(r.suggested_milli),
                    r.reason
                ),
            ),
            Payload::Alert(a) => (a.severity, a.title.clone(), a.message.clone()),
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

    /// The Slack emoji shortcode for the severity.
    pub fn emoji(&self) -> &'static str {
        if self.resolved {
            return ":white_check_mark:";
        }
        match self.severity {
            Severity::Critical => ":rotating_light:",
            Severity::Warning => ":warning:",
            Severity::Info if self.headline == "Restock suggested" => ":package:",
            Severity::Info => ":information_source:",
        }
    }

    /// The plain `text` of the message (Slack shows it in notifications and where blocks cannot be
    /// drawn), `mrkdwn` escaped.
    pub fn text(&self) -> String {
        let mut text = format!("{} *{}*", self.emoji(), escape(&self.headline));
        if let Some(store) = &self.store {
            text.push_str(&format!(" at store {}", escape(store)));
        }
        text.push_str(&format!(": {}", escape(&self.detail)));
        if !self.evidence.is_empty() {
            text.push_str(&format!(" (evidence: {})", escape(&self.evidence_line())));
        }
        if let Some(runbook) = &self.runbook {
            text.push_str(&format!(" SOP: {}", escape(runbook)));
        }
        text
    }

    /// Block Kit blocks: the headline and detail, the evidence, and a context line (severity,
    /// store, time, event id).
    pub fn blocks(&self) -> Value {
        let mut blocks = vec![json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": format!("{} *{}*\n{}", self.emoji(), escape(&self.headline), escape(&self.detail)),
            }
        })];
        if !self.evidence.is_empty() {
            let lines: Vec<String> = self
                .evidence
                .iter()
                .map(|(k, v)| match k.is_empty() {
                    true => format!("• {}", escape(v)),
                    false => format!("• {}: {}", escape(k), escape(v)),
                })
                .collect();
            blocks.push(json!({
                "type": "section",
                "text": { "type": "mrkdwn", "text": format!("*Evidence*\n{}", lines.join("\n")) }
            }));
        }
        let mut context = vec![format!("Severity {}", severity_name(self.severity))];
        if let Some(store) = &self.store {
            context.push(format!("Store {}", escape(store)));
        }
        context.push(escape(&self.time));
        context.push(format!("Event {}", escape(&self.event_id)));
        if let Some(runbook) = &self.runbook {
            context.push(format!("SOP {}", escape(runbook)));
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }]
        }));
        Value::Array(blocks)
    }

    fn evidence_line(&self) -> String {
        self.evidence
            .iter()
            .map(|(k, v)| if k.is_empty() { v.clone() } else { format!("{k}: {v}") })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The lower-case name of a severity (as the event JSON spells it).
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

/// Escapes the three characters Slack's `mrkdwn` gives meaning to (`&`, `<`, `>`), so text from an
/// event cannot form links or mentions.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_thousandths_print_as_decimals() {
        assert_eq!(milli(2000), "2");
        assert_eq!(milli(1500), "1.5");
        assert_eq!(milli(-250), "-0.25");
        assert_eq!(milli(0), "0");
    }

    #[test]
    fn event_text_cannot_form_links_or_mentions() {
        assert_eq!(
            escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }
}
