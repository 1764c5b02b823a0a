//! The versions of one plugin a routing table runs: the default, pins per store group and/or
//! route, and a shadow, and which of them handles an event.

use super::deploy::Scope;
use crate::config::glob_match;
use crate::engine::LoadedPlugin;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The versions of one plugin in this table.
#[derive(Clone)]
pub struct Slot {
    /// Runs wherever no pin applies.
    pub default: Arc<LoadedPlugin>,
    /// Pinned versions, most specific first.
    pub pins: Vec<(Scope, Arc<LoadedPlugin>)>,
    /// Receives live events with side effects captured, compared with the live version.
    pub shadow: Option<Arc<LoadedPlugin>>,
}

impl Slot {
    /// The version for an event of `store` on `route`.
    pub fn pick(&self, groups: &BTreeMap<String, Vec<String>>, route: &str, store: &str) -> &Arc<LoadedPlugin> {
        let in_group = |group: &str| {
            groups
                .get(group)
                .is_some_and(|globs| globs.iter().any(|g| glob_match(g, store)))
        };
        self.pins
            .iter()
            .find(|(scope, _)| {
                scope.route.as_ref().is_none_or(|r| r == route) && scope.group.as_deref().is_none_or(in_group)
            })
            .map(|(_, plugin)| plugin)
            .unwrap_or(&self.default)
    }
}

/// Orders pins most specific first (route and group, route, group), keeping the given order
/// among equals.
pub fn order_pins(pins: &mut [(Scope, Arc<LoadedPlugin>)]) {
    pins.sort_by_key(|(scope, _)| {
        std::cmp::Reverse(u8::from(scope.route.is_some()) * 2 + u8::from(scope.group.is_some()))
    });
}
