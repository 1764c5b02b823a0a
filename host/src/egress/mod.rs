//! The egress checkpoint: the single path by which any plugin reaches the network.
//!
//! Plugins make standard `wasi:http/outgoing-handler` requests; wasmtime-wasi-http hands each one
//! to [`EgressHooks::send_request`], which forwards it to [`Egress::send`]. Nothing else in the
//! host may open outbound connections for plugins: `clippy.toml` disallows the HTTP client's
//! `request` method everywhere but here. This module owns per-call timeouts and size caps and
//! records every call; it never decides what to do with an event.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Largest request body a plugin may send.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest response body handed back to a plugin.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The shared outbound client and its policy.
pub struct Egress {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    calls: AtomicU64,
    failures: AtomicU64,
}

impl Egress {
    /// A checkpoint whose calls each time out after `timeout`.
    pub fn new(timeout: Duration) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Arc::new(Self {
            client,
            timeout,
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Outbound calls made so far, and how many failed at the transport level.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Sends one plugin request.
    pub async fn send(
        &self,
        plugin: &str,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(self.timeout, self.send_inner(request)).await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(HttpError::ConnectionTimeout),
        };
        if let Err(e) = &result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(plugin, error = %e, "outbound call failed");
        }
        result
    }

    async fn send_inner(&self, request: http::Request<WasiBody>) -> Result<http::Response<WasiBody>, HttpError> {
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|_| HttpError::HttpRequestBodySize(Some(MAX_REQUEST_BYTES as u64)))?
            .to_bytes();
        let request = http::Request::from_parts(parts, Full::new(body));
        #[allow(clippy::disallowed_methods)] // This is the checkpoint.
        let response = self.client.request(request).await.map_err(classify)?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|_| HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BYTES as u64)))?
            .to_bytes();
        let body = Full::new(body).map_err(|never| match never {}).boxed_unsync();
        Ok(http::Response::from_parts(parts, body))
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> HttpError {
    if e.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::InternalError(Some(e.to_string()))
    }
}

/// The per-store hook object wasmtime-wasi-http calls for every outgoing request.
pub struct EgressHooks {
    egress: Arc<Egress>,
    plugin: String,
}

impl EgressHooks {
    /// Hooks that send through `egress` on behalf of `plugin`.
    pub fn new(egress: Arc<Egress>, plugin: String) -> Self {
        Self { egress, plugin }
    }
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let egress = self.egress.clone();
        let plugin = self.plugin.clone();
        Box::new(async move {
            let response = egress.send(&plugin, request).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}
