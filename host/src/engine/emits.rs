//! What a plugin may emit: the check of a transform's outputs and a source's decoded events
//! against its grants, and the namespace of derived events.
//!
//! A transform's output with the id of its input is the input *mapped*: it keeps the input's
//! source, id and type, or the call fails (capability denied). Every other output is *derived*:
//! its type must be in `grants.emits`, and the host sets its source to the input's source plus
//! `/x/{plugin}` ([`kaunter_model::derived_source`]), so no plugin can speak for another store,
//! nor take the `(source, id)` of a till's event (or another plugin's) before it arrives. A
//! source's events must carry a type in `grants.emits` and a source in `grants.sources`, outside
//! the derived namespace. This module only decides; the callers dead-letter, answer and audit.

use super::EmitGrants;
use crate::config::glob_match;
use kaunter_model::Event;

/// What identifies the event a transform was given.
pub(crate) struct Parent {
    id: String,
    source: String,
    ty: String,
}

impl Parent {
    pub(crate) fn of(event: &Event) -> Parent {
        Parent {
            id: event.id.clone(),
            source: event.source.clone(),
            ty: event.ty.clone(),
        }
    }
}

/// What a transform returned for one input, once checked.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The mapped event (if any) and the derived events that may go on, in the plugin's order;
    /// derived ones already carry their namespaced source.
    pub(crate) events: Vec<Event>,
    /// Why each refused derived event was refused.
    pub(crate) refused: Vec<String>,
}

/// Checks what transform `plugin` returned for `input`. `Err` when it tampered with the event it
/// maps: the call fails for this event. Derived events of types it may not emit are left out
/// and listed in [`Checked::refused`]; the others move into the plugin's namespace.
pub(crate) fn check_transform_outputs(
    plugin: &str,
    grants: &EmitGrants,
    input: &Parent,
    outputs: Vec<Event>,
) -> Result<Checked, String> {
    let mapped = outputs.iter().filter(|o| o.id == input.id).count();
    if mapped > 1 {
        return Err(format!(
            "plugin `{plugin}` returned {mapped} events with its input's id `{}`; a transform maps its input at most once and gives each event it derives an id of its own",
            input.id
        ));
    }
    let mut checked = Checked::default();
    for mut output in outputs {
        if output.id == input.id {
            if output.source != input.source {
                return Err(tampered(plugin, input, "source", &output.source, &input.source));
            }
            if output.ty != input.ty {
                return Err(tampered(plugin, input, "type", &output.ty, &input.ty));
            }
            checked.events.push(output);
            continue;
        }
        if let Err(reason) = check_type(plugin, grants, &output) {
            checked.refused.push(reason);
            continue;
        }
        output.source = kaunter_model::derived_source(&input.source, plugin);
        if output.partition_key.is_empty() {
            output.partition_key = output.default_partition_key();
        }
        output.scope_partition_key();
        checked.events.push(output);
    }
    Ok(checked)
}

fn tampered(plugin: &str, input: &Parent, what: &str, got: &str, kept: &str) -> String {
    format!(
        "plugin `{plugin}` returned event `{}` (its input's id) with {what} `{got}`; an event a transform maps keeps its input's source, id and type ({what} `{kept}`), and an event it derives needs an id of its own",
        input.id
    )
}

fn check_type(plugin: &str, grants: &EmitGrants, event: &Event) -> Result<(), String> {
    if grants.types.iter().any(|g| glob_match(g, &event.ty)) {
        return Ok(());
    }
    Err(format!(
        "plugin `{plugin}` emitted event `{}` of type `{}`, which is not in its grants.emits {:?}; to allow it add \"{}\" to emits in its [plugins.grants]",
        event.id, event.ty, grants.types, event.ty
    ))
}

/// Checks one event source plugin `plugin` decoded: a type it may emit, a source granted to it,
/// and not in the namespace of derived events.
pub(crate) fn check_source_event(plugin: &str, grants: &EmitGrants, event: &Event) -> Result<(), String> {
    if let Some(by) = event.derived_by() {
        return Err(format!(
            "source plugin `{plugin}` returned event `{}` with source `{}`, which is in the namespace of events plugin `{by}` derives (an `/x/…` segment); no till or source may use it",
            event.id, event.source
        ));
    }
    if !grants.sources.iter().any(|g| glob_match(g, &event.source)) {
        return Err(format!(
            "source plugin `{plugin}` returned event `{}` with source `{}`, which is not in its grants.sources {:?}; a source speaks only for the sources granted to it: if this one is its own, add \"{}\" (or a glob) to sources in its [plugins.grants]",
            event.id, event.source, grants.sources, event.source
        ));
    }
    check_type(plugin, grants, event).map_err(|reason| format!("source {reason}"))
}

/// What becomes of the rest when a transform's derived events are refused.
pub(crate) const TRANSFORM_REST: &str = "refused (what else it returned went on)";
/// What becomes of the rest when a source's events are refused.
pub(crate) const SOURCE_REST: &str = "refused the webhook (nothing was stored)";

