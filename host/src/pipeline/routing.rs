//! The routing table: routes, sinks and the plugin versions that run for each store and route.
//!
//! A [`Routing`] is immutable. Changes (deploy, rollback, config reload, hot-load) build a new
//! one and swap it in atomically (`arc-swap`); router lanes take one snapshot per batch and
//! delivery attempts one per attempt, and keep their `Arc<LoadedPlugin>` to the end of the call,
//! so in-flight events finish on the version they started with.

use super::delivery::SinkSignal;
use crate::config::{RouteConfig, SinkConfig};
use crate::engine::LoadedPlugin;
pub use crate::plugins::slot::{Slot, order_pins};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One routing table.
pub struct Routing {
    /// Routes, in configuration order.
    pub routes: Vec<RouteConfig>,
    /// Sinks by name, with their worker's signal.
    pub sinks: BTreeMap<String, SinkEntry>,
    /// Plugins by name.
    pub plugins: BTreeMap<String, Slot>,
    /// `[store_groups]`: group → store globs.
    pub groups: BTreeMap<String, Vec<String>>,
}

/// A sink's settings, and how to tell its worker about new work.
#[derive(Clone)]
pub struct SinkEntry {
    /// Settings.
    pub config: Arc<SinkConfig>,
    pub(crate) signal: SinkSignal,
}

impl Routing {
    /// The version of plugin `name` that handles an event of `store` on `route`: the most
    /// specific pin that matches (route and group, then route, then group), else the default.
    pub fn resolve(&self, name: &str, route: &str, store: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name).map(|slot| slot.pick(&self.groups, route, store))
    }
}

/// Live versions keep a copy of their outbound requests while a shadow is compared with them.
/// Called only for the table that goes live (not for replay tables).
pub fn mark_recording(plugins: &BTreeMap<String, Slot>) {
    for slot in plugins.values() {
        let recording = slot.shadow.is_some();
        for live in std::iter::once(&slot.default).chain(slot.pins.iter().map(|(_, p)| p)) {
            live.context()
                .egress
                .record
                .store(recording, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
