//! One delivery worker per sink: ordered per partition key, parallel across keys, durable retries,
//! its queue on disk.
//!
//! The sink's queue is the log: its open deliveries, in row order. The worker holds a bounded
//! window of them in memory (`window` rows; of one key at most a quarter of that, and at most
//! [`KEY_WINDOW`]) and reads more as they finish, so memory does not grow with the backlog and a
//! restart starts delivering after one read. Routing hands each new row over with its body; the
//! worker keeps it when nothing older of the sink waits in the log, else drops it and reads it
//! later, in order. Replays and unparking say from which row to read again.
//!
//! Only the head of a key's queue is ever in flight, so a key's events reach the sink in log order;
//! up to `concurrency` heads run at once. Each attempt's outcome is written to the store before the
//! worker moves on: delivered, retry at a time (exponential backoff with jitter, never sooner than
//! the connector's hint), or dead-lettered (rejected, trapped, or past max attempts or age).
//! `throttled` backs off the whole sink; `disable` pauses it until resumed.
//!
//! A key with more open rows than its share of the window is read on its own (by key) once its
//! rows in memory are done, so one busy or stuck key never fills the window and stalls the others.

use super::metrics::Metrics;
use super::routing::Routing;
use super::shadow::{Observed, ShadowLog};
use super::spans::AttemptSpan;
use crate::config::SinkConfig;
use crate::engine::bindings::{DeliveryContext, DeliveryError};
use crate::engine::{CallError, LoadedPlugin};
use crate::store::{AttemptFailure, Delivery, DeliveryState, DeliveryUpdate, NewDeadLetter, Store, now_ms, now_us};
use crate::telemetry::prom::{SinkOutcome, metrics as prom};
use crate::telemetry::trace;
use arc_swap::ArcSwap;
use kaunter_model::Event;
use rand::Rng as _;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Most rows of one partition key a worker holds in memory (and at most a quarter of its window).
pub(crate) const KEY_WINDOW: usize = 32;
/// Rows read from the log at a time.
const PAGE: usize = 256;

/// What routing, replays and operators tell a sink's worker, and what it reports back.
#[derive(Default)]
pub(crate) struct Signals {
    wake: Notify,
    /// Rows just committed, handed over with their bodies so the worker need not read them back;
    /// taken only while nothing else is waiting in the log, else dropped (the log has them).
    inbox: Mutex<Vec<Delivery>>,
    /// Rows after this one were reopened (replays, unpark): read from here.
    rescan_from: Mutex<Option<i64>>,
    paused: AtomicBool,
    /// The sink is no longer configured: start nothing new, stop once attempts in flight end.
    stopped: AtomicBool,
    /// Rows held in memory now (queued or in flight).
    held: AtomicUsize,
}

/// Tells a sink's worker about work in the log.
#[derive(Clone)]
pub(crate) struct SinkSignal(Arc<Signals>);

impl SinkSignal {
    /// A delivery row just committed (new, not reopened).
    pub(crate) fn push(&self, d: Delivery) {
        if let Ok(mut inbox) = self.0.inbox.lock() {
            inbox.push(d);
        }
        self.0.wake.notify_one();
    }

    /// Deliveries after row `after_id` were reopened: read the log from there (from the worker's
    /// own position, if that is older).
    pub(crate) fn rescan_after(&self, after_id: i64) {
        if let Ok(mut from) = self.0.rescan_from.lock() {
            *from = Some(from.map_or(after_id, |f| f.min(after_id)));
        }
        self.0.wake.notify_one();
    }
}

/// Control of a running sink worker; dropping it stops the worker once its attempts in flight end.
pub(crate) struct SinkHandle {
    signals: Arc<Signals>,
    window: usize,
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        self.signals.stopped.store(true, Ordering::SeqCst);
        self.signals.wake.notify_one();
    }
}

impl SinkHandle {
    pub(crate) fn signal(&self) -> SinkSignal {
        SinkSignal(self.signals.clone())
    }

    pub(crate) fn resume(&self) {
        self.signals.paused.store(false, Ordering::SeqCst);
        self.signals.wake.notify_one();
    }

    pub(crate) fn pause(&self) {
        self.signals.paused.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.signals.paused.load(Ordering::SeqCst)
    }

