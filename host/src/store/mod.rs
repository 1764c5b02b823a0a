//! The durable log: events, per-sink delivery state, retry schedule, dead letters and plugin kv.
//!
//! [`Store`] is the one seam between the pipeline and storage; [`sqlite::SqliteStore`] is the
//! embedded default (one file, WAL, a single writer thread with group commit). A write returns
//! only after its transaction is fsynced, so anything acknowledged survives a crash. This module
//! never calls plugins or the network.

pub mod audit;
mod schema;
pub mod sqlite;

use crate::telemetry::trace::EventTrace;
use kaunter_model::Event;
use serde::Serialize;
use std::sync::Arc;

/// Storage failures. Callers log them with detail and answer clients with an id.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread has stopped (shutdown or a fatal I/O error).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store cannot be opened or used (directory, file, thread or commit failure).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The audit log is sealed with a key, but the store was opened without one.
    #[error(
        "the audit log is keyed (its last record #{last} is sealed with audit key {key_id}), but no [audit] key is configured; the host would append unkeyed records that `kaunter audit verify` reports as forged: configure that key under [audit] (docs/audit.md)"
    )]
    AuditKeyMissing {
        /// The key the chain is sealed with.
        key_id: String,
        /// The last record.
        last: i64,
    },
    /// A plugin's kv write would exceed its quota.
    #[error("kv quota of {quota} bytes exceeded (would use {would_use})")]
    QuotaExceeded {
        /// Bytes allowed.
        quota: u64,
        /// Bytes the write would bring the plugin to.
        would_use: u64,
    },
}

/// Result of storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// An event to append to the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event.
    pub event: Event,
    /// Its stored JSON (structured CloudEvent).
    pub body: Vec<u8>,
    /// The event it was derived from, for events produced by transforms.
    pub parent_seq: Option<i64>,
    /// Receive time, µs since the epoch.
    pub received_at_us: i64,
    /// Its trace context (kept in the log, so every later step joins its trace).
    pub trace: Option<EventTrace>,
}

impl NewEvent {
    /// Wraps an event, serialising its stored form.
    pub fn new(event: Event, parent_seq: Option<i64>, received_at_us: i64) -> Self {
        let body = event.to_json_bytes();
        Self {
            event,
            body,
            parent_seq,
            received_at_us,
            trace: None,
        }
    }

    /// The same, with its trace context.
    pub fn traced(mut self, trace: Option<EventTrace>) -> Self {
        self.trace = trace;
        self
    }
}

/// What happened to one appended event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Log sequence number (the original one for a duplicate).
    pub seq: i64,
    /// Whether an event with the same source and id was already in the log.
    pub duplicate: bool,
    /// For a duplicate whose content (type and data) differs from what is stored: both digests.
    /// The stored event is kept; the new content is not.
    pub conflict: Option<ContentConflict>,
}

/// The same (source, id) sent again with other content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentConflict {
    /// SHA-256 (hex) of the stored event's type and data.
    pub stored_sha256: String,
    /// SHA-256 (hex) of the type and data just sent.
    pub sent_sha256: String,
}

/// SHA-256 (hex) of a stored CloudEvent's business content: its `type` and its `data` (or
/// `data_base64`), not its `time` or extensions, which a resend may stamp afresh.
pub fn content_sha256(stored_json: &[u8]) -> String {
    use sha2::Digest as _;
    let value: serde_json::Value = serde_json::from_slice(stored_json).unwrap_or(serde_json::Value::Null);
    let content = serde_json::json!([value.get("type"), value.get("data"), value.get("data_base64")]);
    hex(&sha2::Sha256::digest(content.to_string().as_bytes()))
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Log sequence number.
    pub seq: i64,
    /// The event.
    pub event: Event,
    /// Receive time, µs since the epoch.
    pub received_at_us: i64,
    /// The event it was derived from.
    pub parent_seq: Option<i64>,
    /// Its trace context, when it was traced.
    pub trace: Option<EventTrace>,
}

/// Delivery state of one event at one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt (or for earlier events of its key).
    Pending,
    /// Failed at least once; next attempt scheduled.
    Retrying,
    /// The connector reported success.
    Delivered,
    /// Given up: in the dead-letter queue.
    DeadLettered,
    /// Its row could not be read and was set aside (see the `quarantine` table).
    Quarantined,
    /// Set aside, durably, because its sink's backlog was over `max_backlog`: not attempted until
    /// an operator unparks the sink (`kaunter sink unpark`).
    Parked,
}

