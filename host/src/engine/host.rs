//! What a plugin's store holds, and the host side of the `kaunter:plugin` imports.
//!
//! Each [`HostState`] belongs to one warm instance of one plugin. WASI is present but empty:
//! no preopened directories, no environment, no inherited stdio, no sockets. Outbound HTTP goes
//! only through [`crate::egress`].

use super::bindings::services::kaunter::plugin::{clock, config, crypto, kv, log};
use crate::egress::EgressHooks;
use crate::store::{Store, StoreError};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Everything about a plugin its host calls need, shared by all its instances.
pub struct PluginContext {
    /// Plugin name from the config.
    pub name: String,
    /// First 12 hex digits of the component's SHA-256.
    pub version: String,
    /// The plugin's configuration as JSON.
    pub config_json: String,
    /// Secret bytes by name (only those granted to this plugin).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// kv quota in bytes.
    pub kv_quota: u64,
    /// Where kv lives.
    pub store: Arc<dyn Store>,
    /// Whether the plugin may read the wall clock.
    pub clock_granted: bool,
    /// Who the plugin is to the egress checkpoint: its grants and credentials.
    pub egress: Arc<crate::egress::PluginEgress>,
    /// For captured runs (sandbox, shadow, smoke call): kv writes land here, not in the store;
    /// reads see them first, then the store. `None` on the live path.
    pub kv_overlay: Option<KvOverlay>,
    /// How many log lines the plugin may still write this second, across its instances.
    pub log_budget: LogBudget,
}

/// Most log lines one call may write; the rest are dropped and counted.
pub const MAX_LOG_LINES_PER_CALL: u32 = 100;
/// Most log lines one plugin may write per second, across all its calls.
pub const MAX_LOG_LINES_PER_SECOND: u32 = 1000;

/// Log lines dropped over the caps, since start, by every plugin (`kaunter stats`).
pub static LOG_LINES_DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A plugin's log allowance for the current second ([`MAX_LOG_LINES_PER_SECOND`]).
#[derive(Debug, Default)]
pub struct LogBudget(std::sync::Mutex<(i64, u32)>);

impl LogBudget {
    /// Takes one line from this second's allowance; false when it is spent.
    fn take(&self) -> bool {
        let second = crate::store::now_ms() / 1000;
        let Ok(mut window) = self.0.lock() else {
            return false;
        };
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 += 1;
        window.1 <= MAX_LOG_LINES_PER_SECOND
    }
}

/// kv writes of a captured run: key → value (`None` = deleted).
pub type KvOverlay = std::sync::Mutex<std::collections::HashMap<String, Option<Vec<u8>>>>;

/// The resource limiter of one instance: the configured caps, plus the high-water mark of
/// linear memory (reported by sandbox runs).
pub struct Limiter {
    inner: StoreLimits,
    /// Largest linear memory size granted so far, in bytes.
    pub peak_memory: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The `T` of every plugin `Store<T>`.
pub struct HostState {
    pub(crate) plugin: Arc<PluginContext>,
    /// Id of the event being handled, for log lines.
    pub(crate) event_id: String,
    /// Its source (ids are unique per source), for the same log lines.
    pub(crate) event_source: String,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: EgressHooks,
    pub(crate) limits: Limiter,
    /// Wall-clock values read during the current call (a shadow replays them).
    clock_reads: Vec<i64>,
    /// Values the next clock reads return, in order, before real time (a shadow call gets the
    /// live call's reads, so time-stamped output compares equal).
    clock_script: std::collections::VecDeque<i64>,
    /// Log lines written during the current call.
    log_lines: u32,
}

impl HostState {
    /// A fresh state with nothing granted but what the plugin's context says.
    pub fn new(plugin: Arc<PluginContext>, hooks: EgressHooks, memory_bytes: usize) -> Self {
        let mut wasi = WasiCtx::builder();
        if !plugin.clock_granted {
            wasi.wall_clock(UngrantedWallClock(plugin.name.clone(), hooks.problems()));
        }
        Self {
            plugin,
            event_id: String::new(),
            event_source: String::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            limits: Limiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size(memory_bytes)
                    .instances(64)
                    .trap_on_grow_failure(true)
                    .build(),
                peak_memory: 0,
            },
            clock_reads: Vec::new(),
            log_lines: 0,
            clock_script: std::collections::VecDeque::new(),
        }
    }
}

