//! `POST /v1/webhooks/{source}`: inbound vendor webhooks (Shopify, Stripe, Square, ...), turned
//! into events by the source plugin of that name.
//!
//! No API key is asked for: the vendor signs its webhooks, and the source plugin checks the
//! signature through the host's `crypto` interface (the secret stays in the host). The plugin's
//! events are validated like ingested ones and stored through the same durable path, deduplicated
//! on `source` + `id` (a vendor redelivering a webhook gets `202` and a duplicate count), and only
//! then is the vendor answered `202`. A refused signature answers `401`, a body the plugin cannot
//! read `400`, a source that cannot work until an operator acts (`unavailable`) `503`, and a
//! plugin that traps, runs out of time or produces invalid events `500` with a reference (the
//! detail goes to the log only); nothing is stored in those cases, so the vendor's retry is safe.
//! So does a plugin that returns an event it may not emit: a type outside its `grants.emits`, a
//! source outside its `grants.sources` (a till's, say) or in the namespace of derived events;
//! that is also audited as a denied capability.

use super::AppState;
use super::error::ApiError;
use crate::config::PluginKind;
use crate::engine::CallError;
use crate::engine::bindings::{DecodeError, WebhookRequest};
use crate::engine::emits;
use crate::store::audit::audit_denial;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kaunter_model::Event;
use serde_json::{Value, json};

/// Decodes one webhook with the named source plugin and stores its events. Refusals are
/// counted by reason in the metrics.
pub async fn post_webhook(
    state: State<AppState>,
    name: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    super::count_rejected("webhook", decode_webhook(state, name, method, uri, headers, body).await)
}