    /// Rows in memory now, and the most the worker holds.
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.signals.held.load(Ordering::SeqCst), self.window)
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

/// The rows of one partition key in memory, in row order; the head may be in flight.
#[derive(Default)]
struct KeyQueue {
    rows: VecDeque<Delivery>,
    in_flight: bool,
    /// More of this key's rows are in the log than in memory: the scan skips them, and they are
    /// read by key once these are done.
    overflow: bool,
}

struct Worker {
    /// The sink's settings as of the latest routing table that has it.
    sink: Arc<SinkConfig>,
    window: usize,
    /// Most rows of one key in memory.
    key_window: usize,
    routing: Arc<ArcSwap<Routing>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
    signals: Arc<Signals>,
    keys: HashMap<String, KeyQueue>,
    /// Ids of the rows in memory.
    known: HashSet<i64>,
    /// Where the next read of the log starts (lowered by rescans).
    cursor: i64,
    /// The highest row any read has looked at (never lowered): a handed-over row at or below it
    /// may have been read already, so the hand-over is dropped and a read finds the row.
    seen_upto: i64,
    /// The log holds no open row after `cursor` that is not in memory or being handed over.
    caught_up: bool,
    /// Busy keys whose rows in memory are done, to read by key.
    key_loads: VecDeque<String>,
    /// After a failed read, when to try again (ms).
    read_again_at: i64,
    ready: VecDeque<String>,
    timers: BinaryHeap<Reverse<(i64, String)>>,
    in_flight: JoinSet<Finished>,
    throttled_until: i64,
}

/// Starts the worker of one sink, holding at most `window` of its deliveries in memory. Its
/// settings and connector version are read from the current routing table for every attempt.
pub(crate) fn spawn(
    name: String,
    window: usize,
    routing: Arc<ArcSwap<Routing>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shadows: Arc<ShadowLog>,
) -> SinkHandle {
    let signals = Arc::new(Signals::default());
    let window = window.max(1);
    let worker = Worker {
        sink: Arc::new(SinkConfig {
            name,
            connector: String::new(),
            concurrency: 1,
            max_attempts: 1,
            max_age_secs: 0,
            backoff_base_ms: 1,
            backoff_max_ms: 1,
            window,
            max_backlog: 0,
            freshness_threshold_secs: 60,
        }),
        window,
        key_window: (window / 4).clamp(1, KEY_WINDOW),
        routing,
        store,
        metrics,
        shadows,
        signals: signals.clone(),
        keys: HashMap::new(),
        known: HashSet::new(),
        cursor: 0,
        seen_upto: 0,
        caught_up: false,
        key_loads: VecDeque::new(),
        read_again_at: 0,
        ready: VecDeque::new(),
        timers: BinaryHeap::new(),
        in_flight: JoinSet::new(),
        throttled_until: 0,
    };
    tokio::spawn(worker.run());
    SinkHandle { signals, window }
}

