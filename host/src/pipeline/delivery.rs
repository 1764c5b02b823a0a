//! One delivery worker per sink: ordered per partition key, parallel across keys, durable retries.
//!
//! The worker keeps a queue per partition key; only the head of a queue is ever in flight, so a
//! key's events reach the sink in log order. Up to `concurrency` heads run at once. Each attempt's
//! outcome is written to the store before the worker moves on: delivered, retry at a time
//! (exponential backoff with jitter, never sooner than the connector's hint), or dead-lettered
//! (rejected, trapped, or past max attempts or age). `throttled` backs off the whole sink;
//! `disable` pauses it until resumed.

use super::metrics::Metrics;
use super::routing::Routing;
use super::shadow::{Observed, ShadowLog};
use crate::config::SinkConfig;
use crate::engine::bindings::{DeliveryContext, DeliveryError};
use crate::engine::{CallError, LoadedPlugin};
use crate::store::{Delivery, DeliveryState, DeliveryUpdate, NewDeadLetter, Store, now_ms, now_us};
use arc_swap::ArcSwap;
use kaunter_model::Event;
use rand::Rng as _;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

/// Sends deliveries to a sink's worker.
#[derive(Clone)]
pub(crate) struct DeliveryTx(mpsc::UnboundedSender<Delivery>);

impl DeliveryTx {
    pub(crate) fn push(&self, d: Delivery) {
        if self.0.send(d).is_err() {
            tracing::error!("delivery worker stopped; the delivery stays open in the log and resumes on restart");
        }
    }
}

/// Control of a running sink worker.
pub(crate) struct SinkHandle {
    tx: DeliveryTx,
    paused: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl SinkHandle {
    pub(crate) fn sender(&self) -> DeliveryTx {
        self.tx.clone()
    }

    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}

/// What an attempt came to, after it was recorded.
enum Outcome {
    /// Delivered or dead-lettered: the key's next event may go.
    Done,
    /// Scheduled again at this time (ms).
    RetryAt(i64),
}

struct Finished {
    key: String,
    outcome: Outcome,
    attempts: u32,
    throttle_until: Option<i64>,
    disable: bool,
}

struct Worker {
    /// The sink's settings as of the latest routing table that has it.
    sink: Arc<SinkConfig>,
    routing: Arc<ArcSwap<Routing>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
    queues: HashMap<String, VecDeque<Delivery>>,
    ready: VecDeque<String>,
    timers: BinaryHeap<Reverse<(i64, String)>>,
    in_flight: JoinSet<Finished>,
    throttled_until: i64,
    paused: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

/// Starts the worker of one sink. Its settings and connector version are read from the current
/// routing table for every attempt.
pub(crate) fn spawn(
    name: String,
    routing: Arc<ArcSwap<Routing>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
) -> SinkHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let paused = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let worker = Worker {
        sink: Arc::new(SinkConfig {
            name,
            connector: String::new(),
            concurrency: 1,
            max_attempts: 1,
            max_age_secs: 0,
            backoff_base_ms: 1,
            backoff_max_ms: 1,
        }),
        routing,
        store,
        metrics,
        shadows,
        queues: HashMap::new(),
        ready: VecDeque::new(),
        timers: BinaryHeap::new(),
        in_flight: JoinSet::new(),
        throttled_until: 0,
        paused: paused.clone(),
        wake: wake.clone(),
    };
    tokio::spawn(worker.run(rx));
    SinkHandle {
        tx: DeliveryTx(tx),
        paused,
        wake,
    }
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Delivery>) {
        loop {
            self.start_ready();
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let wait_until = match (next_timer, self.throttled_until > now_ms() && !self.ready.is_empty()) {
                (Some(t), true) => Some(t.min(self.throttled_until)),
                (Some(t), false) => Some(t),
                (None, true) => Some(self.throttled_until),
                (None, false) => None,
            };
            let sleep = async {
                match wait_until {
                    Some(at) => tokio::time::sleep(Duration::from_millis((at - now_ms()).max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = rx.recv() => match received {
                    Some(d) => self.enqueue(d),
                    None if self.in_flight.is_empty() => return,
                    None => {}
                },
                Some(joined) = self.in_flight.join_next(), if !self.in_flight.is_empty() => match joined {
                    Ok(finished) => self.finish(finished),
                    Err(e) => tracing::error!(sink = %self.sink.name, error = %e, "delivery task failed"),
                },
                () = sleep => self.fire_timers(),
                () = self.wake.notified() => {}
            }
        }
    }

    fn enqueue(&mut self, d: Delivery) {
        let key = d.partition_key.clone();
        let due = d.next_attempt_at_ms.unwrap_or(0);
        let queue = self.queues.entry(key.clone()).or_default();
        queue.push_back(d);
        if queue.len() == 1 {
            self.schedule(key, due);
        }
    }

    fn schedule(&mut self, key: String, due: i64) {
        if due <= now_ms() {
            self.ready.push_back(key);
        } else {
            self.timers.push(Reverse((due, key)));
        }
    }

    fn fire_timers(&mut self) {
        let now = now_ms();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, key))) = self.timers.pop() {
                self.ready.push_back(key);
            }
        }
    }

    fn start_ready(&mut self) {
        if let Some(entry) = self.routing.load().sinks.get(&self.sink.name)
            && !Arc::ptr_eq(&entry.config, &self.sink)
        {
            self.sink = entry.config.clone();
        }
        if self.paused.load(Ordering::SeqCst) || self.throttled_until > now_ms() {
            return;
        }
        while self.in_flight.len() < self.sink.concurrency {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            let Some(head) = self.queues.get(&key).and_then(|q| q.front()).cloned() else {
                continue;
            };
            let attempt = Attempt {
                sink: self.sink.clone(),
                routing: self.routing.load_full(),
                store: self.store.clone(),
                metrics: self.metrics.clone(),
                shadows: self.shadows.clone(),
            };
            self.in_flight.spawn(attempt.run(key, head));
        }
    }

    fn finish(&mut self, f: Finished) {
        if let Some(until) = f.throttle_until {
            self.throttled_until = self.throttled_until.max(until);
        }
        if f.disable && !self.paused.swap(true, Ordering::SeqCst) {
            tracing::error!(sink = %self.sink.name, "sink paused: the endpoint answered 410 Gone; resume it with POST /v1/admin/sinks/{}/resume once fixed", self.sink.name);
        }
        match f.outcome {
            Outcome::Done => {
                self.metrics.pending.fetch_sub(1, Ordering::Relaxed);
                let next_due = match self.queues.get_mut(&f.key) {
                    Some(queue) => {
                        queue.pop_front();
                        queue.front().map(|d| d.next_attempt_at_ms.unwrap_or(0))
                    }
                    None => None,
                };
                match next_due {
                    Some(due) => self.schedule(f.key, due),
                    None => {
                        self.queues.remove(&f.key);
                    }
                }
            }
            Outcome::RetryAt(at) => {
                if let Some(head) = self.queues.get_mut(&f.key).and_then(|q| q.front_mut()) {
                    head.attempts = f.attempts;
                    head.next_attempt_at_ms = Some(at);
                    head.state = DeliveryState::Retrying;
                }
                self.schedule(f.key, at);
            }
        }
    }
}

