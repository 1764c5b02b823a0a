#![allow(clippy::unwrap_used)]

use super::conditions::{Condition, Observations, conditions};
use super::*;
use crate::config::StoreConfig;
use crate::pipeline::health::{HealthReport, SinkView, Status};
use crate::pipeline::metrics::SinkRecent;

fn sink(name: &str) -> SinkView {
    SinkView {
        name: name.into(),
        state: "running",
        paused: false,
        open: 0,
        parked: 0,
        in_memory: 0,
        window: 64,
        oldest_undelivered_age_secs: None,
        freshness_threshold_secs: 60,
        dead_letters: 0,
        recent: SinkRecent::default(),
        last_failure: None,
    }
}

fn health(sinks: Vec<SinkView>) -> HealthReport {
    HealthReport {
        status: Status::Ok,
        reasons: Vec::new(),
        accepting: true,
        sinks,
        dead_letters: 0,
        failing_plugins: Vec::new(),
        unrouted: 0,
        disk_free_bytes: Some(10 << 30),
        disk_low_bytes: 1 << 30,
    }
}

const NOW: i64 = 1_796_000_000_000;

fn observe(config: &AlertsConfig, health: &HealthReport, stores: &BTreeMap<String, StoreConfig>) -> Vec<Condition> {
    conditions(&Observations {
        now_ms: NOW,
        config,
        health,
        stores,
        store_last_seen_ms: BTreeMap::new(),
        watching_since_ms: NOW - 10_000,
        recent_dead_letters: BTreeMap::new(),
        recent_plugin_failures: BTreeMap::new(),
        refusals: Vec::new(),
    })
}

fn keys(conditions: &[Condition]) -> Vec<&str> {
    conditions.iter().map(|c| c.key.as_str()).collect()
}

#[test]
fn a_sink_fails_after_n_consecutive_failures_or_when_paused_and_is_delayed_past_its_threshold() {
    let config = AlertsConfig::default();
    let mut xero = sink("xero");
    xero.recent.consecutive_failures = 4;
    let stores = BTreeMap::new();
    assert!(
        observe(&config, &health(vec![xero.clone()]), &stores).is_empty(),
        "4 of 5 is not yet failing"
    );
    xero.recent.consecutive_failures = 5;
    xero.recent.failing_since_ms = Some(NOW - 30_000);
    xero.oldest_undelivered_age_secs = Some(75.0);
    xero.open = 12;
    let mut slack = sink("slack");
    slack.paused = true;
    let found = observe(&config, &health(vec![xero, slack]), &stores);
    assert_eq!(
        keys(&found),
        ["sink-failing:xero", "sync-delayed:xero", "sink-failing:slack"]
    );
    assert_eq!(found[0].since_ms, Some(NOW - 30_000));
    assert_eq!(
        found[1].since_ms,
        Some(NOW - 15_000),
        "delayed since the age crossed 60 s"
    );
    assert!(found[1].evidence.contains(&Evidence::new("open-deliveries", 12)));
    assert!(
        found[2].message.contains("kaunter sink resume slack"),
        "{}",
        found[2].message
    );
}

#[test]
fn dead_letters_plugin_failures_refusals_and_disk_have_their_thresholds() {
    let config = AlertsConfig {
        dlq_growth: 3,
        plugin_failures: 2,
        ..AlertsConfig::default()
    };
    let mut report = health(vec![sink("erp")]);
    report.disk_free_bytes = Some(100 << 20);
    let stores = BTreeMap::new();
    let found = conditions(&Observations {
        now_ms: NOW,
        config: &config,
        health: &report,
        stores: &stores,
        store_last_seen_ms: BTreeMap::new(),
        watching_since_ms: NOW,
        recent_dead_letters: [("erp".to_owned(), 2), (String::new(), 3)].into(),
        recent_plugin_failures: [("sku-map@1a2b".to_owned(), 2), ("loyalty@9f".to_owned(), 1)].into(),
        refusals: vec![crate::credentials::Refusal {
            credential: "xero".into(),
            error: "invalid_grant".into(),
            count: 2,
            since_ms: NOW - 5_000,
        }],
    });
    assert_eq!(
        keys(&found),
        [
            "dlq-growing:routes",
            "plugin-failing:sku-map@1a2b",
            "credential-failing:xero",
            "disk-low:data"
        ]
    );
    assert!(found[0].message.contains("--sink transform"), "{}", found[0].message);
}

