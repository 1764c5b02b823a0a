//! Admin endpoints for plugin versions and deployments, shadows, configuration and historic
//! replay. Each handler authenticates the admin scope, hands the change to
//! [`crate::lifecycle::Lifecycle`] (which validates, swaps and audits it), and records refusals.

use super::record;
use crate::ingress::AppState;
use crate::ingress::error::ApiError;
use crate::lifecycle::ChangeError;
use crate::pipeline::replay::ReplaySpec;
use crate::plugins::deploy::Scope;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest component accepted by upload.
const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;
/// The largest upload body read: a component in base64 inside JSON, with its manifest.
const UPLOAD_BODY_LIMIT: usize = MAX_COMPONENT_BYTES / 3 * 4 + 1024 * 1024;

/// Plugin, config and replay routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/plugins", get(list))
        .route("/v1/admin/plugins/approve", post(approve))
        .route("/v1/admin/plugins/{name}/versions", post(upload))
        .route("/v1/admin/plugins/{name}/deploy", post(deploy))
        .route("/v1/admin/plugins/{name}/rollback", post(rollback))
        .route("/v1/admin/plugins/{name}/promote", post(promote))
        .route("/v1/admin/plugins/{name}/shadow", post(shadow))
        .route("/v1/admin/shadow", get(shadow_report))
        .route("/v1/admin/config/validate", post(validate))
        .route("/v1/admin/config/reload", post(reload))
        .route("/v1/admin/replays", post(start_replay).get(list_replays))
        .route("/v1/admin/replays/{id}", get(replay_progress))
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound(m) => ApiError::not_found(m),
            ChangeError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_change", m),
            ChangeError::NeedsApproval(m) => ApiError::new(StatusCode::CONFLICT, "needs_approval", m),
            ChangeError::Failed(m) => ApiError::internal(m),
        }
    }
}

/// Audits a refused change (what was asked, by whom, and why not), then returns the error.
async fn refused(state: &AppState, key: &str, action: &str, subject: &str, e: ChangeError) -> ApiError {
    let _ = record(
        state,
        key,
        &format!("{action}.refused"),
        subject.to_owned(),
        json!({ "error": e.to_string() }),
    )
    .await;
    e.into()
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body must be {shape}: {e}")))
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    Ok(Json(state.lifecycle.list().await))
}

/// JSON form of an upload, for components that ship their manifest separately.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadJson {
    /// The component, base64.
    component: String,
    /// The manifest TOML, if not embedded.
    #[serde(default)]
    manifest: Option<String>,
}

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    use base64::Engine as _;
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, UPLOAD_BODY_LIMIT, "the component upload limit").await?;
    if body.len() > MAX_COMPONENT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "component_too_large",
            format!(
                "the component is {} bytes; the limit is {MAX_COMPONENT_BYTES}",
                body.len()
            ),
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (bytes, manifest) = if json {
        // (JSON: the component arrives base64-encoded.)
        let upload: UploadJson = parse(&body, r#"{"component": "<base64>", "manifest": "<toml>"}"#)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(upload.component.trim())
            .map_err(|e| ApiError::bad_request(format!("`component` must be base64: {e}")))?;
        (bytes, upload.manifest)
    } else {
        (body.to_vec(), None)
    };
    match state
        .lifecycle
        .upload(&name, bytes, manifest, &format!("api-key:{key}"))
        .await
    {
        Ok(v) => Ok((StatusCode::CREATED, Json(v))),
        Err(e) => Err(refused(&state, &key, "plugin.upload", &name, e).await),
    }
}

/// Where a change applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopedRequest {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    route: Option<String>,
}

impl ScopedRequest {
    fn scope(&self) -> Scope {
        Scope {
            group: self.group.clone(),
            route: self.route.clone(),
        }
    }
}

const SCOPED: &str = r#"{"version": "...", "group": "pilot", "route": "sales"} (group and route optional)"#;

async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ScopedRequest = parse(&body, SCOPED)?;
    let version = request
        .version
        .clone()
        .ok_or_else(|| ApiError::bad_request("name the version to deploy: {\"version\": \"...\"}"))?;
    let actor = format!("api-key:{key}");
    match state.lifecycle.deploy(&name, &version, &request.scope(), &actor).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refused(&state, &key, "plugin.deploy", &format!("{name}@{version}"), e).await),
    }
}

