//! Vendor fakes: real HTTP servers that answer the way each vendor's published API does, so the
//! connectors and sources in `plugins/` are tested against what they will meet, and the tests can
//! assert exactly what was sent (method, path, query, headers, body).
//!
//! [`VendorFake`] is the shared machinery: it records every call and answers either from a
//! scripted queue (to force a 401, 409, 429 or 5xx) or from the vendor's handler. Each vendor's
//! module holds its handler, built from that vendor's documentation, and its tests.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

mod alerts;
mod anomaly;
mod chain;
mod dingtalk;
mod hubspot;
mod loyalty;
mod netsuite;
mod quickbooks;
mod redact;
mod restock;
mod shopify_inventory;
mod shopify_source;
mod slack;
mod square_source;
mod stripe_source;
mod xero;

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// Upper case.
    pub method: String,
    /// Path only.
    pub path: String,
    /// The raw query string (without `?`), empty when none.
    pub query: String,
    /// Header names lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Call {
    /// First value of a header (`""` when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Handler = Arc<dyn Fn(&Call) -> Reply + Send + Sync>;

/// A recording HTTP server on loopback that answers like one vendor.
#[derive(Clone)]
pub struct VendorFake {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl VendorFake {
    /// Starts a fake whose unscripted answers come from `handler`.
    pub async fn start(handler: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> VendorFake {
        VendorFake::start_with(handler, None).await
    }

    /// Like [`VendorFake::start`], serving https with `tls` (see [`TestCa`]).
    pub async fn start_tls(
        handler: impl Fn(&Call) -> Reply + Send + Sync + 'static,
        tls: Arc<rustls::ServerConfig>,
    ) -> VendorFake {
        VendorFake::start_with(handler, Some(tls)).await
    }

    async fn start_with(
        handler: impl Fn(&Call) -> Reply + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> VendorFake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let fake = VendorFake {
            url: format!("{scheme}://{addr}"),
            calls: Arc::default(),
            script: Arc::default(),
            down: Arc::default(),
        };
        let handler: Handler = Arc::new(handler);
        let state = fake.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let state = state.clone();
            let handler = handler.clone();
            async move { state.handle(request, &handler).await }
        });
        match tls {
            None => {
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            }
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                tokio::spawn(async move {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else { break };
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            // A client that does not trust the certificate fails the handshake here.
                            let Ok(stream) = acceptor.accept(tcp).await else { return };
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            }
        }
        fake
    }

    async fn handle(&self, request: axum::extract::Request, handler: &Handler) -> axum::response::Response {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return axum::http::Response::builder()
                .status(503)
                .body(axum::body::Body::from("service unavailable"))
                .unwrap();
        }
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
        let call = Call {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: body.to_vec(),
        };
        let scripted = self.script.lock().unwrap().pop_front();
        let reply = scripted.unwrap_or_else(|| handler(&call));
        self.calls.lock().unwrap().push(call);
        let mut builder = axum::http::Response::builder().status(reply.status);
        for (k, v) in &reply.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder.body(axum::body::Body::from(reply.body)).unwrap()
    }

    /// Takes the vendor down (`true`): every call is answered `503` without reaching the vendor,
    /// as a load balancer answers for a stopped service, and is not recorded. `false` brings it
    /// back with its state as it was.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Queues answers for the next calls, ahead of the handler.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls with this method whose path starts with `prefix`.
    pub fn calls_to(&self, method: &str, prefix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.starts_with(prefix))
            .collect()
    }
}

/// A certificate authority made for one test, and a server certificate it issued for 127.0.0.1.
pub struct TestCa {
    /// The CA certificate, PEM (what `[server] extra_ca_files` names).
    pub ca_pem: String,
    /// TLS settings for a server presenting the issued certificate.
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kaunter test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
            .unwrap();
        TestCa {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }
}

/// A host config with the test API keys, the shared compile cache and `rest` (plugins, sinks,
/// routes, credentials, secrets) appended. `[secrets]` and `[credentials.*]` tables go in `rest`.
pub fn host_config(rest: &str) -> String {
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kaunter-compile-cache");
    format!(
        r#"
[server]
cache_dir = {cache:?}

[[api_keys]]
name = "pos"
key = {{ value = "{pos}" }}
stores = ["*"]

[[api_keys]]
name = "ops"
key = {{ value = "{admin}" }}
admin = true
{rest}
"#,
        cache = cache.display().to_string(),
        pos = crate::harness::POS_KEY,
        admin = crate::harness::ADMIN_KEY,
    )
}
