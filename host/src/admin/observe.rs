//! What monitoring reads: `GET /metrics` (Prometheus text format, to metrics and admin keys, or
//! open on `server.metrics_listen`), `GET /readyz` (open, like `/healthz`), and `GET
//! /v1/admin/status` (viewer and admin keys), the one-screen health `kaunter status` prints.

use super::{health, sink_json};
use crate::ingress::AppState;
use crate::ingress::error::ApiError;
use crate::pipeline::health::{Detail, Status};
use crate::telemetry::prom;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// `/metrics`, `/readyz` and `/v1/admin/status`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/v1/admin/status", get(status))
}

/// The router of `server.metrics_listen`: `/metrics` with no key (the address is the guard).
pub fn open_metrics_router() -> Router<AppState> {
    Router::new().route(
        "/metrics",
        get(|State(state): State<AppState>| async move { exposition(&state).await }),
    )
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authenticate_metrics(&headers)?;
    exposition(&state).await
}

/// Sets the state gauges from the health report, then encodes every instrument.
async fn exposition(state: &AppState) -> Result<Response, ApiError> {
    let report = health(state, Detail::Full).await?;
    let m = prom::metrics();
    for gauge in [
        &m.sink_pending,
        &m.sink_in_flight,
        &m.sink_parked,
        &m.sink_paused,
        &m.sink_dead_letters,
    ] {
        gauge.reset();
    }
    m.sink_oldest_undelivered.reset();
    for s in &report.sinks {
        let sink = [s.name.as_str()];
        m.sink_pending.with_label_values(&sink).set(s.open as i64);
        m.sink_in_flight.with_label_values(&sink).set(s.in_memory as i64);
        m.sink_parked.with_label_values(&sink).set(s.parked as i64);
        m.sink_paused.with_label_values(&sink).set(i64::from(s.paused));
        m.sink_dead_letters.with_label_values(&sink).set(s.dead_letters as i64);
        m.sink_oldest_undelivered
            .with_label_values(&sink)
            .set(s.oldest_undelivered_age_secs.unwrap_or(0.0));
    }
    let disk = state.pipeline.store().disk_usage();
    m.store_database_bytes.set(disk.database_bytes as i64);
    m.store_wal_bytes.set(disk.wal_bytes as i64);
    m.store_disk_free_bytes
        .set(report.disk_free_bytes.map_or(-1, |free| free as i64));
    m.events_unrouted.set(report.unrouted);
    Ok(([(header::CONTENT_TYPE, prom::CONTENT_TYPE)], m.encode()).into_response())
}

/// Ready to take traffic: 200 while ingest accepts events (with `degraded` and its reasons when
/// something needs an operator), 503 while it refuses them (over `max_pending` or the log budget).
async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = health(&state, Detail::Probe).await?;
    let code = if report.accepting {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Open like /healthz, so it says what and where, never an error's text.
    let reasons: Vec<_> = report
        .reasons
        .iter()
        .map(|r| json!({ "kind": r.kind, "sink": r.sink }))
        .collect();
    let status = match (report.accepting, report.status) {
        (false, _) => "not_ready",
        (true, Status::Ok) => "ready",
        (true, Status::Degraded) => "degraded",
    };
    Ok((code, Json(json!({ "status": status, "reasons": reasons }))).into_response())
}

/// The open alerts and how many were raised, as status shows them.
fn alerts_json(state: &AppState) -> serde_json::Value {
    let open: Vec<serde_json::Value> = state
        .alerts
        .open_alerts()
        .into_iter()
        .map(|a| {
            json!({
                "key": a.condition.key,
                "kind": a.condition.kind,
                "severity": a.condition.severity,
                "title": a.condition.title,
                "target": a.condition.target,
                "since": crate::audit::anchor::rfc3339(a.since_ms),
                "clearing": a.clear_since_ms.is_some(),
            })
        })
        .collect();
    let (firing, resolved) = state.alerts.raised();
    json!({ "open": open, "raised": { "firing": firing, "resolved": resolved } })
}

async fn status(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    let report = health(&state, Detail::Full).await?;
    let mut body = json!(report);
    body["sinks"] = json!(report.sinks.into_iter().map(sink_json).collect::<Vec<_>>());
    let metrics = state.pipeline.metrics().snapshot();
    body["latency"] = json!({ "p50_us": metrics.p50_us, "p99_us": metrics.p99_us });
    body["alerts"] = alerts_json(&state);
    Ok(Json(body))
}