impl DeliveryState {
    pub(crate) fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "retrying" => DeliveryState::Retrying,
            "delivered" => DeliveryState::Delivered,
            "dead_lettered" => DeliveryState::DeadLettered,
            "quarantined" => DeliveryState::Quarantined,
            "parked" => DeliveryState::Parked,
            other => return Err(StoreError::Corrupt(format!("delivery state {other:?}"))),
        })
    }
}

/// The idempotency key of one event's delivery to one sink: `{id}:{sink}:{source digest}`, the
/// digest being the first 32 hex digits of the SHA-256 of the event's `source`.
///
/// Ids are unique only per source (two stores may both send `RCPT-0001`), so the key carries the
/// source; as a digest, so the key stays short and a client cannot pick a source whose key
/// collides with another store's. It depends on nothing but (source, id, sink), so it is the same
/// for every attempt, retry, replay and restart.
pub fn idempotency_key(source: &str, id: &str, sink: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(source.as_bytes());
    let mut key = String::with_capacity(id.len() + sink.len() + 34);
    key.push_str(id);
    key.push(':');
    key.push_str(sink);
    key.push(':');
    key.push_str(&hex(&digest[..16]));
    key
}

/// A delivery to create when an event is routed.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The sink.
    pub sink: String,
    /// The route that produced it.
    pub route: String,
    /// Ordering key.
    pub partition_key: String,
    /// The event as the route's transforms left it (stored CloudEvent JSON).
    pub body: Vec<u8>,
    /// `plugin@version` of each transform that handled it, comma separated.
    pub handled_by: String,
    /// The sink's `max_backlog`: when the sink already has this many open deliveries (or any
    /// parked), the delivery is created parked.
    pub max_backlog: u64,
}

/// One event's delivery record at one sink.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// The event's log sequence number.
    pub event_seq: i64,
    /// The event's id.
    pub event_id: String,
    /// The sink.
    pub sink: String,
    /// The route.
    pub route: String,
    /// Ordering key.
    pub partition_key: String,
    /// State.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (ms), for pending and retrying.
    pub next_attempt_at_ms: Option<i64>,
    /// The last error, if any attempt failed.
    pub last_error: Option<String>,
    /// When the delivery was created (ms).
    pub created_at_ms: i64,
    /// When the state last changed (ms).
    pub updated_at_ms: i64,
    /// When the connector confirmed it (ms).
    pub delivered_at_ms: Option<i64>,
    /// Transform versions that handled the event.
    pub handled_by: String,
    /// Connector version of the last attempt.
    pub connector_version: Option<String>,
    /// The remote document's id the connector reported on success (an ERP's sale number).
    pub remote_id: Option<String>,
    /// What the connector said on success, e.g. that the target already had it.
    pub note: Option<String>,
    /// When a replay last put it back to work (ms); `None` for live traffic.
    pub replayed_at_ms: Option<i64>,
    /// The event body to deliver (not serialised in API answers).
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Receive time of the event (µs), for max-age and latency.
    #[serde(skip)]
    pub received_at_us: i64,
    /// The event's trace context, when it was traced: each attempt is a span of its trace.
    #[serde(skip)]
    pub trace: Option<EventTrace>,
}

/// A dead letter to record.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The event's log sequence number.
    pub event_seq: i64,
    /// The sink, for delivery failures; `None` when a transform failed on the route.
    pub sink: Option<String>,
    /// The route.
    pub route: String,
    /// The plugin that failed.
    pub plugin: String,
    /// Its version (digest prefix).
    pub plugin_version: String,
    /// The error, as the operator should read it.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}

/// A dead-letter queue entry.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Entry id (what `kaunter dlq replay <id>` takes).
    pub id: i64,
    /// The event's log sequence number.
    pub event_seq: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The sink, or `None` for a transform failure.
    pub sink: Option<String>,
    /// The route.
    pub route: String,
    /// The plugin that failed.
    pub plugin: String,
    /// Its version.
    pub plugin_version: String,
    /// The error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was dead-lettered (ms).
    pub failed_at_ms: i64,
    /// When it was replayed (ms), if it was.
    pub replayed_at_ms: Option<i64>,
    /// Who replayed it (`api-key:NAME`).
    pub replayed_by: Option<String>,
    /// The event's source (which store and till it came from).
    pub event_source: String,
    /// The state of its delivery now (`delivered`, `retrying`, `dead_lettered`, ...): after a
    /// replay, how the replay went. `None` for a transform failure.
    pub delivery_state: Option<String>,
}

