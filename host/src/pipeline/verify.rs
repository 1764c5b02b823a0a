//! Did every acknowledged event reach every sink its routes name? The judgement behind
//! `kaunter verify` and the demo's closing check, from what the log holds and the routes of the
//! configuration in force.
//!
//! For each event and each route that takes it (by type and store), each sink of the route is
//! one of: delivered (a dead letter replayed and delivered since counts as delivered), still in
//! flight (pending, retrying, parked), dead-lettered, or without a delivery. Without one, the
//! router may have recorded that the route's transforms passed the event on to no sink (a
//! filter): that is *not sent*, on purpose. Otherwise the sink is *missing* the event: lost.
//! Routes that failed in a transform and are dead-lettered count as dead-lettered.

use crate::config::{RouteConfig, glob_match};
use crate::store::{DeliveryState, EventOutcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// Examples of missing deliveries kept at most.
const MAX_EXAMPLES: usize = 20;

/// The tally over many events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Events looked at.
    pub events: u64,
    /// Events whose every sink has it delivered.
    pub complete: u64,
    /// Events not routed yet (waiting for the router).
    pub waiting: u64,
    /// Events with work still in flight and nothing missing or dead-lettered.
    pub in_flight: u64,
    /// Events with a dead letter outstanding (and nothing missing).
    pub dead_lettered: u64,
    /// Events with a sink without a delivery the router did not account for: lost.
    pub missing: u64,
    /// Events taken by no route, or dropped by a route's transforms, and delivered nowhere
    /// else they should be.
    pub not_sent: u64,
    /// Per sink: delivered, in flight, dead-lettered, missing.
    pub sinks: BTreeMap<String, SinkTally>,
    /// Up to 20 missing deliveries: event id, source and sink.
    pub missing_examples: Vec<MissingDelivery>,
}

/// One sink's share of a [`Verdict`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkTally {
    /// Delivered.
    pub delivered: u64,
    /// Pending, retrying or parked.
    pub in_flight: u64,
    /// Dead-lettered, not replayed (or replayed and failed again).
    pub dead_lettered: u64,
    /// No delivery, and no record of the route's transforms dropping it.
    pub missing: u64,
}

/// A delivery that should exist and does not.
#[derive(Debug, Clone, Serialize)]
pub struct MissingDelivery {
    /// Event id.
    pub id: String,
    /// Event source.
    pub source: String,
    /// The sink without it.
    pub sink: String,
}

/// How one event's work stands, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    Missing,
    DeadLettered,
    InFlight,
    NotSent,
    Complete,
}

impl Verdict {
    /// Adds an acknowledged event the log does not hold at all: lost.
    pub fn add_not_stored(&mut self, source: &str, id: &str) {
        self.events += 1;
        self.missing += 1;
        if self.missing_examples.len() < MAX_EXAMPLES {
            self.missing_examples.push(MissingDelivery {
                id: id.to_owned(),
                source: source.to_owned(),
                sink: "(not in the log)".into(),
            });
        }
    }

