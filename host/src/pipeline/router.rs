//! Router lanes: match routes, run transform chains, and commit each event's fan-out atomically.
//!
//! Events are spread over lanes by partition key, so one key is always handled by one lane, in
//! log order. A lane drains what is queued, runs the transforms, writes all the results in one
//! store call (one fsync), then hands new deliveries to sink workers and derived events back to
//! the lanes.

use super::metrics::Metrics;
use super::routing::Routing;
use super::shadow::{Observed, ShadowLog};
use crate::config::{RouteConfig, glob_match};
use crate::engine::emits::{self, Parent};
use crate::engine::{CallError, LoadedPlugin, bindings::PluginError, bindings::wit};
use crate::store::{DeliveryState, NewDeadLetter, NewDelivery, NewEvent, RouteCommit, Store, StoredEvent, now_us};
use crate::telemetry::trace::{self, EventTrace, Step};
use arc_swap::ArcSwap;
use kaunter_model::Event;
use opentelemetry::trace::SpanKind;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// How deep transforms may derive events from derived events before kaunter calls it a loop.
pub(crate) const MAX_DERIVATION_DEPTH: u8 = 8;
/// Most jobs a lane commits together.
const LANE_BATCH: usize = 512;
/// In-line retries of a transform that reports a transient failure.
const TRANSIENT_RETRIES: [u64; 3] = [20, 100, 500];

/// One event to route.
pub(crate) struct RouteJob {
    stored: StoredEvent,
    depth: u8,
    /// Only this route (replay of a transform failure); `None` for all matching routes.
    only_route: Option<String>,
}

impl RouteJob {
    pub(crate) fn from_stored(stored: StoredEvent, only_route: Option<String>) -> Self {
        Self {
            stored,
            depth: 0,
            only_route,
        }
    }
}

/// The lanes' senders.
#[derive(Clone)]
pub(crate) struct Router {
    lanes: Arc<Vec<mpsc::UnboundedSender<RouteJob>>>,
}

struct Lane {
    routing: Arc<ArcSwap<Routing>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
    router: Router,
}

impl Router {
    pub(crate) fn start(
        lanes: usize,
        routing: Arc<ArcSwap<Routing>>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        shadows: Arc<ShadowLog>,
    ) -> Router {
        let mut senders = Vec::with_capacity(lanes);
        let mut receivers = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            receivers.push(rx);
        }
        let router = Router {
            lanes: Arc::new(senders),
        };
        for rx in receivers {
            let lane = Lane {
                routing: routing.clone(),
                store: store.clone(),
                metrics: metrics.clone(),
                shadows: shadows.clone(),
                router: router.clone(),
            };
            tokio::spawn(lane.run(rx));
        }
        router
    }

    /// Queues an event on the lane of its partition key.
    pub(crate) fn dispatch(&self, job: RouteJob) {
        let mut h = DefaultHasher::new();
        job.stored.event.partition_key.hash(&mut h);
        let lane = (h.finish() % self.lanes.len() as u64) as usize;
        if self.lanes[lane].send(job).is_err() {
            tracing::error!("router lane stopped; the event stays unrouted in the log and is picked up on restart");
        }
    }
}

/// What running a route's chain produced for one event.
pub(crate) struct Routed {
    pub(crate) deliveries: Vec<NewDelivery>,
    pub(crate) derived: Vec<NewEvent>,
    pub(crate) dead_letters: Vec<NewDeadLetter>,
    /// Routes whose transforms passed the event on to no sink (a filter): recorded, so that
    /// `kaunter verify` can tell a deliberate drop from a loss.
    pub(crate) dropped_routes: Vec<String>,
}