/// One attempt, run as its own task, on the connector version the routing table picks for the
/// event's store and route at the time the attempt starts.
struct Attempt {
    sink: Arc<SinkConfig>,
    routing: Arc<Routing>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
}

impl Attempt {
    async fn run(self, key: String, d: Delivery) -> Finished {
        let attempts = d.attempts + 1;
        let event = Event::from_stored(&d.body);
        let context = DeliveryContext {
            idempotency_key: match &event {
                Ok(event) => crate::store::idempotency_key(&event.source, &event.id, &self.sink.name),
                Err(_) => format!("{}:{}", d.event_id, self.sink.name),
            },
            sink: self.sink.name.clone(),
            attempt: attempts,
        };
        let store_name = event.as_ref().ok().and_then(Event::store).unwrap_or("");
        let slot = self.routing.plugins.get(&self.sink.connector);
        let Some(plugin) = slot.map(|s| s.pick(&self.routing, &d.route, store_name).clone()) else {
            tracing::error!(sink = %self.sink.name, connector = %self.sink.connector, "the sink's connector is not loaded; retrying later");
            return self.not_loaded(key, attempts);
        };
        let shadow = slot.and_then(|s| s.shadow.clone());
        let result = match event {
            Ok(event) => {
                let input = event.into();
                let (result, report) = plugin.deliver_reported(&input, &context).await;
                if let Some(shadow) = shadow
                    && let Some(permit) = self.shadows.permit(&plugin, &shadow)
                {
                    let live = Observed::of(delivered_json(&result), report.requests);
                    let (log, live_plugin) = (self.shadows.clone(), plugin.clone());
                    let clock = report.clock_reads;
                    tokio::spawn(async move {
                        let _permit = permit;
                        let (result, report) = shadow.deliver_replaying(&input, &context, clock).await;
                        let observed = Observed::of(delivered_json(&result), report.requests);
                        log.record(&live_plugin, &shadow, &input.id, live, observed);
                    });
                }
                result.map(|_| ())
            }
            Err(e) => Err(CallError::Delivery(DeliveryError::Rejected(format!(
                "stored event unreadable: {e}"
            )))),
        };
        if let Err(e) = &result
            && !matches!(e, CallError::Delivery(DeliveryError::ConflictIsSuccess(_)))
        {
            self.metrics.count_failure(&plugin.label(), e.kind());
        }
        let mut throttle_until = None;
        let mut disable = false;
        let now = now_ms();
        let (retry_hint, error) = match result {
            Ok(()) | Err(CallError::Delivery(DeliveryError::ConflictIsSuccess(_))) => {
                return self.record_delivered(key, &d, attempts, &plugin).await;
            }
            Err(CallError::Credential(reason)) => {
                super::audit_credential(&self.store, &plugin, &d.event_id, &reason).await;
                (None, format!("credential refused: {reason}"))
            }
            Err(CallError::Denied(reason)) => {
                super::audit_denial(&self.store, &plugin, &d.event_id, &self.sink.name, &reason).await;
                (None, format!("capability denied: {reason}"))
            }
            Err(CallError::Delivery(DeliveryError::Retry(h))) => (Some(h.after_ms), h.reason),
            Err(CallError::Delivery(DeliveryError::Throttled(h))) => {
                let wait = h.after_ms.unwrap_or_else(|| backoff(&self.sink, attempts));
                throttle_until = Some(now + wait as i64);
                (Some(Some(wait)), format!("throttled: {}", h.reason))
            }
            Err(CallError::Delivery(DeliveryError::Disable(reason))) => {
                disable = true;
                (Some(None), format!("sink disabled: {reason}"))
            }
            // Waiting on the target can outlast the deadline; that is worth another attempt.
            Err(e @ (CallError::Instantiate(_) | CallError::Deadline(_))) => (Some(None), e.to_string()),
            Err(e) => (None, e.to_string()),
        };
        let age_secs = ((now_us() - d.received_at_us).max(0) / 1_000_000) as u64;
        let give_up = match retry_hint {
            None => Some(error.clone()),
            Some(_) if attempts >= self.sink.max_attempts => {
                Some(format!("gave up after {attempts} attempts; last error: {error}"))
            }
            Some(_) if age_secs >= self.sink.max_age_secs => Some(format!(
                "gave up: event is {age_secs} s old (max_age_secs {}); last error: {error}",
                self.sink.max_age_secs
            )),
            Some(_) => None,
        };
        let outcome = match give_up {
            Some(reason) => {
                let letter = NewDeadLetter {
                    event_seq: d.event_seq,
                    sink: Some(self.sink.name.clone()),
                    route: d.route.clone(),
                    plugin: plugin.name.clone(),
                    plugin_version: plugin.version.clone(),
                    error: reason,
                    attempts,
                };
                tracing::warn!(sink = %self.sink.name, event = %d.event_id, error = %letter.error, "delivery dead-lettered");
                self.persist(DeliveryUpdate::DeadLetter { id: d.id, letter }).await;
                self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                Outcome::Done
            }
            None => {
                let hinted = retry_hint.flatten().unwrap_or(0);
                let wait = if disable {
                    0
                } else {
                    backoff(&self.sink, attempts).max(hinted)
                };
                let at = now + wait as i64;
                tracing::debug!(sink = %self.sink.name, event = %d.event_id, attempts, wait_ms = wait, %error, "delivery failed; retry scheduled");
                self.persist(DeliveryUpdate::Retry {
                    id: d.id,
                    attempts,
                    next_attempt_at_ms: at,
                    error,
                    connector_version: plugin.version.clone(),
                })
                .await;
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                Outcome::RetryAt(at)
            }
        };
        Finished {
            key,
            outcome,
            attempts,
            throttle_until,
            disable,
        }
    }

