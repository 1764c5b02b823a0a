//! `POST /v1/events` and `GET /v1/events/{id}`.

use super::AppState;
use super::decode::decode;
use super::error::ApiError;
use crate::config::Role;
use crate::store::Delivery;
use crate::store::rfc3339;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Accepts one event or a batch; answers after the events are durable. Refusals are counted
/// by reason in the metrics.
pub async fn post_events(state: State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    super::count_rejected("events", accept_events(state, headers, body).await)
}

async fn accept_events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let started = std::time::SystemTime::now();
    let key = state.authenticate_ingest(&headers)?;
    let limit = state.max_body_bytes();
    if let Some(length) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > limit
    {
        return Err(too_large(limit));
    }
    let bytes = super::read_body(body, limit, "server.max_body_bytes; split the batch").await?;
    let mut decoded = decode(&headers, &bytes)?;
    for event in &mut decoded.events {
        event.scope_partition_key();
    }
    for event in &decoded.events {
        let store = event.store().unwrap_or("");
        if !key.may_send_for(store) {
            return Err(ApiError::forbidden(format!(
                "API key `{}` may not send events for store `{store}` (source {}); its stores are {:?}",
                key.name, event.source, key.stores
            )));
        }
    }
    let ids: Vec<String> = decoded.events.iter().map(|e| e.id.clone()).collect();
    let traces = super::tracing::begin_events(&headers, &decoded.events);
    let described = super::tracing::describe(&decoded.events);
    // An empty batch is a valid batch (CloudEvents JSON batch format): nothing to store.
    let appended = if decoded.events.is_empty() {
        Vec::new()
    } else {
        state.pipeline.ingest_traced(decoded.events, traces.0.clone()).await?
    };
    super::tracing::record_ingest("ingest", started, &traces, &described, &appended, &key.name);
    let result = |id: &String, a: &crate::store::Appended| match &a.conflict {
        Some(c) => json!({
            "id": id, "status": "conflict",
            "error": format!(
                "event `{id}` was already accepted from this source with other content; the original is kept and this one is not stored. Send a change as a new event with its own id (e.g. a void and a new sale)"
            ),
            "stored_sha256": c.stored_sha256, "sent_sha256": c.sent_sha256,
        }),
        None if a.duplicate => json!({"id": id, "status": "accepted", "duplicate": true}),
        None => json!({"id": id, "status": "accepted"}),
    };
    let conflicts = appended.iter().filter(|a| a.conflict.is_some()).count();
    // Any re-used id with other content makes the answer 409; the rest of a batch is stored all
    // the same (each result says which).
    let status = if conflicts > 0 {
        StatusCode::CONFLICT
    } else {
        StatusCode::ACCEPTED
    };
    let body = if decoded.batch {
        let results: Vec<Value> = ids.iter().zip(&appended).map(|(id, a)| result(id, a)).collect();
        let duplicates = appended.iter().filter(|a| a.duplicate && a.conflict.is_none()).count();
        json!({
            "status": if conflicts > 0 { "conflict" } else { "accepted" },
            "accepted": appended.len() - duplicates - conflicts, "duplicates": duplicates, "conflicts": conflicts,
            "results": results,
        })
    } else {
        let one = result(&ids[0], &appended[0]);
        if conflicts > 0 {
            json!({"error": {"code": "conflict", "message": one["error"], "stored_sha256": one["stored_sha256"], "sent_sha256": one["sent_sha256"]}, "id": ids[0]})
        } else {
            one
        }
    };
    Ok((status, Json(body)).into_response())
}

fn too_large(limit: usize) -> ApiError {
    super::body::too_large(limit, "server.max_body_bytes; split the batch")
}

/// `GET /v1/events/{id}?source=…`.
#[derive(serde::Deserialize)]
pub struct EventQuery {
    /// The event's source, when several sources used the same id.
    source: Option<String>,
}

