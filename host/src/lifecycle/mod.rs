//! Operator changes to a running host: upload, deploy, pin per store group, promote, roll back,
//! shadow, approve, reload the configuration, replay history — each validated before it takes
//! effect, applied by swapping the routing table atomically, persisted, and audited.
//!
//! [`Lifecycle`] is the one place such changes happen; the admin API, `SIGHUP` and the directory
//! watch ([`watch`]) all call it. Changes are serialised by one lock. A change that fails
//! validation leaves everything as it was.

pub mod alerts;
pub mod plugin_checks;
pub mod retention;
pub mod watch;

pub use plugin_checks::{PluginFindings, plugin_findings};

/// The hot-load path of the directory watch.
impl Lifecycle {
    /// Deploys a build found at a plugin's configured path everywhere.
    pub async fn deploy_configured_build(&self, name: &str, version: &str, actor: &str) -> Result<Value, ChangeError> {
        self.deploy_build(name, version, &Scope::default(), actor, true).await
    }

    /// Records a change that was refused where no API caller can be told (watch, signal).
    pub async fn audit_refusal(&self, actor: &str, action: &str, subject: &str, error: &str) {
        let entry = AuditEntry::new(actor, &format!("{action}.refused"), subject, json!({ "error": error }));
        if let Err(e) = self.store.audit(vec![entry]).await {
            tracing::error!(error = %e, "cannot record a refused change in the audit log");
        }
    }
}

use crate::config::{Config, FieldProblem};
use crate::pipeline::Pipeline;
use crate::pipeline::replay::ReplaySpec;
use crate::pipeline::routing::Routing;
use crate::plugins::deploy::{DeployError, Deployments, PluginDeployment, SETTING, Scope};
use crate::plugins::guard;
use crate::plugins::registry::{Registry, VersionInfo};
use crate::store::Store;
use crate::store::audit::AuditEntry;
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a change was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The plugin, version, route or group does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request or the new version/config is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The version waits for an operator's approval.
    #[error("{0}")]
    NeedsApproval(String),
    /// The host could not apply or record it (store failure).
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> ChangeError {
    ChangeError::Failed(e.to_string())
}

/// The operator side of a running host.
pub struct Lifecycle {
    config: ArcSwap<Config>,
    registry: Arc<Registry>,
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    deployments: tokio::sync::Mutex<Deployments>,
}

/// Reads the persisted deployments (empty on a new data directory).
pub async fn load_deployments(store: &Arc<dyn Store>) -> anyhow::Result<Deployments> {
    match store.setting(SETTING).await? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the stored plugin deployments are unreadable: {e}")),
        None => Ok(Deployments::default()),
    }
}

async fn save_deployments(store: &Arc<dyn Store>, deployments: &Deployments) -> Result<(), ChangeError> {
    let text = serde_json::to_string(deployments).map_err(failed)?;
    store.put_setting(SETTING, text).await.map_err(failed)
}

