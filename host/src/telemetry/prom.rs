//! Prometheus metrics: the instruments every layer updates, and the text exposition `GET
//! /metrics` serves.
//!
//! One registry per process ([`metrics`]). Counters and histograms are updated where things
//! happen (ingest, delivery, plugin calls, egress, group commits); gauges that describe state
//! (backlogs, freshness, disk) are set by the scrape handler just before it encodes.
//!
//! Label cardinality is bounded by construction: no event ids; `store` only for stores in the
//! `[stores]` registry (others are `other`); `sink`, `plugin` and `version` only for what the
//! configuration names; egress `host` only for hosts a grant allowed (a denied request has a
//! `reason`, never a host); reasons and kinds are fixed words.

// The instrument definitions below are fixed: an `expect` on them fails only on a programming
// error, which every test run catches (the unit tests build the registry).
#![allow(clippy::expect_used)]

use arc_swap::ArcSwap;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// The `store` label for stores outside the registry.
pub const OTHER_STORE: &str = "other";

/// Every kaunter instrument, registered in one [`Registry`].
pub struct HostMetrics {
    registry: Registry,
    /// Whether the recording methods record (benchmarks compare on and off in one process).
    enabled: AtomicBool,
    /// Stores with their own `store` label value.
    known_stores: ArcSwap<BTreeSet<String>>,
    /// Events by outcome (`accepted`, `duplicate`, `conflict`) and store.
    ingest_events: IntCounterVec,
    /// Refused ingest requests by endpoint (`events`, `webhook`) and reason (the error code
    /// answered). No store label: a refused request was not read far enough to trust one.
    ingest_rejected: IntCounterVec,
    /// Deliveries confirmed, by sink.
    sink_delivered: IntCounterVec,
    /// Attempts that failed and were scheduled again, by sink.
    sink_retried: IntCounterVec,
    /// Deliveries dead-lettered, by sink.
    sink_dead_lettered: IntCounterVec,
    /// Acknowledged → delivered, by sink (live deliveries; replays are kept out).
    sink_latency: HistogramVec,
    /// Open deliveries in the log, by sink (set at scrape).
    pub sink_pending: IntGaugeVec,
    /// Deliveries a sink's worker holds in memory, by sink (set at scrape).
    pub sink_in_flight: IntGaugeVec,
    /// Deliveries parked behind a paused sink or a failed key, by sink (set at scrape).
    pub sink_parked: IntGaugeVec,
    /// 1 when the sink is paused (set at scrape).
    pub sink_paused: IntGaugeVec,
    /// Age of the oldest acknowledged event not yet delivered to the sink, 0 when none
    /// (freshness; set at scrape).
    pub sink_oldest_undelivered: GaugeVec,
    /// Dead letters not yet replayed, by sink (set at scrape).
    pub sink_dead_letters: IntGaugeVec,
    /// Plugin call wall time, by plugin, version and call (`handle`, `deliver`, `decode`).
    plugin_call: HistogramVec,
    /// Failed plugin calls by plugin, version and kind (`trap`, `deadline`, `limit`, ...).
    plugin_failures: IntCounterVec,
    /// Fuel consumed, by plugin and version.
    plugin_fuel: IntCounterVec,
    /// Highest linear memory a call of the plugin reached, by plugin and version.
    plugin_peak_memory: IntGaugeVec,
    /// Outbound plugin requests that got an answer or failed in transit, by plugin, host and
    /// status (`200`, …, or `error` / `timeout`).
    egress_requests: IntCounterVec,
    /// Outbound plugin requests refused by the checkpoint, by plugin and reason.
    egress_denied: IntCounterVec,
    /// One group commit of the event log, fsync included.
    store_commit: Histogram,
    /// The database file (set at scrape).
    pub store_database_bytes: IntGauge,
    /// The write-ahead log (set at scrape).
    pub store_wal_bytes: IntGauge,
    /// Free space on the data directory's file system (set at scrape).
    pub store_disk_free_bytes: IntGauge,
    /// Events accepted and not yet routed (set at scrape).
    pub events_unrouted: IntGauge,
    /// SOP alerts firing now, by kind (set by the alert monitor at each check).
    pub alerts_open: IntGaugeVec,
    /// SOP alerts raised, by kind and state (`firing`, `resolved`).
    alerts_raised: IntCounterVec,
    /// Seconds since the host started (set at scrape).
    pub uptime: Gauge,
    started: std::time::Instant,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry.register(Box::new(g.clone())).expect("metric names are unique");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
        .expect("valid metric definition");
    registry.register(Box::new(h.clone())).expect("metric names are unique");
    h
}