/// The event and its per-sink delivery state.
pub async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<EventQuery>,
) -> Result<Response, ApiError> {
    let key = state.authenticate_role(&headers, &READERS, READERS_HINT)?;
    let store = state.pipeline.store();
    // A store-scoped key naming no source looks inside its own stores: another store's event
    // with the same id is neither shown nor allowed to hide the caller's own.
    let source = match query.source {
        None if !key.sees_every_store() => store
            .sources_of(&id)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .find(|source| key.may_read(kaunter_model::store_of(source).unwrap_or(""))),
        source => source,
    };
    if source.is_none() && !key.sees_every_store() {
        return Err(ApiError::not_found(format!("no event with id `{id}`")));
    }
    let found = store.event(&id, source.as_deref()).await.map_err(ApiError::internal)?;
    let Some((stored, deliveries)) = found else {
        return Err(ApiError::not_found(format!("no event with id `{id}`")));
    };
    if !key.may_read(stored.event.store().unwrap_or("")) {
        return Err(ApiError::not_found(format!("no event with id `{id}`")));
    }
    Ok(Json(event_report(&state, &stored, &deliveries).await?).into_response())
}

/// Roles that read events back: ingest keys their own stores', viewers and admins every store's.
const READERS: [Role; 3] = [Role::Ingest, Role::Viewer, Role::Admin];
const READERS_HINT: &str = "an ingest, viewer or admin key";

/// `GET /v1/events?order=…&store=…`.
#[derive(serde::Deserialize)]
pub struct OrderQuery {
    /// The order id (a sale's `order_id`, a refund's `original_order_id`, …).
    order: String,
    /// Only this store's events about it.
    store: Option<String>,
}

/// Events listed for one order at most.
const MAX_ORDER_EVENTS: usize = 100;

/// Every event about an order (its sale, refunds, voids, payments), each as `GET
/// /v1/events/{id}` shows it: what happened to order X in one answer.
pub async fn events_of_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OrderQuery>,
) -> Result<Response, ApiError> {
    let key = state.authenticate_role(&headers, &READERS, READERS_HINT)?;
    let store = state.pipeline.store();
    let refs = store
        .events_of_order(&query.order, query.store.as_deref(), MAX_ORDER_EVENTS)
        .await
        .map_err(ApiError::internal)?;
    let mut events = Vec::new();
    for r in refs {
        if !key.may_read(kaunter_model::store_of(&r.source).unwrap_or("")) {
            continue;
        }
        if let Some((stored, deliveries)) = store.event(&r.id, Some(&r.source)).await.map_err(ApiError::internal)? {
            events.push(event_report(&state, &stored, &deliveries).await?);
        }
    }
    Ok(Json(json!({ "order": query.order, "store": query.store, "events": events })).into_response())
}

/// One event with its timeline: per sink the delivery's state and every failed attempt, the
/// dead letters with who replayed them, the event it was derived from and those derived from it.
async fn event_report(
    state: &AppState,
    stored: &crate::store::StoredEvent,
    deliveries: &[Delivery],
) -> Result<Value, ApiError> {
    let history = state
        .pipeline
        .store()
        .history(stored.seq)
        .await
        .map_err(ApiError::internal)?;
    let sinks: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let mut entry = delivery_json(d);
            entry["failures"] = history
                .failures
                .iter()
                .filter(|f| f.delivery_id == d.id)
                .map(|f| {
                    json!({
                        "attempt": f.attempt, "at": rfc3339(Some(f.at_ms)), "outcome": f.failure.outcome,
                        "error": f.failure.error, "destination": f.failure.destination,
                        "connector_version": f.connector_version,
                        "next_attempt_at": rfc3339(f.retry_at_ms),
                    })
                })
                .collect();
            entry
        })
        .collect();
    Ok(json!({
        "seq": stored.seq,
        "received_at": rfc3339(Some(stored.received_at_us / 1000)),
        "parent_seq": stored.parent_seq,
        "trace": stored.trace.as_ref().map(|t| json!({
            "trace_id": t.trace_id.to_string(), "span_id": t.span_id.to_string(), "sampled": t.sampled,
        })),
        "derived_from": history.parent,
        "derived": history.derived,
        "event": stored.event.to_json(),
        "sinks": sinks,
        "dead_letters": history.dead_letters.iter().map(crate::store::DeadLetter::to_json).collect::<Vec<_>>(),
    }))
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "sink": d.sink,
        "route": d.route,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": rfc3339(d.next_attempt_at_ms),
        "last_error": d.last_error,
        "created_at": rfc3339(Some(d.created_at_ms)),
        "updated_at": rfc3339(Some(d.updated_at_ms)),
        "delivered_at": rfc3339(d.delivered_at_ms),
        "handled_by": d.handled_by.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "connector_version": d.connector_version,
        "remote_id": d.remote_id,
        "note": d.note,
        "replayed_at": rfc3339(d.replayed_at_ms),
    })
}