impl Lifecycle {
    /// Brings up the plugin versions for `config` (registering each configured build and
    /// restoring deployed ones), starts the pipeline with them, and returns both.
    pub async fn start(
        config: &Config,
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<(Arc<Lifecycle>, Arc<Pipeline>)> {
        let mut deployments = load_deployments(&store).await?;
        for warning in registry.reconcile(config, &mut deployments).await? {
            tracing::warn!("{warning}");
        }
        save_deployments(&store, &deployments).await?;
        let slots = registry.slots(config, &deployments, false)?;
        let pipeline = Pipeline::start(config, slots, store.clone()).await?;
        let lifecycle = Arc::new(Lifecycle {
            config: ArcSwap::from_pointee(config.clone()),
            registry,
            pipeline: pipeline.clone(),
            store,
            deployments: tokio::sync::Mutex::new(deployments),
        });
        // Sinks removed from the file while the host was down: their backlog is dead-lettered.
        let configured: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
        let orphaned: Vec<String> = lifecycle
            .store
            .sinks_with_open_deliveries()
            .await?
            .into_iter()
            .filter(|s| !configured.contains(&s.as_str()))
            .collect();
        lifecycle
            .dead_letter_removed_sinks(&orphaned, "host", "the configuration the host started with")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((lifecycle, pipeline))
    }

    /// Moves the open deliveries of sinks no longer configured to the dead letters (reason `sink
    /// removed`), audited, so nothing is left retrying against a connector that is gone. They
    /// can be replayed with `kaunter dlq replay` once the sink is configured again.
    async fn dead_letter_removed_sinks(&self, sinks: &[String], actor: &str, by: &str) -> Result<(), ChangeError> {
        for sink in sinks {
            let error = format!(
                "sink removed: sink `{sink}` is not in {by}, so its open deliveries were dead-lettered; configure the sink again and replay them with `kaunter dlq replay` to deliver them"
            );
            let moved = self.store.dead_letter_sink(sink, sink, &error).await.map_err(failed)?;
            if moved > 0 {
                tracing::warn!(%sink, deliveries = moved, "sink removed: its open deliveries were dead-lettered");
                self.audit(
                    actor,
                    "sink.removed",
                    sink.clone(),
                    json!({ "dead_lettered": moved, "reason": "sink removed" }),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The version registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    async fn audit(&self, actor: &str, action: &str, subject: String, detail: Value) -> Result<(), ChangeError> {
        self.store
            .audit(vec![AuditEntry::new(actor, action, subject, detail)])
            .await
            .map_err(failed)
    }

    /// Registers an uploaded build of a configured plugin (validated and smoke-tested; not yet
    /// deployed).
    pub async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        manifest_text: Option<String>,
        actor: &str,
    ) -> Result<Value, ChangeError> {
        let config = self.config();
        if config.plugin(name).is_none() {
            return Err(ChangeError::NotFound(format!(
                "no plugin `{name}` in the configuration; add a [[plugins]] entry (with its grants) and reload the config first"
            )));
        }
        let version = self
            .registry
            .register(&config, name, bytes, manifest_text, &format!("upload by {actor}"))
            .await
            .map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
        self.audit(
            actor,
            "plugin.upload",
            version.label(),
            json!({ "sha256": version.digest, "pending_approval": version.pending(), "smoke": version.smoke }),
        )
        .await?;
        Ok(json!({
            "plugin": name,
            "version": version.version,
            "sha256": version.digest,
            "approved": version.approved(),
            "pending_approval": version.pending(),
            "smoke": version.smoke,
        }))
    }

    /// Checks that `version` of `name` exists and may run, and that `scope` names real things.
    fn check_deployable(&self, config: &Config, name: &str, version: &str, scope: &Scope) -> Result<(), ChangeError> {
        self.check_scope(config, name, scope)?;
        let registered = self.registry.get(name, version).ok_or_else(|| {
            let known: Vec<String> = self
                .registry
                .list(config, &Deployments::default())
                .remove(name)
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.version)
                .collect();
            ChangeError::NotFound(format!(
                "plugin `{name}` has no version {version} (registered: {}); upload it first with `kaunter plugin upload {name} FILE.wasm`",
                known.join(", ")
            ))
        })?;
        if !registered.approved() {
            return Err(ChangeError::NeedsApproval(format!(
                "{} waits for approval: it {}; approve it with `kaunter plugin approve {}`",
                registered.label(),
                registered.pending().join(" "),
                registered.label()
            )));
        }
        Ok(())
    }

    fn check_scope(&self, config: &Config, name: &str, scope: &Scope) -> Result<(), ChangeError> {
        if config.plugin(name).is_none() {
            return Err(ChangeError::NotFound(format!(
                "no plugin `{name}` in the configuration"
            )));
        }
        let groups = config.resolved_store_groups();
        if let Some(group) = &scope.group
            && !groups.contains_key(group)
        {
            let known: Vec<&String> = groups.keys().collect();
            return Err(ChangeError::Invalid(format!(
                "no store group `{group}` (defined: {known:?}); add `{group} = [\"hk-001\", ...]` under [store_groups] or `group = \"{group}\"` under a [stores.ID] entry, and reload the config"
            )));
        }
        if let Some(route) = &scope.route
            && !config.routes.iter().any(|r| &r.name == route)
        {
            return Err(ChangeError::Invalid(format!("no route `{route}` in the configuration")));
        }
        Ok(())
    }

    /// Takes the deployments lock (changes are serialised) and returns the current deployments
    /// with a copy in which `name`'s deployment was changed by `change`, for [`Lifecycle::commit`].
    async fn edit<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut PluginDeployment) -> Result<T, DeployError>,
    ) -> Result<(tokio::sync::MutexGuard<'_, Deployments>, Deployments, T), ChangeError> {
        let current = self.deployments.lock().await;
        let mut next = current.clone();
        let d = next
            .plugins
            .get_mut(name)
            .ok_or_else(|| ChangeError::NotFound(format!("plugin `{name}` has no deployment")))?;
        let outcome = change(d).map_err(|e| ChangeError::Invalid(e.0))?;
        Ok((current, next, outcome))
    }

    /// Applies `next` (building every version it needs first), persists it, audits `action`,
    /// then swaps it in. On any error the running table, the stored deployments and the audit
    /// log stay as they were.
    async fn commit(
        &self,
        current: &mut Deployments,
        next: Deployments,
        actor: &str,
        action: &str,
        subject: String,
        detail: Value,
    ) -> Result<(), ChangeError> {
        let config = self.config();
        let slots = self
            .registry
            .slots(&config, &next, false)
            .map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
        save_deployments(&self.store, &next).await?;
        if let Err(e) = self.audit(actor, action, subject.clone(), detail).await {
            // Not applied without its record: put the stored deployments back.
            if let Err(undo) = save_deployments(&self.store, current).await {
                tracing::error!(error = %undo, "cannot restore the stored deployments after a failed audit write");
            }
            return Err(e);
        }
        self.pipeline.install(&config, slots);
        *current = next;
        tracing::info!(%actor, %action, %subject, "plugin deployment changed");
        Ok(())
    }

    /// Runs `version` of `name` in `scope` (everywhere, a store group and/or a route).
    pub async fn deploy(&self, name: &str, version: &str, scope: &Scope, actor: &str) -> Result<Value, ChangeError> {
        self.deploy_build(name, version, scope, actor, false).await
    }

    /// Like [`Lifecycle::deploy`]; `configured` says the version is the build now at the plugin's
    /// configured path (hot-loaded), so a later reload does not take it for a new build.
    async fn deploy_build(
        &self,
        name: &str,
        version: &str,
        scope: &Scope,
        actor: &str,
        configured: bool,
    ) -> Result<Value, ChangeError> {
        let config = self.config();
        self.check_deployable(&config, name, version, scope)?;
        let (mut current, next, ()) = self
            .edit(name, |d| {
                d.deploy(version, scope);
                if configured {
                    d.config_version = version.to_owned();
                }
                Ok(())
            })
            .await?;
        if next == *current {
            return Ok(json!({ "plugin": name, "version": version, "scope": scope.to_string(), "unchanged": true }));
        }
        let detail = json!({ "version": version, "scope": scope });
        self.commit(
            &mut current,
            next,
            actor,
            "plugin.deploy",
            format!("{name}@{version}"),
            detail,
        )
        .await?;
        Ok(json!({ "plugin": name, "version": version, "scope": scope.to_string() }))
    }

    /// Returns `scope` to the version that ran there before.
    pub async fn rollback(&self, name: &str, scope: &Scope, actor: &str) -> Result<Value, ChangeError> {
        let config = self.config();
        self.check_scope(&config, name, scope)?;
        let (mut current, next, now) = self.edit(name, |d| d.rollback(scope)).await?;
        let detail = json!({ "now_running": now, "scope": scope });
        self.commit(&mut current, next, actor, "plugin.rollback", name.to_owned(), detail)
            .await?;
        Ok(json!({ "plugin": name, "version": now, "scope": scope.to_string() }))
    }

    /// Makes the version pinned for `scope` the default everywhere.
    pub async fn promote(&self, name: &str, scope: &Scope, actor: &str) -> Result<Value, ChangeError> {
        let config = self.config();
        self.check_scope(&config, name, scope)?;
        let (mut current, next, version) = self.edit(name, |d| d.promote(scope)).await?;
        let detail = json!({ "version": version, "from_scope": scope });
        self.commit(
            &mut current,
            next,
            actor,
            "plugin.promote",
            format!("{name}@{version}"),
            detail,
        )
        .await?;
        Ok(json!({ "plugin": name, "version": version, "scope": Scope::default().to_string() }))
    }

    /// Starts (`Some(version)`) or stops (`None`) shadowing `name` with a version.
    pub async fn shadow(&self, name: &str, version: Option<&str>, actor: &str) -> Result<Value, ChangeError> {
        let config = self.config();
        if let Some(version) = version {
            self.check_deployable(&config, name, version, &Scope::default())?;
        } else {
            self.check_scope(&config, name, &Scope::default())?;
        }
        let (mut current, next, ()) = self
            .edit(name, |d| {
                d.shadow = version.map(str::to_owned);
                Ok(())
            })
            .await?;
        let (action, subject) = match version {
            Some(v) => ("plugin.shadow", format!("{name}@{v}")),
            None => ("plugin.unshadow", name.to_owned()),
        };
        self.commit(&mut current, next, actor, action, subject, json!({}))
            .await?;
        self.pipeline.shadows().reset(name);
        Ok(json!({ "plugin": name, "shadow": version }))
    }

    /// Approves a registered version held back by the upgrade guard.
    pub async fn approve(&self, name: &str, version: &str, actor: &str) -> Result<Value, ChangeError> {
        let config = self.config();
        let requests = guard::approve_version(&config, self.registry.data_dir(), &self.store, name, version, actor)
            .await
            .map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
        self.registry.mark_approved(name, version);
        Ok(json!({ "approved": format!("{name}@{version}"), "requests": requests }))
    }

    /// Every configured plugin: its versions with their state, and its deployment.
    pub async fn list(&self) -> Value {
        let config = self.config();
        let deployments = self.deployments.lock().await.clone();
        let versions: BTreeMap<String, Vec<VersionInfo>> = self.registry.list(&config, &deployments);
        let plugins: Vec<Value> = config
            .plugins
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "kind": p.kind,
                    "deployment": deployments.plugins.get(&p.name),
                    "versions": versions.get(&p.name),
                })
            })
            .collect();
        json!({ "plugins": plugins, "store_groups": config.resolved_store_groups() })
    }

    /// Checks a candidate configuration without applying it: every problem with its field, and
    /// what applying it would change.
    pub fn validate(&self, text: &str) -> Value {
        let current = self.config();
        let candidate = match Config::from_toml(text) {
            Ok(mut c) => {
                c.base_dir = current.base_dir.clone();
                c
            }
            Err(e) => {
                let error = Config::parse(text, "config", current.base_dir.clone())
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| e.to_string());
                return json!({ "valid": false, "errors": [FieldProblem { field: "(syntax)".into(), message: error }], "changes": null });
            }
        };
        let mut errors = candidate.problems();
        let plugins = plugin_findings(&candidate);
        errors.extend(plugins.errors);
        json!({
            "valid": errors.is_empty(),
            "errors": errors,
            "warnings": plugins.warnings,
            "changes": config_diff(&current, &candidate),
        })
    }

    /// Re-reads the configuration file the host was started with and applies what changed.
    pub async fn reload(&self, actor: &str) -> Result<(Arc<Config>, Value), ChangeError> {
        let current = self.config();
        let path = current.source.clone().ok_or_else(|| {
            ChangeError::Invalid(
                "this host runs the bundled demo configuration; start it with --config FILE to reload a file".into(),
            )
        })?;
        let mut candidate = Config::load(&path).map_err(|e| ChangeError::Invalid(e.to_string()))?;
        if let Some(problem) = plugin_findings(&candidate).errors.into_iter().next() {
            return Err(ChangeError::Invalid(format!("{}: {}", problem.field, problem.message)));
        }
        let mut deployments = self.deployments.lock().await;
        let mut next = deployments.clone();
        let warnings = self
            .registry
            .reconcile(&candidate, &mut next)
            .await
            .map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
        let slots = self
            .registry
            .slots(&candidate, &next, false)
            .map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
        save_deployments(&self.store, &next).await?;
        let changes = config_diff(&current, &candidate);
        // `[server]` applies at the next start; the running values (with command-line
        // overrides) stay.
        candidate.server = current.server.clone();
        let candidate = Arc::new(candidate);
        let removed: Vec<String> = current
            .sinks
            .iter()
            .filter(|old| !candidate.sinks.iter().any(|new| new.name == old.name))
            .map(|s| s.name.clone())
            .collect();
        // Recorded before it applies: a reload whose record cannot be written is not applied.
        if let Err(e) = self
            .audit(
                actor,
                "config.reload",
                path.display().to_string(),
                json!({ "changes": changes, "warnings": warnings }),
            )
            .await
        {
            if let Err(undo) = save_deployments(&self.store, &deployments).await {
                tracing::error!(error = %undo, "cannot restore the stored deployments after a failed audit write");
            }
            return Err(e);
        }
        self.pipeline.install(&candidate, slots);
        self.config.store(candidate.clone());
        *deployments = next;
        self.dead_letter_removed_sinks(&removed, actor, "the reloaded configuration")
            .await?;
        tracing::info!(%actor, %changes, "configuration reloaded");
        Ok((
            candidate,
            json!({ "reloaded": path.display().to_string(), "changes": changes, "warnings": warnings }),
        ))
    }

    /// Starts a historic replay; `through` is `plugin@version`. A dry run captures every side
    /// effect and commits nothing.
    pub async fn replay(&self, spec: ReplaySpec, actor: &str) -> Result<Value, ChangeError> {
        let config = self.config();
        if let Some(route) = &spec.route
            && !config.routes.iter().any(|r| &r.name == route)
        {
            return Err(ChangeError::NotFound(format!(
                "no route `{route}` in the configuration"
            )));
        }
        let routing = if spec.through.is_none() && !spec.dry_run {
            self.pipeline.routing()
        } else {
            let mut deployments = self.deployments.lock().await.clone();
            for d in deployments.plugins.values_mut() {
                d.shadow = None;
            }
            if let Some(through) = &spec.through {
                let (name, version) = through
                    .split_once('@')
                    .ok_or_else(|| ChangeError::Invalid("--through takes plugin@version".into()))?;
                self.check_deployable(&config, name, version, &Scope::default())?;
                if let Some(d) = deployments.plugins.get_mut(name) {
                    d.active = version.to_owned();
                    d.pins.clear();
                }
            }
            let slots = self
                .registry
                .slots(&config, &deployments, spec.dry_run)
                .map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
            let live = self.pipeline.routing();
            Arc::new(Routing {
                routes: live.routes.clone(),
                sinks: live.sinks.clone(),
                plugins: slots,
                groups: live.groups.clone(),
            })
        };
        // Recorded before it starts: a replay whose record cannot be written does not run.
        let id = ulid::Ulid::new().to_string();
        self.audit(actor, "replay.start", id.clone(), json!(spec)).await?;
        let id = self.pipeline.start_replay(id, spec, routing).await.map_err(failed)?;
        Ok(json!({ "replay": id }))
    }
}