    /// The connector is missing from the routing table (a config reload removed it while
    /// deliveries were queued): nothing is recorded, and the key is tried again later.
    fn not_loaded(&self, key: String, attempts: u32) -> Finished {
        Finished {
            key,
            outcome: Outcome::RetryAt(now_ms() + backoff(&self.sink, attempts) as i64),
            attempts: attempts - 1,
            throttle_until: None,
            disable: false,
        }
    }

    async fn record_delivered(&self, key: String, d: &Delivery, attempts: u32, plugin: &LoadedPlugin) -> Finished {
        self.persist(DeliveryUpdate::Delivered {
            id: d.id,
            attempts,
            connector_version: plugin.version.clone(),
        })
        .await;
        self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .record_latency_us((now_us() - d.received_at_us).max(0) as u64);
        Finished {
            key,
            outcome: Outcome::Done,
            attempts,
            throttle_until: None,
            disable: false,
        }
    }

    /// Writes the outcome; if the store is failing, keeps trying (the outcome must be on disk
    /// before the worker moves on, or ordering and counts would be wrong after a restart).
    async fn persist(&self, update: DeliveryUpdate) {
        loop {
            match self.store.update_deliveries(vec![update.clone()]).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(sink = %self.sink.name, error = %e, "cannot record delivery outcome; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// A delivery result as JSON, for shadow comparisons.
fn delivered_json<T>(result: &Result<T, CallError>) -> Result<serde_json::Value, CallError> {
    result
        .as_ref()
        .map(|_| serde_json::json!({ "delivered": true }))
        .map_err(Clone::clone)
}

/// Exponential backoff with jitter: `base × 2^(attempt-1)`, capped, then scaled by 50–100 %.
fn backoff(sink: &SinkConfig, attempts: u32) -> u64 {
    let exp = sink
        .backoff_base_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    let capped = exp.min(sink.backoff_max_ms.max(sink.backoff_base_ms));
    let jitter = rand::rng().random_range(0.5..=1.0);
    ((capped as f64) * jitter) as u64
}
