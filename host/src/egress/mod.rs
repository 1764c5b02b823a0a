//! The egress checkpoint: the single path by which any plugin reaches the network.
//!
//! Plugins make standard `wasi:http/outgoing-handler` requests; wasmtime-wasi-http hands each one
//! to [`EgressHooks::send_request`], which forwards it to [`Egress::send`]. Nothing else in the
//! host may open outbound connections for plugins: `clippy.toml` disallows the HTTP client's
//! `request` method everywhere but here.
//!
//! Deny by default: a request goes out only if one of the plugin's [`HttpGrant`]s allows its
//! method, scheme, host, port and path. A host name is resolved here, and the connection goes to
//! the address that was checked: names that resolve to loopback, link-local (cloud metadata),
//! unspecified or private addresses are refused; such an address can only be reached by granting
//! it as an IP literal. Every denial is recorded for the call, so the event fails with the reason.
//! Every secret text and OAuth token it puts into a call's requests is noted for the call and
//! scrubbed from the responses before the plugin reads them (`secrets.rs`), so a vendor that echoes
//! the request hands the plugin only `[redacted: …]`. This module also owns per-call timeouts and
//! size caps; it never decides what to do with an event.

mod capture;
mod secrets;

pub(crate) use crate::net::is_internal;
pub use crate::net::{Destination, HttpGrant, grant::split_authority, normalize_path, tls};
pub use capture::{CannedResponse, CannedResponses, CapturedRequest};
pub use secrets::{CallSecrets, SECRET_MARKER, SendableSecret, check_secret_markers, fill_secrets};

use crate::credentials::{CredentialError, Credentials};
use crate::scrub::{Kind, Scrubber};
use crate::telemetry::trace::{CallTrace, EgressSpan};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Largest request body a plugin may send.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest response body handed back to a plugin.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The shared outbound client (http and https, pooled per destination) and its policy.
pub struct Egress {
    client: Client<HttpsConnector<HttpConnector<tls::CheckedResolver>>, Full<Bytes>>,
    timeout: Duration,
}

impl Egress {
    /// A checkpoint whose calls each time out after `timeout`, trusting `tls` for https.
    pub fn new(timeout: Duration, tls: Arc<rustls::ClientConfig>) -> Arc<Self> {
        let mut http = HttpConnector::new_with_resolver(tls::CheckedResolver);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Arc::new(Self { client, timeout })
    }