impl Lane {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<RouteJob>) {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < LANE_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.route_batch(jobs).await;
        }
    }

    async fn route_batch(&self, jobs: Vec<RouteJob>) {
        // One table for the whole batch: a swap takes effect from the next batch.
        let routing = self.routing.load_full();
        let mut commits = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let chains = Chains {
                routing: &routing,
                store: &self.store,
                metrics: &self.metrics,
                shadows: Some(&self.shadows),
                dry_run: false,
            };
            let routed = chains
                .route_one(&job.stored, job.depth, job.only_route.as_deref())
                .await;
            commits.push(RouteCommit {
                trace: job.stored.trace.clone(),
                event_seq: job.stored.seq,
                event_id: job.stored.event.id.clone(),
                received_at_us: job.stored.received_at_us,
                derived: routed.derived,
                deliveries: routed.deliveries,
                dead_letters: routed.dead_letters,
                dropped_routes: routed.dropped_routes,
                redeliver: false,
            });
        }
        let depths: Vec<u8> = jobs.iter().map(|j| j.depth).collect();
        commit_and_hand_off(
            &self.store,
            &routing,
            &self.metrics,
            &self.router,
            commits,
            &depths,
            None,
        )
        .await;
        self.metrics.pending.fetch_sub(jobs.len() as i64, Ordering::Relaxed);
    }
}

/// Records routing outcomes (retrying while the store fails: the events stay unrouted in the
/// log until this succeeds), then hands new deliveries to their sinks' workers and derived
/// events (one level deeper than `depths[i]`) back to the lanes. A replay passes `replayed`:
/// every derived event, new or already in the log, is put there (with its depth) for the replay
/// to route again itself, instead of going to the lanes.
pub(crate) async fn commit_and_hand_off(
    store: &Arc<dyn Store>,
    routing: &Routing,
    metrics: &Metrics,
    router: &Router,
    commits: Vec<RouteCommit>,
    depths: &[u8],
    mut replayed: Option<&mut Vec<(StoredEvent, u8)>>,
) {
    // Shared, not copied: a failed commit is retried with the same batch.
    let commits = Arc::new(commits);
    let committed = loop {
        match store.commit_routes(commits.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, events = commits.len(), "cannot record routing; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    for commit in commits.iter() {
        for letter in &commit.dead_letters {
            metrics.count_dead_letter(letter.sink.as_deref(), &commit.event_id);
        }
    }
    for ((depth, commit), result) in depths.iter().zip(commits.iter()).zip(committed) {
        // New rows go to their workers with their bodies; reopened ones (a replay) are older than
        // what a worker has read, so it reads the log again from there. Parked ones wait for an
        // operator.
        for d in result.deliveries {
            if d.state == DeliveryState::Parked {
                continue;
            }
            match routing.sinks.get(&d.sink) {
                Some(entry) if commit.redeliver => entry.signal.rescan_after(d.id - 1),
                Some(entry) => entry.signal.push(d),
                None => tracing::error!(sink = %d.sink, "route names a sink without a worker"),
            }
        }
        for (new, appended) in commit.derived.iter().zip(result.derived) {
            let stored = StoredEvent {
                seq: appended.seq,
                event: new.event.clone(),
                received_at_us: new.received_at_us,
                parent_seq: new.parent_seq,
                trace: new.trace.clone(),
            };
            if let Some(replayed) = replayed.as_deref_mut() {
                replayed.push((stored, depth + 1));
                continue;
            }
            if appended.duplicate {
                continue;
            }
            metrics.derived.fetch_add(1, Ordering::Relaxed);
            metrics.pending.fetch_add(1, Ordering::Relaxed);
            router.dispatch(RouteJob {
                stored,
                depth: depth + 1,
                only_route: None,
            });
        }
    }
}

/// Runs routes' transform chains for events, against one routing table. Used by the router
/// lanes and by historic replays (which may swap in another version and capture side effects).
pub(crate) struct Chains<'a> {
    pub(crate) routing: &'a Routing,
    pub(crate) store: &'a Arc<dyn Store>,
    pub(crate) metrics: &'a Metrics,
    /// Where shadow comparisons go; `None` runs no shadows (replays).
    pub(crate) shadows: Option<&'a Arc<ShadowLog>>,
    /// A dry run: failures are reported in the result only (no failure counters, no audit).
    pub(crate) dry_run: bool,
}

