//! Which version of each plugin runs where: the default version, pins for store groups and
//! routes (staged rollout), a shadow version, and the history each rollback returns to.
//!
//! This is plain data with the rules for changing it; it is persisted as JSON in the store's
//! settings (so a restart keeps what operators deployed) and turned into a routing table by
//! [`super::registry::Registry::slots`]. Nothing here loads or calls a plugin.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The settings key deployments are stored under.
pub const SETTING: &str = "plugin_deployments";

/// Deployments of every plugin, by plugin name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Deployments {
    /// Plugin name → its deployment.
    pub plugins: BTreeMap<String, PluginDeployment>,
}

/// Where a pin applies: events of a store group, on one route, or both.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scope {
    /// A `[store_groups]` name; `None` for every store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A route name; `None` for every route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

impl Scope {
    /// Every store on every route: the plugin's default version.
    pub fn is_default(&self) -> bool {
        self.group.is_none() && self.route.is_none()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.group, &self.route) {
            (None, None) => write!(f, "all stores"),
            (Some(g), None) => write!(f, "store group `{g}`"),
            (None, Some(r)) => write!(f, "route `{r}`"),
            (Some(g), Some(r)) => write!(f, "store group `{g}` on route `{r}`"),
        }
    }
}

/// One plugin's deployment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PluginDeployment {
    /// The version running wherever no pin applies.
    pub active: String,
    /// Earlier default versions, oldest first (rollback pops the last).
    #[serde(default)]
    pub history: Vec<String>,
    /// Versions pinned for narrower scopes.
    #[serde(default)]
    pub pins: Vec<Pin>,
    /// A version receiving live events with its side effects captured, compared with the live one.
    #[serde(default)]
    pub shadow: Option<String>,
    /// The version of the component file the configuration names, when last seen: a different
    /// file at start-up (or config reload) is a deployment of that build.
    #[serde(default)]
    pub config_version: String,
}

/// A version pinned for a scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pin {
    /// Where it applies.
    #[serde(flatten)]
    pub scope: Scope,
    /// The version.
    pub version: String,
    /// Versions pinned here before, oldest first.
    #[serde(default)]
    pub history: Vec<String>,
}

/// A change that cannot be made, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeployError(pub String);

impl PluginDeployment {
    /// A plugin running `version` everywhere.
    pub fn new(version: &str) -> Self {
        Self {
            active: version.to_owned(),
            config_version: version.to_owned(),
            ..Self::default()
        }
    }

    /// Runs `version` in `scope`, remembering what ran there before.
    pub fn deploy(&mut self, version: &str, scope: &Scope) {
        if scope.is_default() {
            if self.active != version {
                let previous = std::mem::replace(&mut self.active, version.to_owned());
                self.history.push(previous);
            }
            return;
        }
        match self.pins.iter_mut().find(|p| &p.scope == scope) {
            Some(pin) if pin.version == version => {}
            Some(pin) => {
                let previous = std::mem::replace(&mut pin.version, version.to_owned());
                pin.history.push(previous);
            }
            None => self.pins.push(Pin {
                scope: scope.clone(),
                version: version.to_owned(),
                history: Vec::new(),
            }),
        }
    }

    /// Returns `scope` to what ran there before; a pin with no earlier version is removed (its
    /// stores go back to the default). Returns the version now running there.
    pub fn rollback(&mut self, scope: &Scope) -> Result<String, DeployError> {
        if scope.is_default() {
            let previous = self.history.pop().ok_or_else(|| {
                DeployError(format!(
                    "nothing to roll back to: version {} is the only one ever deployed for {scope}",
                    self.active
                ))
            })?;
            self.active = previous;
            return Ok(self.active.clone());
        }
        let index = self
            .pins
            .iter()
            .position(|p| &p.scope == scope)
            .ok_or_else(|| DeployError(format!("no version is pinned for {scope}")))?;
        match self.pins[index].history.pop() {
            Some(previous) => {
                self.pins[index].version = previous.clone();
                Ok(previous)
            }
            None => {
                self.pins.remove(index);
                Ok(self.active.clone())
            }
        }
    }

    /// Makes the version pinned for `scope` the default everywhere and removes the pin.
    pub fn promote(&mut self, scope: &Scope) -> Result<String, DeployError> {
        if scope.is_default() {
            return Err(DeployError(
                "promote takes a pinned scope (--group and/or --route): it makes that scope's version the default"
                    .into(),
            ));
        }
        let index = self
            .pins
            .iter()
            .position(|p| &p.scope == scope)
            .ok_or_else(|| DeployError(format!("no version is pinned for {scope}; nothing to promote")))?;
        let pin = self.pins.remove(index);
        self.deploy(&pin.version, &Scope::default());
        Ok(pin.version)
    }

    /// Every version this deployment refers to (running, pinned, shadow, or kept for rollback).
    pub fn referenced(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.active)
            .chain(&self.history)
            .chain(
                self.pins
                    .iter()
                    .flat_map(|p| std::iter::once(&p.version).chain(&p.history)),
            )
            .chain(&self.shadow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(g: &str) -> Scope {
        Scope {
            group: Some(g.into()),
            route: None,
        }
    }

    #[test]
    fn deploy_and_rollback_walk_the_history() {
        let mut d = PluginDeployment::new("v1");
        d.deploy("v2", &Scope::default());
        d.deploy("v3", &Scope::default());
        assert_eq!(d.rollback(&Scope::default()).unwrap(), "v2");
        assert_eq!(d.rollback(&Scope::default()).unwrap(), "v1");
        let e = d.rollback(&Scope::default()).unwrap_err();
        assert_eq!(
            e.0,
            "nothing to roll back to: version v1 is the only one ever deployed for all stores"
        );
    }

    #[test]
    fn a_pilot_group_is_pinned_promoted_and_rolled_back() {
        let mut d = PluginDeployment::new("v1");
        d.deploy("v2", &group("pilot"));
        assert_eq!(d.active, "v1");
        assert_eq!(d.pins[0].version, "v2");
        // Rolling the pilot back removes the pin: pilot stores run the default again.
        assert_eq!(d.rollback(&group("pilot")).unwrap(), "v1");
        assert!(d.pins.is_empty());
        d.deploy("v2", &group("pilot"));
        assert_eq!(d.promote(&group("pilot")).unwrap(), "v2");
        assert_eq!(d.active, "v2");
        assert!(d.pins.is_empty());
        assert_eq!(d.rollback(&Scope::default()).unwrap(), "v1");
        assert!(d.promote(&group("pilot")).is_err());
        assert!(d.promote(&Scope::default()).is_err());
    }

    #[test]
    fn redeploying_the_running_version_changes_nothing() {
        let mut d = PluginDeployment::new("v1");
        d.deploy("v1", &Scope::default());
        assert!(d.history.is_empty());
        d.deploy("v2", &group("pilot"));
        d.deploy("v2", &group("pilot"));
        assert!(d.pins[0].history.is_empty());
    }
}