impl HostState {
    /// Resets per-call state before a call for `event_id`.
    pub fn begin_call(&mut self, event_id: &str, source: &str, clock_script: Vec<i64>) {
        self.event_id = event_id.to_owned();
        self.event_source = source.to_owned();
        self.hooks.begin_call();
        self.clock_reads.clear();
        self.log_lines = 0;
        self.clock_script = clock_script.into();
    }

    /// The wall-clock values the last call read, emptied.
    pub fn take_clock_reads(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.clock_reads)
    }

    /// What went wrong with outbound requests during the last call, emptied.
    pub fn take_problems(&mut self) -> Vec<crate::egress::Problem> {
        self.hooks.take_problems()
    }

    /// Requests captured or recorded during the last call, emptied.
    pub fn take_captured(&mut self) -> Vec<crate::egress::CapturedRequest> {
        self.hooks.take_captured()
    }

    /// The spans of the requests the last call made, when it was traced, emptied.
    pub fn take_egress_spans(&mut self) -> Vec<crate::telemetry::trace::EgressSpan> {
        self.hooks.take_spans()
    }

    /// Outbound requests the current call asked for, and where the last one went.
    pub fn egress_summary(&self) -> (u32, Option<String>) {
        (self.hooks.calls_made(), self.hooks.last_destination())
    }

    /// A scrubber for the secret texts and OAuth tokens the egress checkpoint put into the
    /// current call's requests; `None` when it put in none.
    pub fn scrubber(&self) -> Option<Arc<crate::scrub::Scrubber>> {
        self.hooks.scrubber()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl super::bindings::services::kaunter::plugin::types::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        const MAX: usize = 4096;
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL || !self.plugin.log_budget.take() {
            LOG_LINES_DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.log_lines == MAX_LOG_LINES_PER_CALL + 1 {
                tracing::warn!(target: "plugin", plugin = %self.plugin.name, event = %self.event_id, source = %self.event_source,
                    "plugin log capped at {MAX_LOG_LINES_PER_CALL} lines per call and {MAX_LOG_LINES_PER_SECOND} per second; further lines are dropped and counted (log_lines_dropped in stats)");
            }
            return Ok(());
        }
        // Scrubbed before it is cut, so no part of a value is left at the cut.
        let message = match self.hooks.scrubber() {
            Some(scrubber) => scrubber.scrub_string(message),
            None => message,
        };
        let message = if message.len() > MAX {
            let mut cut = MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}… ({} bytes truncated)", &message[..cut], message.len() - cut)
        } else {
            message
        };
        let (plugin, version, event, source) = (
            &self.plugin.name,
            &self.plugin.version,
            &self.event_id,
            &self.event_source,
        );
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "plugin", plugin, version, event, source, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "plugin", plugin, version, event, source, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "plugin", plugin, version, event, source, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "plugin", plugin, version, event, source, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "plugin", plugin, version, event, source, "{message}")
            }
        }
        Ok(())
    }
}

impl config::Host for HostState {
    fn get(&mut self) -> wasmtime::Result<String> {
        Ok(self.plugin.config_json.clone())
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> wasmtime::Result<i64> {
        if !self.plugin.clock_granted {
            clock_denied(&self.plugin.name, &self.hooks.problems());
            return Ok(0);
        }
        let now = self.clock_script.pop_front().unwrap_or_else(crate::store::now_ms);
        self.clock_reads.push(now);
        Ok(now)
    }
}

fn clock_denied(plugin: &str, problems: &crate::egress::CallProblems) {
    problems.report(crate::egress::Problem::Denied(format!(
        "plugin `{plugin}` read the wall clock, which is not granted; add clock = true to its [plugins.grants]"
    )));
}

/// The WASI wall clock of a plugin not granted the clock: reads fail the call of the instance it
/// belongs to, and see the epoch.
struct UngrantedWallClock(String, Arc<crate::egress::CallProblems>);

impl wasmtime_wasi::HostWallClock for UngrantedWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        clock_denied(&self.0, &self.1);
        std::time::Duration::ZERO
    }
}

