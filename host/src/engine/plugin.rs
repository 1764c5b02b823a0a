//! A loaded plugin: its pre-instantiated component, a pool of warm instances, and typed calls.

use super::bindings::{
    DecodeError, DeliveryContext, DeliveryError, PluginError, Receipt, WebhookRequest, connector, source, transform,
    wit,
};
use super::host::{HostState, PluginContext};
use super::{EPOCH_TICK, Runtime};
use crate::config::{LimitsConfig, PluginKind};
use crate::egress::{Egress, EgressHooks, Problem};
use crate::scrub::Scrubber;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::Component;

/// The pre-instantiated component, by world.
pub enum PluginKindPre {
    /// World `transform`.
    Transform(transform::TransformPre<HostState>),
    /// World `connector`.
    Connector(connector::ConnectorPre<HostState>),
    /// World `source`.
    Source(source::SourcePre<HostState>),
}

enum Bindings {
    Transform(transform::Transform),
    Connector(connector::Connector),
    Source(source::Source),
}

tokio::task_local! {
    /// Set (to true) around background work such as historic replays: a serial plugin's live
    /// calls take their turns first.
    pub static BACKGROUND: bool;
}

/// The gate of a plugin whose calls run one at a time (`serial = true`), shared by all its
/// versions. Live calls queue in arrival order; background calls take a turn only when no live
/// call is waiting.
#[derive(Default)]
pub struct SerialGate {
    lock: tokio::sync::Mutex<()>,
    live_waiting: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
}

/// A turn at a [`SerialGate`]; the next caller goes when it is dropped.
pub(crate) struct Turn<'a> {
    guard: Option<tokio::sync::MutexGuard<'a, ()>>,
    gate: &'a SerialGate,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.gate.released.notify_waiters();
    }
}

impl SerialGate {
    /// Waits at most `bound` for a turn; `None` when it did not come.
    async fn turn(&self, background: bool, bound: Duration) -> Option<Turn<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        let deadline = tokio::time::Instant::now() + bound;
        if !background {
            self.live_waiting.fetch_add(1, SeqCst);
            let guard = tokio::time::timeout_at(deadline, self.lock.lock()).await;
            self.live_waiting.fetch_sub(1, SeqCst);
            // A background call may be waiting for no live one to be.
            self.released.notify_waiters();
            return guard.ok().map(|guard| Turn {
                guard: Some(guard),
                gate: self,
            });
        }
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.live_waiting.load(SeqCst) == 0
                && let Ok(guard) = self.lock.try_lock()
            {
                return Some(Turn {
                    guard: Some(guard),
                    gate: self,
                });
            }
            tokio::time::timeout_at(deadline, released).await.ok()?;
        }
    }
}

/// A live instance kept between calls.
struct Warm {
    store: Store<HostState>,
    bindings: Bindings,
}

/// Why a plugin call did not produce a result. Each is about this call only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The plugin trapped (panic, out-of-bounds, memory cap, stack overflow, ...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call ran past the plugin's wall-clock deadline and was stopped.
    #[error("plugin exceeded its {0} ms deadline and was stopped")]
    Deadline(u64),
    /// A serial plugin's turn did not come in time: the calls before it held the gate.
    #[error(
        "plugin runs one call at a time (serial) and its turn did not come within {0} ms: the calls before it were too slow or too many; raise limits.deadline_ms or lower the concurrency that calls it"
    )]
    NoTurn(u64),
    /// A fresh instance could not be created.
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// The plugin tried something it was not granted (outbound HTTP to an ungranted destination).
    /// The event fails even if the plugin carried on.
    #[error("capability denied: {0}")]
    Denied(String),
    /// The OAuth credential the request needed was refused by its authorization server.
    #[error("credential refused: {0}")]
    Credential(String),
    /// The plugin went over one of its limits (output, fuel, outbound calls).
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The transform returned its own error.
    #[error("{}", describe_plugin_error(.0))]
    Plugin(PluginError),
    /// The connector returned a delivery error.
    #[error("{}", describe_delivery_error(.0))]
    Delivery(DeliveryError),
    /// The source refused the webhook.
    #[error("{}", describe_decode_error(.0))]
    Decode(DecodeError),
}