impl DeadLetter {
    /// The entry as the API shows it (`GET /v1/admin/dlq`, and an event's `dead_letters`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "event_id": self.event_id, "event_type": self.event_type, "source": self.event_source,
            "sink": self.sink, "route": self.route, "plugin": self.plugin, "plugin_version": self.plugin_version,
            "error": self.error, "attempts": self.attempts,
            "failed_at": rfc3339(Some(self.failed_at_ms)),
            "replayed_at": rfc3339(self.replayed_at_ms),
            "replayed_by": self.replayed_by,
            "delivery_state": self.delivery_state,
        })
    }
}

/// Which dead letters to list or replay. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DeadLetterQuery {
    /// Also those already replayed (listing only: a replay takes only those not yet replayed).
    pub include_replayed: bool,
    /// Only this sink's (`transform` for the route failures, which have no sink).
    pub sink: Option<String>,
    /// Only events of this store.
    pub store: Option<String>,
    /// Only errors containing this text.
    pub error: Option<String>,
    /// Only those dead-lettered at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only those dead-lettered before this time (ms).
    pub until_ms: Option<i64>,
    /// Only those of the event at this log position.
    pub event_seq: Option<i64>,
}

/// One page of dead letters, with the count and grouping of all that match.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadLetterPage {
    /// The entries on this page, newest first.
    pub entries: Vec<DeadLetter>,
    /// How many match in all.
    pub total: u64,
    /// All that match, counted by sink and error (digits folded, so "HTTP 503 after 2 s" and
    /// "HTTP 503 after 5 s" group together), largest group first.
    pub groups: Vec<DeadLetterGroup>,
}

/// Dead letters of one sink with one kind of error.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterGroup {
    /// The sink (`None`: a transform on the route failed).
    pub sink: Option<String>,
    /// The error, digits folded to `#`.
    pub error: String,
    /// How many.
    pub count: u64,
}

/// The outcome of routing one event, written atomically.
#[derive(Debug, Clone)]
pub struct RouteCommit {
    /// The routed event's trace context (its deliveries are attempted in its trace).
    pub trace: Option<EventTrace>,
    /// The routed event.
    pub event_seq: i64,
    /// Its id.
    pub event_id: String,
    /// When it was received (µs).
    pub received_at_us: i64,
    /// Events the transforms derived (appended and routed in turn).
    pub derived: Vec<NewEvent>,
    /// Deliveries to create (one per route × sink; a sink already holding the event keeps its row).
    pub deliveries: Vec<NewDelivery>,
    /// Transform failures.
    pub dead_letters: Vec<NewDeadLetter>,
    /// Routes whose transforms passed the event on to no sink (kept on the event).
    pub dropped_routes: Vec<String>,
    /// A replay of an event routed before: a sink that already holds the event (delivered or
    /// dead-lettered) gets its delivery reset to pending with the new body; open ones are left.
    pub redeliver: bool,
}

/// What a [`RouteCommit`] created.
#[derive(Debug, Clone, Default)]
pub struct RouteCommitted {
    /// One per derived event, in order.
    pub derived: Vec<Appended>,
    /// Deliveries actually created (not already present).
    pub deliveries: Vec<Delivery>,
}

/// A change of delivery state after an attempt.
#[derive(Debug, Clone)]
pub enum DeliveryUpdate {
    /// Delivered (or the target already had it).
    Delivered {
        /// Delivery row.
        id: i64,
        /// Attempts including this one.
        attempts: u32,
        /// Connector version.
        connector_version: String,
        /// The remote document's id, if the connector reported one.
        remote_id: Option<String>,
        /// A note from the connector (e.g. the target already had it).
        note: Option<String>,
    },
    /// Failed; try again at `next_attempt_at_ms`.
    Retry {
        /// Delivery row.
        id: i64,
        /// Attempts including this one.
        attempts: u32,
        /// When to try again (ms).
        next_attempt_at_ms: i64,
        /// When the attempt failed (ms): the time `next_attempt_at_ms` was set from, so the
        /// history shows the backoff exactly as it was chosen.
        failed_at_ms: i64,
        /// What went wrong.
        error: String,
        /// Connector version.
        connector_version: String,
        /// The attempt, for the delivery's history.
        failure: AttemptFailure,
    },
    /// Given up: dead-letter it.
    DeadLetter {
        /// Delivery row.
        id: i64,
        /// The dead letter to record.
        letter: NewDeadLetter,
        /// The attempt that ended it, for the delivery's history (`None` when no attempt ran).
        failure: Option<AttemptFailure>,
    },
}

