//! The event path after ingest: route, transform, fan out, deliver, retry, dead-letter, replay.
//!
//! [`Pipeline`] owns the router lanes and one delivery worker per sink. Ingest hands it events
//! that are already durable; from then on every state change is written to the [`Store`] before
//! it is acted on, so a restart picks up exactly where the log says work stopped. Which plugin
//! versions run is read from the current [`routing::Routing`], swapped atomically when operators
//! change it. This module never parses HTTP and never touches SQLite directly.

mod delivery;
pub mod health;
pub mod metrics;
pub mod replay;
mod router;
pub mod routing;
pub mod shadow;
mod spans;
pub mod verify;

use crate::config::Config;
use crate::store::{Appended, Delivery, NewEvent, ReplaySelector, Store, StoreResult, StoredEvent, now_us};
use crate::telemetry::trace::EventTrace;
use arc_swap::ArcSwap;
use delivery::SinkHandle;
use kaunter_model::Event;
use metrics::Metrics;
use router::{RouteJob, Router};
use routing::{Routing, SinkEntry, Slot};
use shadow::ShadowLog;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The running pipeline.
pub struct Pipeline {
    store: Arc<dyn Store>,
    router: Router,
    routing: Arc<ArcSwap<Routing>>,
    sinks: Mutex<BTreeMap<String, SinkHandle>>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
    replays: replay::ReplayJobs,
    max_pending: usize,
    log_budget_bytes: u64,
}