impl CallError {
    /// A short name of the kind of failure, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Trap(_) => "trap",
            CallError::Deadline(_) => "deadline",
            CallError::NoTurn(_) => "serial_wait",
            CallError::Instantiate(_) => "instantiate",
            CallError::Denied(_) => "denied",
            CallError::Credential(_) => "credential",
            CallError::Limit(_) => "limit",
            CallError::Plugin(_) => "plugin_error",
            CallError::Delivery(DeliveryError::Retry(_)) => "retry",
            CallError::Delivery(DeliveryError::Throttled(_)) => "throttled",
            CallError::Delivery(DeliveryError::Rejected(_)) => "rejected",
            CallError::Delivery(DeliveryError::ConflictIsSuccess(_)) => "already_delivered",
            CallError::Delivery(DeliveryError::Disable(_)) => "disabled",
            CallError::Decode(DecodeError::Unauthorized(_)) => "unauthorized",
            CallError::Decode(DecodeError::Malformed(_)) => "malformed",
            CallError::Decode(DecodeError::Unavailable(_)) => "unavailable",
        }
    }

    /// Whether the failure is the plugin's own fault (a trap, a deadline, a limit, a denied
    /// capability, its own error) rather than an outcome it reported about the system it talks
    /// to: a connector's `retry`, `throttled`, `rejected` or `disable`, or an authorization server
    /// refusing a credential. A vendor outage is the latter and must not look like a plugin bug.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, CallError::Delivery(_) | CallError::Credential(_))
    }

    /// Takes every value `scrubber` knows out of the error's text.
    fn scrub(&mut self, scrubber: &Scrubber) {
        let text = match self {
            CallError::Deadline(_) | CallError::NoTurn(_) => None,
            CallError::Trap(m)
            | CallError::Instantiate(m)
            | CallError::Denied(m)
            | CallError::Credential(m)
            | CallError::Limit(m)
            | CallError::Plugin(PluginError::Rejected(m) | PluginError::InvalidConfig(m) | PluginError::Transient(m))
            | CallError::Delivery(DeliveryError::Rejected(m) | DeliveryError::Disable(m))
            | CallError::Decode(
                DecodeError::Unauthorized(m) | DecodeError::Malformed(m) | DecodeError::Unavailable(m),
            ) => Some(m),
            CallError::Delivery(DeliveryError::Retry(hint) | DeliveryError::Throttled(hint)) => Some(&mut hint.reason),
            CallError::Delivery(DeliveryError::ConflictIsSuccess(m)) => m.as_mut(),
        };
        if let Some(text) = text {
            *text = scrubber.scrub_string(std::mem::take(text));
        }
    }
}

/// The call's result with every secret text and OAuth token the egress checkpoint put into the
/// call's requests taken out of its error, before the error leaves the engine for dead letters,
/// `last_error`, logs, audit records and shadow reports. (The plugin never saw those values in
/// the responses; this also covers any it rebuilt, e.g. by decoding an encoding the checkpoint
/// does not recognise.)
fn scrubbed<T>(result: Result<T, CallError>, scrubber: Option<&Scrubber>) -> Result<T, CallError> {
    match (result, scrubber) {
        (Err(mut e), Some(scrubber)) => {
            e.scrub(scrubber);
            Err(e)
        }
        (result, _) => result,
    }
}

fn describe_plugin_error(e: &PluginError) -> String {
    match e {
        PluginError::Rejected(m) => format!("rejected by plugin: {m}"),
        PluginError::InvalidConfig(m) => format!("plugin configuration invalid: {m}"),
        PluginError::Transient(m) => format!("transient plugin failure: {m}"),
    }
}

fn describe_decode_error(e: &DecodeError) -> String {
    match e {
        DecodeError::Unauthorized(m) => format!("unauthorized: {m}"),
        DecodeError::Malformed(m) => format!("malformed: {m}"),
        DecodeError::Unavailable(m) => format!("unavailable: {m}"),
    }
}

fn describe_delivery_error(e: &DeliveryError) -> String {
    match e {
        DeliveryError::Retry(h) => format!("retry: {}", h.reason),
        DeliveryError::Throttled(h) => format!("throttled: {}", h.reason),
        DeliveryError::Rejected(m) => format!("rejected: {m}"),
        DeliveryError::ConflictIsSuccess(m) => {
            format!("already delivered: {}", m.as_deref().unwrap_or(""))
        }
        DeliveryError::Disable(m) => format!("endpoint gone, sink disabled: {m}"),
    }
}

