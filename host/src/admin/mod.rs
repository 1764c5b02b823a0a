//! Operator endpoints (admin scope): dead letters, replay, sink state, live counters, and (in
//! [`plugins`]) plugin versions, deployments, shadows, config reload and historic replay.
//! Every call that changes something is recorded in the audit log, refused ones included.

mod plugins;

use crate::ingress::AppState;
use crate::ingress::error::ApiError;
use crate::store::ReplaySelector;
use crate::store::audit::AuditEntry;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/dlq", get(list_dlq))
        .route("/v1/admin/dlq/replay", post(replay))
        .route("/v1/admin/sinks", get(sinks))
        .route("/v1/admin/sinks/{name}/resume", post(resume_sink))
        .route("/v1/admin/sinks/{name}/pause", post(pause_sink))
        .route("/v1/admin/sinks/{name}/unpark", post(unpark_sink))
        .route("/v1/admin/stats", get(stats))
        .merge(plugins::router())
}

#[derive(Deserialize)]
struct DlqQuery {
    #[serde(default)]
    all: bool,
    #[serde(default = "default_limit")]
    limit: usize,
}

/// The largest admin request body read (JSON requests and configuration files), once the admin
/// key is checked; plugin uploads have their own limit.
pub const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

fn default_limit() -> usize {
    100
}

async fn list_dlq(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DlqQuery>,
) -> Result<Json<Value>, ApiError> {
    state.authenticate_admin(&headers)?;
    let letters = state
        .pipeline
        .store()
        .dead_letters(q.all, q.limit.min(10_000))
        .await
        .map_err(ApiError::internal)?;
    let entries: Vec<Value> = letters
        .iter()
        .map(|l| {
            json!({
                "id": l.id, "event_id": l.event_id, "event_type": l.event_type, "sink": l.sink,
                "route": l.route, "plugin": l.plugin, "plugin_version": l.plugin_version,
                "error": l.error, "attempts": l.attempts,
                "failed_at": crate::store::rfc3339(Some(l.failed_at_ms)),
                "replayed_at": crate::store::rfc3339(l.replayed_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "dead_letters": entries })))
}

/// Body of `POST /v1/admin/dlq/replay`: exactly one of `ids` and `since`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    since: Option<String>,
}

async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ReplayRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "replay body must be {{\"ids\": [..]}} or {{\"since\": \"RFC 3339 time\"}}: {e}"
        ))
    })?;
    let selector = match (request.ids, request.since) {
        (Some(ids), None) => ReplaySelector::Ids(ids),
        (None, Some(since)) => {
            let t = chrono::DateTime::parse_from_rfc3339(&since).map_err(|e| {
                ApiError::bad_request(format!(
                    "`since` must be an RFC 3339 time such as 2026-11-25T09:00:00Z: {e}"
                ))
            })?;
            ReplaySelector::Since(t.timestamp_millis())
        }
        _ => {
            return Err(ApiError::bad_request("give exactly one of `ids` and `since`"));
        }
    };
    let what = match &selector {
        ReplaySelector::Ids(ids) => format!("ids {ids:?}"),
        ReplaySelector::Since(ms) => format!("since {}", crate::store::rfc3339(Some(*ms))),
    };
    let entry = AuditEntry::new(format!("api-key:{key}"), "dlq.replay", what, json!({}));
    let replayed = state
        .pipeline
        .replay(selector, Some(entry))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(by = %key, entries = ?replayed, "dead letters replayed");
    Ok(Json(json!({ "replayed": replayed })))
}

async fn sinks(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.authenticate_admin(&headers)?;
    Ok(Json(json!({ "sinks": sink_report(&state).await? })))
}

/// Every configured sink: paused or not, its backlog in the log (open and parked deliveries) and
/// the deliveries its worker holds in memory.
async fn sink_report(state: &AppState) -> Result<Vec<Value>, ApiError> {
    let backlogs = state.pipeline.store().backlogs().await.map_err(ApiError::internal)?;
    Ok(state
        .pipeline
        .sink_states()
        .into_iter()
        .map(|s| {
            let backlog = backlogs.iter().find(|b| b.sink == s.name).cloned().unwrap_or_default();
            json!({
                "name": s.name,
                "paused": s.paused,
                "open": backlog.open,
                "parked": backlog.parked,
                "in_memory": s.in_memory,
                "window": s.window,
            })
        })
        .collect())
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
    state.authenticate_admin(&headers)?;
    let metrics = state.pipeline.metrics();
    let mut body = json!(metrics.snapshot());
    body["plugin_failures"] = json!(metrics.plugin_failures());
    body["disk"] = json!(state.pipeline.store().disk_usage());
    body["log_lines_dropped"] = json!(crate::engine::LOG_LINES_DROPPED.load(std::sync::atomic::Ordering::Relaxed));
    body["quarantined"] = json!(state.pipeline.store().quarantined().await.map_err(ApiError::internal)?);
    let sinks = sink_report(&state).await?;
    body["open_deliveries"] = json!(sinks.iter().map(|s| s["open"].as_u64().unwrap_or(0)).sum::<u64>());
    body["parked_deliveries"] = json!(sinks.iter().map(|s| s["parked"].as_u64().unwrap_or(0)).sum::<u64>());
    body["sinks"] = json!(sinks);
    Ok(Json(body))
}