    /// Adds one event, judged against `routes`.
    pub fn add(&mut self, event: &EventOutcome, routes: &[RouteConfig]) {
        self.events += 1;
        if !event.routed {
            self.waiting += 1;
            return;
        }
        let store = kaunter_model::store_of(&event.source).unwrap_or("");
        // The worst standing of any sink that should have it; `None` when every route that takes
        // it dropped it in a transform (or none takes it).
        let mut worst: Option<Standing> = None;
        let mut note = |standing: Standing| worst = Some(worst.map_or(standing, |w| w.min(standing)));
        for route in routes {
            if !route.types.iter().any(|t| glob_match(t, &event.event_type))
                || !route.stores.iter().any(|s| glob_match(s, store))
            {
                continue;
            }
            if event.failed_routes.contains(&route.name) {
                note(Standing::DeadLettered);
                continue;
            }
            for sink in &route.sinks {
                let tally = self.sinks.entry(sink.clone()).or_default();
                let state = event
                    .deliveries
                    .iter()
                    .find(|(s, _)| s == sink)
                    .map(|(_, state)| *state);
                let standing = match state {
                    Some(DeliveryState::Delivered) => {
                        tally.delivered += 1;
                        Standing::Complete
                    }
                    Some(DeliveryState::Pending | DeliveryState::Retrying | DeliveryState::Parked) => {
                        tally.in_flight += 1;
                        Standing::InFlight
                    }
                    Some(DeliveryState::DeadLettered | DeliveryState::Quarantined) => {
                        tally.dead_lettered += 1;
                        Standing::DeadLettered
                    }
                    // The route's transforms passed it on to no sink, on purpose.
                    None if event.dropped_routes.contains(&route.name) => Standing::NotSent,
                    None => {
                        tally.missing += 1;
                        if self.missing_examples.len() < MAX_EXAMPLES {
                            self.missing_examples.push(MissingDelivery {
                                id: event.id.clone(),
                                source: event.source.clone(),
                                sink: sink.clone(),
                            });
                        }
                        Standing::Missing
                    }
                };
                if standing != Standing::NotSent {
                    note(standing);
                }
            }
        }
        match worst {
            Some(Standing::Missing) => self.missing += 1,
            Some(Standing::DeadLettered) => self.dead_lettered += 1,
            Some(Standing::InFlight) => self.in_flight += 1,
            Some(Standing::Complete) => self.complete += 1,
            Some(Standing::NotSent) | None => self.not_sent += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, transforms: &[&str], sinks: &[&str]) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            types: vec!["pos.sale.*".into()],
            stores: vec!["*".into()],
            transforms: transforms.iter().map(|s| s.to_string()).collect(),
            sinks: sinks.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn sale(deliveries: &[(&str, DeliveryState)]) -> EventOutcome {
        EventOutcome {
            seq: 1,
            id: "s-1".into(),
            source: "/t/acme/s/hk-001/p/till-1".into(),
            event_type: "pos.sale.completed.v1".into(),
            derived: false,
            routed: true,
            deliveries: deliveries.iter().map(|(s, d)| (s.to_string(), *d)).collect(),
            failed_routes: Vec::new(),
            dropped_routes: Vec::new(),
        }
    }

    #[test]
    fn every_sink_of_every_route_counts_and_the_worst_decides() {
        let routes = [route("erp", &[], &["erp"]), route("crm", &["redact"], &["crm"])];
        let mut verdict = Verdict::default();
        verdict.add(
            &sale(&[("erp", DeliveryState::Delivered), ("crm", DeliveryState::Delivered)]),
            &routes,
        );
        verdict.add(
            &sale(&[("erp", DeliveryState::Delivered), ("crm", DeliveryState::Retrying)]),
            &routes,
        );
        let mut filtered = sale(&[("erp", DeliveryState::DeadLettered)]);
        filtered.dropped_routes = vec!["crm".into()];
        verdict.add(&filtered, &routes);
        verdict.add(&sale(&[("crm", DeliveryState::Delivered)]), &routes);
        assert_eq!(
            (
                verdict.events,
                verdict.complete,
                verdict.in_flight,
                verdict.dead_lettered,
                verdict.missing
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(verdict.missing_examples[0].sink, "erp");
        assert_eq!(verdict.sinks["crm"].delivered, 2);
    }

    #[test]
    fn a_drop_the_router_recorded_is_not_sent_and_any_other_gap_is_missing() {
        let routes = [route("crm", &["filter"], &["crm"])];
        let mut verdict = Verdict::default();
        let mut dropped = sale(&[]);
        dropped.dropped_routes = vec!["crm".into()];
        verdict.add(&dropped, &routes);
        verdict.add(&sale(&[]), &routes);
        assert_eq!((verdict.not_sent, verdict.missing), (1, 1));
    }
}