/// What one call used and did besides its result (for sandbox runs, shadow comparisons and smoke
/// calls).
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// Outbound requests captured (or recorded, on a live plugin being shadowed).
    pub requests: Vec<crate::egress::CapturedRequest>,
    /// Fuel consumed, when the engine counts fuel.
    pub fuel_used: Option<u64>,
    /// High-water mark of the instance's linear memory, in bytes.
    pub peak_memory_bytes: usize,
    /// Wall-clock time of the call, including instantiation when there was no warm instance.
    pub elapsed: Duration,
    /// The values the plugin read from the wall clock (`kaunter:plugin/clock`), in order.
    pub clock_reads: Vec<i64>,
    /// Outbound requests the call asked for (sent, captured or refused).
    pub http_calls: u32,
    /// `scheme://host:port` of its last outbound request.
    pub last_destination: Option<String>,
    /// The call's deadline (`limits.deadline_ms`), to set `elapsed` against.
    pub deadline: Duration,
    /// The spans of its outbound requests, when the call was traced.
    pub egress: Vec<crate::telemetry::trace::EgressSpan>,
}

/// What a plugin may emit, from its grants. The engine only carries it: the router checks what a
/// transform returns against it, the webhook endpoint what a source decodes.
#[derive(Debug, Clone, Default)]
pub struct EmitGrants {
    /// Event type globs it may emit (`grants.emits`).
    pub types: Vec<String>,
    /// Source globs its events may carry (`grants.sources`; source plugins only).
    pub sources: Vec<String>,
}

/// A plugin ready to be called.
pub struct LoadedPlugin {
    /// Name from the config.
    pub name: String,
    /// Digest prefix of the component.
    pub version: String,
    /// World.
    pub kind: PluginKind,
    pre: PluginKindPre,
    ctx: Arc<PluginContext>,
    egress: Arc<Egress>,
    limits: LimitsConfig,
    runtime: Arc<Runtime>,
    warm: Mutex<Vec<Warm>>,
    /// Held for the length of each call when the manifest asks for one call at a time (shared by
    /// every version of the plugin).
    one_at_a_time: Option<Arc<SerialGate>>,
    /// What it may emit; nothing unless granted.
    emits: EmitGrants,
}

/// The version of the `kaunter:plugin` WIT package this host implements (`wit/worlds.wit`).
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The `kaunter:plugin` version a component was built against, read from the names of the
/// interfaces it imports or exports (`kaunter:plugin/types@0.1.0`); `None` when it names none.
pub fn contract_version_of(component: &Component, engine: &wasmtime::Engine) -> Option<String> {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name.to_owned());
    let exports = ty.exports(engine).map(|(name, _)| name.to_owned());
    imports.chain(exports).find_map(|name| {
        let (_, version) = name.strip_prefix("kaunter:plugin/")?.split_once('@')?;
        Some(version.to_owned())
    })
}