impl Worker {
    async fn run(mut self) {
        loop {
            let stopped = self.signals.stopped.load(Ordering::SeqCst);
            if stopped && self.in_flight.is_empty() {
                return;
            }
            self.take_signals();
            if !stopped {
                self.refill().await;
                self.start_ready();
            }
            self.signals.held.store(self.known.len(), Ordering::SeqCst);
            let wait_until = self.next_wake();
            let sleep = async {
                match wait_until {
                    Some(at) => tokio::time::sleep(Duration::from_millis((at - now_ms()).max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(joined) = self.in_flight.join_next(), if !self.in_flight.is_empty() => match joined {
                    Ok(finished) => self.finish(finished),
                    Err(e) => tracing::error!(sink = %self.sink.name, error = %e, "delivery task failed"),
                },
                () = sleep => self.fire_timers(),
                () = self.signals.wake.notified() => {}
            }
        }
    }

    /// The earliest of: the next retry timer, the end of a throttle with work ready, and the next
    /// read after a failed one.
    fn next_wake(&self) -> Option<i64> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let throttle = (self.throttled_until > now_ms() && !self.ready.is_empty()).then_some(self.throttled_until);
        let read = (self.read_again_at > now_ms() && (!self.caught_up || !self.key_loads.is_empty()))
            .then_some(self.read_again_at);
        [timer, throttle, read].into_iter().flatten().min()
    }

    fn take_signals(&mut self) {
        if let Some(from) = self.signals.rescan_from.lock().ok().and_then(|mut f| f.take()) {
            self.cursor = self.cursor.min(from);
            self.caught_up = false;
        }
        let handed = self
            .signals
            .inbox
            .lock()
            .map(|mut i| std::mem::take(&mut *i))
            .unwrap_or_default();
        for d in handed {
            self.take_handed(d);
        }
    }

    /// Keeps a row routing handed over, when that cannot change the order or the count: it was
    /// not read already, and nothing older of the sink waits in the log. Otherwise it is dropped,
    /// and the next read of the log finds it.
    fn take_handed(&mut self, d: Delivery) {
        if d.id <= self.seen_upto || self.known.contains(&d.id) {
            return;
        }
        if !self.caught_up {
            return;
        }
        if self.room() == 0 {
            self.caught_up = false;
            return;
        }
        let queue = self.keys.entry(d.partition_key.clone()).or_default();
        if queue.overflow {
            return;
        }
        if queue.rows.len() >= self.key_window {
            queue.overflow = true;
            return;
        }
        self.add(d);
    }

    fn room(&self) -> usize {
        self.window.saturating_sub(self.known.len())
    }

    /// Reads open rows from the log into the window: busy keys' next rows first, then the rows
    /// after the read position.
    async fn refill(&mut self) {
        if now_ms() < self.read_again_at {
            return;
        }
        while let Some(key) = self.key_loads.front().cloned() {
            let limit = self.key_window.min(self.room());
            if limit == 0 {
                return;
            }
            let rows = match self.store.open_deliveries_of_key(&self.sink.name, &key, limit).await {
                Ok(rows) => rows,
                Err(e) => return self.read_failed(&e),
            };
            self.key_loads.pop_front();
            let more = rows.len() == limit;
            // Rows of other keys between the last read and these may be handed over no more (see
            // `seen_upto`): the next read after `cursor` picks them up.
            if let Some(last) = rows.last().map(|d| d.id)
                && last > self.seen_upto
            {
                self.seen_upto = last;
                self.caught_up = false;
            }
            for d in rows {
                if !self.known.contains(&d.id) {
                    self.add(d);
                }
            }
            let queue = self.keys.entry(key.clone()).or_default();
            queue.overflow = more;
            if queue.rows.is_empty() && !queue.in_flight {
                if more {
                    self.key_loads.push_back(key);
                } else {
                    self.keys.remove(&key);
                }
            }
        }
        while !self.caught_up && self.room() > 0 {
            let rows = match self.store.open_deliveries(&self.sink.name, self.cursor, PAGE).await {
                Ok(rows) => rows,
                Err(e) => return self.read_failed(&e),
            };
            let last_page = rows.len() < PAGE;
            let mut full = false;
            for d in rows {
                if self.room() == 0 && !self.known.contains(&d.id) {
                    full = true;
                    break;
                }
                self.seen_upto = self.seen_upto.max(d.id);
                if self.known.contains(&d.id) || self.keys.get(&d.partition_key).is_some_and(|q| q.overflow) {
                    self.cursor = d.id;
                    continue;
                }
                let id = d.id;
                let queue = self.keys.entry(d.partition_key.clone()).or_default();
                if queue.rows.len() >= self.key_window {
                    queue.overflow = true;
                } else {
                    self.add(d);
                }
                self.cursor = id;
            }
            if last_page && !full {
                self.caught_up = true;
            }
        }
    }

    fn read_failed(&mut self, e: &crate::store::StoreError) {
        tracing::error!(sink = %self.sink.name, error = %e, "cannot read the sink's deliveries from the log; trying again in 1 s");
        self.read_again_at = now_ms() + 1000;
    }

    /// Puts a row read from the log in its key's queue, in row order (behind a head in flight).
    fn add(&mut self, d: Delivery) {
        self.known.insert(d.id);
        let key = d.partition_key.clone();
        let due = d.next_attempt_at_ms.unwrap_or(0);
        let queue = self.keys.entry(key.clone()).or_default();
        let first = usize::from(queue.in_flight);
        let at = queue
            .rows
            .iter()
            .skip(first)
            .position(|r| r.id > d.id)
            .map_or(queue.rows.len(), |p| p + first);
        queue.rows.insert(at, d);
        if queue.rows.len() == 1 {
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
        if self.signals.paused.load(Ordering::SeqCst) || self.throttled_until > now_ms() {
            return;
        }
        while self.in_flight.len() < self.sink.concurrency {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            let Some(queue) = self.keys.get_mut(&key) else {
                continue;
            };
            if queue.in_flight {
                continue;
            }
            let Some(head) = queue.rows.front().cloned() else {
                continue;
            };
            queue.in_flight = true;
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
        if f.disable && !self.signals.paused.swap(true, Ordering::SeqCst) {
            tracing::error!(sink = %self.sink.name, "sink paused: the endpoint answered 410 Gone; resume it with POST /v1/admin/sinks/{}/resume once fixed", self.sink.name);
        }
        let Some(queue) = self.keys.get_mut(&f.key) else {
            return;
        };
        queue.in_flight = false;
        match f.outcome {
            Outcome::Done => {
                if let Some(done) = queue.rows.pop_front() {
                    self.known.remove(&done.id);
                }
                match queue.rows.front().map(|d| d.next_attempt_at_ms.unwrap_or(0)) {
                    Some(due) => self.schedule(f.key, due),
                    None if queue.overflow => self.key_loads.push_back(f.key),
                    None => {
                        self.keys.remove(&f.key);
                    }
                }
            }
            Outcome::RetryAt(at) => {
                if let Some(head) = queue.rows.front_mut() {
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
        let mut span = AttemptSpan::begin();
        // Log lines about the attempt carry its trace (`trace_id`, `span_id` in JSON logs).
        let finished = match d.trace.as_ref().filter(|_| trace::enabled()) {
            Some(t) => {
                let logged = tracing::info_span!("deliver", trace_id = %t.trace_id, span_id = %span.span_id());
                tracing::Instrument::instrument(self.attempt(key, &d, &mut span), logged).await
            }
            None => self.attempt(key, &d, &mut span).await,
        };
        span.finish(&d, &self.sink.name, d.attempts + 1);
        finished
    }

    async fn attempt(&self, key: String, d: &Delivery, span: &mut AttemptSpan) -> Finished {
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
        // Every log line about the event names its id and source (ids are unique per source).
        let source = event.as_ref().map(|e| e.source.clone()).unwrap_or_default();
        let slot = self.routing.plugins.get(&self.sink.connector);
        let Some(plugin) = slot.map(|s| s.pick(&self.routing.groups, &d.route, store_name).clone()) else {
            tracing::error!(sink = %self.sink.name, connector = %self.sink.connector, "the sink's connector is not loaded; retrying later");
            return self.not_loaded(key, attempts);
        };
        let shadow = slot.and_then(|s| s.shadow.clone());
        // How many outbound requests the attempt made, and where the last went: what an
        // operator needs to read a deadline or a failure.
        let mut egress_seen: (u32, Option<String>) = (0, None);
        let result = match event {
            Ok(event) => {
                let input = event.into();
                let call = plugin.deliver_reported(&input, &context);
                let (result, mut report) = match span.call_trace(d) {
                    Some(traced) => trace::CALL_TRACE.scope(traced, call).await,
                    None => call.await,
                };
                span.plugin = Some((plugin.name.clone(), plugin.version.clone()));
                span.egress = std::mem::take(&mut report.egress);
                egress_seen = (report.http_calls, report.last_destination.clone());
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
                result
            }
            Err(e) => Err(CallError::Delivery(DeliveryError::Rejected(format!(
                "stored event unreadable: {e}"
            )))),
        };
        let delivered = matches!(
            &result,
            Ok(_) | Err(CallError::Delivery(DeliveryError::ConflictIsSuccess(_)))
        );
        self.metrics.count_attempt(&self.sink.name, delivered);
        match &result {
            Err(CallError::Delivery(DeliveryError::ConflictIsSuccess(_))) | Ok(_) => {}
            Err(e) if e.is_plugin_fault() => self.metrics.count_failure(&plugin.label(), e.kind(), &d.event_id),
            Err(e) => self.metrics.count_delivery_outcome(&self.sink.name, e.kind()),
        }
        let failed_as = result.as_ref().err().map(CallError::kind).unwrap_or("");
        let mut throttle_until = None;
        let mut disable = false;
        let now = now_ms();
        let (retry_hint, error) = match result {
            Ok(receipt) => {
                return self
                    .record_delivered(key, d, attempts, &plugin, receipt.remote_id, None)
                    .await;
            }
            Err(CallError::Delivery(DeliveryError::ConflictIsSuccess(said))) => {
                let note = format!(
                    "the target already had it{}",
                    said.map(|s| format!(": {s}")).unwrap_or_default()
                );
                return self.record_delivered(key, d, attempts, &plugin, None, Some(note)).await;
            }
            Err(CallError::Credential(reason)) => {
                crate::store::audit::audit_credential(&self.store, &plugin.label(), &d.event_id, &reason).await;
                (None, format!("credential refused: {reason}"))
            }
            Err(CallError::Denied(reason)) => {
                crate::store::audit::audit_denial(&self.store, &plugin.label(), &d.event_id, &self.sink.name, &reason)
                    .await;
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
            Err(e @ CallError::Deadline(_)) => (Some(None), deadline_error(&e, &plugin, &egress_seen)),
            Err(e @ (CallError::Instantiate(_) | CallError::NoTurn(_))) => (Some(None), e.to_string()),
            Err(e) => (None, e.to_string()),
        };
        let failure = AttemptFailure {
            outcome: failed_as.to_owned(),
            error: error.clone(),
            destination: egress_seen.1.clone(),
        };
        span.error = Some(error.clone());
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
                span.dead_lettered = true;
                tracing::warn!(sink = %self.sink.name, event = %d.event_id, %source, error = %letter.error, "delivery dead-lettered");
                self.persist(DeliveryUpdate::DeadLetter {
                    id: d.id,
                    letter,
                    failure: Some(failure),
                })
                .await;
                self.metrics.count_dead_letter(Some(&self.sink.name), &d.event_id);
                prom().count_sink(&self.sink.name, SinkOutcome::DeadLettered);
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
                span.retry_in_ms = Some(wait);
                tracing::debug!(sink = %self.sink.name, event = %d.event_id, %source, attempts, wait_ms = wait, %error, "delivery failed; retry scheduled");
                self.persist(DeliveryUpdate::Retry {
                    id: d.id,
                    attempts,
                    next_attempt_at_ms: at,
                    failed_at_ms: now,
                    error,
                    connector_version: plugin.version.clone(),
                    failure,
                })
                .await;
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                prom().count_sink(&self.sink.name, SinkOutcome::Retried);
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

    async fn record_delivered(
        &self,
        key: String,
        d: &Delivery,
        attempts: u32,
        plugin: &LoadedPlugin,
        remote_id: Option<String>,
        note: Option<String>,
    ) -> Finished {
        self.persist(DeliveryUpdate::Delivered {
            id: d.id,
            attempts,
            connector_version: plugin.version.clone(),
            remote_id,
            note,
        })
        .await;
        self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
        prom().count_sink(&self.sink.name, SinkOutcome::Delivered);
        match d.replayed_at_ms {
            None => {
                let latency_us = (now_us() - d.received_at_us).max(0) as u64;
                self.metrics.record_latency_us(latency_us);
                prom().observe_delivery(&self.sink.name, std::time::Duration::from_micros(latency_us));
            }
            Some(replayed_ms) => self
                .metrics
                .record_replay_latency_us((now_us() - replayed_ms * 1000).max(0) as u64),
        }
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

/// A deadline's error, saying what the attempt was doing and which setting to change, so a dead
/// letter caused by deadlines reads as such and not as a broken plugin.
fn deadline_error(e: &CallError, plugin: &LoadedPlugin, (calls, last): &(u32, Option<String>)) -> String {
    let to = last
        .as_deref()
        .map(|d| format!(", the last to {d}"))
        .unwrap_or_default();
    format!(
        "{e} after {calls} outbound request(s){to}; if the target is slow rather than down, raise limits.deadline_ms \
         for plugin `{}` (each request may take up to limits.http_timeout_ms = {} ms)",
        plugin.name,
        plugin.limits().http_timeout_ms
    )
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
