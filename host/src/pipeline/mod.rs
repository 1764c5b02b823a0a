//! The event path after ingest: route, transform, fan out, deliver, retry, dead-letter, replay.
//!
//! [`Pipeline`] owns the router lanes and one delivery worker per sink. Ingest hands it events
//! that are already durable; from then on every state change is written to the [`Store`] before
//! it is acted on, so a restart picks up exactly where the log says work stopped. This module
//! never parses HTTP and never touches SQLite directly.

mod delivery;
pub mod metrics;
mod router;

use crate::config::{Config, RouteConfig, SinkConfig};
use crate::engine::LoadedPlugin;
use crate::plugins::PluginSet;
use crate::store::{Appended, Delivery, NewEvent, ReplaySelector, Store, StoreResult, StoredEvent, now_us};
use delivery::SinkHandle;
use kaunter_model::Event;
use metrics::Metrics;
use router::{RouteJob, Router};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A route with its transforms resolved.
pub(crate) struct Route {
    pub config: RouteConfig,
    pub transforms: Vec<Arc<LoadedPlugin>>,
}

/// The running pipeline.
pub struct Pipeline {
    store: Arc<dyn Store>,
    router: Router,
    sinks: BTreeMap<String, SinkHandle>,
    metrics: Arc<Metrics>,
    max_pending: usize,
}

/// Why ingest refused work.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Over the configured queue limit; the client should retry later.
    #[error("kaunter is over its queue limit ({pending} events in flight, limit {limit}); retry shortly")]
    Overloaded {
        /// Work in flight.
        pending: i64,
        /// The limit.
        limit: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Pipeline {
    /// Starts router lanes and sink workers, then re-queues whatever the log says is unfinished
    /// (open deliveries, unrouted events) before returning.
    pub async fn start(config: &Config, plugins: &PluginSet, store: Arc<dyn Store>) -> anyhow::Result<Arc<Pipeline>> {
        let metrics = Arc::new(Metrics::default());
        let mut sinks = BTreeMap::new();
        for sink in &config.sinks {
            let plugin = lookup(plugins, &sink.connector)?;
            sinks.insert(
                sink.name.clone(),
                delivery::spawn(sink.clone(), plugin, store.clone(), metrics.clone()),
            );
        }
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let transforms = r
                    .transforms
                    .iter()
                    .map(|t| lookup(plugins, t))
                    .collect::<anyhow::Result<_>>()?;
                Ok(Route {
                    config: r.clone(),
                    transforms,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let senders: BTreeMap<String, _> = sinks
            .iter()
            .map(|(k, v): (&String, &SinkHandle)| (k.clone(), v.sender()))
            .collect();
        let router = Router::start(
            config.server.router_lanes,
            routes,
            store.clone(),
            senders,
            metrics.clone(),
        );
        let pipeline = Arc::new(Pipeline {
            store,
            router,
            sinks,
            metrics,
            max_pending: config.server.max_pending,
        });
        pipeline.recover(&config.sinks).await?;
        Ok(pipeline)
    }

    async fn recover(&self, sinks: &[SinkConfig]) -> StoreResult<()> {
        let mut reopened = 0;
        for sink in sinks {
            let open = self.store.open_deliveries(&sink.name).await?;
            reopened += open.len();
            self.metrics.pending.fetch_add(open.len() as i64, Ordering::Relaxed);
            if let Some(handle) = self.sinks.get(&sink.name) {
                for d in open {
                    handle.push(d);
                }
            }
        }
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
        if reopened + rerouted > 0 {
            tracing::info!(
                open_deliveries = reopened,
                unrouted_events = rerouted,
                "resuming unfinished work from the log"
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

    /// Refuses new work when too much is in flight.
    pub fn check_capacity(&self) -> Result<(), IngestError> {
        let pending = self.metrics.pending.load(Ordering::Relaxed);
        if pending >= self.max_pending as i64 {
            return Err(IngestError::Overloaded {
                pending,
                limit: self.max_pending,
            });
        }
        Ok(())
    }

    /// Appends events durably, then queues the new ones for routing. Returns one outcome per
    /// event, in order; duplicates are not routed again.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<Vec<Appended>, IngestError> {
        self.check_capacity()?;
        let received = now_us();
        let new: Vec<NewEvent> = events.into_iter().map(|e| NewEvent::new(e, None, received)).collect();
        let jobs: Vec<(Event, i64)> = new.iter().map(|n| (n.event.clone(), n.received_at_us)).collect();
        let appended = self.store.append(new).await?;
        for ((event, received_at_us), outcome) in jobs.into_iter().zip(&appended) {
            if outcome.duplicate {
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            self.metrics.pending.fetch_add(1, Ordering::Relaxed);
            let stored = StoredEvent {
                seq: outcome.seq,
                event,
                received_at_us,
                parent_seq: None,
            };
            self.router.dispatch(RouteJob::from_stored(stored, None));
        }
        Ok(appended)
    }

    /// Replays dead letters: deliveries go back to their sink, failed routes run again.
    pub async fn replay(&self, selector: ReplaySelector) -> StoreResult<Vec<i64>> {
        let replayed = self.store.replay(selector).await?;
        for d in replayed.deliveries {
            self.requeue(d);
        }
        for (stored, route) in replayed.reroute {
            self.metrics.pending.fetch_add(1, Ordering::Relaxed);
            self.router.dispatch(RouteJob::from_stored(stored, Some(route)));
        }
        Ok(replayed.entries)
    }

    fn requeue(&self, d: Delivery) {
        if let Some(handle) = self.sinks.get(&d.sink) {
            self.metrics.pending.fetch_add(1, Ordering::Relaxed);
            handle.push(d);
        } else {
            tracing::warn!(sink = %d.sink, delivery = d.id, "replayed delivery names a sink that is no longer configured");
        }
    }

    /// Resumes a sink paused by its connector (HTTP 410) or an operator. Returns whether it exists.
    pub fn resume_sink(&self, name: &str) -> bool {
        match self.sinks.get(name) {
            Some(handle) => {
                handle.resume();
                true
            }
            None => false,
        }
    }

    /// Names and paused state of every sink.
    pub fn sink_states(&self) -> Vec<(String, bool)> {
        self.sinks
            .iter()
            .map(|(name, h)| (name.clone(), h.is_paused()))
            .collect()
    }
}

/// Records a denied capability use in the audit log (best effort: a failing store is logged).
pub(crate) async fn audit_denial(
    store: &Arc<dyn Store>,
    plugin: &LoadedPlugin,
    event_id: &str,
    place: &str,
    reason: &str,
) {
    let entry = crate::store::audit::AuditEntry::new(
        format!("plugin:{}", plugin.label()),
        "capability.denied",
        event_id,
        serde_json::json!({ "at": place, "attempted": reason }),
    );
    if let Err(e) = store.audit(vec![entry]).await {
        tracing::error!(error = %e, "cannot record a capability denial in the audit log");
    }
}

/// Records a refused OAuth credential in the audit log: an operator must re-authorize.
pub(crate) async fn audit_credential(store: &Arc<dyn Store>, plugin: &LoadedPlugin, event_id: &str, reason: &str) {
    let entry = crate::store::audit::AuditEntry::new(
        format!("plugin:{}", plugin.label()),
        "credential.refused",
        event_id,
        serde_json::json!({ "reason": reason }),
    );
    if let Err(e) = store.audit(vec![entry]).await {
        tracing::error!(error = %e, "cannot record a refused credential in the audit log");
    }
}

fn lookup(plugins: &PluginSet, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
    plugins
        .get(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("plugin `{name}` is not loaded"))
}