    /// Checks one plugin request against its grants and, if allowed, fills its `$SECRET(name)`
    /// markers, adds any granted OAuth token and sends it. Every value put in is noted in `sent`
    /// and scrubbed from the response's header values and body.
    pub async fn send(
        &self,
        who: &PluginEgress,
        problems: &CallProblems,
        sent: &CallSecrets,
        mut request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let plugin = who.plugin.as_str();
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let destination = match authorize(plugin, &who.grants, &method, &uri).await {
            Ok((allowed, normal)) => {
                // Exactly the path that was checked goes out.
                *request.uri_mut() = normal;
                allowed
            }
            Err(reason) => {
                tracing::warn!(plugin, %reason, "outbound request denied");
                count_denied(plugin, "not_granted");
                problems.report(Problem::Denied(reason));
                return Err(HttpError::HttpRequestDenied);
            }
        };
        if let Err(reason) = secrets::put_secrets_in(&mut request, who, &destination, sent) {
            tracing::warn!(plugin, %reason, "outbound request denied");
            count_denied(plugin, "secret");
            problems.report(Problem::Denied(reason));
            return Err(HttpError::HttpRequestDenied);
        }
        let host = request.uri().host().unwrap_or_default().to_owned();
        let mut injected = None;
        match who.credentials.bearer_for(&who.credential_grants, &destination).await {
            Ok(Some(token)) => {
                sent.note(Kind::Credential, &token.credential, &token.token);
                let name = http::HeaderName::from_bytes(token.header.as_bytes());
                let value = http::HeaderValue::from_str(&token.value);
                match (name, value) {
                    (Ok(name), Ok(mut value)) => {
                        value.set_sensitive(true);
                        request.headers_mut().insert(name, value);
                        injected = Some((token.credential, token.token));
                    }
                    _ => {
                        return Err(HttpError::InternalError(Some(format!(
                            "credential `{}`: the access token does not fit in header `{}`",
                            token.credential, token.header
                        ))));
                    }
                }
            }
            Ok(None) => {}
            Err(e @ CredentialError::Refused { .. }) => {
                tracing::error!(plugin, error = %e, "OAuth credential refused; the event fails until an operator acts");
                count_denied(plugin, "credential");
                problems.report(Problem::Credential(e.to_string()));
                return Err(HttpError::HttpRequestDenied);
            }
            Err(e @ CredentialError::Transient(..)) => {
                tracing::warn!(plugin, error = %e, "no OAuth token for now; the request fails and will be retried");
                return Err(HttpError::InternalError(Some(e.to_string())));
            }
        }
        // The connection resolves the name again through `tls::CheckedResolver`, which refuses
        // internal addresses, so re-pointing the name after the check above gains nothing; https
        // verifies the certificate against the name.
        let scrubber = sent.scrubber();
        let result = tokio::time::timeout(
            who.timeout.unwrap_or(self.timeout),
            self.send_inner(request, who, problems, &destination, scrubber.as_deref()),
        )
        .await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(HttpError::ConnectionTimeout),
        };
        let status = match &result {
            Ok(response) => response.status().as_str().to_owned(),
            Err(HttpError::ConnectionTimeout) => "timeout".into(),
            Err(HttpError::HttpRequestDenied) => "denied".into(),
            Err(_) => "error".into(),
        };
        crate::telemetry::prom::metrics().count_egress(plugin, &host, &status);
        let unauthorized = match &result {
            Err(e) => {
                tracing::debug!(plugin, error = %e, "outbound call failed");
                false
            }
            Ok(response) => response.status() == http::StatusCode::UNAUTHORIZED,
        };
        if unauthorized && let Some((credential, token)) = &injected {
            who.credentials.invalidate(credential, token).await;
        }
        result
    }

    async fn send_inner(
        &self,
        request: http::Request<WasiBody>,
        who: &PluginEgress,
        problems: &CallProblems,
        destination: &Destination,
        scrubber: Option<&Scrubber>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|_| HttpError::HttpRequestBodySize(Some(MAX_REQUEST_BYTES as u64)))?
            .to_bytes();
        let request = http::Request::from_parts(parts, Full::new(body));
        #[allow(clippy::disallowed_methods)] // This is the checkpoint.
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| classify(&e, who, problems, destination))?;
        let (mut parts, body) = response.into_parts();
        let mut body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|_| HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BYTES as u64)))?
            .to_bytes();
        if let Some(scrubber) = scrubber {
            body = secrets::scrub_response(scrubber, &mut parts.headers, body);
        }
        let body = Full::new(body).map_err(|never| match never {}).boxed_unsync();
        Ok(http::Response::from_parts(parts, body))
    }
}

/// The destination of a request (its path normalised) and the URI to send, if a grant allows it
/// and it does not lead inside the network.
async fn authorize(
    plugin: &str,
    grants: &[HttpGrant],
    method: &http::Method,
    uri: &http::Uri,
) -> Result<(Destination, http::Uri), String> {
    let (destination, normal) =
        Destination::of_request(method, uri).map_err(|e| format!("plugin `{plugin}` sent {method} {uri}: {e}"))?;
    let port = destination.port;
    if !grants.iter().any(|g| g.allows(&destination)) {
        let granted: Vec<&str> = grants.iter().map(|g| g.text.as_str()).collect();
        return Err(format!(
            "plugin `{plugin}` tried {destination}, which no grant allows (granted: {}); to allow it, add \"{} {}://{}:{}{}\" to the plugin's grants.http",
            if granted.is_empty() {
                "none".to_owned()
            } else {
                granted.join(", ")
            },
            destination.method,
            destination.scheme,
            destination.host,
            destination.port,
            destination.path
        ));
    }
    if destination.host.parse::<IpAddr>().is_ok() {
        // An IP literal reached this point only because a grant names it exactly.
        return Ok((destination, normal));
    }
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((destination.host.as_str(), port))
        .await
        .map_err(|e| format!("plugin `{plugin}` tried {destination}: cannot resolve the host: {e}"))?
        .collect();
    if let Some(bad) = resolved.iter().find(|a| is_internal(a.ip())) {
        return Err(format!(
            "plugin `{plugin}` tried {destination}, which resolves to {}, an internal (loopback, link-local, metadata or private) address; grant that address as an IP literal if this is intended",
            bad.ip()
        ));
    }
    if resolved.is_empty() {
        return Err(format!(
            "plugin `{plugin}` tried {destination}: the host has no address"
        ));
    }
    Ok((destination, normal))
}