/// One failed delivery attempt, kept in the delivery's history (`delivery_failures`): what an
/// event's timeline and a sink's health read. Replays and later successes do not erase it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptFailure {
    /// How it failed: a connector's outcome (`retry`, `throttled`, `rejected`, `disabled`,
    /// `credential`) or a plugin fault (`trap`, `deadline`, `limit`, `denied`, ...).
    pub outcome: String,
    /// The error, as the operator should read it.
    pub error: String,
    /// `scheme://host:port` of the attempt's last outbound request, if it made one.
    pub destination: Option<String>,
}

/// A failed attempt as read back from a delivery's history.
#[derive(Debug, Clone, Serialize)]
pub struct FailedAttempt {
    /// The delivery row.
    pub delivery_id: i64,
    /// The sink.
    pub sink: String,
    /// Which attempt (1 is the first; counting restarts after a replay).
    pub attempt: u32,
    /// When it failed (ms).
    pub at_ms: i64,
    /// The connector version that made it.
    pub connector_version: Option<String>,
    /// When the next attempt was scheduled (ms); `None` when this one was dead-lettered.
    pub retry_at_ms: Option<i64>,
    /// What happened.
    #[serde(flatten)]
    pub failure: AttemptFailure,
}

/// Which dead letters to replay.
#[derive(Debug, Clone)]
pub enum ReplaySelector {
    /// These entry ids.
    Ids(Vec<i64>),
    /// Every entry not yet replayed that the query matches.
    Matching(DeadLetterQuery),
}

/// What a replay put back to work.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// Deliveries reset to pending.
    pub deliveries: Vec<Delivery>,
    /// Events whose route must run again (transform failures), with the route name.
    pub reroute: Vec<(StoredEvent, String)>,
    /// Entry ids replayed.
    pub entries: Vec<i64>,
}

