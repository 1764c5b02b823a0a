//! The version registry: every build of every plugin the host has seen, kept on disk by digest,
//! validated before it can run, and turned into ready [`LoadedPlugin`]s for a routing table.
//!
//! A version enters through the configuration (start-up, reload), an upload to the admin API,
//! or the directory watch. Registering it copies it into `<data_dir>/plugins/<name>/<version>.wasm`
//! (so rollback works after restarts and after the original file is gone), compiles it off the
//! async threads (through the compile cache), checks its world and its manifest against the
//! operator's grants, runs the manifest's sample events through it with side effects captured
//! (the smoke call), and reviews it with the upgrade guard. Only then can it be deployed.

use super::deploy::{Deployments, PluginDeployment, Scope};
use super::slot::{Slot, order_pins};
use super::{guard, manifest};
use crate::config::{Config, PluginConfig, PluginKind};
use crate::credentials::Credentials;
use crate::egress::{CannedResponses, Egress, PluginEgress, SendableSecret};
use crate::engine::bindings::DeliveryContext;
use crate::engine::emits;
use crate::engine::{CallError, EmitGrants, LoadedPlugin, PluginContext, Runtime, hex, version_of};
use crate::store::audit::AuditEntry;
use crate::store::{Store, now_ms};
use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::component::Component;

/// Where the version store keeps version `version` of plugin `name`.
pub fn version_file(data_dir: &Path, name: &str, version: &str) -> PathBuf {
    data_dir.join("plugins").join(name).join(format!("{version}.wasm"))
}

/// One registered build of a plugin.
pub struct Version {
    /// Plugin name.
    pub name: String,
    /// First 12 hex digits of the SHA-256.
    pub version: String,
    /// Full SHA-256 of the component.
    pub digest: String,
    /// The compiled component.
    pub component: Component,
    /// Its manifest (empty when it has none).
    pub manifest: manifest::Manifest,
    /// The copy in the version store.
    pub file: PathBuf,
    /// How it arrived: `config`, `upload by api-key:NAME`, `watch`, `version store`.
    pub origin: String,
    /// When it was registered (ms).
    pub registered_at_ms: i64,
    /// What the sample events did (one line each), or why there were none.
    pub smoke: Vec<String>,
    pending: Mutex<Vec<String>>,
}

impl Version {
    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// What it requests beyond the approved version (empty once approved).
    pub fn pending(&self) -> Vec<String> {
        self.pending.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Whether it may be deployed.
    pub fn approved(&self) -> bool {
        self.pending().is_empty()
    }
}

/// What `kaunter plugin list` shows for one version.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// Version.
    pub version: String,
    /// SHA-256.
    pub sha256: String,
    /// How it arrived.
    pub origin: String,
    /// When (RFC 3339).
    pub registered_at: String,
    /// `active`, `pinned`, `shadow`, `available` (kept for rollback) or `pending-approval`.
    pub state: String,
    /// Where it runs, for active and pinned versions.
    pub scopes: Vec<String>,
    /// What it requests beyond the approved version, while pending.
    pub pending: Vec<String>,
    /// Smoke call results.
    pub smoke: Vec<String>,
}

type BuiltKey = (String, String, bool);

/// The registry. One per host.
pub struct Registry {
    runtime: Arc<Runtime>,
    store: Arc<dyn Store>,
    egress: Arc<Egress>,
    credentials: Arc<Credentials>,
    data_dir: PathBuf,
    versions: Mutex<BTreeMap<String, BTreeMap<String, Arc<Version>>>>,
    built: Mutex<HashMap<BuiltKey, (PluginConfig, Arc<LoadedPlugin>)>>,
    /// One gate per plugin name for versions whose manifest asks for serial calls: every live
    /// version of a plugin shares its kv, so they share the gate too.
    serial_gates: Mutex<HashMap<String, Arc<crate::engine::SerialGate>>>,
}

