//! `GET /v1/admin/dlq` and `POST /v1/admin/dlq/replay`: the dead-letter queue, filtered by sink,
//! store, error text and time, paged, counted and grouped; and replays by id or by the same
//! filters, recorded in the audit log with their filter and count.

use crate::ingress::AppState;
use crate::ingress::error::ApiError;
use crate::store::audit::AuditEntry;
use crate::store::{DeadLetter, DeadLetterQuery, ReplaySelector};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

/// The filters `dlq list` and `dlq replay` share, as the API takes them (times in RFC 3339).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DlqFilter {
    /// Only this sink's entries (`transform`: route failures).
    #[serde(default)]
    sink: Option<String>,
    /// Only events of this store.
    #[serde(default)]
    store: Option<String>,
    /// Only errors containing this text.
    #[serde(default)]
    error: Option<String>,
    /// Dead-lettered at or after this time.
    #[serde(default)]
    since: Option<String>,
    /// Dead-lettered before this time.
    #[serde(default)]
    until: Option<String>,
}

impl DlqFilter {
    fn is_empty(&self) -> bool {
        self.sink.is_none()
            && self.store.is_none()
            && self.error.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    fn query(&self, include_replayed: bool) -> Result<DeadLetterQuery, ApiError> {
        Ok(DeadLetterQuery {
            include_replayed,
            sink: self.sink.clone(),
            store: self.store.clone(),
            error: self.error.clone(),
            since_ms: self.since.as_deref().map(|t| time("since", t)).transpose()?,
            until_ms: self.until.as_deref().map(|t| time("until", t)).transpose()?,
            event_seq: None,
        })
    }

    /// The filter in words, for the audit record's subject.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("sink", &self.sink),
            ("store", &self.store),
            ("error", &self.error),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(value) = value {
                parts.push(format!("{name} {value:?}"));
            }
        }
        parts.join(", ")
    }
}

fn time(name: &str, text: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "`{name}` must be an RFC 3339 time such as 2026-11-25T09:00:00Z: {e}"
            ))
        })
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    all: bool,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    offset: usize,
    #[serde(flatten)]
    filter: DlqFilter,
}

fn default_limit() -> usize {
    100
}

pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    let query = q.filter.query(q.all)?;
    let limit = q.limit.min(10_000);
    let page = state
        .pipeline
        .store()
        .dead_letters(query, limit, q.offset)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "dead_letters": page.entries.iter().map(DeadLetter::to_json).collect::<Vec<_>>(),
        "total": page.total,
        "offset": q.offset,
        "limit": limit,
        "groups": page.groups,
    })))
}

/// Body of `POST /v1/admin/dlq/replay`: `ids`, or the filters of the listing (at least one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayRequest {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(flatten)]
    filter: DlqFilter,
}

pub(super) async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ReplayRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "replay body must be {{\"ids\": [..]}} or filters {{\"sink\", \"store\", \"error\", \"since\", \"until\"}}: {e}"
        ))
    })?;
    let (selector, subject, detail) = match request.ids {
        Some(ids) if request.filter.is_empty() => (ReplaySelector::Ids(ids.clone()), format!("ids {ids:?}"), json!({})),
        None if !request.filter.is_empty() => {
            let query = request.filter.query(false)?;
            let detail = json!({ "filter": query });
            (ReplaySelector::Matching(query), request.filter.describe(), detail)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either `ids` or at least one filter (`sink`, `store`, `error`, `since`, `until`), not both",
            ));
        }
    };
    let entry = AuditEntry::new(format!("api-key:{key}"), "dlq.replay", subject, detail);
    let replayed = state
        .pipeline
        .replay(selector, Some(entry))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(by = %key, entries = replayed.len(), "dead letters replayed");
    Ok(Json(json!({ "replayed": replayed, "count": replayed.len() })))
}