/// The storage seam. Every write is durable (fsynced) when its future resolves.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Appends events, deduplicating on (source, id).
    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Appended>>;
    /// Records the outcome of routing events, each atomically, and marks them routed.
    async fn commit_routes(&self, commits: Arc<Vec<RouteCommit>>) -> StoreResult<Vec<RouteCommitted>>;
    /// Applies delivery outcomes.
    async fn update_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()>;
    /// Events appended but not yet routed (after a restart), oldest first.
    async fn unrouted(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<StoredEvent>>;
    /// Up to `limit` open (pending or retrying) deliveries of a sink after row `after_id`, in row
    /// order: what a sink worker reads its next window from.
    async fn open_deliveries(&self, sink: &str, after_id: i64, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// Up to `limit` open deliveries of one partition key at a sink, in row order.
    async fn open_deliveries_of_key(&self, sink: &str, key: &str, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// Open and parked deliveries of every sink that has any.
    async fn backlogs(&self) -> StoreResult<Vec<SinkBacklog>>;
    /// For each of `sinks`: the age of its oldest open delivery and its latest failed attempt.
    async fn sink_health(&self, sinks: Vec<String>) -> StoreResult<Vec<SinkHealth>>;
    /// Where the work of up to `limit` events received at or after `since_us`, after log position
    /// `after_seq`, stands: oldest first.
    async fn event_outcomes(&self, since_us: i64, after_seq: i64, limit: usize) -> StoreResult<Vec<EventOutcome>>;
    /// The history of the event at log position `event_seq`.
    async fn history(&self, event_seq: i64) -> StoreResult<EventHistory>;
    /// Up to `limit` events about an order (sales, refunds, voids, payments), oldest first;
    /// with `store`, only that store's.
    async fn events_of_order(&self, order: &str, store: Option<&str>, limit: usize) -> StoreResult<Vec<EventRef>>;
    /// Makes a sink's parked deliveries pending again, in order; returns how many.
    async fn unpark(&self, sink: &str) -> StoreResult<usize>;
    /// An event by id, with its deliveries.
    /// Ids are unique per source; `source` picks one when several sources used the same id
    /// (without it, the first logged wins).
    async fn event(&self, id: &str, source: Option<&str>) -> StoreResult<Option<(StoredEvent, Vec<Delivery>)>>;
    /// Dead letters the query matches, newest first, `limit` from `offset`; with their count and
    /// grouping.
    async fn dead_letters(&self, query: DeadLetterQuery, limit: usize, offset: usize) -> StoreResult<DeadLetterPage>;
    /// Marks dead letters replayed and resets their deliveries to pending; with `record`, appends
    /// it to the audit log in the same transaction, its detail's `entries` set to the entries
    /// replayed.
    async fn replay(&self, selector: ReplaySelector, record: Option<audit::AuditEntry>) -> StoreResult<Replayed>;
    /// Reads a plugin's kv value.
    async fn kv_get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Writes a plugin's kv value within its quota.
    async fn kv_set(&self, plugin: &str, key: &str, value: Vec<u8>, quota: u64) -> StoreResult<()>;
    /// Deletes a plugin's kv value.
    async fn kv_delete(&self, plugin: &str, key: &str) -> StoreResult<()>;
    /// The most recently approved version of a plugin, and whether `version` itself is approved.
    async fn approvals(&self, name: &str, version: &str) -> StoreResult<(Option<Approval>, bool)>;
    /// Records an approval.
    async fn approve(&self, approval: Approval) -> StoreResult<()>;
    /// Appends records to the hash-chained audit log (sealed with the store's audit key, if any).
    async fn audit(&self, entries: Vec<audit::AuditEntry>) -> StoreResult<()>;
    /// Audit records after `after_seq`, in order.
    async fn audit_log(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<audit::AuditRecord>>;
    /// A host setting (JSON text), such as which plugin versions are deployed.
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Writes a host setting.
    async fn put_setting(&self, key: &str, value: String) -> StoreResult<()>;
    /// Events received (not derived) at or after `since_us`, after log position `after_seq` and
    /// up to `through_seq`, oldest first: what `kaunter replay --since` re-runs.
    async fn events_since(
        &self,
        since_us: i64,
        after_seq: i64,
        through_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// How many events [`Store::events_since`] would return now, and the log position they end
    /// at: a replay takes exactly these, never what arrives while it runs.
    async fn count_events_since(&self, since_us: i64) -> StoreResult<(u64, i64)>;
    /// Moves every open delivery of `sink` (a sink no longer configured) to the dead letters with
    /// `error`, naming `plugin` (its last connector); returns how many.
    async fn dead_letter_sink(&self, sink: &str, plugin: &str, error: &str) -> StoreResult<usize>;
    /// The sources that logged an event with this id, oldest first (at most 100).
    async fn sources_of(&self, id: &str) -> StoreResult<Vec<String>>;
    /// How many rows were set aside as unreadable (the `quarantine` table).
    async fn quarantined(&self) -> StoreResult<u64> {
        Ok(0)
    }
    /// Sinks that have open (pending or retrying) or parked deliveries.
    async fn sinks_with_open_deliveries(&self) -> StoreResult<Vec<String>>;
    /// Prunes one batch of finished events by `policy` (see [`PrunePolicy`]); the pruner calls it
    /// until it returns no events, so other writes go between batches.
    async fn prune(&self, policy: PrunePolicy) -> StoreResult<Pruned>;
    /// Removes audit records #1..#`through_seq`, which must have `hash` (the place a signed prune
    /// statement names), and records how far the log was pruned; returns how many went.
    async fn prune_audit(&self, through_seq: i64, hash: &str) -> StoreResult<u64>;
    /// The space the log takes on disk now.
    fn disk_usage(&self) -> DiskUsage {
        DiskUsage::default()
    }
}

/// Which events one call of [`Store::prune`] removes: finished ones only (routed, no open or
/// parked delivery, no dead letter waiting for a replay, no derived event left), oldest first.
#[derive(Debug, Clone, Copy)]
pub struct PrunePolicy {
    /// Events received before this (µs) go.
    pub received_before_us: Option<i64>,
    /// While the log's pages in use take more than this many bytes, the oldest go too.
    pub max_used_bytes: Option<u64>,
    /// A pruned event received after this (µs) leaves its (source, id, content digest) behind for
    /// dedupe; remembered ones received before it are forgotten.
    pub dedupe_after_us: i64,
    /// Most events per call.
    pub batch: usize,
}

/// What one call of [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Events, with their deliveries, bodies and replayed dead letters.
    pub events: u64,
    /// Of those, how many left their (source, id, digest) behind for dedupe.
    pub remembered: u64,
    /// Remembered ids forgotten (past `dedupe_secs`).
    pub forgotten: u64,
}

/// One sink's undelivered work in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkBacklog {
    /// The sink.
    pub sink: String,
    /// Pending and retrying deliveries.
    pub open: u64,
    /// Deliveries parked past the sink's `max_backlog`.
    pub parked: u64,
}

/// What the log says about one sink's health (the recent error rate is in memory, in
/// [`crate::pipeline::metrics::Metrics::sink_recent`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkHealth {
    /// The sink.
    pub sink: String,
    /// When the event of its oldest open delivery was received (µs), if it has any.
    pub oldest_open_received_us: Option<i64>,
    /// Its latest failed attempt.
    pub last_failure: Option<FailedAttempt>,
}

/// An event by its log position, id, source and type.
#[derive(Debug, Clone, Serialize)]
pub struct EventRef {
    /// Log position.
    pub seq: i64,
    /// Id (unique per source).
    pub id: String,
    /// Source.
    pub source: String,
    /// Type.
    #[serde(rename = "type")]
    pub event_type: String,
}

/// What happened to one event besides its deliveries' current state: every failed attempt, its
/// dead letters (with who replayed them and when), the event it was derived from and the
/// events derived from it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventHistory {
    /// Failed delivery attempts, oldest first.
    pub failures: Vec<FailedAttempt>,
    /// Dead letters, replayed or not, newest first.
    pub dead_letters: Vec<DeadLetter>,
    /// The event a transform derived this one from.
    pub parent: Option<EventRef>,
    /// Events transforms derived from this one.
    pub derived: Vec<EventRef>,
}