impl Registry {
    /// An empty registry keeping versions under `<data_dir>/plugins`.
    pub fn new(
        runtime: Arc<Runtime>,
        store: Arc<dyn Store>,
        egress: Arc<Egress>,
        credentials: Arc<Credentials>,
        data_dir: PathBuf,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            runtime,
            store,
            egress,
            credentials,
            data_dir,
            versions: Mutex::default(),
            built: Mutex::default(),
            serial_gates: Mutex::default(),
        })
    }

    /// The host's OAuth credentials (one set per host; a reload that changes them needs a restart).
    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    /// The gate shared by every live version of `name`, when `serial` (captured instances keep kv
    /// in memory, so they need none).
    fn serial_gate(&self, name: &str, serial: bool) -> Option<Arc<crate::engine::SerialGate>> {
        if !serial {
            return None;
        }
        let mut gates = self.serial_gates.lock().ok()?;
        Some(gates.entry(name.to_owned()).or_default().clone())
    }

    /// The data directory (for approval commands).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A registered version.
    pub fn get(&self, name: &str, version: &str) -> Option<Arc<Version>> {
        self.versions
            .lock()
            .ok()
            .and_then(|v| v.get(name).and_then(|m| m.get(version)).cloned())
    }

    /// Registers the component at `path` (and the manifest beside it, if any).
    pub async fn register_file(
        self: &Arc<Self>,
        config: &Config,
        name: &str,
        path: &Path,
        origin: &str,
    ) -> anyhow::Result<Arc<Version>> {
        let bytes = std::fs::read(path).with_context(|| format!("reading plugin component {}", path.display()))?;
        let beside = std::fs::read_to_string(path.with_extension("manifest.toml")).ok();
        self.register(config, name, bytes, beside, origin).await
    }

    /// Registers a build of plugin `name`: stores, compiles, checks and smoke-tests it, and
    /// reviews it with the upgrade guard. A version seen before is returned as it is.
    pub async fn register(
        self: &Arc<Self>,
        config: &Config,
        name: &str,
        bytes: Vec<u8>,
        manifest_text: Option<String>,
        origin: &str,
    ) -> anyhow::Result<Arc<Version>> {
        let plugin = config.plugin(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no plugin `{name}` in the configuration; add a [[plugins]] entry (with its grants) and reload the config first"
            )
        })?;
        let digest = hex(&Sha256::digest(&bytes));
        let version = version_of(&digest);
        if let Some(known) = self.get(name, &version) {
            return Ok(known);
        }
        let file = version_file(&self.data_dir, name, &version);
        store_file(&file, &bytes, manifest_text.as_deref())?;
        let runtime = self.runtime.clone();
        let compiling = file.clone();
        let (component, _) = tokio::task::spawn_blocking(move || runtime.load_component(&compiling))
            .await
            .context("compiling the component")?
            .with_context(|| format!("plugin `{name}`: {origin} build {version}"))?;
        let manifest = manifest::read(&file, &bytes)
            .map_err(|e| anyhow::anyhow!("plugin `{name}`: its manifest is invalid: {e}"))?
            .unwrap_or_default();
        let checked = manifest::check(plugin, &manifest).map_err(anyhow::Error::msg)?;
        for over in &checked.over_grants {
            tracing::warn!(plugin = %name, grant = %over, "over-grant: the plugin did not request this");
        }
        let mut registered = Version {
            name: name.to_owned(),
            version: version.clone(),
            digest: digest.clone(),
            component,
            manifest,
            file,
            origin: origin.to_owned(),
            registered_at_ms: now_ms(),
            smoke: Vec::new(),
            pending: Mutex::default(),
        };
        // The world check: fails here, not when the version is first called.
        self.instantiate(config, &registered, false)?;
        registered.smoke = self.smoke(config, &registered).await?;
        let pending = guard::review(&self.store, name, &version, &digest, &registered.manifest.requests).await?;
        if let Ok(mut p) = registered.pending.lock() {
            *p = pending;
        }
        let registered = Arc::new(registered);
        self.store
            .audit(vec![AuditEntry::new(
                origin,
                "plugin.load",
                registered.label(),
                serde_json::json!({
                    "path": registered.file.display().to_string(),
                    "sha256": digest,
                    "kind": plugin.kind,
                    "requested": registered.manifest.requests,
                    "over_grants": checked.over_grants,
                    "grants": {
                        "http": plugin.grants.http.iter().map(|g| g.text.clone()).collect::<Vec<_>>(),
                        "secrets": plugin.secrets,
                        "credentials": plugin.grants.credentials,
                        "clock": plugin.grants.clock,
                        "emits": plugin.grants.emits,
                        "sources": plugin.grants.sources,
                    },
                    "limits": plugin.limits,
                    "smoke": registered.smoke,
                    "pending_approval": registered.pending(),
                }),
            )])
            .await
            .context("writing the audit log")?;
        tracing::info!(plugin = %name, %version, %origin, approved = registered.approved(), "plugin version registered");
        if let Ok(mut all) = self.versions.lock() {
            all.entry(name.to_owned())
                .or_default()
                .insert(version, registered.clone());
        }
        Ok(registered)
    }

    /// Marks a registered version approved (after an operator approved it).
    pub fn mark_approved(&self, name: &str, version: &str) {
        if let Some(v) = self.get(name, version)
            && let Ok(mut p) = v.pending.lock()
        {
            p.clear();
        }
    }

    /// Runs the manifest's sample events through a captured instance of the version. Traps,
    /// deadlines, limits and denials fail registration; the plugin's own answers are reported.
    async fn smoke(&self, config: &Config, version: &Version) -> anyhow::Result<Vec<String>> {
        let samples = version
            .manifest
            .sample_events()
            .map_err(|e| anyhow::anyhow!("plugin `{}`: manifest samples: {e}", version.name))?;
        let kind = config.plugin(&version.name).map(|p| p.kind);
        if kind == Some(PluginKind::Source) {
            return Ok(vec![
                "a source is not smoke-called (its input is a signed webhook, not an event)".into(),
            ]);
        }
        if samples.is_empty() {
            return Ok(vec!["no sample events in the manifest; smoke call skipped".into()]);
        }
        let plugin = self.instantiate(config, version, true)?;
        let mut lines = Vec::new();
        for (i, event) in samples.into_iter().enumerate() {
            let id = event.id.clone();
            let smoke_key = crate::store::idempotency_key(&event.source, &event.id, "smoke");
            let parent = emits::Parent::of(&event);
            let input = event.into();
            let outcome = match plugin.kind {
                PluginKind::Source => continue,
                // What it emits is checked as the router would: a sample deriving a type it may
                // not emit is a denial, found before the version can run.
                PluginKind::Transform => plugin.handle(&input).await.and_then(|out| {
                    let out = out.into_iter().map(kaunter_model::Event::from).collect();
                    let checked = emits::check_transform_outputs(&plugin.name, plugin.emit_grants(), &parent, out)
                        .map_err(CallError::Denied)?;
                    if !checked.refused.is_empty() {
                        return Err(CallError::Denied(emits::describe_refused(
                            &plugin.name,
                            &checked.refused,
                            emits::TRANSFORM_REST,
                        )));
                    }
                    Ok(format!("{} event(s) out", checked.events.len()))
                }),
                PluginKind::Connector => {
                    let context = DeliveryContext {
                        idempotency_key: smoke_key.clone(),
                        sink: "smoke".into(),
                        attempt: 1,
                    };
                    let (result, report) = plugin.deliver_reported(&input, &context).await;
                    result.map(|_| format!("delivered, {} request(s) captured", report.requests.len()))
                }
            };
            match outcome {
                Ok(summary) => lines.push(format!("sample {i} ({id}): {summary}")),
                Err(e @ (CallError::Plugin(_) | CallError::Delivery(_))) => {
                    lines.push(format!("sample {i} ({id}): the plugin answered {e}"))
                }
                Err(e) => anyhow::bail!(
                    "plugin `{}` version {} failed its smoke call on manifest sample {i} ({id}): {e}",
                    version.name,
                    version.version
                ),
            }
        }
        Ok(lines)
    }

    /// A ready instance of `version` under the plugin's current configuration: live (cached per
    /// configuration) or captured (requests answered from canned responses, kv writes kept in
    /// memory; `capture` instances are new each time).
    pub fn instantiate(&self, config: &Config, version: &Version, capture: bool) -> anyhow::Result<Arc<LoadedPlugin>> {
        let canned = capture.then(|| Arc::new(CannedResponses::default()));
        self.build(config, version, canned)
    }

    /// A captured instance whose requests are answered from `canned` (sandbox runs).
    pub fn sandbox(
        &self,
        config: &Config,
        version: &Version,
        canned: CannedResponses,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        self.build(config, version, Some(Arc::new(canned)))
    }

    fn build(
        &self,
        config: &Config,
        version: &Version,
        canned: Option<Arc<CannedResponses>>,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let capture = canned.is_some();
        let plugin = config
            .plugin(&version.name)
            .ok_or_else(|| anyhow::anyhow!("no plugin `{}` in the configuration", version.name))?;
        let key = (version.name.clone(), version.version.clone(), capture);
        if !capture
            && let Some((built_for, ready)) = self.built.lock().ok().and_then(|b| b.get(&key).cloned())
            && &built_for == plugin
        {
            return Ok(ready);
        }
        let mut secrets = BTreeMap::new();
        let mut sendable = BTreeMap::new();
        for name in &plugin.secrets {
            let reference = config
                .secrets
                .get(name)
                .with_context(|| format!("secret `{name}` is not defined"))?;
            let bytes = reference
                .bytes(&config.base_dir)
                .map_err(|e| anyhow::anyhow!("plugin `{}`, secret `{name}`: {e}", plugin.name))?;
            if !reference.destinations.is_empty() {
                sendable.insert(
                    name.clone(),
                    SendableSecret {
                        bytes: bytes.clone(),
                        destinations: reference.destinations.clone(),
                    },
                );
            }
            secrets.insert(name.clone(), bytes);
        }
        let mut egress = PluginEgress::new(
            plugin.name.clone(),
            plugin.grants.http.clone().into(),
            self.credentials.clone(),
            plugin.grants.credentials.clone().into(),
        )
        .with_secrets(Arc::new(sendable))
        .without_traceparent(plugin.grants.no_traceparent.clone().into())
        .with_timeout(std::time::Duration::from_millis(plugin.limits.http_timeout_ms));
        if let Some(canned) = canned {
            egress = egress.capturing(canned);
        }
        let ctx = Arc::new(PluginContext {
            name: plugin.name.clone(),
            version: version.version.clone(),
            config_json: serde_json::to_string(&plugin.config).context("encoding plugin config as JSON")?,
            secrets,
            kv_quota: plugin.limits.kv_quota_bytes,
            store: self.store.clone(),
            clock_granted: plugin.grants.clock,
            egress: Arc::new(egress),
            kv_overlay: capture.then(Default::default),
            log_budget: Default::default(),
        });
        let ready = Arc::new(
            LoadedPlugin::new(
                self.runtime.clone(),
                version.component.clone(),
                plugin.kind,
                ctx,
                self.egress.clone(),
                plugin.limits.clone(),
                version.version.clone(),
            )?
            .serial(self.serial_gate(&plugin.name, version.manifest.requests.serial && !capture))
            .emitting(EmitGrants {
                types: plugin.grants.emits.clone(),
                sources: plugin.grants.sources.clone(),
            }),
        );
        if !capture && let Ok(mut built) = self.built.lock() {
            built.insert(key, (plugin.clone(), ready.clone()));
        }
        Ok(ready)
    }

    /// Brings the deployments in line with the configuration at start-up or reload: registers
    /// each configured component (errors are fatal: the caller keeps what runs), deploys a new
    /// build found in the config, and registers the kept versions the deployments refer to.
    /// Returns warnings for the operator (a new build waiting for approval, a missing version).
    pub async fn reconcile(
        self: &Arc<Self>,
        config: &Config,
        deployments: &mut Deployments,
    ) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
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
            let configured = self.register_file(config, &plugin.name, &path, "config").await?;
            let deployment = deployments.plugins.get_mut(&plugin.name);
            match deployment {
                None if configured.approved() => {
                    deployments
                        .plugins
                        .insert(plugin.name.clone(), PluginDeployment::new(&configured.version));
                }
                None => anyhow::bail!(
                    "plugin `{}` {}\n  approve it with: kaunter plugin approve {} --config <your kaunter.toml> --data {}",
                    configured.label(),
                    configured.pending().join("\n    "),
                    configured.label(),
                    self.data_dir.display()
                ),
                Some(d) if d.config_version == configured.version => {}
                Some(d) => {
                    // A pending build is looked at again on every start and reload, so it is
                    // deployed once approved.
                    if configured.approved() {
                        d.config_version = configured.version.clone();
                        d.deploy(&configured.version, &Scope::default());
                    } else {
                        warnings.push(format!(
                            "plugin `{}` {}\n    {} keeps running until it is approved: kaunter plugin approve {}, then kaunter plugin deploy {} {}",
                            configured.label(),
                            configured.pending().join("\n    "),
                            d.active,
                            configured.label(),
                            plugin.name,
                            configured.version
                        ));
                    }
                }
            }
            if let Some(d) = deployments.plugins.get_mut(&plugin.name) {
                warnings.extend(
                    self.restore_versions(config, &plugin.name, d, &configured.version)
                        .await,
                );
            }
            warnings.extend(self.restore_kept(config, &plugin.name).await);
        }
        Ok(warnings)
    }

    /// Registers every version kept in the version store that is not registered yet — uploads
    /// never deployed, versions rolled away from — so that any of them can still be deployed
    /// after a restart, as `plugin list` promises.
    async fn restore_kept(self: &Arc<Self>, config: &Config, name: &str) -> Vec<String> {
        let dir = self.data_dir.join("plugins").join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        let mut warnings = Vec::new();
        for file in files {
            let Some(version) = file.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if self.get(name, version).is_some() {
                continue;
            }
            if let Err(e) = self.register_file(config, name, &file, "version store").await {
                warnings.push(format!(
                    "plugin `{name}`: kept version {version} cannot be restored ({e:#}); it stays in {} but cannot be deployed",
                    dir.display()
                ));
            }
        }
        warnings
    }

    /// Registers the kept versions a deployment refers to; drops references to versions that
    /// cannot be loaded (the default falls back to the configured build).
    async fn restore_versions(
        self: &Arc<Self>,
        config: &Config,
        name: &str,
        d: &mut PluginDeployment,
        configured: &str,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let referenced: Vec<String> = d.referenced().cloned().collect();
        let mut missing = Vec::new();
        for version in referenced {
            if self.get(name, &version).is_some() || missing.contains(&version) {
                continue;
            }
            let file = version_file(&self.data_dir, name, &version);
            if let Err(e) = self.register_file(config, name, &file, "version store").await {
                warnings.push(format!(
                    "plugin `{name}` version {version} cannot be restored ({e:#}); it is dropped from the deployment"
                ));
                missing.push(version);
            }
        }
        if missing.contains(&d.active) {
            d.active = configured.to_owned();
        }
        d.history.retain(|v| !missing.contains(v));
        d.pins.retain(|p| !missing.contains(&p.version));
        for pin in &mut d.pins {
            pin.history.retain(|v| !missing.contains(v));
        }
        if d.shadow.as_ref().is_some_and(|s| missing.contains(s)) {
            d.shadow = None;
        }
        warnings
    }

    /// The plugin slots of a routing table for these deployments. With `capture`, every version
    /// captures its side effects (dry-run replays) and no shadow runs.
    pub fn slots(
        &self,
        config: &Config,
        deployments: &Deployments,
        capture: bool,
    ) -> anyhow::Result<BTreeMap<String, Slot>> {
        let mut slots = BTreeMap::new();
        for plugin in &config.plugins {
            let d = deployments
                .plugins
                .get(&plugin.name)
                .ok_or_else(|| anyhow::anyhow!("plugin `{}` has no deployed version", plugin.name))?;
            let ready = |version: &str, capture: bool| -> anyhow::Result<Arc<LoadedPlugin>> {
                let v = self
                    .get(&plugin.name, version)
                    .ok_or_else(|| anyhow::anyhow!("plugin `{}` version {version} is not registered", plugin.name))?;
                self.instantiate(config, &v, capture)
            };
            let default = ready(&d.active, capture)?;
            let mut pins = d
                .pins
                .iter()
                .map(|p| Ok((p.scope.clone(), ready(&p.version, capture)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            order_pins(&mut pins);
            if capture {
                slots.insert(
                    plugin.name.clone(),
                    Slot {
                        default,
                        pins,
                        shadow: None,
                    },
                );
                continue;
            }
            let shadow = d.shadow.as_deref().map(|v| ready(v, true)).transpose()?;
            slots.insert(plugin.name.clone(), Slot { default, pins, shadow });
        }
        Ok(slots)
    }

    /// Every registered version of every configured plugin, with its state in `deployments`.
    pub fn list(&self, config: &Config, deployments: &Deployments) -> BTreeMap<String, Vec<VersionInfo>> {
        let all = self.versions.lock().map(|v| v.clone()).unwrap_or_default();
        let mut out = BTreeMap::new();
        for plugin in &config.plugins {
            let d = deployments.plugins.get(&plugin.name);
            let mut infos: Vec<VersionInfo> = all
                .get(&plugin.name)
                .map(|versions| versions.values().map(|v| describe(v, d)).collect())
                .unwrap_or_default();
            infos.sort_by(|a, b| b.registered_at.cmp(&a.registered_at));
            out.insert(plugin.name.clone(), infos);
        }
        out
    }
}

fn describe(v: &Version, d: Option<&PluginDeployment>) -> VersionInfo {
    let mut scopes = Vec::new();
    let mut state = "available";
    if let Some(d) = d {
        if d.active == v.version {
            scopes.push(Scope::default().to_string());
            state = "active";
        }
        for pin in d.pins.iter().filter(|p| p.version == v.version) {
            scopes.push(pin.scope.to_string());
            if state == "available" {
                state = "pinned";
            }
        }
        if d.shadow.as_deref() == Some(v.version.as_str()) && state == "available" {
            state = "shadow";
        }
    }
    let pending = v.pending();
    if !pending.is_empty() {
        state = "pending-approval";
    }
    VersionInfo {
        version: v.version.clone(),
        sha256: v.digest.clone(),
        origin: v.origin.clone(),
        registered_at: crate::store::rfc3339(Some(v.registered_at_ms))
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        state: state.into(),
        scopes,
        pending,
        smoke: v.smoke.clone(),
    }
}

/// Writes a component (and its manifest) into the version store, whole or not at all.
fn store_file(file: &Path, bytes: &[u8], manifest: Option<&str>) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(text) = manifest {
        std::fs::write(file.with_extension("manifest.toml"), text)
            .with_context(|| format!("writing the manifest beside {}", file.display()))?;
    }
    if !file.exists() {
        let tmp = file.with_extension(format!("{}.tmp", rand::random::<u32>()));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}
