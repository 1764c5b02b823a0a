//! Wasm execution: one wasmtime engine, compiled components cached on disk, warm instances.
//!
//! This module owns compiling, instantiating and calling plugins under their limits (memory cap,
//! wall-clock deadline via epoch interruption). A plugin's trap or timeout comes back as a
//! [`CallError`] value for that one call; it never unwinds into the host. It does not know about
//! routes, sinks or storage beyond the kv calls plugins make.

pub mod bindings;
pub(crate) mod emits;
mod host;
mod plugin;

pub use host::{
    HostState, LOG_LINES_DROPPED, LogBudget, MAX_LOG_LINES_PER_CALL, MAX_LOG_LINES_PER_SECOND, PluginContext,
    hmac_sha256, secret_bytes,
};
pub use plugin::{BACKGROUND, CallError, CallReport, EmitGrants, LoadedPlugin, PluginKindPre, SerialGate};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick. Deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Largest linear memory any plugin may be configured for.
const MAX_MEMORY_BYTES: usize = 1024 * 1024 * 1024;

/// The shared engine, linker and compile cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: PathBuf,
    fuel: bool,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption), the linker with WASI (empty)
    /// and wasi:http (through the egress checkpoint), and starts the epoch ticker.
    /// With `fuel`, the engine counts instructions so plugins can have fuel budgets (a small cost
    /// on every call, so it is on only when some plugin asks for it).
    pub fn new(cache_dir: PathBuf, fuel: bool) -> anyhow::Result<Arc<Runtime>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(1000)
            .total_core_instances(4000)
            .total_memories(1000)
            .total_tables(2000)
            .max_memory_size(MAX_MEMORY_BYTES)
            .max_core_instances_per_component(50)
            .max_memories_per_component(4)
            .max_tables_per_component(16);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .max_wasm_stack(1024 * 1024)
            .consume_fuel(fuel);
        let engine = wt(Engine::new(&config), "creating the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        wt(wasmtime_wasi::p2::add_to_linker_async(&mut linker), "linking WASI")?;
        wt(
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker),
            "linking wasi:http",
        )?;
        wt(
            bindings::services::HostServices::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(
                &mut linker,
                |state| state,
            ),
            "linking kaunter:plugin host interfaces",
        )?;
        std::fs::create_dir_all(&cache_dir)
            .with_context(|| format!("creating compile cache dir {}", cache_dir.display()))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("kaunter-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        Ok(Arc::new(Runtime {
            engine,
            linker,
            cache_dir,
            fuel,
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the engine counts fuel.
    pub fn fuel(&self) -> bool {
        self.fuel
    }

    /// The linker every plugin is instantiated with.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Loads a component from disk, compiling it once per (digest, engine) and caching the result.
    /// Returns the component and the SHA-256 of the file (hex); see [`version_of`].
    pub fn load_component(&self, path: &Path) -> anyhow::Result<(Component, String)> {
        let bytes = std::fs::read(path).with_context(|| format!("reading plugin component {}", path.display()))?;
        let digest = hex(&Sha256::digest(&bytes));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        let cached = self.cache_dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
        if cached.exists() {
            // SAFETY: the file was written by `precompile_component` below, into kaunter's own data
            // directory, under a name that binds it to this exact input and engine configuration;
            // wasmtime additionally checks the engine compatibility header when deserializing.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &cached) };
            match loaded {
                Ok(component) => return Ok((component, digest)),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), error = %e, "ignoring unusable compile cache entry")
                }
            }
        }
        let compiled = wt(
            self.engine.precompile_component(&bytes),
            &format!("compiling {} (is it a WebAssembly component?)", path.display()),
        )?;
        // Hosts sharing a cache may compile the same component at once: each writes its own
        // temporary file and the rename makes the entry appear whole.
        let tmp = cached.with_extension(format!("{}.{}.tmp", std::process::id(), rand::random::<u32>()));
        std::fs::write(&tmp, &compiled).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &cached).with_context(|| format!("writing {}", cached.display()))?;
        // SAFETY: as above; these are the bytes we just produced with this engine.
        #[allow(unsafe_code)]
        let component = wt(
            unsafe { Component::deserialize(&self.engine, &compiled) },
            &format!("loading compiled {}", path.display()),
        )?;
        Ok((component, digest))
    }
}

/// A plugin version: the first 12 hex digits of its component's SHA-256.
pub fn version_of(digest: &str) -> String {
    digest.chars().take(12).collect()
}

/// Converts a wasmtime error into an `anyhow` error with context.
fn wt<T>(result: wasmtime::Result<T>, what: &str) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::Error::from(e).context(what.to_owned()))
}

pub use crate::store::hex;