impl Chains<'_> {
    /// Runs every matching route (or only `only_route`) for one event.
    pub(crate) async fn route_one(&self, stored: &StoredEvent, depth: u8, only_route: Option<&str>) -> Routed {
        let event = &stored.event;
        let store_name = event.store().unwrap_or("");
        let mut out = Routed {
            deliveries: Vec::new(),
            derived: Vec::new(),
            dead_letters: Vec::new(),
            dropped_routes: Vec::new(),
        };
        for route in &self.routing.routes {
            if only_route.is_some_and(|only| only != route.name) {
                continue;
            }
            if !route.types.iter().any(|t| glob_match(t, &event.ty))
                || !route.stores.iter().any(|s| glob_match(s, store_name))
            {
                continue;
            }
            self.run_chain(route, stored, depth, store_name, &mut out).await;
        }
        out
    }

    async fn run_chain(
        &self,
        route: &RouteConfig,
        stored: &StoredEvent,
        depth: u8,
        store_name: &str,
        out: &mut Routed,
    ) {
        let original = &stored.event;
        let resolved: Option<Vec<Arc<LoadedPlugin>>> = route
            .transforms
            .iter()
            .map(|t| self.routing.resolve(t, &route.name, store_name).cloned())
            .collect();
        let Some(transforms) = resolved else {
            out.dead_letters.push(NewDeadLetter {
                event_seq: stored.seq,
                sink: None,
                route: route.name.clone(),
                plugin: route.transforms.join(","),
                plugin_version: String::new(),
                error: format!("route `{}` names a transform that is not loaded", route.name),
                attempts: 1,
            });
            return;
        };
        let mut current = vec![original.clone()];
        let mut handled_by = Vec::new();
        // The event's trace (none on a dry run), and the span its derived events hang under.
        let trace = stored.trace.as_ref().filter(|_| !self.dry_run);
        let mut derived_under = None;
        for plugin in &transforms {
            let shadow = self.shadows.and_then(|log| {
                let slot = self.routing.plugins.get(&plugin.name)?;
                Some((slot.shadow.clone()?, log.clone()))
            });
            let mut next = Vec::new();
            for event in current {
                let parent = Parent::of(&event);
                let traced = trace.map(|t| (t, original.id.as_str(), route.name.as_str()));
                let (result, span) = call_transform(plugin, event, shadow.clone(), traced).await;
                derived_under = span.or(derived_under);
                let result = result.and_then(|events| {
                    emits::check_transform_outputs(&plugin.name, plugin.emit_grants(), &parent, events)
                        .map_err(CallError::Denied)
                });
                match result {
                    Ok(checked) => {
                        if !checked.refused.is_empty() {
                            self.refuse(plugin, stored, &route.name, &checked.refused, out).await;
                        }
                        next.extend(checked.events);
                    }
                    Err(failure) => {
                        if !self.dry_run {
                            self.metrics
                                .count_failure(&plugin.label(), failure.kind(), &original.id);
                        }
                        if let CallError::Denied(reason) = &failure
                            && !self.dry_run
                        {
                            crate::store::audit::audit_denial(
                                self.store,
                                &plugin.label(),
                                &original.id,
                                &route.name,
                                reason,
                            )
                            .await;
                        }
                        let error = format!("{failure} ({})", plugin.label());
                        tracing::warn!(route = %route.name, plugin = %plugin.label(), event = %original.id, source = %original.source, %error, "transform failed; dead-lettered");
                        out.dead_letters.push(NewDeadLetter {
                            event_seq: stored.seq,
                            sink: None,
                            route: route.name.clone(),
                            plugin: plugin.name.clone(),
                            plugin_version: plugin.version.clone(),
                            error,
                            attempts: 1,
                        });
                        return;
                    }
                }
            }
            handled_by.push(plugin.label());
            current = next;
        }
        let handled_by = handled_by.join(",");
        let derived_before = out.derived.len();
        let mut mapped = None;
        for event in current {
            if mapped.is_none() && event.source == original.source && event.id == original.id {
                mapped = Some(event);
            } else if let Err(problem) = check_derived(&event, depth) {
                out.dead_letters
                    .push(chain_output_letter(stored, route, &transforms, problem));
            } else if !out
                .derived
                .iter()
                .any(|d| d.event.source == event.source && d.event.id == event.id)
            {
                let context = derived_under
                    .clone()
                    .or_else(|| trace.map(|t| t.child(crate::telemetry::trace::new_span_id())));
                out.derived
                    .push(NewEvent::new(event, Some(stored.seq), now_us()).traced(context));
            }
        }
        let body = match mapped {
            None => {
                out.dropped_routes.push(route.name.clone());
                None
            }
            Some(mapped) => match kaunter_model::validate(&mapped) {
                Ok(()) => Some(mapped.to_json_bytes()),
                Err(errors) => {
                    let problem = describe_invalid(&mapped, &errors);
                    out.dead_letters
                        .push(chain_output_letter(stored, route, &transforms, problem));
                    None
                }
            },
        };
        // The output limit, checked on the bodies that will be stored anyway (no extra encoding),
        // whether or not the transforms passed their input on: what they derived counts too.
        let produced = body.as_ref().map_or(0, Vec::len)
            + out.derived[derived_before..]
                .iter()
                .map(|d| d.body.len())
                .sum::<usize>();
        if let Some(max) = transforms.iter().map(|t| t.limits().max_output_bytes).min()
            && produced > max
        {
            out.derived.truncate(derived_before);
            let problem = format!(
                "limit exceeded: the transforms of route `{}` produced {produced} bytes of events for one event; the limit is {max} (limits.max_output_bytes)",
                route.name
            );
            out.dead_letters
                .push(chain_output_letter(stored, route, &transforms, problem));
            return;
        }
        let Some(body) = body else { return };
        for sink in &route.sinks {
            if out.deliveries.iter().any(|d| &d.sink == sink) {
                continue;
            }
            // The original key, whatever the transforms did: ordering follows the lane, which
            // was chosen by the original key.
            out.deliveries.push(NewDelivery {
                sink: sink.clone(),
                route: route.name.clone(),
                partition_key: original.partition_key.clone(),
                body: body.clone(),
                handled_by: handled_by.clone(),
                max_backlog: self.routing.sinks.get(sink).map_or(0, |s| s.config.max_backlog),
            });
        }
    }
}

