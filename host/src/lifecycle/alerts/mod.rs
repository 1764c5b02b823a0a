//! The host's SOP alerts: every `[alerts] check_interval_secs` the monitor reads the
//! [`conditions`] that hold, raises a `kaunter.alert.v1` event (`firing`) for each new one and a
//! `resolved` one for each that has stayed clear for `resolve_after_secs`. The events are
//! appended to the log and routed by ordinary routes, so the Slack and DingTalk connectors (or
//! any other) deliver them.
//!
//! Rules that keep alerts few and honest:
//! - **One alert per condition.** A condition (its dedup key, e.g. `sink-failing:xero`) raises
//!   one `firing` event, then nothing until it resolves, however long it lasts.
//! - **No alert about alerts.** Dead letters and plugin failures of alert events are not counted
//!   by `dlq-growing` and `plugin-failing`, so an alert sink that is down raises its own
//!   `sink-failing` and `sync-delayed` once each and never feeds on its own backlog.
//! - **Exactly once across restarts.** Open alerts and the alerts about to be raised are kept in
//!   the log's settings (`alerts.state`) before they are raised; the event ids are
//!   deterministic (`kaunter-alert:{key}:{since}:{state}`), so raising again after a crash is a
//!   duplicate, never a second alert.

pub mod conditions;

use crate::config::AlertsConfig;
use crate::lifecycle::Lifecycle;
use crate::pipeline::Pipeline;
use crate::pipeline::health::Detail;
use crate::store::now_ms;
use conditions::{Condition, Observations};
use kaunter_model::{Alert, AlertState, Event, Evidence, HOST_ALERT_ID_PREFIX, HOST_ALERT_SOURCE, Payload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The setting the monitor's state is kept under.
const STATE_SETTING: &str = "alerts.state";

/// A condition with a `firing` alert and no `resolved` one yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenAlert {
    /// The condition as last seen.
    pub condition: Condition,
    /// When it started (ms since the epoch).
    pub since_ms: i64,
    /// When its `firing` alert was raised.
    pub fired_at_ms: i64,
    /// Since when it has been clear (`None`: it holds now).
    pub clear_since_ms: Option<i64>,
}

/// An alert decided on and not yet known to be in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    alert: OpenAlert,
    state: AlertState,
    at_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    open: BTreeMap<String, OpenAlert>,
    outbox: Vec<Pending>,
}

/// The running monitor.
pub struct Monitor {
    pipeline: Arc<Pipeline>,
    lifecycle: Arc<Lifecycle>,
    state: tokio::sync::Mutex<State>,
    /// A copy of the open alerts for readers that must not wait on a check.
    open: Mutex<Vec<OpenAlert>>,
    watching_since_ms: i64,
    firing: AtomicU64,
    resolved: AtomicU64,
}

impl Monitor {
    /// Loads the state the log keeps, raises what a crash left unraised, and checks the
    /// conditions every `check_interval_secs` from then on (re-read at each check, so a reload
    /// applies). With `[alerts] enabled = false` nothing is raised.
    pub async fn spawn(lifecycle: Arc<Lifecycle>, pipeline: Arc<Pipeline>) -> anyhow::Result<Arc<Monitor>> {
        let stored = pipeline.store().setting(STATE_SETTING).await?;
        let state: State = match stored.as_deref().map(serde_json::from_str) {
            Some(Ok(state)) => state,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the stored alert state is unreadable; starting with no open alerts");
                State::default()
            }
            None => State::default(),
        };
        let monitor = Arc::new(Monitor {
            pipeline,
            lifecycle,
            open: Mutex::new(state.open.values().cloned().collect()),
            state: tokio::sync::Mutex::new(state),
            watching_since_ms: now_ms(),
            firing: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
        });
        let task = monitor.clone();
        tokio::spawn(async move {
            loop {
                let config = task.lifecycle.config().alerts.clone();
                if config.enabled
                    && let Err(e) = task.check(&config).await
                {
                    tracing::error!(error = %format!("{e:#}"), "checking the alert conditions failed; trying again at the next check");
                }
                tokio::time::sleep(Duration::from_secs(config.check_interval_secs.max(1))).await;
            }
        });
        Ok(monitor)
    }

    /// The conditions with an alert firing now, oldest first.
    pub fn open_alerts(&self) -> Vec<OpenAlert> {
        let mut open = self.open.lock().map(|o| o.clone()).unwrap_or_default();
        open.sort_by_key(|a| a.since_ms);
        open
    }

    /// `firing` and `resolved` alerts raised since the host started.
    pub fn raised(&self) -> (u64, u64) {
        (
            self.firing.load(Ordering::Relaxed),
            self.resolved.load(Ordering::Relaxed),
        )
    }

    /// One check: read the conditions, decide what to raise, keep the decision, raise it.
    async fn check(&self, config: &AlertsConfig) -> anyhow::Result<()> {
        let host = self.lifecycle.config();
        let health = self
            .pipeline
            .health(
                &host.resolve(&host.server.data_dir),
                host.server.disk_low_mib.saturating_mul(1024 * 1024),
                Detail::Full,
            )
            .await?;
        let metrics = self.pipeline.metrics();
        let observations = Observations {
            now_ms: now_ms(),
            config,
            health: &health,
            stores: &host.stores,
            store_last_seen_ms: host
                .stores
                .keys()
                .map(|id| (id.clone(), metrics.store_last_seen_ms(id)))
                .collect(),
            watching_since_ms: self.watching_since_ms,
            recent_dead_letters: metrics.recent_dead_letters(config.window_secs),
            recent_plugin_failures: metrics.recent_plugin_failures(config.window_secs),
            refusals: self.lifecycle.registry().credentials().refusals(),
        };
        let now = observations.now_ms;
        let holding = conditions::conditions(&observations);
        let mut state = self.state.lock().await;
        decide(&mut state, holding, now, config.resolve_after_secs);
        // Readers see the open set before the counts of what is raised for it: whoever sees an
        // alert counted as raised sees the open set it belongs to.
        if let Ok(mut open) = self.open.lock() {
            *open = state.open.values().cloned().collect();
        }
        let gauge = &crate::telemetry::prom::metrics().alerts_open;
        for kind in conditions::KINDS {
            let n = state.open.values().filter(|a| a.condition.kind == *kind).count();
            gauge.with_label_values(&[kind]).set(n as i64);
        }
        if !state.outbox.is_empty() {
            self.save(&state).await?;
            self.flush(&mut state, config).await?;
        }
        Ok(())
    }

    /// Raises what the outbox holds, then empties it.
    async fn flush(&self, state: &mut State, config: &AlertsConfig) -> anyhow::Result<()> {
        let events: Vec<Event> = state.outbox.iter().map(|p| alert_event(p, config)).collect();
        let appended = self.pipeline.raise(events.clone()).await?;
        for ((pending, event), outcome) in state.outbox.iter().zip(&events).zip(&appended) {
            if outcome.duplicate {
                continue;
            }
            let (counter, state) = match pending.state {
                AlertState::Firing => (&self.firing, "firing"),
                AlertState::Resolved => (&self.resolved, "resolved"),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let c = &pending.alert.condition;
            crate::telemetry::prom::metrics().count_alert(&c.kind, state);
            match pending.state {
                AlertState::Firing => {
                    tracing::warn!(alert = %c.key, event = %event.id, source = %event.source, "alert firing: {}", c.title)
                }
                AlertState::Resolved => {
                    tracing::info!(alert = %c.key, event = %event.id, source = %event.source, "alert resolved: {}", c.title)
                }
            }
        }
        state.outbox.clear();
        self.save(state).await
    }

    async fn save(&self, state: &State) -> anyhow::Result<()> {
        self.pipeline
            .store()
            .put_setting(STATE_SETTING, serde_json::to_string(state)?)
            .await?;
        Ok(())
    }
}