/// Counts a request the checkpoint refused, by a fixed `reason` word.
fn count_denied(plugin: &str, reason: &str) {
    crate::telemetry::prom::metrics().count_egress_denied(plugin, reason);
}

/// The wasi-http error code for a failed call; TLS failures keep their kind (the operator log has
/// the detail: which certificate, which alert).
fn classify(
    e: &hyper_util::client::legacy::Error,
    who: &PluginEgress,
    problems: &CallProblems,
    destination: &Destination,
) -> HttpError {
    let plugin = who.plugin.as_str();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            // `tls::CheckedResolver`: the name now points inside the network.
            let reason = format!("plugin `{plugin}` tried {destination}, but {io}; refused at connect time");
            tracing::warn!(plugin, %reason, "outbound request denied");
            count_denied(plugin, "internal_address");
            problems.report(Problem::Denied(reason));
            return HttpError::HttpRequestDenied;
        }
        if cause.to_string().starts_with("dns error") {
            tracing::info!(plugin, %destination, error = %cause, "outbound request: the name does not resolve");
            return HttpError::DnsError {
                rcode: Some(cause.to_string()),
                info_code: None,
            };
        }
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            tracing::warn!(plugin, %destination, error = %tls, "outbound TLS failed");
            return match tls {
                rustls::Error::InvalidCertificate(_) => HttpError::TlsCertificateError,
                rustls::Error::AlertReceived(alert) => HttpError::TlsAlertReceived {
                    alert_id: Some(u8::from(*alert)),
                    alert_message: Some(format!("{alert:?}")),
                },
                _ => HttpError::TlsProtocolError,
            };
        }
        // An I/O error wrapping another error hides it from `source()`: descend into it.
        source = match cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    if e.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::InternalError(Some(e.to_string()))
    }
}

/// Something that went wrong with a plugin's outbound request, reported back to its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The request was outside the plugin's grants or limits.
    Denied(String),
    /// The OAuth credential for the destination was refused by its authorization server.
    Credential(String),
}

/// The problems of one call: kept by the hooks of the one instance that runs it, so a denial in
/// one event's call never shows up in (or is cleared by) another event's call running at the
/// same time on another warm instance of the same plugin version.
#[derive(Debug, Default)]
pub struct CallProblems(Mutex<Vec<Problem>>);

impl CallProblems {
    /// Records a problem for the current call (the call then fails with it).
    pub fn report(&self, problem: Problem) {
        if let Ok(mut list) = self.0.lock()
            && !list.contains(&problem)
        {
            list.push(problem);
        }
    }

    /// What went wrong since the last take, emptied.
    pub fn take(&self) -> Vec<Problem> {
        self.0.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }
}

/// What happens to a plugin's outbound requests.
#[derive(Debug, Clone, Default)]
pub enum EgressMode {
    /// Checked, then sent (the live path).
    #[default]
    Send,
    /// Checked against the grants, recorded, and answered from canned responses; never sent
    /// (sandbox runs, shadow versions, smoke calls).
    Capture(Arc<CannedResponses>),
}

