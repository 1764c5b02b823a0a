//! Operator endpoints (reads for viewer and admin keys, changes for admin keys only): dead
//! letters, replay, sink state, live counters, `/metrics`, `/readyz` and status (in [`observe`]),
//! and (in [`plugins`]) plugin versions, deployments, shadows, config reload and historic replay.
//! Every call that changes something is recorded in the audit log, refused ones included.

mod dlq;
mod observe;
mod plugins;
mod verify;

use crate::ingress::AppState;
use crate::ingress::error::ApiError;
use crate::store::audit::AuditEntry;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use observe::open_metrics_router;

/// Admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/dlq", get(dlq::list))
        .route("/v1/admin/dlq/replay", post(dlq::replay))
        .route("/v1/admin/sinks", get(sinks))
        .route("/v1/admin/sinks/{name}/resume", post(resume_sink))
        .route("/v1/admin/sinks/{name}/pause", post(pause_sink))
        .route("/v1/admin/sinks/{name}/unpark", post(unpark_sink))
        .route("/v1/admin/stats", get(stats))
        .route("/v1/admin/verify", get(verify::verify))
        .merge(observe::router())
        .merge(plugins::router())
}

/// The largest admin request body read (JSON requests and configuration files), once the admin
/// key is checked; plugin uploads have their own limit.
pub const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

async fn sinks(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    Ok(Json(json!({ "sinks": sink_report(&state).await? })))
}

/// Each sink's state and health: `running`, `failing` (its latest attempt failed), `delayed`
/// (its freshness is over its threshold) or `paused`; its backlog, the deliveries its worker
/// holds in memory, and the age of its oldest open delivery; its error rate over the last five
/// minutes (since start, if more recent); and its latest failure with time and destination.
async fn sink_report(state: &AppState) -> Result<Vec<Value>, ApiError> {
    let health = health(state, crate::pipeline::health::Detail::Full).await?;
    Ok(health.sinks.into_iter().map(sink_json).collect())
}

/// The host's health now (see [`crate::pipeline::health`]).
pub(crate) async fn health(
    state: &AppState,
    detail: crate::pipeline::health::Detail,
) -> Result<crate::pipeline::health::HealthReport, ApiError> {
    let config = state.config();
    state
        .pipeline
        .health(
            &config.resolve(&config.server.data_dir),
            config.server.disk_low_mib.saturating_mul(1024 * 1024),
            detail,
        )
        .await
        .map_err(ApiError::internal)
}

/// One sink as `GET /v1/admin/sinks` and `kaunter status` show it.
pub(crate) fn sink_json(s: crate::pipeline::health::SinkView) -> Value {
    json!({
        "name": s.name,
        "state": s.state,
        "paused": s.paused,
        "open": s.open,
        "parked": s.parked,
        "oldest_open_age_secs": s.oldest_undelivered_age_secs.map(|age| age.floor() as u64),
        "freshness_threshold_secs": s.freshness_threshold_secs,
        "dead_letters": s.dead_letters,
        "recent": {
            "window_secs": crate::pipeline::metrics::SINK_WINDOW_SECS,
            "delivered": s.recent.delivered,
            "failed": s.recent.failed,
            "error_rate": s.recent.error_rate(),
        },
        "last_failure": s.last_failure.map(|f| json!({
            "at": crate::store::rfc3339(Some(f.at_ms)),
            "outcome": f.failure.outcome,
            "error": f.failure.error,
            "destination": f.failure.destination,
            "delivery_id": f.delivery_id,
        })),
        "in_memory": s.in_memory,
        "window": s.window,
    })
}

/// The sink named `name`, or 404.
fn known_sink(state: &AppState, name: &str) -> Result<(), ApiError> {
    match state.pipeline.sink_states().iter().any(|s| s.name == name) {
        true => Ok(()),
        false => Err(ApiError::not_found(format!("no sink named `{name}`"))),
    }
}

// Pause, resume and unpark are recorded in the audit log before they act: if the record cannot
// be written, the action is not taken.

async fn resume_sink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &headers, name, false).await
}

async fn pause_sink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &headers, name, true).await
}

/// Pauses (attempts in flight finish, nothing new starts) or resumes a sink.
async fn set_paused(
    state: &AppState,
    headers: &HeaderMap,
    name: String,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(headers)?.name;
    known_sink(state, &name)?;
    let action = if paused { "sink.pause" } else { "sink.resume" };
    record(state, &key, action, name.clone(), json!({})).await?;
    if paused {
        state.pipeline.pause_sink(&name);
    } else {
        state.pipeline.resume_sink(&name);
    }
    Ok(Json(json!({ "sink": name, "paused": paused })))
}

async fn unpark_sink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    known_sink(&state, &name)?;
    let parked = state
        .pipeline
        .store()
        .backlogs()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|b| b.sink == name)
        .map_or(0, |b| b.parked);
    record(&state, &key, "sink.unpark", name.clone(), json!({ "parked": parked })).await?;
    let unparked = state
        .pipeline
        .unpark_sink(&name)
        .await
        .map_err(ApiError::internal)?
        .unwrap_or(0);
    Ok(Json(json!({ "sink": name, "unparked": unparked })))
}

/// Writes an admin action to the audit log, as done by the API key `key`.
pub(crate) async fn record(
    state: &AppState,
    key: &str,
    action: &str,
    subject: String,
    detail: Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry::new(format!("api-key:{key}"), action, subject, detail);
    state
        .pipeline
        .store()
        .audit(vec![entry])
        .await
        .map_err(ApiError::internal)
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    let metrics = state.pipeline.metrics();
    let mut body = json!(metrics.snapshot());
    let started = *metrics.started_at_ms.get_or_init(crate::store::now_ms);
    body["started_at"] = crate::store::rfc3339(Some(started));
    body["uptime_secs"] = json!((crate::store::now_ms() - started).max(0) / 1000);
    body["plugin_failures"] = json!(metrics.plugin_failures());
    body["delivery_outcomes"] = json!(metrics.delivery_outcomes());
    body["disk"] = json!(state.pipeline.store().disk_usage());
    body["log_lines_dropped"] = json!(crate::engine::LOG_LINES_DROPPED.load(std::sync::atomic::Ordering::Relaxed));
    body["quarantined"] = json!(state.pipeline.store().quarantined().await.map_err(ApiError::internal)?);
    let sinks = sink_report(&state).await?;
    body["open_deliveries"] = json!(sinks.iter().map(|s| s["open"].as_u64().unwrap_or(0)).sum::<u64>());
    body["parked_deliveries"] = json!(sinks.iter().map(|s| s["parked"].as_u64().unwrap_or(0)).sum::<u64>());
    // Latency percentiles count deliveries made; freshness counts what is still waiting.
    body["oldest_undelivered_age_secs"] = json!(sinks.iter().filter_map(|s| s["oldest_open_age_secs"].as_u64()).max());
    body["sinks"] = json!(sinks);
    Ok(Json(body))
}