impl Chains<'_> {
    /// Dead-letters (once for the call) the derived events a transform may not emit, and audits
    /// the attempt as a denied capability.
    async fn refuse(
        &self,
        plugin: &LoadedPlugin,
        stored: &StoredEvent,
        route: &str,
        refused: &[String],
        out: &mut Routed,
    ) {
        let reason = emits::describe_refused(&plugin.name, refused, emits::TRANSFORM_REST);
        if !self.dry_run {
            self.metrics.count_failure(&plugin.label(), "denied", &stored.event.id);
            crate::store::audit::audit_denial(self.store, &plugin.label(), &stored.event.id, route, &reason).await;
        }
        tracing::warn!(route = %route, plugin = %plugin.label(), event = %stored.event.id, source = %stored.event.source, %reason, "transform emitted events it may not; refused");
        out.dead_letters.push(NewDeadLetter {
            event_seq: stored.seq,
            sink: None,
            route: route.to_owned(),
            plugin: plugin.name.clone(),
            plugin_version: plugin.version.clone(),
            error: format!("capability denied: {reason} ({})", plugin.label()),
            attempts: 1,
        });
    }
}

/// A dead letter for what a route's chain as a whole produced (attributed to every transform in
/// it: names and versions, comma separated, in chain order).
fn chain_output_letter(
    stored: &StoredEvent,
    route: &RouteConfig,
    transforms: &[Arc<LoadedPlugin>],
    error: String,
) -> NewDeadLetter {
    let names: Vec<&str> = transforms.iter().map(|t| t.name.as_str()).collect();
    let versions: Vec<&str> = transforms.iter().map(|t| t.version.as_str()).collect();
    NewDeadLetter {
        event_seq: stored.seq,
        sink: None,
        route: route.name.clone(),
        plugin: names.join(","),
        plugin_version: versions.join(","),
        error,
        attempts: 1,
    }
}