async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ScopedRequest = parse(&body, SCOPED)?;
    match state
        .lifecycle
        .rollback(&name, &request.scope(), &format!("api-key:{key}"))
        .await
    {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refused(&state, &key, "plugin.rollback", &name, e).await),
    }
}

async fn promote(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ScopedRequest = parse(&body, SCOPED)?;
    match state
        .lifecycle
        .promote(&name, &request.scope(), &format!("api-key:{key}"))
        .await
    {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refused(&state, &key, "plugin.promote", &name, e).await),
    }
}

async fn shadow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ScopedRequest = parse(&body, r#"{"version": "..."} (or {} to stop shadowing)"#)?;
    match state
        .lifecycle
        .shadow(&name, request.version.as_deref(), &format!("api-key:{key}"))
        .await
    {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refused(&state, &key, "plugin.shadow", &name, e).await),
    }
}

/// Body of `POST /v1/admin/plugins/approve`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveRequest {
    /// `name@version`, as the refusal printed it.
    plugin: String,
}

/// Approves a version held back by the upgrade guard (registered, or on disk for the next start).
async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ApproveRequest = parse(&body, r#"{"plugin": "name@version"}"#)?;
    let (name, version) = request
        .plugin
        .split_once('@')
        .ok_or_else(|| ApiError::bad_request("`plugin` must be name@version"))?;
    match state.lifecycle.approve(name, version, &format!("api-key:{key}")).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refused(&state, &key, "plugin.approve", &request.plugin, e).await),
    }
}

#[derive(Deserialize)]
struct ShadowQuery {
    #[serde(default)]
    plugin: Option<String>,
}

async fn shadow_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ShadowQuery>,
) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    let reports = state.pipeline.shadows().reports(q.plugin.as_deref());
    Ok(Json(json!({ "shadows": reports })))
}

/// Validates a candidate configuration (the TOML body; an empty body means the file on disk).
async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        let path = state.config().source.clone().ok_or_else(|| {
            ApiError::bad_request("this host runs the bundled demo config; send the candidate TOML as the body")
        })?;
        std::fs::read_to_string(&path)
            .map_err(|e| ApiError::bad_request(format!("cannot read {}: {e}", path.display())))?
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("the configuration must be UTF-8 TOML"))?
    };
    let report = state.lifecycle.validate(&text);
    record(
        &state,
        &key,
        "config.validate",
        "candidate".into(),
        json!({ "valid": report["valid"], "errors": report["errors"] }),
    )
    .await?;
    Ok(Json(report))
}

async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    match state.reload(&format!("api-key:{key}")).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refused(&state, &key, "config.reload", "config", e).await),
    }
}

/// Body of `POST /v1/admin/replays`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    since: String,
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    through: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn start_replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = state.authenticate_admin(&headers)?.name;
    // Authenticated first: an unknown caller never makes the host read a body.
    let body = crate::ingress::read_body(body, crate::admin::ADMIN_BODY_LIMIT, "admin request bodies").await?;
    let request: ReplayRequest = parse(
        &body,
        r#"{"since": "RFC 3339 time", "route": "...", "through": "plugin@version", "dry_run": true}"#,
    )?;
    let since = chrono::DateTime::parse_from_rfc3339(&request.since).map_err(|e| {
        ApiError::bad_request(format!(
            "`since` must be an RFC 3339 time such as 2026-11-25T09:00:00Z: {e}"
        ))
    })?;
    let spec = ReplaySpec {
        since_ms: since.timestamp_millis(),
        route: request.route,
        through: request.through,
        dry_run: request.dry_run,
    };
    match state.lifecycle.replay(spec, &format!("api-key:{key}")).await {
        Ok(v) => Ok((StatusCode::ACCEPTED, Json(v))),
        Err(e) => Err(refused(&state, &key, "replay.start", "history", e).await),
    }
}

async fn list_replays(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    Ok(Json(json!({ "replays": state.pipeline.replays().list() })))
}

async fn replay_progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.authenticate_viewer(&headers)?;
    let progress = state
        .pipeline
        .replays()
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no replay `{id}`")))?;
    Ok(Json(json!(progress)))
}