/// What applying `new` over `old` changes, by section; `needs_restart` lists what only a
/// restart applies.
pub fn config_diff(old: &Config, new: &Config) -> Value {
    fn named<'a, T: PartialEq + 'a>(
        old: impl Iterator<Item = (&'a String, &'a T)>,
        new: impl Iterator<Item = (&'a String, &'a T)>,
    ) -> Value {
        let old: BTreeMap<&String, &T> = old.collect();
        let new: BTreeMap<&String, &T> = new.collect();
        json!({
            "added": new.keys().filter(|k| !old.contains_key(*k)).collect::<Vec<_>>(),
            "removed": old.keys().filter(|k| !new.contains_key(*k)).collect::<Vec<_>>(),
            "changed": new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v)).map(|(k, _)| k).collect::<Vec<_>>(),
        })
    }
    let mut needs_restart = Vec::new();
    let server = |c: &Config| c.file_server.clone().unwrap_or_else(|| c.server.clone());
    if server(old) != server(new) {
        needs_restart.push("server");
    }
    // A new secret reaches the plugins the reload (re)builds; a changed or removed one would not
    // reach plugins that stay as they are.
    if old
        .secrets
        .iter()
        .any(|(name, secret)| new.secrets.get(name) != Some(secret))
    {
        needs_restart.push("secrets");
    }
    if old.credentials != new.credentials {
        needs_restart.push("credentials");
    }
    if old.audit != new.audit {
        needs_restart.push("audit");
    }
    // Field by field, for what carries no secret values: "plugins.xero.config.base_url: A → B".
    let mut fields = Vec::new();
    crate::pipeline::shadow::diff(
        "plugins",
        &by_name(&old.plugins, |p| &p.name),
        &by_name(&new.plugins, |p| &p.name),
        &mut fields,
    );
    crate::pipeline::shadow::diff(
        "sinks",
        &by_name(&old.sinks, |s| &s.name),
        &by_name(&new.sinks, |s| &s.name),
        &mut fields,
    );
    crate::pipeline::shadow::diff(
        "routes",
        &by_name(&old.routes, |r| &r.name),
        &by_name(&new.routes, |r| &r.name),
        &mut fields,
    );
    crate::pipeline::shadow::diff(
        "store_groups",
        &json!(old.store_groups),
        &json!(new.store_groups),
        &mut fields,
    );
    crate::pipeline::shadow::diff("stores", &json!(old.stores), &json!(new.stores), &mut fields);
    json!({
        "fields": fields,
        "plugins": named(old.plugins.iter().map(|p| (&p.name, p)), new.plugins.iter().map(|p| (&p.name, p))),
        "sinks": named(old.sinks.iter().map(|s| (&s.name, s)), new.sinks.iter().map(|s| (&s.name, s))),
        "routes": named(old.routes.iter().map(|r| (&r.name, r)), new.routes.iter().map(|r| (&r.name, r))),
        "store_groups": named(old.store_groups.iter(), new.store_groups.iter()),
        "stores": named(old.stores.iter(), new.stores.iter()),
        "api_keys": named(old.api_keys.iter().map(|k| (&k.name, k)), new.api_keys.iter().map(|k| (&k.name, k))),
        // Names only: a secret's value never appears in a diff.
        "secrets": named(old.secrets.iter(), new.secrets.iter()),
        "credentials": named(old.credentials.iter(), new.credentials.iter()),
        "needs_restart": needs_restart,
    })
}