/// Runs one transform on one event, retrying transient failures a few times in line. With a
/// shadow, the shadow version then gets the same input (in its own task, side effects captured)
/// and the two results are compared.
/// Calls a transform (retrying a transient failure in line). With `trace` (the event's context,
/// its id and the route), records the call's span; returns the span's context when it was
/// recorded.
async fn call_transform(
    plugin: &Arc<LoadedPlugin>,
    event: Event,
    shadow: Option<(Arc<LoadedPlugin>, Arc<ShadowLog>)>,
    trace: Option<(&EventTrace, &str, &str)>,
) -> (Result<Vec<Event>, CallError>, Option<EventTrace>) {
    let input: wit::Event = event.into();
    let mut attempt = 0;
    loop {
        let started = std::time::SystemTime::now();
        let (result, report) = plugin.handle_reported(&input).await;
        let span = trace.and_then(|(context, event_id, route)| {
            let mut step = Step::new(format!("transform {}", plugin.label()), SpanKind::Internal, started)
                .attr("kaunter.route", route.to_owned())
                .attr("kaunter.plugin", plugin.name.clone())
                .attr("kaunter.plugin.version", plugin.version.clone())
                .attr("kaunter.call.peak_memory_bytes", report.peak_memory_bytes as i64)
                .attr("kaunter.call.attempt", attempt as i64 + 1);
            if let Some(fuel) = report.fuel_used {
                step = step.attr("kaunter.call.fuel", fuel as i64);
            }
            match &result {
                Ok(events) => {
                    step = step
                        .attr("kaunter.call.outcome", if events.is_empty() { "dropped" } else { "ok" })
                        .attr("kaunter.call.output_events", events.len() as i64);
                }
                Err(e) => {
                    step = step.attr("kaunter.call.outcome", e.kind());
                    step.error = Some(e.to_string());
                }
            }
            trace::record(context, event_id, step)
        });
        match result {
            Err(CallError::Plugin(PluginError::Transient(m))) if attempt < TRANSIENT_RETRIES.len() => {
                tracing::debug!(plugin = %plugin.label(), reason = %m, "transient transform failure; retrying in line");
                tokio::time::sleep(Duration::from_millis(TRANSIENT_RETRIES[attempt])).await;
                attempt += 1;
            }
            result => {
                let result: Result<Vec<Event>, CallError> =
                    result.map(|events| events.into_iter().map(Event::from).collect());
                if let Some((shadow, log)) = shadow
                    && let Some(permit) = log.permit(plugin, &shadow)
                {
                    let live = Observed::of(result.clone().map(|e| events_json(&e)), report.requests);
                    let plugin = plugin.clone();
                    let clock = report.clock_reads;
                    tokio::spawn(async move {
                        let _permit = permit;
                        let (result, report) = shadow.handle_replaying(&input, clock).await;
                        let result = result.map(|e| events_json(&e.into_iter().map(Event::from).collect::<Vec<_>>()));
                        log.record(&plugin, &shadow, &input.id, live, Observed::of(result, report.requests));
                    });
                }
                return (result, span);
            }
        }
    }
}

/// Events as JSON, for shadow comparisons and dry runs.
pub(crate) fn events_json(events: &[Event]) -> serde_json::Value {
    serde_json::json!({ "events": events.iter().map(Event::to_json).collect::<Vec<_>>() })
}

/// A derived event must be valid like any ingested one, and derivation must not loop.
fn check_derived(event: &Event, depth: u8) -> Result<(), String> {
    if depth >= MAX_DERIVATION_DEPTH {
        return Err(format!(
            "derived event {} is {MAX_DERIVATION_DEPTH} derivations deep; transforms are deriving in a loop",
            event.id
        ));
    }
    kaunter_model::validate(event).map_err(|errors| describe_invalid(event, &errors))
}

fn describe_invalid(event: &Event, errors: &[kaunter_model::EventError]) -> String {
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("transform produced an invalid event {}: {}", event.id, list.join("; "))
}