/// Where one event's work stands, for `kaunter verify` and the demo's closing check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventOutcome {
    /// Log position.
    pub seq: i64,
    /// Id.
    pub id: String,
    /// Source.
    pub source: String,
    /// Type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Whether a transform derived it.
    pub derived: bool,
    /// Whether its routes have run.
    pub routed: bool,
    /// Each delivery: sink and state.
    pub deliveries: Vec<(String, DeliveryState)>,
    /// Routes whose transform failed on it, dead-lettered and not replayed.
    pub failed_routes: Vec<String>,
    /// Routes whose transforms passed it on to no sink.
    pub dropped_routes: Vec<String>,
}

/// The order a sale, refund, void or payment is about; `None` for other events (a stock count or
/// a restock suggestion names a SKU, not an order).
pub fn order_of(event: &Event) -> Option<&str> {
    use kaunter_model::Payload;
    match &event.payload {
        Payload::Sale(s) => Some(&s.order_id),
        Payload::Refund(r) => Some(&r.original_order_id),
        Payload::VoidSale(v) => Some(&v.order_id),
        Payload::PaymentSettled(p) => Some(&p.order_id),
        _ => None,
    }
}

/// The space a store takes on disk, in bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DiskUsage {
    /// The database file.
    pub database_bytes: u64,
    /// Of it, the pages holding data (the rest is free pages pruning left, reused before the
    /// file grows).
    pub used_bytes: u64,
    /// Its write-ahead log (bounded by the checkpointer).
    pub wal_bytes: u64,
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A plugin version an operator (or the host, for versions that ask for no more) approved.
#[derive(Debug, Clone)]
pub struct Approval {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Full SHA-256.
    pub digest: String,
    /// Its manifest requests, as JSON.
    pub requests: String,
    /// Who approved.
    pub approved_by: String,
}

/// Lower-case hex of bytes (here, the lowest floor that needs it, for every room above).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the epoch as RFC 3339 (UTC), or null.
pub fn rfc3339(ms: Option<i64>) -> serde_json::Value {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(serde_json::Value::Null)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