/// `items` as a JSON object keyed by name.
fn by_name<T: serde::Serialize>(items: &[T], name: impl Fn(&T) -> &String) -> Value {
    Value::Object(items.iter().map(|i| (name(i).clone(), json!(i))).collect())
}

#[cfg(test)]
mod diff_tests {
    use super::*;

    #[test]
    fn added_and_removed_secrets_and_credentials_are_in_the_diff_by_name() {
        let old = Config::demo().unwrap();
        let mut new = old.clone();
        let (name, secret) = old.secrets.iter().next().map(|(n, s)| (n.clone(), s.clone())).unwrap();
        new.secrets.insert("erp-token".into(), secret);
        new.secrets.remove(&name);
        let credential = old.credentials.keys().next().unwrap().clone();
        new.credentials.remove(&credential);
        let diff = config_diff(&old, &new);
        assert_eq!(diff["secrets"]["added"], json!(["erp-token"]));
        assert_eq!(diff["secrets"]["removed"], json!([name]));
        assert_eq!(diff["credentials"]["removed"], json!([credential]));
        assert_eq!(diff["secrets"]["changed"], json!([]));
    }

    #[test]
    fn a_changed_field_is_named_with_its_old_and_new_value() {
        let old = Config::demo().unwrap();
        let mut new = old.clone();
        let plugin = new.plugins.iter_mut().find(|p| p.name == "xero").unwrap();
        plugin.config.insert(
            "base_url".into(),
            toml::Value::String("https://example.test/api".into()),
        );
        new.sinks[0].max_attempts += 1;
        let diff = config_diff(&old, &new);
        let fields: Vec<&str> = diff["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("plugins.xero.config.base_url: \"")
                    && f.ends_with("→ \"https://example.test/api\"")),
            "{fields:?}"
        );
        let sink = &new.sinks[0];
        assert!(
            fields.contains(
                &format!(
                    "sinks.{}.max_attempts: {} → {}",
                    sink.name,
                    sink.max_attempts - 1,
                    sink.max_attempts
                )
                .as_str()
            ),
            "{fields:?}"
        );
    }
}
