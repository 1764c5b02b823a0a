//! The HTTP API: event ingest, inbound vendor webhooks (through source plugins), event lookup, health, and (in [`crate::admin`]) operations.
//!
//! This module owns authentication (API keys, scoped to store globs; admin is a separate scope),
//! body limits and content negotiation. It answers `202` only after the pipeline reports the
//! events durable. It never runs plugins and never writes to the store except through the pipeline.

pub mod body;
pub mod decode;
pub mod error;
mod events;
mod tracing;
mod webhooks;

pub use crate::store::rfc3339;
pub use body::{BodyTooSlow, read_body};
pub use webhooks::webhook_request_from_json;

use crate::config::{Config, Role, glob_match};
use crate::lifecycle::Lifecycle;
use crate::pipeline::Pipeline;
use arc_swap::ArcSwap;
use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use error::ApiError;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A configured API key, with its value hashed.
#[derive(Clone)]
pub struct ApiKey {
    /// Name from the config.
    pub name: String,
    digest: [u8; 32],
    /// Store globs.
    pub stores: Vec<String>,
    /// What the key may do.
    pub role: Role,
}

impl ApiKey {
    /// Whether this key may send events for a store (`""` for events with no store in their
    /// source): an ingest key for the stores its globs match, an admin key for all.
    pub fn may_send_for(&self, store: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Ingest => self.stores.iter().any(|g| glob_match(g, store)),
            Role::Metrics | Role::Viewer => false,
        }
    }

    /// Whether this key may read a store's events: as it may send for them, and a viewer for all.
    pub fn may_read(&self, store: &str) -> bool {
        self.sees_every_store() || self.may_send_for(store)
    }

    /// Whether this key reads every store's events (admin and viewer).
    pub fn sees_every_store(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Viewer)
    }
}

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Deploy, roll back, reload.
    pub lifecycle: Arc<Lifecycle>,
    /// The SOP alert monitor (open alerts).
    pub alerts: Arc<crate::lifecycle::alerts::Monitor>,
    keys: Arc<ArcSwap<Vec<ApiKey>>>,
    max_body_bytes: usize,
}

impl AppState {
    /// Resolves the configured API keys (reading env vars and files).
    pub fn new(
        config: &Config,
        pipeline: Arc<Pipeline>,
        lifecycle: Arc<Lifecycle>,
        alerts: Arc<crate::lifecycle::alerts::Monitor>,
    ) -> anyhow::Result<AppState> {
        Ok(AppState {
            pipeline,
            lifecycle,
            alerts,
            keys: Arc::new(ArcSwap::from_pointee(resolve_keys(config)?)),
            max_body_bytes: config.server.max_body_bytes,
        })
    }

    /// Reloads the configuration file and, with it, the API keys.
    pub async fn reload(&self, actor: &str) -> Result<serde_json::Value, crate::lifecycle::ChangeError> {
        let current = self.lifecycle.config();
        // Keys are checked before anything changes, so a bad key leaves the old config running.
        let candidate = match &current.source {
            Some(path) => Some(Config::load(path).map_err(|e| crate::lifecycle::ChangeError::Invalid(e.to_string()))?),
            None => None,
        };
        let keys = candidate
            .as_ref()
            .map(resolve_keys)
            .transpose()
            .map_err(|e| crate::lifecycle::ChangeError::Invalid(format!("{e:#}")))?;
        let (_, report) = self.lifecycle.reload(actor).await?;
        if let Some(keys) = keys {
            self.keys.store(Arc::new(keys));
        }
        Ok(report)
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.lifecycle.config()
    }
}

fn resolve_keys(config: &Config) -> anyhow::Result<Vec<ApiKey>> {
    {
        let mut keys = Vec::new();
        for k in &config.api_keys {
            let value = k
                .key
                .read(&config.base_dir)
                .map_err(|e| anyhow::anyhow!("api key `{}`: {e}", k.name))?;
            if value.len() < 8 {
                anyhow::bail!(
                    "api key `{}` is shorter than 8 characters; use a long random value",
                    k.name
                );
            }
            keys.push(ApiKey {
                name: k.name.clone(),
                digest: Sha256::digest(value.as_bytes()).into(),
                stores: k.stores.clone(),
                role: k.effective_role(),
            });
        }
        Ok(keys)
    }
}

impl AppState {
    /// The key presented in `Authorization: Bearer …` or `X-Api-Key`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // The scheme name is case-insensitive (RFC 9110 §11.1).
                let (scheme, key) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(key)
            })
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`")
            })?;
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        // Comparing digests keeps the comparison time independent of how much of the key matched.
        self.keys
            .load()
            .iter()
            .find(|k| k.digest == digest)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unknown API key"))
    }

    /// Like [`AppState::authenticate`], and the key must have the admin role.
    pub fn authenticate_admin(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        self.authenticate_role(headers, &[Role::Admin], "an admin key (role = \"admin\")")
    }

    /// Like [`AppState::authenticate`], for read-only operator views: a viewer or admin key.
    pub fn authenticate_viewer(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        self.authenticate_role(headers, &[Role::Viewer, Role::Admin], "a viewer or admin key")
    }

    /// Like [`AppState::authenticate`], for `GET /metrics`: a metrics or admin key.
    pub fn authenticate_metrics(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        self.authenticate_role(headers, &[Role::Metrics, Role::Admin], "a metrics or admin key")
    }

    /// Like [`AppState::authenticate`], for sending events: an ingest or admin key.
    pub fn authenticate_ingest(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        self.authenticate_role(
            headers,
            &[Role::Ingest, Role::Admin],
            "an ingest key (with `stores`) or an admin key",
        )
    }

    /// Like [`AppState::authenticate`], and the key's role must be one of `allowed`.
    pub fn authenticate_role(
        &self,
        headers: &HeaderMap,
        allowed: &[Role],
        use_instead: &str,
    ) -> Result<ApiKey, ApiError> {
        let key = self.authenticate(headers)?;
        if allowed.contains(&key.role) {
            Ok(key)
        } else {
            Err(ApiError::forbidden(format!(
                "API key `{}` has the {} role, which may not do this; use {use_instead}",
                key.name,
                key.role.as_str()
            )))
        }
    }
}

/// The ingest routes: health, events in and out, vendor webhooks (the server adds the admin ones).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/v1/events", post(events::post_events).get(events::events_of_order))
        .route("/v1/events/{id}", get(events::get_event))
        .route("/v1/webhooks/{source}", post(webhooks::post_webhook))
}

/// Counts a refused ingest request under `endpoint` and passes the answer on.
fn count_rejected<T>(endpoint: &str, answer: Result<T, ApiError>) -> Result<T, ApiError> {
    if let Err(e) = &answer {
        crate::telemetry::prom::metrics().count_rejected(endpoint, e.code());
    }
    answer
}

impl AppState {
    /// Largest accepted body.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}