#[test]
fn a_store_is_silent_only_for_its_opening_hours() {
    let config = AlertsConfig::default();
    let store = |quiet: Option<&str>| StoreConfig {
        group: None,
        time_zone: "Asia/Hong_Kong".into(),
        quiet_hours: quiet.map(str::to_owned),
        silent_after_secs: 5,
    };
    let stores: BTreeMap<String, StoreConfig> = [
        ("hk-001".to_owned(), store(None)),
        ("hk-002".to_owned(), store(Some("00:00-23:59"))),
    ]
    .into();
    let report = health(Vec::new());
    let found = conditions(&Observations {
        now_ms: NOW,
        config: &config,
        health: &report,
        stores: &stores,
        store_last_seen_ms: [("hk-001".to_owned(), Some(NOW - 6_000)), ("hk-002".to_owned(), None)].into(),
        watching_since_ms: NOW - 60_000,
        recent_dead_letters: BTreeMap::new(),
        recent_plugin_failures: BTreeMap::new(),
        refusals: Vec::new(),
    });
    // hk-002 is closed all day but one minute: its silence is not counted.
    assert_eq!(keys(&found), ["store-silent:hk-001"]);
}

fn failing(key: &str) -> Condition {
    let mut c = observe(
        &AlertsConfig::default(),
        &health(vec![{
            let mut s = sink(key);
            s.paused = true;
            s
        }]),
        &BTreeMap::new(),
    );
    c.remove(0)
}

#[test]
fn a_condition_fires_once_and_resolves_once_after_staying_clear() {
    let mut state = State::default();
    decide(&mut state, vec![failing("xero")], NOW, 30);
    assert_eq!(state.outbox.len(), 1);
    assert_eq!(state.outbox[0].state, AlertState::Firing);
    state.outbox.clear();
    for t in 1..5 {
        decide(&mut state, vec![failing("xero")], NOW + t * 10_000, 30);
    }
    assert!(state.outbox.is_empty(), "still holding: no second alert");
    decide(&mut state, Vec::new(), NOW + 60_000, 30);
    decide(&mut state, vec![failing("xero")], NOW + 70_000, 30);
    decide(&mut state, Vec::new(), NOW + 80_000, 30);
    assert!(
        state.outbox.is_empty(),
        "a flap inside resolve_after_secs raises nothing"
    );
    decide(&mut state, Vec::new(), NOW + 110_000, 30);
    assert_eq!(state.outbox.len(), 1);
    assert_eq!(state.outbox[0].state, AlertState::Resolved);
    assert!(state.open.is_empty());
    let config = AlertsConfig::default();
    let resolved = alert_event(&state.outbox[0], &config);
    assert_eq!(resolved.id, format!("kaunter-alert:sink-failing:xero:{NOW}:resolved"));
    let Payload::Alert(alert) = &resolved.payload else {
        panic!()
    };
    assert_eq!(alert.dedup_key, "sink-failing:xero");
    assert_eq!(alert.runbook, "docs/operators.md#sop-sink-failing");
    assert_eq!(alert.evidence[0], Evidence::new("lasted", "110 s"));
    assert_eq!(
        alert_event(&state.outbox[0], &config),
        resolved,
        "the same decision, the same event"
    );
    state.outbox.clear();
    decide(&mut state, vec![failing("xero")], NOW + 120_000, 30);
    let again = alert_event(&state.outbox[0], &config);
    assert_eq!(
        again.id,
        format!("kaunter-alert:sink-failing:xero:{}:firing", NOW + 120_000)
    );
}