/// Delivery latency buckets (seconds): from a local sink's milliseconds to a vendor's minutes.
const DELIVERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Plugin call buckets (seconds): a warm transform's tens of microseconds to a connector's deadline.
const CALL_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];
/// Group commit buckets (seconds): fsync on a fast disk to a stalled one.
const COMMIT_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0];

impl HostMetrics {
    fn new() -> HostMetrics {
        let r = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("kaunter_build_info", "Always 1; the labels say which build runs."),
            &["version"],
        )
        .expect("valid metric definition");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        r.register(Box::new(build)).expect("metric names are unique");
        let uptime = Gauge::new("kaunter_uptime_seconds", "Seconds since this host started.").expect("valid");
        r.register(Box::new(uptime.clone())).expect("metric names are unique");
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric definition");
            r.register(Box::new(g.clone())).expect("metric names are unique");
            g
        };
        let store_commit = Histogram::with_opts(
            HistogramOpts::new(
                "kaunter_store_commit_duration_seconds",
                "One group commit of the event log, fsync included.",
            )
            .buckets(COMMIT_BUCKETS.to_vec()),
        )
        .expect("valid metric definition");
        r.register(Box::new(store_commit.clone()))
            .expect("metric names are unique");
        let oldest = GaugeVec::new(
            Opts::new(
                "kaunter_sink_oldest_undelivered_age_seconds",
                "Age of the oldest acknowledged event not yet delivered to the sink (0 when none): its freshness.",
            ),
            &["sink"],
        )
        .expect("valid metric definition");
        r.register(Box::new(oldest.clone())).expect("metric names are unique");
        HostMetrics {
            known_stores: ArcSwap::from_pointee(BTreeSet::new()),
            enabled: AtomicBool::new(true),
            ingest_events: counter(
                &r,
                "kaunter_ingest_events_total",
                "Events received, by outcome (accepted, duplicate, conflict) and store.",
                &["outcome", "store"],
            ),
            ingest_rejected: counter(
                &r,
                "kaunter_ingest_rejected_total",
                "Ingest requests refused, by endpoint and reason (the error code answered).",
                &["endpoint", "reason"],
            ),
            sink_delivered: counter(&r, "kaunter_sink_delivered_total", "Deliveries confirmed.", &["sink"]),
            sink_retried: counter(
                &r,
                "kaunter_sink_retried_total",
                "Attempts that failed and were scheduled again.",
                &["sink"],
            ),
            sink_dead_lettered: counter(
                &r,
                "kaunter_sink_dead_lettered_total",
                "Deliveries dead-lettered.",
                &["sink"],
            ),
            sink_latency: histogram(
                &r,
                "kaunter_sink_delivery_latency_seconds",
                "Acknowledged to delivered, live deliveries (replays are kept out).",
                &["sink"],
                DELIVERY_BUCKETS,
            ),
            sink_pending: gauge(&r, "kaunter_sink_pending", "Open deliveries in the log.", &["sink"]),
            sink_in_flight: gauge(
                &r,
                "kaunter_sink_in_flight",
                "Deliveries the sink's worker holds in memory.",
                &["sink"],
            ),
            sink_parked: gauge(
                &r,
                "kaunter_sink_parked",
                "Deliveries parked behind a pause or a failed key.",
                &["sink"],
            ),
            sink_paused: gauge(&r, "kaunter_sink_paused", "1 when the sink is paused.", &["sink"]),
            sink_oldest_undelivered: oldest,
            sink_dead_letters: gauge(
                &r,
                "kaunter_sink_dead_letters",
                "Dead letters not yet replayed.",
                &["sink"],
            ),
            plugin_call: histogram(
                &r,
                "kaunter_plugin_call_duration_seconds",
                "Plugin call wall time.",
                &["plugin", "version", "call"],
                CALL_BUCKETS,
            ),
            plugin_failures: counter(
                &r,
                "kaunter_plugin_failures_total",
                "Failed plugin calls (the plugin's own faults), by kind.",
                &["plugin", "version", "kind"],
            ),
            plugin_fuel: counter(
                &r,
                "kaunter_plugin_fuel_consumed_total",
                "Fuel (Wasm instructions, roughly) the plugin's calls used.",
                &["plugin", "version"],
            ),
            plugin_peak_memory: gauge(
                &r,
                "kaunter_plugin_peak_memory_bytes",
                "Highest linear memory one call of the plugin reached.",
                &["plugin", "version"],
            ),
            egress_requests: counter(
                &r,
                "kaunter_egress_requests_total",
                "Outbound plugin requests, by plugin, host and status (or error, timeout).",
                &["plugin", "host", "status"],
            ),
            egress_denied: counter(
                &r,
                "kaunter_egress_denied_total",
                "Outbound plugin requests refused by the checkpoint, by reason.",
                &["plugin", "reason"],
            ),
            store_commit,
            store_database_bytes: int_gauge("kaunter_store_database_bytes", "The event log's database file."),
            store_wal_bytes: int_gauge("kaunter_store_wal_bytes", "The event log's write-ahead log."),
            store_disk_free_bytes: int_gauge(
                "kaunter_store_disk_free_bytes",
                "Free space on the data directory's file system, for this process.",
            ),
            events_unrouted: int_gauge("kaunter_events_unrouted", "Events accepted and not yet routed."),
            alerts_open: gauge(
                &r,
                "kaunter_alerts_open",
                "SOP alerts firing now (raised and not yet resolved), by kind.",
                &["kind"],
            ),
            alerts_raised: counter(
                &r,
                "kaunter_alerts_raised_total",
                "SOP alert events the host raised, by kind and state (firing, resolved).",
                &["kind", "state"],
            ),
            uptime,
            started: std::time::Instant::now(),
            registry: r,
        }
    }

    /// Sets the stores that get their own `store` label value (the `[stores]` registry).
    pub fn set_known_stores(&self, stores: BTreeSet<String>) {
        self.known_stores.store(Arc::new(stores));
    }

    /// The `store` label value for `store`: itself when registered, else [`OTHER_STORE`].
    pub fn store_label<'a>(&self, store: &'a str) -> &'a str {
        if self.known_stores.load().contains(store) {
            store
        } else {
            OTHER_STORE
        }
    }

    /// Turns recording on or off (on at start). Off, the recording methods return at once and
    /// the counters keep their values: how the benchmark measures what metrics cost.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    fn on(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Counts one event received for `store` with `outcome`.
    pub fn count_ingest(&self, outcome: &str, store: &str) {
        if self.on() {
            self.ingest_events
                .with_label_values(&[outcome, self.store_label(store)])
                .inc();
        }
    }

    /// Counts one refused ingest request.
    pub fn count_rejected(&self, endpoint: &str, reason: &str) {
        if self.on() {
            self.ingest_rejected.with_label_values(&[endpoint, reason]).inc();
        }
    }

    /// Counts what became of one delivery attempt of `sink`.
    pub fn count_sink(&self, sink: &str, outcome: SinkOutcome) {
        if !self.on() {
            return;
        }
        let counter = match outcome {
            SinkOutcome::Delivered => &self.sink_delivered,
            SinkOutcome::Retried => &self.sink_retried,
            SinkOutcome::DeadLettered => &self.sink_dead_lettered,
        };
        counter.with_label_values(&[sink]).inc();
    }

    /// Records a live delivery's acknowledged → delivered time.
    pub fn observe_delivery(&self, sink: &str, latency: Duration) {
        if self.on() {
            self.sink_latency
                .with_label_values(&[sink])
                .observe(latency.as_secs_f64());
        }
    }

    /// Records one plugin call.
    pub fn observe_call(
        &self,
        plugin: &str,
        version: &str,
        call: &str,
        elapsed: Duration,
        fuel: Option<u64>,
        peak_memory: usize,
    ) {
        if !self.on() {
            return;
        }
        self.plugin_call
            .with_label_values(&[plugin, version, call])
            .observe(elapsed.as_secs_f64());
        if let Some(fuel) = fuel {
            self.plugin_fuel.with_label_values(&[plugin, version]).inc_by(fuel);
        }
        let memory = self.plugin_peak_memory.with_label_values(&[plugin, version]);
        let peak = i64::try_from(peak_memory).unwrap_or(i64::MAX);
        if peak > memory.get() {
            memory.set(peak);
        }
    }

    /// Counts one failed plugin call (`label` is `name@version`).
    pub fn count_plugin_failure(&self, label: &str, kind: &str) {
        if self.on() {
            let (plugin, version) = split_label(label);
            self.plugin_failures.with_label_values(&[plugin, version, kind]).inc();
        }
    }

    /// Counts one outbound request that went out, by the status it got (or `timeout`, `error`).
    pub fn count_egress(&self, plugin: &str, host: &str, status: &str) {
        if self.on() {
            self.egress_requests.with_label_values(&[plugin, host, status]).inc();
        }
    }

    /// Counts one outbound request the checkpoint refused, by a fixed `reason` word.
    pub fn count_egress_denied(&self, plugin: &str, reason: &str) {
        if self.on() {
            self.egress_denied.with_label_values(&[plugin, reason]).inc();
        }
    }

    /// Counts one SOP alert raised.
    pub fn count_alert(&self, kind: &str, state: &str) {
        self.alerts_raised.with_label_values(&[kind, state]).inc();
    }

    /// Records one group commit.
    pub fn observe_commit(&self, elapsed: Duration) {
        if self.on() {
            self.store_commit.observe(elapsed.as_secs_f64());
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every instrument.
    pub fn encode(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        let mut out = Vec::new();
        // Encoding into memory fails only on a malformed family, which the definitions above rule out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// What became of a delivery attempt, for [`HostMetrics::count_sink`].
#[derive(Debug, Clone, Copy)]
pub enum SinkOutcome {
    /// Confirmed by the target.
    Delivered,
    /// Failed and scheduled again.
    Retried,
    /// Dead-lettered.
    DeadLettered,
}

/// `name@version` → `(name, version)`; `(label, "")` without a version.
fn split_label(label: &str) -> (&str, &str) {
    label.split_once('@').unwrap_or((label, ""))
}

/// The content type of [`HostMetrics::encode`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static METRICS: LazyLock<HostMetrics> = LazyLock::new(HostMetrics::new);

/// The process's instruments.
pub fn metrics() -> &'static HostMetrics {
    &METRICS
}

/// Free bytes on the file system holding `path` for an unprivileged process, if it can be read.
pub fn disk_free_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unregistered_stores_share_one_label_and_the_exposition_parses_as_text_format() {
        let m = HostMetrics::new();
        m.set_known_stores(["hk-001".to_owned()].into());
        m.count_ingest("accepted", "hk-001");
        m.count_ingest("accepted", "hk-999");
        m.count_ingest("accepted", "hk-998");
        m.observe_call(
            "sku-map",
            "1.2.0",
            "handle",
            Duration::from_micros(300),
            Some(1000),
            65536,
        );
        let text = m.encode();
        assert!(
            text.contains(r#"kaunter_ingest_events_total{outcome="accepted",store="hk-001"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kaunter_ingest_events_total{outcome="accepted",store="other"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kaunter_plugin_fuel_consumed_total{plugin="sku-map",version="1.2.0"} 1000"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE kaunter_plugin_call_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains(r#"kaunter_build_info{version=""#), "{text}");
    }

    /// The metric names in `text`: `kaunter_` followed by lower case and `_`.
    fn names_in(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("kaunter_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.push(name);
        }
        names
    }

    #[test]
    fn the_docs_and_the_dashboard_name_exactly_the_metrics_served() {
        let m = HostMetrics::new();
        m.count_ingest("accepted", "hk-001");
        m.count_rejected("events", "malformed_json");
        for outcome in [SinkOutcome::Delivered, SinkOutcome::Retried, SinkOutcome::DeadLettered] {
            m.count_sink("xero", outcome);
        }
        m.observe_delivery("xero", Duration::from_millis(3));
        m.observe_call("sku-map", "1", "handle", Duration::from_micros(50), Some(10), 1);
        m.count_plugin_failure("sku-map@1", "trap");
        m.count_egress("xero", "api.xero.com", "200");
        m.count_egress_denied("xero", "not_granted");
        m.observe_commit(Duration::from_millis(1));
        m.count_alert("sink-failing", "firing");
        m.alerts_open.with_label_values(&["sink-failing"]).set(1);
        m.sink_pending.with_label_values(&["xero"]).set(0);
        m.sink_in_flight.with_label_values(&["xero"]).set(0);
        m.sink_parked.with_label_values(&["xero"]).set(0);
        m.sink_paused.with_label_values(&["xero"]).set(0);
        m.sink_dead_letters.with_label_values(&["xero"]).set(0);
        m.sink_oldest_undelivered.with_label_values(&["xero"]).set(0.0);
        let text = m.encode();
        let served: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(served.len(), 27, "every instrument is touched above: {served:?}");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let docs = std::fs::read_to_string(root.join("docs/observability.md")).unwrap();
        let dashboard = std::fs::read_to_string(root.join("docs/grafana-dashboard.json")).unwrap();
        let _: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
        for name in &served {
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/observability.md does not describe `{name}`"
            );
        }
        for (file, text) in [
            ("docs/observability.md", &docs),
            ("docs/grafana-dashboard.json", &dashboard),
        ] {
            for name in names_in(text) {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(&name);
                assert!(
                    served.contains(base),
                    "{file} names `{name}`, which /metrics does not serve"
                );
            }
        }
    }
}