/// Why ingest refused work.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Over the configured queue limit; the client should retry later.
    #[error("kaunter is over its queue limit ({pending} events waiting to be routed, limit {limit}); retry shortly")]
    Overloaded {
        /// Work in flight.
        pending: i64,
        /// The limit.
        limit: usize,
    },
    /// The log is over its disk budget (`[server] log_budget_mib`).
    #[error(
        "the log is full: {used_mib} MiB on disk, budget {budget_mib} MiB ([server] log_budget_mib); nothing was stored, retry later"
    )]
    LogFull {
        /// MiB the log takes.
        used_mib: u64,
        /// The budget.
        budget_mib: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Pipeline {
    /// Starts router lanes and sink workers with the given plugin versions, then re-queues
    /// whatever the log says is unfinished (open deliveries, unrouted events) before returning.
    pub async fn start(
        config: &Config,
        plugins: BTreeMap<String, Slot>,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Arc<Pipeline>> {
        let metrics = Arc::new(Metrics::default());
        metrics.started_at_ms.get_or_init(crate::store::now_ms);
        let shadows = Arc::new(ShadowLog::default());
        let routing = Arc::new(ArcSwap::from_pointee(Routing {
            routes: Vec::new(),
            sinks: BTreeMap::new(),
            plugins: BTreeMap::new(),
            groups: BTreeMap::new(),
        }));
        let router = Router::start(
            config.server.router_lanes,
            routing.clone(),
            store.clone(),
            metrics.clone(),
            shadows.clone(),
        );
        let pipeline = Arc::new(Pipeline {
            store,
            router,
            routing,
            sinks: Mutex::default(),
            metrics,
            shadows,
            replays: replay::ReplayJobs::default(),
            max_pending: config.server.max_pending,
            log_budget_bytes: config.server.log_budget_mib.saturating_mul(1024 * 1024),
        });
        pipeline.install(config, plugins);
        pipeline.recover().await?;
        Ok(pipeline)
    }

    /// Swaps in a new routing table for `config` with these plugin versions: starts workers for
    /// new sinks, then replaces the table atomically. Events already being routed or delivered
    /// finish on the versions they started with. Workers of sinks no longer configured stop once
    /// their attempts in flight finish; the lifecycle dead-letters what they still held (`sink
    /// removed`). A new worker reads its sink's open deliveries from the log itself, including any
    /// left from when the sink was configured before.
    pub fn install(&self, config: &Config, plugins: BTreeMap<String, Slot>) {
        let Ok(mut handles) = self.sinks.lock() else {
            return;
        };
        let mut sinks = BTreeMap::new();
        for sink in &config.sinks {
            let handle = handles.entry(sink.name.clone()).or_insert_with(|| {
                delivery::spawn(
                    sink.name.clone(),
                    sink.window,
                    self.routing.clone(),
                    self.store.clone(),
                    self.metrics.clone(),
                    self.shadows.clone(),
                )
            });
            sinks.insert(
                sink.name.clone(),
                SinkEntry {
                    config: Arc::new(sink.clone()),
                    signal: handle.signal(),
                },
            );
        }
        // Workers of sinks no longer configured stop once their attempts in flight finish (when
        // their handle is dropped); their open deliveries are the lifecycle's to dead-letter.
        handles.retain(|name, _| config.sinks.iter().any(|s| &s.name == name));
        crate::pipeline::routing::mark_recording(&plugins);
        crate::telemetry::prom::metrics().set_known_stores(config.stores.keys().cloned().collect());
        self.routing.store(Arc::new(Routing {
            routes: config.routes.clone(),
            sinks,
            plugins,
            groups: config.resolved_store_groups(),
        }));
    }

    /// The routing table now in force.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing.load_full()
    }

    /// Shadow comparisons.
    pub fn shadows(&self) -> &Arc<ShadowLog> {
        &self.shadows
    }

    /// Historic replay jobs.
    pub fn replays(&self) -> &replay::ReplayJobs {
        &self.replays
    }

    /// Re-queues the events the log holds unrouted. (Each sink's worker reads its own open
    /// deliveries from the log as it starts.)
    async fn recover(&self) -> StoreResult<()> {
        let backlogs = self.store.backlogs().await?;
        let reopened: u64 = backlogs.iter().map(|b| b.open).sum();
        let per_sink: Vec<String> = backlogs
            .iter()
            .filter(|b| b.open + b.parked > 0)
            .map(|b| {
                let parked = if b.parked > 0 {
                    format!(" (+{} parked)", b.parked)
                } else {
                    String::new()
                };
                format!("{} {}{parked}", b.sink, b.open)
            })
            .collect();
        let mut after = 0;
        let mut rerouted = 0;
        loop {
            let batch = self.store.unrouted(after, 1000).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            rerouted += batch.len();
            for stored in batch {
                self.metrics.pending.fetch_add(1, Ordering::Relaxed);
                self.router.dispatch(RouteJob::from_stored(stored, None));
            }
        }
        if reopened as usize + rerouted > 0 {
            // What a restart recovered, in words an operator reads at start-up.
            tracing::info!(
                open_deliveries = reopened as usize,
                unrouted_events = rerouted,
                "resuming unfinished work from the log: {rerouted} event(s) to route; open deliveries per sink: {}",
                if per_sink.is_empty() {
                    "none".to_owned()
                } else {
                    per_sink.join(", ")
                }
            );
        }
        Ok(())
    }

    /// The live counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Refuses new work when too many events wait to be routed, or the log is over its disk
    /// budget. A sink that is down never causes this: its deliveries queue in the log.
    pub fn check_capacity(&self) -> Result<(), IngestError> {
        let pending = self.metrics.pending.load(Ordering::Relaxed);
        if pending >= self.max_pending as i64 {
            return Err(IngestError::Overloaded {
                pending,
                limit: self.max_pending,
            });
        }
        if self.log_budget_bytes > 0 {
            let disk = self.store.disk_usage();
            let used = disk.database_bytes + disk.wal_bytes;
            if used >= self.log_budget_bytes {
                return Err(IngestError::LogFull {
                    used_mib: used / (1024 * 1024),
                    budget_mib: self.log_budget_bytes / (1024 * 1024),
                });
            }
        }
        Ok(())
    }

    /// Appends events durably, then queues the new ones for routing. Returns one outcome per
    /// event, in order; duplicates are not routed again.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<Vec<Appended>, IngestError> {
        let untraced = vec![None; events.len()];
        self.ingest_traced(events, untraced).await
    }

    /// As [`Pipeline::ingest`], each event with the trace context to keep with it (`traces[i]`
    /// for `events[i]`).
    pub async fn ingest_traced(
        &self,
        events: Vec<Event>,
        traces: Vec<Option<EventTrace>>,
    ) -> Result<Vec<Appended>, IngestError> {
        self.check_capacity()?;
        let received = now_us();
        let new: Vec<NewEvent> = events
            .into_iter()
            .zip(traces.into_iter().chain(std::iter::repeat(None)))
            .map(|(e, trace)| NewEvent::new(e, None, received).traced(trace))
            .collect();
        let jobs: Vec<(Event, i64, Option<EventTrace>)> = new
            .iter()
            .map(|n| (n.event.clone(), n.received_at_us, n.trace.clone()))
            .collect();
        let appended = self.store.append(new).await?;
        let prom = crate::telemetry::prom::metrics();
        for ((event, received_at_us, trace), outcome) in jobs.into_iter().zip(&appended) {
            let store = event.store().unwrap_or("");
            if outcome.conflict.is_some() {
                self.metrics.conflicts.fetch_add(1, Ordering::Relaxed);
                prom.count_ingest("conflict", store);
                continue;
            }
            if outcome.duplicate {
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                prom.count_ingest("duplicate", store);
                continue;
            }
            self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            prom.count_ingest("accepted", store);
            if !store.is_empty() {
                self.metrics.saw_store(store);
            }
            self.route_new(event, outcome.seq, received_at_us, trace);
        }
        Ok(appended)
    }

    /// Appends events the host raises itself (its SOP alerts) and queues the new ones for
    /// routing, like [`Pipeline::ingest`], except that it never refuses for capacity (an alert
    /// about a full log must get through) and is not counted as ingest.
    pub async fn raise(&self, events: Vec<Event>) -> StoreResult<Vec<Appended>> {
        let received = now_us();
        let new: Vec<NewEvent> = events.into_iter().map(|e| NewEvent::new(e, None, received)).collect();
        let events: Vec<Event> = new.iter().map(|n| n.event.clone()).collect();
        let appended = self.store.append(new).await?;
        for (event, outcome) in events.into_iter().zip(&appended) {
            if outcome.conflict.is_none() && !outcome.duplicate {
                self.route_new(event, outcome.seq, received, None);
            }
        }
        Ok(appended)
    }

    /// Queues a newly appended event for routing.
    fn route_new(&self, event: Event, seq: i64, received_at_us: i64, trace: Option<EventTrace>) {
        self.metrics.pending.fetch_add(1, Ordering::Relaxed);
        let stored = StoredEvent {
            seq,
            event,
            received_at_us,
            parent_seq: None,
            trace,
        };
        self.router.dispatch(RouteJob::from_stored(stored, None));
    }

    /// Replays dead letters: deliveries go back to their sink, failed routes run again. `record`
    /// is written to the audit log with the replay, atomically (see [`Store::replay`]).
    pub async fn replay(
        &self,
        selector: ReplaySelector,
        record: Option<crate::store::audit::AuditEntry>,
    ) -> StoreResult<Vec<i64>> {
        let replayed = self.store.replay(selector, record).await?;
        for d in &replayed.deliveries {
            self.requeue(d);
        }
        for (stored, route) in replayed.reroute {
            self.metrics.pending.fetch_add(1, Ordering::Relaxed);
            self.router.dispatch(RouteJob::from_stored(stored, Some(route)));
        }
        Ok(replayed.entries)
    }

    /// Tells the sink's worker that `d` is open again (its row is older than what the worker has
    /// read, so it reads the log again from there).
    pub(crate) fn requeue(&self, d: &Delivery) {
        if let Some(entry) = self.routing().sinks.get(&d.sink) {
            entry.signal.rescan_after(d.id - 1);
        } else {
            tracing::warn!(sink = %d.sink, delivery = d.id, "replayed delivery names a sink that is no longer configured");
        }
    }

    /// Resumes a sink paused by its connector (HTTP 410) or an operator. Returns whether it exists.
    pub fn resume_sink(&self, name: &str) -> bool {
        self.with_sink(name, SinkHandle::resume)
    }

    /// Pauses a sink: attempts in flight finish, no new ones start until it is resumed.
    pub fn pause_sink(&self, name: &str) -> bool {
        self.with_sink(name, SinkHandle::pause)
    }

    /// Acts on a sink's worker, configured or (after a reload removed it) still draining.
    fn with_sink(&self, name: &str, action: impl FnOnce(&SinkHandle)) -> bool {
        match self.sinks.lock().ok().as_ref().and_then(|s| s.get(name)) {
            Some(handle) => {
                action(handle);
                true
            }
            None => false,
        }
    }

    /// Makes a sink's parked deliveries pending again (oldest first, so each key keeps its
    /// order) and has its worker read them. Returns how many, or `None` for no such sink.
    pub async fn unpark_sink(&self, name: &str) -> StoreResult<Option<usize>> {
        let Some(entry) = self.routing().sinks.get(name).cloned() else {
            return Ok(None);
        };
        let unparked = self.store.unpark(name).await?;
        entry.signal.rescan_after(0);
        Ok(Some(unparked))
    }

    /// Every configured sink: whether it is paused, and its worker's rows in memory and window.
    pub fn sink_states(&self) -> Vec<SinkState> {
        let routing = self.routing();
        let Ok(handles) = self.sinks.lock() else {
            return Vec::new();
        };
        routing
            .sinks
            .keys()
            .map(|name| {
                let handle = handles.get(name);
                let (in_memory, window) = handle.map_or((0, 0), SinkHandle::held);
                SinkState {
                    name: name.clone(),
                    paused: handle.is_some_and(SinkHandle::is_paused),
                    in_memory,
                    window,
                }
            })
            .collect()
    }
}

/// A sink's worker as [`Pipeline::sink_states`] reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SinkState {
    /// The sink.
    pub name: String,
    /// Paused by its endpoint (HTTP 410) or an operator.
    pub paused: bool,
    /// Deliveries held in memory now (queued or in flight).
    pub in_memory: usize,
    /// The most it holds (`window`); the rest of its queue stays in the log.
    pub window: usize,
}

impl Pipeline {}
