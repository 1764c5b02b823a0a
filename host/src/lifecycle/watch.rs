//! The directory watch: a new build written over a configured plugin's component file is
//! registered (validated, smoke-tested, reviewed by the upgrade guard) and deployed everywhere,
//! with the previous version kept for rollback. A file that fails is reported, audited and left
//! alone; the running version stays.
//!
//! The watch polls (`server.watch_interval_ms`) rather than relying on file-system events, so it
//! behaves the same on every file system; a file is read only once its size and modification
//! time have held still for one interval, so a copy in progress is never loaded half-written.

use super::Lifecycle;
use crate::store::audit::AuditEntry;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Clone, PartialEq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Starts the watch when `server.watch_plugins` is on.
pub fn spawn(lifecycle: Arc<Lifecycle>) {
    let config = lifecycle.config();
    if !config.server.watch_plugins {
        return;
    }
    let interval = Duration::from_millis(config.server.watch_interval_ms.max(50));
    tokio::spawn(async move {
        // Per plugin: the stamp last acted on, and a newer stamp seen once (waiting to settle).
        let mut settled: HashMap<String, Stamp> = HashMap::new();
        let mut seen: HashMap<String, Stamp> = HashMap::new();
        for plugin in &lifecycle.config().plugins {
            if let Some(s) = stamp(&lifecycle.config().plugin_path(plugin)) {
                settled.insert(plugin.name.clone(), s);
            }
        }
        loop {
            tokio::time::sleep(interval).await;
            let config = lifecycle.config();
            for plugin in &config.plugins {
                let path = config.plugin_path(plugin);
                let Some(now) = stamp(&path) else { continue };
                if settled.get(&plugin.name) == Some(&now) {
                    continue;
                }
                if seen.get(&plugin.name) != Some(&now) {
                    seen.insert(plugin.name.clone(), now);
                    continue;
                }
                settled.insert(plugin.name.clone(), now);
                hot_load(&lifecycle, &plugin.name, path).await;
            }
        }
    });
}

async fn hot_load(lifecycle: &Lifecycle, name: &str, path: PathBuf) {
    let config = lifecycle.config();
    let registered = lifecycle.registry().register_file(&config, name, &path, "watch").await;
    let version = match registered {
        Ok(v) => v,
        Err(e) => {
            let error = format!("{e:#}");
            tracing::error!(plugin = %name, path = %path.display(), %error, "new build rejected; the running version stays");
            let entry = AuditEntry::new(
                "watch",
                "plugin.rejected",
                name,
                serde_json::json!({ "path": path.display().to_string(), "error": error }),
            );
            if let Err(e) = lifecycle.store.audit(vec![entry]).await {
                tracing::error!(error = %e, "cannot record a rejected build in the audit log");
            }
            return;
        }
    };
    if !version.approved() {
        tracing::warn!(
            plugin = %name,
            version = %version.version,
            "new build waits for approval ({}); approve with `kaunter plugin approve {}`, then deploy it",
            version.pending().join(" "),
            version.label()
        );
        return;
    }
    match lifecycle.deploy_configured_build(name, &version.version, "watch").await {
        Ok(_) => tracing::info!(plugin = %name, version = %version.version, "hot-loaded from the plugins directory"),
        Err(e) => {
            tracing::error!(plugin = %name, version = %version.version, error = %e, "new build not deployed");
            lifecycle
                .audit_refusal("watch", "plugin.deploy", &version.label(), &e.to_string())
                .await;
        }
    }
}