/// One line for the refusals of one call: how many, what became of the rest (`rest`), and the
/// first few reasons.
pub(crate) fn describe_refused(plugin: &str, refused: &[String], rest: &str) -> String {
    const SHOWN: usize = 3;
    let mut text = format!(
        "plugin `{plugin}` emitted {} event(s) it may not; {rest}: {}",
        refused.len(),
        refused[..refused.len().min(SHOWN)].join("; ")
    );
    if refused.len() > SHOWN {
        text.push_str(&format!("; and {} more", refused.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, source: &str, ty: &str) -> Event {
        let mut event = Event {
            id: id.into(),
            source: source.into(),
            ty: ty.into(),
            time: "2026-11-25T10:15:00+08:00".into(),
            subject: None,
            partition_key: String::new(),
            extensions: Vec::new(),
            payload: kaunter_model::Payload::Custom(b"{}".to_vec()),
        };
        event.partition_key = event.default_partition_key();
        event
    }

    fn grants(types: &[&str], sources: &[&str]) -> EmitGrants {
        EmitGrants {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    const TILL: &str = "/t/acme/s/hk-001/p/till-1";

    #[test]
    fn a_derived_event_moves_into_the_plugins_namespace_whatever_source_it_claims() {
        let input = event("E1", TILL, "vendor.sale.v1");
        let mut forged = event("E1:alert", "/t/acme/s/hk-002/p/till-1", "vendor.alert.v1");
        forged.partition_key = "hk-002:A-1".into();
        let checked = check_transform_outputs(
            "anomaly",
            &grants(&["vendor.alert.*"], &[]),
            &Parent::of(&input),
            vec![input.clone(), forged],
        )
        .unwrap();
        assert!(checked.refused.is_empty());
        assert_eq!(checked.events[0], input);
        let derived = &checked.events[1];
        assert_eq!(derived.source, "/t/acme/s/hk-001/p/till-1/x/anomaly");
        assert_eq!(derived.store(), Some("hk-001"));
        assert_eq!(derived.partition_key, "hk-001:hk-002:A-1");
    }

    #[test]
    fn a_derived_event_of_an_ungranted_type_is_refused_and_the_rest_goes_on() {
        let input = event("E1", TILL, "vendor.sale.v1");
        let forged = event("E1-copy", "/t/acme/s/hk-002/p/till-1", "pos.sale.completed.v1");
        let checked = check_transform_outputs(
            "forger",
            &grants(&["pos.anomaly.*"], &[]),
            &Parent::of(&input),
            vec![input.clone(), forged],
        )
        .unwrap();
        assert_eq!(checked.events, vec![input]);
        assert_eq!(
            checked.refused,
            vec![
                "plugin `forger` emitted event `E1-copy` of type `pos.sale.completed.v1`, which is not in its grants.emits [\"pos.anomaly.*\"]; to allow it add \"pos.sale.completed.v1\" to emits in its [plugins.grants]"
                    .to_owned()
            ]
        );
        assert!(describe_refused("forger", &checked.refused, TRANSFORM_REST).starts_with(
            "plugin `forger` emitted 1 event(s) it may not; refused (what else it returned went on): plugin `forger` emitted event `E1-copy`"
        ));
    }

    #[test]
    fn the_mapped_event_keeps_its_source_and_type() {
        let input = event("E1", TILL, "vendor.sale.v1");
        let everything = grants(&["*"], &["*"]);
        let mut moved = input.clone();
        moved.source = "/t/acme/s/hk-002/p/till-1".into();
        let error = check_transform_outputs("forger", &everything, &Parent::of(&input), vec![moved]).unwrap_err();
        assert_eq!(
            error,
            "plugin `forger` returned event `E1` (its input's id) with source `/t/acme/s/hk-002/p/till-1`; an event a transform maps keeps its input's source, id and type (source `/t/acme/s/hk-001/p/till-1`), and an event it derives needs an id of its own"
        );
        let mut retyped = input.clone();
        retyped.ty = "vendor.refund.v1".into();
        let error = check_transform_outputs("forger", &everything, &Parent::of(&input), vec![retyped]).unwrap_err();
        assert!(error.contains("with type `vendor.refund.v1`"), "{error}");
        let error = check_transform_outputs(
            "forger",
            &everything,
            &Parent::of(&input),
            vec![input.clone(), input.clone()],
        )
        .unwrap_err();
        assert!(
            error.starts_with("plugin `forger` returned 2 events with its input's id `E1`"),
            "{error}"
        );
    }

    #[test]
    fn a_source_speaks_only_for_its_granted_sources_and_types() {
        let web = grants(&["pos.sale.completed.v1"], &["/t/acme/s/web/p/*"]);
        assert!(
            check_source_event(
                "shopify",
                &web,
                &event("o1", "/t/acme/s/web/p/shopify", "pos.sale.completed.v1")
            )
            .is_ok()
        );
        let error = check_source_event("shopify", &web, &event("o1", TILL, "pos.sale.completed.v1")).unwrap_err();
        assert!(
            error.starts_with("source plugin `shopify` returned event `o1` with source `/t/acme/s/hk-001/p/till-1`, which is not in its grants.sources [\"/t/acme/s/web/p/*\"]"),
            "{error}"
        );
        let error = check_source_event(
            "shopify",
            &web,
            &event("o1", "/t/acme/s/web/p/shopify/x/loyalty", "pos.sale.completed.v1"),
        )
        .unwrap_err();
        assert!(
            error.contains("in the namespace of events plugin `loyalty` derives"),
            "{error}"
        );
        let error = check_source_event(
            "shopify",
            &web,
            &event("o1", "/t/acme/s/web/p/shopify", "pos.stock.adjusted.v1"),
        )
        .unwrap_err();
        assert!(
            error.starts_with("source plugin `shopify` emitted event `o1` of type `pos.stock.adjusted.v1`, which is not in its grants.emits"),
            "{error}"
        );
    }
}