/// Who is calling out, with what grants; shared by every warm instance of one plugin version, so
/// it holds nothing that belongs to one call (that is [`CallProblems`], [`CallSecrets`] and the
/// hooks' counters).
pub struct PluginEgress {
    /// Plugin name.
    pub plugin: String,
    /// Granted destinations.
    pub grants: Arc<[HttpGrant]>,
    /// The host's OAuth credentials.
    pub credentials: Arc<Credentials>,
    /// Which of them this plugin is granted.
    pub credential_grants: Arc<[String]>,
    /// Send or capture.
    pub mode: EgressMode,
    /// Also keep a copy of each live request (while a shadow version is compared with this one).
    pub record: AtomicBool,
    /// Granted secrets that may travel in requests, with the destinations each may go to, for
    /// `$SECRET(name)` in request URLs and headers (see [`fill_secrets`]).
    secrets: Arc<BTreeMap<String, SendableSecret>>,
    /// This plugin's per-request timeout (`limits.http_timeout_ms`); the checkpoint's own when
    /// `None`.
    timeout: Option<Duration>,
    /// Destinations whose requests get no `traceparent` (`grants.no_traceparent`).
    untraced: Arc<[HttpGrant]>,
}

impl PluginEgress {
    /// The egress identity of a plugin.
    pub fn new(
        plugin: String,
        grants: Arc<[HttpGrant]>,
        credentials: Arc<Credentials>,
        credential_grants: Arc<[String]>,
    ) -> Self {
        Self {
            plugin,
            grants,
            credentials,
            credential_grants,
            mode: EgressMode::Send,
            record: AtomicBool::new(false),
            secrets: Arc::default(),
            timeout: None,
            untraced: Arc::from([]),
        }
    }

    /// The same identity, adding no `traceparent` to requests to these destinations.
    pub fn without_traceparent(mut self, untraced: Arc<[HttpGrant]>) -> Self {
        self.untraced = untraced;
        self
    }

    /// Whether a request to `uri` with `method` may carry the call's `traceparent`.
    fn traces_to(&self, method: &http::Method, uri: &http::Uri) -> bool {
        match Destination::of_request(method, uri) {
            Ok((destination, _)) => !self.untraced.iter().any(|g| g.allows(&destination)),
            Err(_) => false,
        }
    }

    /// Whether requests are answered from canned responses (a sandbox run), not sent.
    pub fn is_capturing(&self) -> bool {
        matches!(self.mode, EgressMode::Capture(_))
    }

    /// The same identity, each request timing out after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same identity, with the plugin's granted secrets available as `$SECRET(name)` in
    /// requests to their destinations.
    pub fn with_secrets(mut self, secrets: Arc<BTreeMap<String, SendableSecret>>) -> Self {
        self.secrets = secrets;
        self
    }

    /// The same identity, with requests captured instead of sent.
    pub fn capturing(mut self, canned: Arc<CannedResponses>) -> Self {
        self.mode = EgressMode::Capture(canned);
        self
    }
}

/// The per-store hook object wasmtime-wasi-http calls for every outgoing request.
pub struct EgressHooks {
    egress: Arc<Egress>,
    who: Arc<PluginEgress>,
    calls: Arc<std::sync::atomic::AtomicU32>,
    max_calls: u32,
    captured: Arc<Mutex<Vec<CapturedRequest>>>,
    problems: Arc<CallProblems>,
    sent: Arc<CallSecrets>,
    /// `scheme://host:port` of the last request of the current call, for operators reading
    /// where a failing delivery was going.
    last_destination: Arc<Mutex<Option<String>>>,
    /// The trace of the current call (see [`crate::telemetry::trace::CALL_TRACE`]), if traced.
    trace: Arc<Mutex<Option<CallTrace>>>,
    /// The spans of the current call's requests.
    spans: Arc<Mutex<Vec<EgressSpan>>>,
}

impl EgressHooks {
    /// Hooks that send through `egress` on behalf of `who`, at most `max_calls` times per event.
    pub fn new(egress: Arc<Egress>, who: Arc<PluginEgress>, max_calls: u32) -> Self {
        Self {
            egress,
            who,
            calls: Arc::default(),
            max_calls,
            captured: Arc::default(),
            problems: Arc::default(),
            sent: Arc::default(),
            last_destination: Arc::default(),
            trace: Arc::default(),
            spans: Arc::default(),
        }
    }

