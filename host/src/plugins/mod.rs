//! Loading the plugins a configuration names: read, compile (or take from the cache), check the
//! world, resolve granted secrets, and hand back ready [`LoadedPlugin`]s.
//!
//! This module turns configuration into runnable plugins and nothing else; it does not route or
//! deliver. A plugin that cannot load stops startup with an error naming the plugin, the file and
//! what to do.

pub mod guard;
pub mod manifest;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::egress::{Egress, PluginEgress};
use crate::engine::{LoadedPlugin, PluginContext, Runtime, secret_bytes, version_of};
use crate::store::Store;
use crate::store::audit::AuditEntry;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Loaded plugins by name.
pub type PluginSet = BTreeMap<String, Arc<LoadedPlugin>>;

/// What was loaded, for the upgrade guard and the audit log.
pub struct LoadRecord {
    /// Plugin name.
    pub name: String,
    /// Version (digest prefix).
    pub version: String,
    /// Full SHA-256 of the component.
    pub digest: String,
    /// What its manifest requests.
    pub requests: manifest::Requests,
    /// The `plugin.load` audit record.
    pub audit: AuditEntry,
}

/// Loads every `[[plugins]]` entry of the configuration; also returns what was loaded (for the
/// upgrade guard and the audit log, written by the caller once the store is reachable).
pub fn load_all(
    config: &Config,
    runtime: &Arc<Runtime>,
    store: &Arc<dyn Store>,
    egress: &Arc<Egress>,
    credentials: &Arc<Credentials>,
) -> anyhow::Result<(PluginSet, Vec<LoadRecord>)> {
    let mut loaded = BTreeMap::new();
    let mut records = Vec::new();
    for plugin in &config.plugins {
        let path = config.plugin_path(plugin);
        if !path.exists() {
            anyhow::bail!(
                "plugin `{}`: component file {} does not exist; build the plugins first \
                 (`cargo build --release --target wasm32-wasip2` in plugins/) or fix `path`/`server.plugin_dir`",
                plugin.name,
                path.display()
            );
        }
        let (component, digest) = runtime
            .load_component(&path)
            .with_context(|| format!("loading plugin `{}`", plugin.name))?;
        let version = version_of(&digest);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest = manifest::read(&path, &bytes)
            .map_err(|e| anyhow::anyhow!("plugin `{}`: its manifest is invalid: {e}", plugin.name))?
            .unwrap_or_default();
        let checked = manifest::check(plugin, &manifest).map_err(anyhow::Error::msg)?;
        for over in &checked.over_grants {
            tracing::warn!(plugin = %plugin.name, grant = %over, "over-grant: the plugin did not request this");
        }
        let mut secrets = BTreeMap::new();
        for name in &plugin.secrets {
            let reference = config
                .secrets
                .get(name)
                .with_context(|| format!("secret `{name}` is not defined"))?;
            let value = reference
                .read(&config.base_dir)
                .map_err(|e| anyhow::anyhow!("plugin `{}`, secret `{name}`: {e}", plugin.name))?;
            let bytes = secret_bytes(&value).map_err(|e| anyhow::anyhow!("secret `{name}`: {e}"))?;
            secrets.insert(name.clone(), bytes);
        }
        let config_json = serde_json::to_string(&plugin.config).context("encoding plugin config as JSON")?;
        let ctx = Arc::new(PluginContext {
            name: plugin.name.clone(),
            version: version.clone(),
            config_json,
            secrets,
            kv_quota: plugin.limits.kv_quota_bytes,
            store: store.clone(),
            clock_granted: plugin.grants.clock,
            egress: Arc::new(PluginEgress::new(
                plugin.name.clone(),
                plugin.grants.http.clone().into(),
                credentials.clone(),
                plugin.grants.credentials.clone().into(),
            )),
        });
        let ready = LoadedPlugin::new(
            runtime.clone(),
            component,
            plugin.kind,
            ctx,
            egress.clone(),
            plugin.limits.clone(),
            version,
        )?;
        tracing::info!(plugin = %plugin.name, version = %ready.version, path = %path.display(), "plugin loaded");
        let entry = AuditEntry::new(
            "host",
            "plugin.load",
            ready.label(),
            serde_json::json!({
                "path": path.display().to_string(),
                "sha256": digest.clone(),
                "kind": plugin.kind,
                "requested": manifest.requests,
                "over_grants": checked.over_grants,
                "grants": {
                    "http": plugin.grants.http.iter().map(|g| g.text.clone()).collect::<Vec<_>>(),
                    "secrets": plugin.secrets,
                    "credentials": plugin.grants.credentials,
                    "clock": plugin.grants.clock,
                },
                "limits": plugin.limits,
            }),
        );
        records.push(LoadRecord {
            name: plugin.name.clone(),
            version: ready.version.clone(),
            digest: digest.clone(),
            requests: manifest.requests.clone(),
            audit: entry,
        });
        loaded.insert(plugin.name.clone(), Arc::new(ready));
    }
    Ok((loaded, records))
}