impl LoadedPlugin {
    /// Checks the component against its declared world and prepares it for instantiation.
    pub fn new(
        runtime: Arc<Runtime>,
        component: Component,
        kind: PluginKind,
        ctx: Arc<PluginContext>,
        egress: Arc<Egress>,
        limits: LimitsConfig,
        version: String,
    ) -> anyhow::Result<LoadedPlugin> {
        if let Some(built_against) = contract_version_of(&component, runtime.engine()).filter(|v| v != CONTRACT_VERSION)
        {
            anyhow::bail!(
                "plugin `{}` was built against kaunter:plugin@{built_against}, and this host implements kaunter:plugin@{CONTRACT_VERSION}; rebuild it with the current SDK (Rust: `cargo build --release --target wasm32-wasip2`; Python and JavaScript: `npm run build` or `componentize-py` as in docs/plugin-guide.md#versioning), then load the new build",
                ctx.name
            );
        }
        let instance_pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("plugin `{}` imports something kaunter does not provide: {e}", ctx.name))?;
        let pre = match kind {
            PluginKind::Transform => {
                PluginKindPre::Transform(transform::TransformPre::new(instance_pre).map_err(|e| {
                    anyhow::anyhow!(
                        "plugin `{}` is not a transform (world `transform` exports `handle`): {e}",
                        ctx.name
                    )
                })?)
            }
            PluginKind::Connector => {
                PluginKindPre::Connector(connector::ConnectorPre::new(instance_pre).map_err(|e| {
                    anyhow::anyhow!(
                        "plugin `{}` is not a connector (world `connector` exports `deliver`): {e}",
                        ctx.name
                    )
                })?)
            }
            PluginKind::Source => PluginKindPre::Source(source::SourcePre::new(instance_pre).map_err(|e| {
                anyhow::anyhow!(
                    "plugin `{}` is not a source (world `source` exports `decode`): {e}",
                    ctx.name
                )
            })?),
        };
        Ok(LoadedPlugin {
            name: ctx.name.clone(),
            version,
            kind,
            pre,
            ctx,
            egress,
            limits,
            runtime,
            warm: Mutex::new(Vec::new()),
            one_at_a_time: None,
            emits: EmitGrants::default(),
        })
    }

    /// Lets this plugin emit what `grants` allow (nothing otherwise).
    pub fn emitting(mut self, grants: EmitGrants) -> Self {
        self.emits = grants;
        self
    }

    /// What this plugin may emit.
    pub fn emit_grants(&self) -> &EmitGrants {
        &self.emits
    }

    /// Calls this plugin one event at a time, holding `gate` for each call (the manifest's
    /// `serial = true`: state in kv that concurrent calls would race on). Give every version of
    /// the plugin the same gate.
    pub fn serial(mut self, gate: Option<Arc<SerialGate>>) -> Self {
        self.one_at_a_time = gate;
        self
    }

    /// Waits for this plugin's turn when it is called one event at a time: at most its deadline
    /// for live calls, ten times that (at least 30 s) for background work, which also lets every
    /// waiting live call go first.
    async fn turn(&self) -> Result<Option<Turn<'_>>, CallError> {
        let Some(gate) = &self.one_at_a_time else {
            return Ok(None);
        };
        let background = BACKGROUND.try_with(|b| *b).unwrap_or(false);
        let bound = if background {
            (self.limits.deadline_ms * 10).max(30_000)
        } else {
            self.limits.deadline_ms
        };
        gate.turn(background, Duration::from_millis(bound))
            .await
            .map(Some)
            .ok_or(CallError::NoTurn(bound))
    }

    /// Its context (name, version, grants, egress identity).
    pub fn context(&self) -> &Arc<PluginContext> {
        &self.ctx
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    fn deadline(&self) -> Duration {
        Duration::from_millis(self.limits.deadline_ms)
    }

    async fn checkout(&self, event_id: &str, source: &str, clock_script: Vec<i64>) -> Result<Warm, CallError> {
        let pooled = self.warm.lock().ok().and_then(|mut pool| pool.pop());
        let mut warm = match pooled {
            Some(warm) => warm,
            None => self.instantiate().await?,
        };
        let ticks = self.limits.deadline_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1) + 1;
        warm.store.set_epoch_deadline(ticks);
        if self.runtime.fuel() {
            let fuel = self.limits.fuel.unwrap_or(u64::MAX);
            warm.store
                .set_fuel(fuel)
                .map_err(|e| CallError::Instantiate(e.to_string()))?;
        }
        warm.store.data_mut().begin_call(event_id, source, clock_script);
        Ok(warm)
    }

    fn checkin(&self, warm: Warm) {
        if let Ok(mut pool) = self.warm.lock()
            && pool.len() < 64
        {
            pool.push(warm);
        }
    }

    async fn instantiate(&self) -> Result<Warm, CallError> {
        let hooks = EgressHooks::new(self.egress.clone(), self.ctx.egress.clone(), self.limits.max_http_calls);
        let memory = self.limits.memory_mib as usize * 1024 * 1024;
        let state = HostState::new(self.ctx.clone(), hooks, memory);
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        if self.runtime.fuel() {
            // Start-up code runs on fuel too; each call then gets its own budget in `checkout`.
            let fuel = self.limits.fuel.unwrap_or(u64::MAX);
            store
                .set_fuel(fuel)
                .map_err(|e| CallError::Instantiate(e.to_string()))?;
        }
        let ticks = self.limits.deadline_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1) + 1;
        store.set_epoch_deadline(ticks);
        let bindings = match &self.pre {
            PluginKindPre::Transform(pre) => pre.instantiate_async(&mut store).await.map(Bindings::Transform),
            PluginKindPre::Connector(pre) => pre.instantiate_async(&mut store).await.map(Bindings::Connector),
            PluginKindPre::Source(pre) => pre.instantiate_async(&mut store).await.map(Bindings::Source),
        }
        .map_err(|e| CallError::Instantiate(describe_trap(&e)))?;
        Ok(Warm { store, bindings })
    }

    /// Runs a transform's `handle` on one event.
    pub async fn handle(&self, event: &wit::Event) -> Result<Vec<wit::Event>, CallError> {
        self.handle_reported(event).await.0
    }

    /// Like [`LoadedPlugin::handle`], also reporting requests, fuel, memory and time.
    pub async fn handle_reported(&self, event: &wit::Event) -> (Result<Vec<wit::Event>, CallError>, CallReport) {
        self.handle_replaying(event, Vec::new()).await
    }

    /// Like [`LoadedPlugin::handle_reported`], with the wall clock returning `clock` (the reads
    /// of another call, in order) before real time: how a shadow sees the live call's time.
    pub async fn handle_replaying(
        &self,
        event: &wit::Event,
        clock: Vec<i64>,
    ) -> (Result<Vec<wit::Event>, CallError>, CallReport) {
        let _turn = match self.turn().await {
            Ok(turn) => turn,
            Err(e) => return (Err(e), CallReport::default()),
        };
        let started = std::time::Instant::now();
        let mut warm = match self.checkout(&event.id, &event.source, clock).await {
            Ok(warm) => warm,
            Err(e) => return (Err(e), CallReport::default()),
        };
        let Warm { store, bindings } = &mut warm;
        let Bindings::Transform(b) = bindings else {
            let e = CallError::Instantiate(format!("plugin `{}` is not a transform", self.name));
            return (Err(e), CallReport::default());
        };
        let outcome = tokio::time::timeout(self.deadline(), b.call_handle(&mut *store, event)).await;
        let report = self.report(&mut warm.store, started, "handle");
        let problems = warm.store.data_mut().take_problems();
        let scrubber = warm.store.data().scrubber();
        let result = self
            .settle(warm, outcome, problems)
            .and_then(|r| r.map_err(CallError::Plugin))
            .and_then(|events| self.check_output(events));
        (scrubbed(result, scrubber.as_deref()), report)
    }

    fn check_output(&self, events: Vec<wit::Event>) -> Result<Vec<wit::Event>, CallError> {
        if events.len() > self.limits.max_output_events {
            return Err(CallError::Limit(format!(
                "plugin `{}` returned {} events for one event; its limit is {} (limits.max_output_events)",
                self.name,
                events.len(),
                self.limits.max_output_events
            )));
        }
        Ok(events)
    }

    /// The plugin's limits.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// Runs a connector's `deliver` for one event.
    pub async fn deliver(&self, event: &wit::Event, context: &DeliveryContext) -> Result<Receipt, CallError> {
        self.deliver_reported(event, context).await.0
    }

    /// Like [`LoadedPlugin::deliver`], also reporting requests, fuel, memory and time.
    pub async fn deliver_reported(
        &self,
        event: &wit::Event,
        context: &DeliveryContext,
    ) -> (Result<Receipt, CallError>, CallReport) {
        self.deliver_replaying(event, context, Vec::new()).await
    }

    /// Like [`LoadedPlugin::deliver_reported`], with the wall clock replaying `clock` first (see
    /// [`LoadedPlugin::handle_replaying`]).
    pub async fn deliver_replaying(
        &self,
        event: &wit::Event,
        context: &DeliveryContext,
        clock: Vec<i64>,
    ) -> (Result<Receipt, CallError>, CallReport) {
        let _turn = match self.turn().await {
            Ok(turn) => turn,
            Err(e) => return (Err(e), CallReport::default()),
        };
        let started = std::time::Instant::now();
        let mut warm = match self.checkout(&event.id, &event.source, clock).await {
            Ok(warm) => warm,
            Err(e) => return (Err(e), CallReport::default()),
        };
        let Warm { store, bindings } = &mut warm;
        let Bindings::Connector(b) = bindings else {
            let e = CallError::Instantiate(format!("plugin `{}` is not a connector", self.name));
            return (Err(e), CallReport::default());
        };
        let outcome = tokio::time::timeout(self.deadline(), b.call_deliver(&mut *store, event, context)).await;
        let report = self.report(&mut warm.store, started, "deliver");
        let problems = warm.store.data_mut().take_problems();
        let scrubber = warm.store.data().scrubber();
        let result = self
            .settle(warm, outcome, problems)
            .and_then(|r| r.map_err(CallError::Delivery));
        (scrubbed(result, scrubber.as_deref()), report)
    }

    /// Runs a source's `decode` on one inbound webhook. `label` names the request in logs (the
    /// plugin's events do not exist yet).
    pub async fn decode_reported(
        &self,
        request: &WebhookRequest,
        label: &str,
    ) -> (Result<Vec<wit::Event>, CallError>, CallReport) {
        let _turn = match self.turn().await {
            Ok(turn) => turn,
            Err(e) => return (Err(e), CallReport::default()),
        };
        let started = std::time::Instant::now();
        let mut warm = match self.checkout(label, "", Vec::new()).await {
            Ok(warm) => warm,
            Err(e) => return (Err(e), CallReport::default()),
        };
        let Warm { store, bindings } = &mut warm;
        let Bindings::Source(b) = bindings else {
            let e = CallError::Instantiate(format!("plugin `{}` is not a source", self.name));
            return (Err(e), CallReport::default());
        };
        let outcome = tokio::time::timeout(self.deadline(), b.call_decode(&mut *store, request)).await;
        let report = self.report(&mut warm.store, started, "decode");
        let problems = warm.store.data_mut().take_problems();
        let scrubber = warm.store.data().scrubber();
        let result = self
            .settle(warm, outcome, problems)
            .and_then(|r| r.map_err(CallError::Decode))
            .and_then(|events| self.check_output(events));
        (scrubbed(result, scrubber.as_deref()), report)
    }

    /// What the call cost, also recorded in the process's metrics under `call` (`handle`,
    /// `deliver`, `decode`).
    fn report(&self, store: &mut Store<HostState>, started: std::time::Instant, call: &str) -> CallReport {
        let fuel_used = if self.runtime.fuel() {
            let budget = self.limits.fuel.unwrap_or(u64::MAX);
            store.get_fuel().ok().map(|left| budget.saturating_sub(left))
        } else {
            None
        };
        let (http_calls, last_destination) = store.data().egress_summary();
        let elapsed = started.elapsed();
        let peak_memory_bytes = store.data().limits.peak_memory;
        // Sandbox runs (load-time smoke calls, `kaunter plugin run`) answer from canned responses
        // and stay out of the metrics: they are not the live traffic operators watch.
        if !self.ctx.egress.is_capturing() {
            crate::telemetry::prom::metrics().observe_call(
                &self.name,
                &self.version,
                call,
                elapsed,
                fuel_used,
                peak_memory_bytes,
            );
        }
        CallReport {
            requests: store.data_mut().take_captured(),
            fuel_used,
            peak_memory_bytes,
            elapsed,
            clock_reads: store.data_mut().take_clock_reads(),
            http_calls,
            last_destination,
            deadline: self.deadline(),
            egress: store.data_mut().take_egress_spans(),
        }
    }

    /// Keeps the instance if the call returned normally; drops it after a trap or timeout, since
    /// its state can no longer be trusted.
    fn settle<T>(
        &self,
        warm: Warm,
        outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
        problems: Vec<Problem>,
    ) -> Result<T, CallError> {
        if !problems.is_empty() {
            if matches!(outcome, Ok(Ok(_))) {
                self.checkin(warm);
            }
            let credential: Vec<&str> = problems
                .iter()
                .filter_map(|p| {
                    if let Problem::Credential(m) = p {
                        Some(m.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            if !credential.is_empty() {
                return Err(CallError::Credential(credential.join("; ")));
            }
            let denied: Vec<&str> = problems
                .iter()
                .filter_map(|p| {
                    if let Problem::Denied(m) = p {
                        Some(m.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            return Err(CallError::Denied(denied.join("; ")));
        }
        match outcome {
            Err(_) => Err(CallError::Deadline(self.limits.deadline_ms)),
            Ok(Err(e)) => {
                if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
                    Err(CallError::Deadline(self.limits.deadline_ms))
                } else if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::OutOfFuel)) {
                    Err(CallError::Limit(format!(
                        "plugin `{}` used up its fuel budget of {} (limits.fuel)",
                        self.name,
                        self.limits.fuel.unwrap_or(0)
                    )))
                } else {
                    Err(CallError::Trap(describe_trap(&e)))
                }
            }
            Ok(Ok(value)) => {
                self.checkin(warm);
                Ok(value)
            }
        }
    }
}

/// A one-line description of a trap: the trap kind and the innermost cause, without backtrace.
fn describe_trap(e: &wasmtime::Error) -> String {
    let mut text = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => e.to_string(),
    };
    let root = e.root_cause().to_string();
    if !text.contains(&root) {
        text = format!("{text}: {root}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::bindings::connector::kaunter::plugin::delivery::RetryHint;
    use crate::scrub::{Kind, Sensitive};

    #[test]
    fn every_error_text_leaves_the_engine_scrubbed() {
        const TOKEN: &str = "eyJ0b2tlbi1vZi10aGUtY2FsbA";
        let echo = || format!("HTTP 400: authorization: Bearer {TOKEN}");
        let hint = || RetryHint {
            after_ms: Some(5),
            reason: echo(),
        };
        let scrubber = Scrubber::new(&[Sensitive {
            kind: Kind::Credential,
            name: "erp-oauth".into(),
            value: TOKEN.into(),
        }]);
        let errors = [
            CallError::Trap(echo()),
            CallError::Instantiate(echo()),
            CallError::Denied(echo()),
            CallError::Credential(echo()),
            CallError::Limit(echo()),
            CallError::Plugin(PluginError::Rejected(echo())),
            CallError::Plugin(PluginError::InvalidConfig(echo())),
            CallError::Plugin(PluginError::Transient(echo())),
            CallError::Delivery(DeliveryError::Retry(hint())),
            CallError::Delivery(DeliveryError::Throttled(hint())),
            CallError::Delivery(DeliveryError::Rejected(echo())),
            CallError::Delivery(DeliveryError::ConflictIsSuccess(Some(echo()))),
            CallError::Delivery(DeliveryError::Disable(echo())),
            CallError::Decode(DecodeError::Unauthorized(echo())),
            CallError::Decode(DecodeError::Malformed(echo())),
            CallError::Decode(DecodeError::Unavailable(echo())),
        ];
        for error in errors {
            let kind = error.kind();
            let shown = scrubbed::<()>(Err(error), Some(&scrubber)).unwrap_err();
            assert_eq!(shown.kind(), kind);
            let text = shown.to_string();
            assert!(
                text.ends_with("authorization: Bearer [redacted: credential erp-oauth]"),
                "{text}"
            );
        }
        let kept = scrubbed::<()>(Err(CallError::Trap(echo())), None).unwrap_err();
        assert!(kept.to_string().contains(TOKEN), "nothing was sent, nothing to scrub");
        assert!(scrubbed(Ok(1), Some(&scrubber)).is_ok());
    }

    /// A serial plugin's live calls go before waiting background work, and a turn that does not
    /// come within its bound is refused, not waited on forever.
    #[tokio::test]
    async fn live_calls_take_serial_turns_before_background_work_and_waits_are_bounded() {
        let gate = Arc::new(SerialGate::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = gate.turn(false, Duration::from_secs(5)).await.unwrap();
        let call = |name: &'static str, background: bool| {
            let (gate, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                let _turn = gate.turn(background, Duration::from_secs(30)).await.unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            })
        };
        let replay = call("replay", true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let live = [call("live-1", false), call("live-2", false)];
        tokio::time::sleep(Duration::from_millis(20)).await;
        // While the gate is held, a live call that may wait 50 ms gives up with a clear error.
        assert!(gate.turn(false, Duration::from_millis(50)).await.is_none());
        drop(held);
        for task in live {
            task.await.unwrap();
        }
        replay.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["live-1", "live-2", "replay"]);
        assert!(CallError::NoTurn(2000).to_string().contains("raise limits.deadline_ms"));
    }
}
