//! The demo's head-office endpoint: receives the webhook connector's POSTs and checks each
//! Standard Webhooks signature with the demo secret, as a real receiver would.

use crate::config::Config;
use crate::engine::hmac_sha256;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the demo sink.
pub struct DemoSink {
    /// Where it listens.
    pub url: String,
    key: Vec<u8>,
    /// Requests with a valid signature.
    pub verified: AtomicU64,
    /// Requests whose signature did not verify.
    pub bad_signatures: AtomicU64,
}

/// Starts the sink at the address the demo config's webhook URL names.
pub async fn start(config: &Config) -> anyhow::Result<Arc<DemoSink>> {
    let plugin = config
        .plugin("webhook")
        .ok_or_else(|| anyhow::anyhow!("demo config has no `webhook` plugin"))?;
    let url = plugin
        .config
        .get("url")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let secret_name = plugin.config.get("secret").and_then(|v| v.as_str()).unwrap_or_default();
    let key = config
        .secrets
        .get(secret_name)
        .ok_or_else(|| anyhow::anyhow!("demo secret `{secret_name}` missing"))?
        .bytes(&config.base_dir)
        .map_err(anyhow::Error::msg)?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("demo sink URL must be http://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let listener = tokio::net::TcpListener::bind(authority)
        .await
        .map_err(|e| anyhow::anyhow!("the demo sink cannot listen on {authority}: {e} (is another demo running?)"))?;
    let sink = Arc::new(DemoSink {
        url: url.clone(),
        key,
        verified: AtomicU64::new(0),
        bad_signatures: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .route(&format!("/{path}"), post(receive))
        .with_state(sink.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(sink)
}

async fn receive(State(sink): State<Arc<DemoSink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content = [
        header("webhook-id").as_bytes(),
        b".",
        header("webhook-timestamp").as_bytes(),
        b".",
        &body,
    ]
    .concat();
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&sink.key, &content));
    let valid = header("webhook-signature")
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()));
    if valid {
        sink.verified.fetch_add(1, Ordering::Relaxed);
        StatusCode::NO_CONTENT
    } else {
        sink.bad_signatures.fetch_add(1, Ordering::Relaxed);
        StatusCode::UNAUTHORIZED
    }
}
