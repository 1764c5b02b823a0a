//! Reading alert-like events for the connectors that show them to people (chat, pagers): whether
//! a `kaunter.alert.v1` is resolved, its SOP link, and the facts behind any alert-like event as
//! `name: value` pairs.

use crate::{AlertState, Event, Payload};
use serde_json::Value;

/// What a message about an alert-like event shows besides its headline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFacts {
    /// A `kaunter.alert.v1` whose condition has ended.
    pub resolved: bool,
    /// Its SOP link, when it has one.
    pub runbook: Option<String>,
    /// The facts: for `kaunter.alert.v1` its target, since when, then its `evidence` list; for
    /// other types (an anomaly) the `evidence` extension.
    pub evidence: Vec<(String, String)>,
}

/// The facts of `event`.
pub fn alert_facts(event: &Event) -> AlertFacts {
    let from_extension = || event.extension("evidence").map(evidence_pairs).unwrap_or_default();
    let Payload::Alert(a) = &event.payload else {
        return AlertFacts {
            evidence: from_extension(),
            ..AlertFacts::default()
        };
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !a.target.is_empty() {
        pairs.push(("target".into(), a.target.clone()));
    }
    if !a.since.is_empty() {
        pairs.push(("since".into(), a.since.clone()));
    }
    pairs.extend(a.evidence.iter().map(|e| (e.name.clone(), e.value.clone())));
    if a.evidence.is_empty() {
        pairs.extend(from_extension());
    }
    AlertFacts {
        resolved: a.state == AlertState::Resolved,
        runbook: Some(a.runbook.clone()).filter(|r| !r.is_empty()),
        evidence: pairs,
    }
}

/// An `evidence` extension (compact JSON by contract) as `key: value` pairs; text that is not a
/// JSON object is kept whole, with an empty key.
pub fn evidence_pairs(text: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => vec![(String::new(), text.to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_that_is_not_an_object_is_kept_whole() {
        assert_eq!(evidence_pairs("[1,2]"), vec![(String::new(), "[1,2]".to_owned())]);
        assert_eq!(
            evidence_pairs(r#"{"refunds":5,"cashier":"c-7"}"#),
            vec![("cashier".into(), "c-7".into()), ("refunds".into(), "5".into())]
        );
    }
}