    /// The spans of the requests the current call made (when it is traced), emptied.
    pub fn take_spans(&self) -> Vec<EgressSpan> {
        self.spans
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Outbound requests the current call has asked for so far (refused ones included).
    pub fn calls_made(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `scheme://host:port` of the current call's last request, if it made one.
    pub fn last_destination(&self) -> Option<String> {
        self.last_destination.lock().ok().and_then(|d| d.clone())
    }

    /// Where this instance's calls record their problems (host imports report there too).
    pub fn problems(&self) -> Arc<CallProblems> {
        self.problems.clone()
    }

    /// Requests captured (or recorded) since the last call, emptied.
    pub fn take_captured(&self) -> Vec<CapturedRequest> {
        self.captured
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    /// Starts counting outbound calls afresh for a new event.
    pub fn begin_call(&self) {
        self.calls.store(0, Ordering::Relaxed);
        if let Ok(mut trace) = self.trace.lock() {
            *trace = crate::telemetry::trace::current_call();
        }
        self.take_spans();
        if let Ok(mut last) = self.last_destination.lock() {
            *last = None;
        }
        self.take_problems();
        self.take_captured();
        self.sent.clear();
    }

    /// A scrubber for every secret text and token put into this call's requests so far; `None`
    /// when there was none.
    pub fn scrubber(&self) -> Option<Arc<Scrubber>> {
        self.sent.scrubber()
    }

    /// What went wrong with outbound requests since the last call, emptied.
    pub fn take_problems(&self) -> Vec<Problem> {
        self.problems.take()
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
        let who = self.who.clone();
        let made = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let max_calls = self.max_calls;
        let captured = self.captured.clone();
        let problems = self.problems.clone();
        let sent = self.sent.clone();
        if let (Ok(mut last), Some(authority)) = (self.last_destination.lock(), request.uri().authority()) {
            let scheme = request.uri().scheme_str().unwrap_or("http");
            *last = Some(format!("{scheme}://{authority}"));
        }
        let trace = self.trace.lock().ok().and_then(|t| t.clone());
        let spans = self.spans.clone();
        let keep = move |c: CapturedRequest| {
            if let Ok(mut list) = captured.lock() {
                list.push(c);
            }
        };
        Box::new(async move {
            if made > max_calls {
                count_denied(&who.plugin, "call_budget");
                problems.report(Problem::Denied(format!(
                    "plugin `{}` made more than {max_calls} outbound requests for one event (limits.max_http_calls)",
                    who.plugin
                )));
                return Err(HttpError::HttpRequestDenied);
            }
            let response = match &who.mode {
                EgressMode::Capture(canned) => {
                    let (c, response) = capture::capture(&who, &problems, canned, request).await?;
                    keep(c);
                    response
                }
                EgressMode::Send => {
                    let mut request = request;
                    let traced = trace.map(|t| (t, crate::telemetry::trace::new_span_id()));
                    if let Some((t, span_id)) = &traced
                        && who.traces_to(request.method(), request.uri())
                    {
                        let context = t.parent.child(*span_id);
                        if let Ok(value) = http::HeaderValue::from_str(&context.traceparent()) {
                            request.headers_mut().insert("traceparent", value);
                        }
                        if let Some(state) = context
                            .state
                            .as_deref()
                            .and_then(|s| http::HeaderValue::from_str(s).ok())
                        {
                            request.headers_mut().insert("tracestate", state);
                        }
                    }
                    // What the span may show: method, origin and the path as the plugin wrote it
                    // (secrets are filled in later, by `send`); never the query.
                    let described = traced.as_ref().map(|(_, span_id)| {
                        let uri = request.uri();
                        let origin = format!(
                            "{}://{}",
                            uri.scheme_str().unwrap_or("http"),
                            uri.authority().map(|a| a.as_str()).unwrap_or("")
                        );
                        (*span_id, request.method().to_string(), origin, uri.path().to_owned())
                    });
                    let started = std::time::SystemTime::now();
                    let response = if who.record.load(Ordering::Relaxed) {
                        let (mut c, request) = capture::snapshot(request).await?;
                        let response = egress.send(&who, &problems, &sent, request).await;
                        c.status = response.as_ref().ok().map(|r| r.status().as_u16());
                        keep(c);
                        response
                    } else {
                        egress.send(&who, &problems, &sent, request).await
                    };
                    if let (Some((span_id, method, origin, path)), Ok(mut list)) = (described, spans.lock()) {
                        list.push(EgressSpan {
                            span_id,
                            method,
                            origin,
                            path,
                            status: response.as_ref().ok().map(|r| r.status().as_u16()),
                            start: started,
                            end: std::time::SystemTime::now(),
                        });
                    }
                    response?
                }
            };
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::secrets::tests::plugin_with;
    use super::*;

    #[test]
    fn internal_addresses_in_every_disguise_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "0.1.2.3",
            "100.64.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:0a00:0001::1",
        ] {
            assert!(
                is_internal(internal.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                "{internal}"
            );
        }
        for public in [
            "93.184.216.34",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            let ip: IpAddr = public.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
            assert!(!is_internal(ip), "{public}");
        }
    }

    /// Each path trick from the review, against a grant, a secret's `for` and a credential's `for`
    /// (a credential's `for` is a list of [`HttpGrant`]s matched against the same destination).
    #[test]
    fn path_tricks_escape_no_grant_no_secret_for_and_no_credential_for() {
        let grant: HttpGrant = "POST http://198.51.100.7/hooks/".parse().unwrap();
        let credential_for: Vec<HttpGrant> = vec!["POST https://api.xero.com/api.xro/2.0/".parse().unwrap()];
        let who = plugin_with(b"2f1c9e");
        let tricks = [
            "/../admin/steal",
            "/%2e%2e/admin/steal",
            "/.%2E/admin/steal",
            "//..//admin/steal",
            "/./../admin/steal",
        ];
        let post = http::Method::POST;
        for trick in tricks {
            for (base, allows) in [
                ("http://198.51.100.7/hooks", &[grant.clone()][..]),
                ("https://api.xero.com/api.xro/2.0", &credential_for[..]),
            ] {
                let uri: http::Uri = format!("{base}{trick}").parse().unwrap();
                let (to, sent) = Destination::of_request(&post, &uri).unwrap();
                assert!(
                    to.path.ends_with("/admin/steal") && !to.path.contains(".."),
                    "{uri}: {}",
                    to.path
                );
                assert_eq!(sent.path(), to.path, "exactly the checked path is sent: {uri}");
                assert!(!allows.iter().any(|g| g.allows(&to)), "{uri} escaped {allows:?}");
            }
            let uri: http::Uri = format!("https://oapi.dingtalk.com/robot/send/..{trick}?t=$SECRET(robot-token)")
                .parse()
                .unwrap();
            let (to, sent) = Destination::of_request(&post, &uri).unwrap();
            let filled = fill_secrets(sent.path_and_query().map_or("", |p| p.as_str()), &who, &to);
            assert!(
                filled
                    .as_ref()
                    .is_err_and(|e| e.contains("where that secret may not go")),
                "{uri}: {filled:?}"
            );
        }
        for refused in [
            "/hooks/..%2Fadmin",
            "/hooks/..%5Cadmin",
            "/hooks/..;/admin",
            "/hooks/%00/x",
        ] {
            let uri: http::Uri = format!("http://198.51.100.7{refused}").parse().unwrap();
            let error = Destination::of_request(&post, &uri).unwrap_err();
            assert!(error.starts_with("refused before any check: "), "{refused}: {error}");
        }
        // Inside the grant, the normal form is what is checked and sent.
        let uri: http::Uri = "http://198.51.100.7/hooks/./a//b/%7e?x=../y".parse().unwrap();
        let (to, sent) = Destination::of_request(&post, &uri).unwrap();
        assert!(grant.allows(&to));
        assert_eq!(sent.to_string(), "http://198.51.100.7/hooks/a/b/~?x=../y");
        // A grant must be written in normal form.
        let written = "POST http://198.51.100.7/hooks/../admin"
            .parse::<HttpGrant>()
            .unwrap_err();
        assert!(written.contains("normal form, `/admin`"), "{written}");
    }
}