async fn decode_webhook(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = std::time::SystemTime::now();
    let routing = state.pipeline.routing();
    // One answer for unknown names and other kinds: callers are not authenticated here, so they
    // learn nothing about which plugins exist. The log says which it was.
    let plugin = match routing.plugins.get(&name) {
        Some(slot) if slot.default.kind == PluginKind::Source => slot.default.clone(),
        other => {
            tracing::warn!(
                source = %name,
                found = other.map(|s| s.default.kind.name()).unwrap_or("nothing"),
                "webhook for a name that is not a source plugin"
            );
            return Err(ApiError::not_found(format!(
                "no source plugin named `{name}`; configure a [[plugins]] entry with kind = \"source\" and name = \"{name}\""
            )));
        }
    };
    drop(routing);
    let limit = state.max_body_bytes();
    let bytes = super::read_body(body, limit, "server.max_body_bytes").await?;
    let request = WebhookRequest {
        method: method.as_str().to_ascii_uppercase(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: bytes.to_vec(),
    };
    let label = format!("webhook:{name}");
    let (result, _) = plugin.decode_reported(&request, &label).await;
    let events = match result {
        Ok(events) => events,
        Err(CallError::Decode(DecodeError::Unauthorized(reason))) => {
            tracing::warn!(source = %name, %reason, "webhook refused: signature or credentials did not check out");
            return Err(ApiError::unauthorized(format!(
                "source `{name}` refused the webhook: {reason}"
            )));
        }
        Err(CallError::Decode(DecodeError::Malformed(reason))) => {
            tracing::warn!(source = %name, %reason, "webhook refused: malformed");
            return Err(ApiError::bad_request(format!(
                "source `{name}` cannot read the webhook: {reason}"
            )));
        }
        Err(CallError::Decode(DecodeError::Unavailable(reason))) => {
            let reference = ulid::Ulid::new().to_string();
            tracing::error!(source = %name, plugin = %plugin.label(), %reference, %reason, "source cannot take webhooks until an operator acts");
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "source_unavailable",
                format!(
                    "source `{name}` cannot take webhooks right now; nothing was stored; retry later (reference {reference})"
                ),
            );
            error.retry_after_secs = Some(60);
            return Err(error);
        }
        Err(e) => return Err(source_failed(&name, &plugin.label(), &e.to_string())),
    };
    let mut checked = Vec::with_capacity(events.len());
    let mut problems = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let mut event = Event::from(event);
        if event.partition_key.is_empty() {
            event.partition_key = event.default_partition_key();
        }
        event.scope_partition_key();
        if let Some(rule) = kaunter_model::reserved_for_host(&event) {
            problems.push((Some(i), kaunter_model::EventError::new("source", rule)));
            continue;
        }
        match kaunter_model::validate(&event) {
            Ok(()) => checked.push(event),
            Err(broken) => problems.extend(broken.into_iter().map(|e| (Some(i), e))),
        }
    }
    if !problems.is_empty() {
        let broken: Vec<String> = problems
            .iter()
            .map(|(i, e)| format!("events[{}].{} {}", i.unwrap_or(0), e.attribute, e.rule))
            .collect();
        let detail = format!(
            "it produced events that break the event rules (a plugin bug): {}",
            broken.join("; ")
        );
        return Err(source_failed(
            &name,
            &plugin.label(),
            &format!("capability denied: {detail}"),
        ));
    }
    // What a source may emit: granted types, granted sources, never a derived namespace. One
    // event outside its grants refuses the webhook, as a broken event does.
    let grants = plugin.emit_grants();
    let refused: Vec<(String, String)> = checked
        .iter()
        .filter_map(|e| {
            emits::check_source_event(&plugin.name, grants, e)
                .err()
                .map(|reason| (e.id.clone(), reason))
        })
        .collect();
    if let Some((first, _)) = refused.first() {
        let reasons: Vec<String> = refused.iter().map(|(_, r)| r.clone()).collect();
        let detail = emits::describe_refused(&plugin.name, &reasons, emits::SOURCE_REST);
        state.pipeline.metrics().count_failure(&plugin.label(), "denied", first);
        audit_denial(state.pipeline.store(), &plugin.label(), first, &label, &detail).await;
        return Err(source_failed(
            &name,
            &plugin.label(),
            &format!("capability denied: {detail}"),
        ));
    }
    let ids: Vec<String> = checked.iter().map(|e| e.id.clone()).collect();
    let traces = super::tracing::begin_events(&headers, &checked);
    let described = super::tracing::describe(&checked);
    let appended = if checked.is_empty() {
        Vec::new()
    } else {
        state.pipeline.ingest_traced(checked, traces.0.clone()).await?
    };
    super::tracing::record_ingest(
        &format!("source {}", plugin.label()),
        started,
        &traces,
        &described,
        &appended,
        &format!("webhook:{name}"),
    );
    let duplicates = appended.iter().filter(|a| a.duplicate).count();
    let body: Value = json!({
        "status": "accepted",
        "accepted": appended.len() - duplicates,
        "duplicates": duplicates,
        "ids": ids,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `500` for a source plugin's failure (trap, deadline, denied call, invalid events). The vendor is
/// told only that nothing was stored and a reference; the operator log has the detail under it,
/// since the detail can name destinations, secrets and plugin internals.
fn source_failed(name: &str, label: &str, detail: &str) -> ApiError {
    let reference = ulid::Ulid::new().to_string();
    tracing::error!(source = %name, plugin = %label, %reference, error = %detail, "source plugin failed on a webhook");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "source_failed",
        format!(
            "source `{name}` failed; nothing was stored, so a retry is safe; quote reference {reference} to the operator"
        ),
    )
}

/// Reads a webhook request written as JSON (`kaunter plugin run --webhook`, recorded requests):
/// `{"method": "POST", "path": "/v1/webhooks/shopify", "headers": {"name": "value"} | [["name",
/// "value"]], "body": "raw text" | any JSON value (sent compact) , "body_base64": "..."}`.
pub fn webhook_request_from_json(value: &Value) -> Result<WebhookRequest, String> {
    let object = value
        .as_object()
        .ok_or("a webhook request is a JSON object with `headers` and `body`")?;
    let method = object
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("POST")
        .to_ascii_uppercase();
    let path = object
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("/v1/webhooks/sandbox")
        .to_owned();
    let headers = match object.get("headers") {
        None => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.to_ascii_lowercase(),
                    v.as_str().ok_or(format!("header `{k}` is not a string"))?.to_owned(),
                ))
            })
            .collect::<Result<_, String>>()?,
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => Ok((k.to_ascii_lowercase(), v.clone())),
                _ => Err(format!("`headers` entries are [\"name\", \"value\"] pairs, got {pair}")),
            })
            .collect::<Result<_, String>>()?,
        Some(other) => return Err(format!("`headers` is an object or a list of pairs, got {other}")),
    };
    let body = match (object.get("body"), object.get("body_base64")) {
        (Some(_), Some(_)) => return Err("give `body` or `body_base64`, not both".into()),
        (Some(Value::String(text)), None) => text.as_bytes().to_vec(),
        (Some(json), None) => json.to_string().into_bytes(),
        (None, Some(Value::String(b64))) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("`body_base64` is not base64: {e}"))?
        }
        (None, Some(_)) => return Err("`body_base64` is a string".into()),
        (None, None) => Vec::new(),
    };
    Ok(WebhookRequest {
        method,
        path,
        headers,
        body,
    })
}
