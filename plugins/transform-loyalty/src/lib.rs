//! `transform-loyalty`: loyalty points for member sales.
//!
//! A sale with a `member_id` earns points on the net amount of its lines (integer minor units;
//! one floor per sale), times a category multiplier and the member's tier multiplier, less the
//! share paid with excluded tenders (gift vouchers, points). A refund takes back what the
//! refunded lines earned (proportionally for part of a line's quantity) and a void takes back
//! what the order still stands at. Balances, lifetime totals and tiers live in the plugin's kv.
//!
//! Each counted event gets the CloudEvents extensions `loyaltypoints` (earned by this event,
//! negative for a refund), `loyaltybalance` (balance after) and `loyaltytier` (tier after). A
//! replay of the same event id gets the same values and counts nothing twice. With
//! `emit_tier_changes`, a tier change also derives `pos.member.updated.v1` (id
//! `{event id}:tier`, extension `causationid`). Events without a member pass through unchanged.
//!
//! [`config`] holds the configuration, [`records`] what is kept in kv, [`ledger`] the counting.

pub mod config;
pub mod ledger;
pub mod records;

use config::LoyaltyConfig;
use kaunter_sdk::{Event, MEMBER_UPDATED, MemberUpdated, Payload, PluginConfig, PluginError};

/// The configuration, parsed on the first event and kept for the life of the instance.
static CONFIG: PluginConfig<LoyaltyConfig> = PluginConfig::new();

/// Counts member sales, refunds and voids; passes everything on, plus a tier change if any.
#[kaunter_sdk::transform]
fn handle(mut event: Event) -> Result<Vec<Event>, PluginError> {
    let config = CONFIG.get()?;
    config.check()?;
    let outcome = match &event.payload {
        Payload::Sale(sale) => ledger::sale(config, &event.id, sale)?,
        Payload::Refund(refund) => ledger::refund(config, &event.id, refund)?,
        Payload::VoidSale(void) => ledger::void(config, &event.id, &void.order_id)?,
        _ => None,
    };
    let Some(outcome) = outcome else {
        return Ok(vec![event]);
    };
    let counted = &outcome.counted;
    set_extension(&mut event, "loyaltypoints", counted.points.to_string());
    set_extension(&mut event, "loyaltybalance", counted.balance.to_string());
    set_extension(&mut event, "loyaltytier", counted.tier.clone());
    let mut out = Vec::with_capacity(2);
    if config.emit_tier_changes && counted.tier != counted.previous_tier {
        out.push(tier_change(&event, &outcome));
    }
    out.insert(0, event);
    Ok(out)
}

/// Sets an extension, keeping extensions in name order.
fn set_extension(event: &mut Event, name: &str, value: String) {
    event.extensions.retain(|(k, _)| k != name);
    let at = event.extensions.partition_point(|(k, _)| k.as_str() < name);
    event.extensions.insert(at, (name.to_owned(), value));
}

/// `pos.member.updated.v1` for a tier change, derived from `event`.
fn tier_change(event: &Event, outcome: &ledger::Outcome) -> Event {
    let mut derived = Event {
        id: format!("{}:tier", event.id),
        source: event.source.clone(),
        ty: MEMBER_UPDATED.into(),
        time: event.time.clone(),
        subject: None,
        partition_key: String::new(),
        extensions: vec![("causationid".into(), event.id.clone())],
        payload: Payload::MemberUpdated(MemberUpdated {
            member_id: outcome.member.clone(),
            tier: Some(outcome.counted.tier.clone()),
            points_balance: Some(outcome.counted.balance),
            name: None,
            phone: None,
            email: None,
        }),
    };
    derived.partition_key = derived.default_partition_key();
    derived
}

kaunter_sdk::manifest!("../kaunter-plugin.toml");

#[cfg(test)]
mod tests;
