//! `GET /v1/admin/verify?since=T`: did every event received since `T` reach every sink its
//! routes name, or is it dead-lettered? Judged by [`crate::pipeline::verify`] against the
//! routes in force, over the whole log from `T` (a page at a time).

use crate::ingress::AppState;
use crate::ingress::error::ApiError;
use crate::pipeline::verify::Verdict;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

/// Events read from the log per page.
const PAGE: usize = 5000;

#[derive(Deserialize)]
pub(super) struct VerifyQuery {
    /// RFC 3339; the whole log when absent.
    since: Option<String>,
}

pub(super) async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    let since_us = match &q.since {
        None => 0,
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_micros())
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "`since` must be an RFC 3339 time such as 2026-11-25T09:00:00Z: {e}"
                ))
            })?,
    };
    let config = state.lifecycle.config();
    let store = state.pipeline.store();
    let mut verdict = Verdict::default();
    let mut after = 0;
    loop {
        let page = store
            .event_outcomes(since_us, after, PAGE)
            .await
            .map_err(ApiError::internal)?;
        for event in &page {
            verdict.add(event, &config.routes);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.seq,
            _ => break,
        }
    }
    Ok(Json(json!({ "since": q.since, "verdict": verdict })))
}