fn kv_error(e: StoreError) -> kv::KvError {
    match e {
        StoreError::QuotaExceeded { .. } => kv::KvError::QuotaExceeded(e.to_string()),
        other => kv::KvError::Unavailable(other.to_string()),
    }
}

impl kv::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::KvError>> {
        if let Some(overlay) = &self.plugin.kv_overlay
            && let Some(value) = overlay.lock().ok().and_then(|o| o.get(&key).cloned())
        {
            return Ok(Ok(value));
        }
        Ok(self
            .plugin
            .store
            .kv_get(&self.plugin.name, &key)
            .await
            .map_err(kv_error))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), kv::KvError>> {
        if let Some(overlay) = &self.plugin.kv_overlay {
            let Ok(mut o) = overlay.lock() else {
                return Ok(Err(kv::KvError::Unavailable("kv overlay poisoned".into())));
            };
            // The same quota as live kv, over what the captured run has written.
            let used: u64 = o
                .iter()
                .filter(|(k, _)| **k != key)
                .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
                .sum();
            let would_use = used + (key.len() + value.len()) as u64;
            if would_use > self.plugin.kv_quota {
                let e = StoreError::QuotaExceeded {
                    quota: self.plugin.kv_quota,
                    would_use,
                };
                return Ok(Err(kv_error(e)));
            }
            o.insert(key, Some(value));
            return Ok(Ok(()));
        }
        let p = &self.plugin;
        Ok(p.store.kv_set(&p.name, &key, value, p.kv_quota).await.map_err(kv_error))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), kv::KvError>> {
        if let Some(overlay) = &self.plugin.kv_overlay {
            if let Ok(mut o) = overlay.lock() {
                o.insert(key, None);
            }
            return Ok(Ok(()));
        }
        Ok(self
            .plugin
            .store
            .kv_delete(&self.plugin.name, &key)
            .await
            .map_err(kv_error))
    }
}

impl HostState {
    fn secret(&self, name: &str) -> Result<&[u8], crypto::CryptoError> {
        self.plugin.secrets.get(name).map(Vec::as_slice).ok_or_else(|| {
            crypto::CryptoError::UnknownSecret(format!(
                "secret `{name}` is not granted to plugin `{}`; add it to the plugin's `secrets` in kaunter.toml",
                self.plugin.name
            ))
        })
    }
}

impl crypto::Host for HostState {
    fn hmac_sha256(&mut self, secret: String, data: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, crypto::CryptoError>> {
        Ok(self.secret(&secret).map(|key| hmac_sha256(key, &data)))
    }

    fn verify_hmac_sha256(
        &mut self,
        secret: String,
        data: Vec<u8>,
        mac: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, crypto::CryptoError>> {
        Ok(self.secret(&secret).map(|key| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
            m.update(&data);
            m.verify_slice(&mac).is_ok()
        }))
    }

    fn hmac_sha256_templated(
        &mut self,
        secret: String,
        prefix: Vec<u8>,
        suffix: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, crypto::CryptoError>> {
        Ok(self.secret(&secret).map(|key| {
            let mut data = prefix;
            data.extend_from_slice(key);
            data.extend_from_slice(&suffix);
            hmac_sha256(key, &data)
        }))
    }

    fn sha256(&mut self, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        Ok(Sha256::digest(&data).to_vec())
    }
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// HMAC accepts keys of any length, so `new_from_slice` cannot fail; this keeps the types honest.
fn unreachable_hmac() -> Hmac<Sha256> {
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default())
}

/// Decodes a configured secret with the default (`auto`) encoding: `whsec_<base64>` (Standard
/// Webhooks) becomes its bytes; anything else is used as its UTF-8 bytes.
pub fn secret_bytes(value: &str) -> Result<Vec<u8>, String> {
    crate::config::decode_secret(value, crate::config::SecretEncoding::Auto)
}