/// Moves `state` on to the conditions `holding` at `now`: new conditions open and fire, open ones
/// take the latest evidence, and those clear for `resolve_after_secs` resolve.
fn decide(state: &mut State, holding: Vec<Condition>, now: i64, resolve_after_secs: u64) {
    let mut holding: BTreeMap<String, Condition> = holding.into_iter().map(|c| (c.key.clone(), c)).collect();
    let resolve_after_ms = i64::try_from(resolve_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut resolved = Vec::new();
    for (key, open) in &mut state.open {
        match holding.remove(key) {
            Some(condition) => {
                open.condition = condition;
                open.clear_since_ms = None;
            }
            None => {
                let clear_since = *open.clear_since_ms.get_or_insert(now);
                if now - clear_since >= resolve_after_ms {
                    resolved.push(key.clone());
                }
            }
        }
    }
    for key in resolved {
        if let Some(alert) = state.open.remove(&key) {
            state.outbox.push(Pending {
                alert,
                state: AlertState::Resolved,
                at_ms: now,
            });
        }
    }
    for (key, condition) in holding {
        let alert = OpenAlert {
            since_ms: condition.since_ms.unwrap_or(now).min(now),
            condition,
            fired_at_ms: now,
            clear_since_ms: None,
        };
        state.open.insert(key, alert.clone());
        state.outbox.push(Pending {
            alert,
            state: AlertState::Firing,
            at_ms: now,
        });
    }
}

/// The `kaunter.alert.v1` event of a decided alert. Everything in it comes from `pending`, so the
/// same decision always gives the same event.
fn alert_event(pending: &Pending, config: &AlertsConfig) -> Event {
    let open = &pending.alert;
    let c = &open.condition;
    let (state_name, message, mut evidence) = match pending.state {
        AlertState::Firing => ("firing", c.message.clone(), c.evidence.clone()),
        AlertState::Resolved => {
            let lasted = (pending.at_ms - open.since_ms).max(0) / 1000;
            let mut evidence = vec![Evidence::new("lasted", format!("{lasted} s"))];
            evidence.extend(c.evidence.iter().cloned());
            (
                "resolved",
                format!("Clear for {} s now. It was: {}", config.resolve_after_secs, c.message),
                evidence,
            )
        }
    };
    evidence.truncate(12);
    let since = crate::audit::anchor::rfc3339(open.since_ms);
    Event {
        id: format!("{HOST_ALERT_ID_PREFIX}{}:{}:{state_name}", c.key, open.since_ms),
        source: HOST_ALERT_SOURCE.to_owned(),
        ty: kaunter_model::ALERT.to_owned(),
        time: crate::audit::anchor::rfc3339(pending.at_ms),
        subject: Some(c.target.clone()),
        partition_key: c.key.clone(),
        extensions: Vec::new(),
        payload: Payload::Alert(Alert {
            kind: c.kind.clone(),
            severity: c.severity,
            title: c.title.clone(),
            message,
            state: pending.state,
            dedup_key: c.key.clone(),
            target: c.target.clone(),
            since,
            evidence,
            runbook: config.runbook(&c.kind),
        }),
    }
}

#[cfg(test)]
mod tests;
