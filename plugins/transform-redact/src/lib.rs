//! `transform-redact`: field-level redaction of personal data for one destination (Hong Kong
//! PDPO, GDPR). Put it in a route before a sink that is not granted personal data; routes to
//! sinks that are keep the event whole.
//!
//! For each configured field the value is removed, masked (last N characters kept) or replaced by
//! a keyed pseudonym: HMAC-SHA256 under a host secret the plugin names (the key never enters the
//! plugin), hex, truncated. The same member id becomes the same pseudonym on every event and on
//! every route using the same secret, so a sink can join a member's sales without learning who
//! the member is. [`policy`] lists the fields and checks the configuration; [`apply`] does the work.
//!
//! The event gains the extension `redacted`, `what=action` pairs joined by commas (e.g.
//! `member.name=remove,member.member_id=hash`), listing what was actually changed; an event with
//! nothing to redact passes untouched. The policy fails closed: a configuration it cannot honour
//! exactly is `PluginError::InvalidConfig` on every event, which dead-letters the event on this
//! route rather than deliver it unredacted.

pub mod apply;
pub mod policy;

use kaunter_sdk::{Event, PluginConfig, PluginError};
use policy::{Policy, RawConfig};

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<RawConfig> = PluginConfig::new();

/// Redacts one event per the policy and lists what changed in `redacted`.
#[kaunter_sdk::transform]
fn handle(mut event: Event) -> Result<Event, PluginError> {
    let policy = Policy::compile(CONFIG.get()?)?;
    redact(&policy, &mut event)?;
    Ok(event)
}

/// Applies `policy` to `event`; returns what was changed (`what=action`).
pub fn redact(policy: &Policy, event: &mut Event) -> Result<Vec<String>, PluginError> {
    let mut redaction = apply::Redaction::new(policy);
    redaction.event(event)?;
    if !redaction.changed.is_empty() {
        let mut listed = redaction.changed.join(",");
        if let Some(earlier) = event.extension("redacted") {
            listed = format!("{earlier},{listed}");
        }
        event.extensions.retain(|(k, _)| k != "redacted");
        event.extensions.push(("redacted".into(), listed));
        event.extensions.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(redaction.changed)
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
