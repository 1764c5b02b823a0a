//! OpenTelemetry traces: one trace per event, exported over OTLP/HTTP (protobuf) with
//! `opentelemetry-otlp` through a batch span processor.
//!
//! An event's journey crosses tasks, restarts and days (a delivery retried after a crash, a dead
//! letter replayed next week), so spans are not held open across it. The trace context is decided
//! once, at ingest ([`begin_event`]), and stored with the event in the log; every later step
//! records a finished span ([`record`]) with its own start and end time, as a child of that
//! stored context. Span ids that must be known before a step ends (the `traceparent` a connector's
//! request carries) are drawn up front ([`new_span_id`]).
//!
//! Sampling is decided at ingest: a `traceparent` that came in decides (parent-based), otherwise
//! the ratio does. An unsampled event's steps record nothing, except a step that fails: it is
//! exported as the root of a new trace, linked to the event's stored context and carrying the
//! event id, so a failure is never invisible whatever the ratio.

use opentelemetry::trace::{Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks,
    SpanProcessor,
};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// How the host decides which events are traced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    /// Follow the sampled flag of a `traceparent` that came with the event.
    pub parent_based: bool,
    /// Share of the other events traced (0 to 1).
    pub ratio: f64,
}

impl Sampler {
    /// From `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` as the OpenTelemetry SDKs read
    /// them (`always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
    /// `parentbased_always_off`, `parentbased_traceidratio`); `None` for an unknown name.
    pub fn from_otel(name: &str, arg: Option<&str>) -> Option<Sampler> {
        let ratio = || {
            arg.and_then(|a| a.trim().parse::<f64>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0)
        };
        Some(match name.trim() {
            "always_on" => Sampler {
                parent_based: false,
                ratio: 1.0,
            },
            "always_off" => Sampler {
                parent_based: false,
                ratio: 0.0,
            },
            "traceidratio" => Sampler {
                parent_based: false,
                ratio: ratio(),
            },
            "parentbased_always_on" => Sampler {
                parent_based: true,
                ratio: 1.0,
            },
            "parentbased_always_off" => Sampler {
                parent_based: true,
                ratio: 0.0,
            },
            "parentbased_traceidratio" => Sampler {
                parent_based: true,
                ratio: ratio(),
            },
            _ => return None,
        })
    }

    fn sampled(&self, trace_id: TraceId, parent: Option<&EventTrace>) -> bool {
        if let (true, Some(parent)) = (self.parent_based, parent) {
            return parent.sampled;
        }
        // As the SDK's TraceIdRatioBased does: the low 63 bits of the trace id against the ratio.
        let bytes = trace_id.to_bytes();
        let low = u64::from_be_bytes(bytes[8..16].try_into().unwrap_or([0; 8])) >> 1;
        let bound = (self.ratio * (1u64 << 63) as f64) as u64;
        self.ratio >= 1.0 || low < bound
    }
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`.
    pub endpoint: String,
    /// Headers on every export request (an API key for a hosted backend).
    pub headers: Vec<(String, String)>,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Which events are traced.
    pub sampler: Sampler,
}

/// The installed tracer: a batch processor feeding the OTLP exporter.
struct Tracer {
    endpoint: String,
    processor: BatchSpanProcessor,
    sampler: Sampler,
    scope: InstrumentationScope,
}

static TRACER: arc_swap::ArcSwapOption<Tracer> = arc_swap::ArcSwapOption::const_empty();

/// Starts exporting to `settings.endpoint`; `client` carries the export requests (see
/// [`HttpClient`]). Replaces (and flushes) a tracer installed before.
pub fn install(settings: &Settings, client: impl opentelemetry_http::HttpClient + 'static) -> anyhow::Result<()> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_headers(settings.headers.iter().cloned().collect())
        .with_timeout(std::time::Duration::from_secs(10))
        .with_http_client(client)
        .build()?;
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(65_536)
                .with_max_export_batch_size(2048)
                .with_scheduled_delay(std::time::Duration::from_millis(500))
                .build(),
        )
        .build();
    processor.set_resource(
        &Resource::builder()
            .with_service_name(settings.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let scope = InstrumentationScope::builder("kaunter")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let old = TRACER.swap(Some(Arc::new(Tracer {
        endpoint: settings.endpoint.clone(),
        processor,
        sampler: settings.sampler,
        scope,
    })));
    retire(old);
    Ok(())
}

/// Stops tracing; what is queued is still exported.
pub fn shutdown() {
    retire(TRACER.swap(None));
}

/// Flushes and drops a replaced tracer on a thread of its own: flushing blocks until the export
/// answers, and the export runs on the runtime the caller may be on.
fn retire(old: Option<Arc<Tracer>>) {
    if let Some(old) = old {
        std::thread::spawn(move || {
            let _ = old.processor.force_flush();
        });
    }
}

/// Exports what is queued now, blocking until the collector answers (for a clean stop: call it
/// off the runtime's worker threads, e.g. with `spawn_blocking`).
pub fn flush() {
    if let Some(t) = TRACER.load_full() {
        let _ = t.processor.force_flush();
    }
}

/// Where spans go, when they are exported.
pub fn endpoint() -> Option<String> {
    TRACER.load().as_ref().map(|t| t.endpoint.clone())
}

/// Whether spans are exported at all.
pub fn enabled() -> bool {
    TRACER.load().is_some()
}

/// An event's trace context as the log keeps it: W3C `traceparent` and `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTrace {
    /// The trace.
    pub trace_id: TraceId,
    /// The span the event's later steps hang under (its `ingest` or `source` span).
    pub span_id: SpanId,
    /// Whether the event is traced.
    pub sampled: bool,
    /// `tracestate`, passed on as it came.
    pub state: Option<String>,
}

impl EventTrace {
    /// Parses a W3C `traceparent` (`00-{32 hex}-{16 hex}-{2 hex}`) and its `tracestate`.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<EventTrace> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok().filter(|t| *t != TraceId::INVALID)?;
        let span_id = SpanId::from_hex(span).ok().filter(|s| *s != SpanId::INVALID)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(EventTrace {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            state: tracestate
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(str::to_owned),
        })
    }

    /// The `traceparent` of this context.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled))
    }

    /// The same trace, another span: what a child step's `traceparent` carries.
    pub fn child(&self, span_id: SpanId) -> EventTrace {
        EventTrace {
            span_id,
            ..self.clone()
        }
    }

    fn span_context(&self) -> SpanContext {
        let state = self
            .state
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanContext::new(
            self.trace_id,
            self.span_id,
            if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            state,
        )
    }
}

/// A fresh span id.
pub fn new_span_id() -> SpanId {
    RandomIdGenerator::default().new_span_id()
}

/// The context of an event arriving now: a child of `parent` (a `traceparent` that came with it)
/// or a new trace, sampled as the installed [`Sampler`] says. `None` when tracing is off.
pub fn begin_event(parent: Option<&EventTrace>) -> Option<EventTrace> {
    let tracer = TRACER.load();
    let tracer = tracer.as_ref()?;
    let trace_id = parent.map_or_else(|| RandomIdGenerator::default().new_trace_id(), |p| p.trace_id);
    Some(EventTrace {
        trace_id,
        span_id: new_span_id(),
        sampled: tracer.sampler.sampled(trace_id, parent),
        state: parent.and_then(|p| p.state.clone()),
    })
}

/// One finished step of an event.
#[derive(Debug, Clone)]
pub struct Step {
    /// Span name: `ingest`, `transform sku-map@3f2a…`, `deliver xero`, `POST api.xero.com`.
    pub name: String,
    /// Server (ingest, source), client (egress) or internal.
    pub kind: SpanKind,
    /// Its span id, drawn up front when something outside had to know it.
    pub span_id: SpanId,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// What it did.
    pub attributes: Vec<KeyValue>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Step {
    /// A step named `name` that ran from `start` until now.
    pub fn new(name: impl Into<String>, kind: SpanKind, start: SystemTime) -> Step {
        Step {
            name: name.into(),
            kind,
            span_id: new_span_id(),
            start,
            end: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, key: &'static str, value: impl Into<opentelemetry::Value>) -> Step {
        self.attributes.push(KeyValue::new(key, value));
        self
    }
}

/// Records `step` of the event with stored context `event` (its id `event_id`). Returns the
/// context its own children go under, or `None` when nothing was recorded: the event is not
/// sampled and the step did not fail, or tracing is off.
///
/// A failed step of an unsampled event starts a new trace, linked to `event`.
pub fn record(event: &EventTrace, event_id: &str, step: Step) -> Option<EventTrace> {
    let tracer = TRACER.load_full()?;
    let (context, parent_span_id, links, mut attributes) = if event.sampled {
        (event.child(step.span_id), event.span_id, Vec::new(), step.attributes)
    } else if step.error.is_some() {
        let fresh = EventTrace {
            trace_id: RandomIdGenerator::default().new_trace_id(),
            span_id: step.span_id,
            sampled: true,
            state: None,
        };
        let link = Link::with_context(event.span_context());
        let mut attributes = step.attributes;
        attributes.push(KeyValue::new("kaunter.unsampled_failure", true));
        (fresh, SpanId::INVALID, vec![link], attributes)
    } else {
        return None;
    };
    if !attributes.iter().any(|kv| kv.key.as_str() == "kaunter.event.id") {
        attributes.push(KeyValue::new("kaunter.event.id", event_id.to_owned()));
    }
    export(
        &tracer,
        &context,
        parent_span_id,
        step.name,
        step.kind,
        step.start,
        step.end,
        attributes,
        links,
        step.error,
    );
    Some(context)
}

/// Records the event's own first span (`ingest`, `source {plugin}`): `step.span_id` is the
/// span id of `event`, and `parent` the span it came from (a `traceparent` that came in).
/// Nothing is recorded for an unsampled event.
pub fn record_root(event: &EventTrace, parent: Option<SpanId>, step: Step) {
    let Some(tracer) = TRACER.load_full() else { return };
    if !event.sampled {
        return;
    }
    export(
        &tracer,
        event,
        parent.unwrap_or(SpanId::INVALID),
        step.name,
        step.kind,
        step.start,
        step.end,
        step.attributes,
        Vec::new(),
        step.error,
    );
}

/// Records `step` as a child of `parent`, a context [`record`] returned (always exported).
pub fn record_child(parent: &EventTrace, step: Step) {
    let Some(tracer) = TRACER.load_full() else { return };
    let context = parent.child(step.span_id);
    export(
        &tracer,
        &context,
        parent.span_id,
        step.name,
        step.kind,
        step.start,
        step.end,
        step.attributes,
        Vec::new(),
        step.error,
    );
}

#[allow(clippy::too_many_arguments)]
fn export(
    tracer: &Tracer,
    context: &EventTrace,
    parent_span_id: SpanId,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
    error: Option<String>,
) {
    let mut sc = context.span_context();
    sc = SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        TraceFlags::SAMPLED,
        false,
        sc.trace_state().clone(),
    );
    let data = SpanData {
        span_context: sc,
        parent_span_id,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: start,
        end_time: end.max(start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: {
            let mut span_links = SpanLinks::default();
            span_links.links = links;
            span_links
        },
        status: match error {
            Some(message) => Status::error(message),
            None => Status::Ok,
        },
        instrumentation_scope: tracer.scope.clone(),
    };
    tracer.processor.on_end(data);
}

/// The `traceparent` and span of one outbound request a plugin made during a traced call.
#[derive(Debug, Clone)]
pub struct EgressSpan {
    /// The span id its `traceparent` header carried (or would have).
    pub span_id: SpanId,
    /// `GET`, `POST`, ...
    pub method: String,
    /// `scheme://host:port`.
    pub origin: String,
    /// The path as the plugin wrote it, before secrets were filled in; no query.
    pub path: String,
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// When it was sent and when it ended.
    pub start: SystemTime,
    /// When the answer (or the failure) came.
    pub end: SystemTime,
}

impl EgressSpan {
    /// The span of this request.
    pub fn step(&self) -> Step {
        let host = self.origin.split("://").nth(1).unwrap_or(&self.origin);
        let mut step = Step {
            name: format!("{} {host}", self.method),
            kind: SpanKind::Client,
            span_id: self.span_id,
            start: self.start,
            end: self.end,
            attributes: vec![
                KeyValue::new("http.request.method", self.method.clone()),
                KeyValue::new("server.address", host.to_owned()),
                KeyValue::new("url.template", self.path.clone()),
            ],
            error: None,
        };
        match self.status {
            Some(status) => {
                step.attributes
                    .push(KeyValue::new("http.response.status_code", i64::from(status)));
                if status >= 500 {
                    step.error = Some(format!("HTTP {status}"));
                }
            }
            None => step.error = Some("no answer".into()),
        }
        step
    }
}

/// The trace of the plugin call running now, for the egress checkpoint: which trace its requests
/// belong to and the span they are children of. Set by the caller around the call.
#[derive(Debug, Clone)]
pub struct CallTrace {
    /// The event's trace, with the calling step's span id.
    pub parent: EventTrace,
}

tokio::task_local! {
    /// The trace of the plugin call this task is making, if it is traced.
    pub static CALL_TRACE: CallTrace;
}

/// The current task's [`CallTrace`], if any.
pub fn current_call() -> Option<CallTrace> {
    CALL_TRACE.try_with(Clone::clone).ok()
}

/// The OTLP exporter's HTTP client: hyper on the host's tokio runtime. The batch processor exports
/// from its own thread, outside the runtime, so each request is spawned onto the runtime and
/// awaited through a channel.
#[derive(Debug, Clone)]
pub struct HttpClient {
    runtime: tokio::runtime::Handle,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl HttpClient {
    /// A client trusting `tls`'s roots, spawning onto `runtime`.
    pub fn new(runtime: tokio::runtime::Handle, tls: rustls::ClientConfig) -> HttpClient {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        HttpClient { runtime, client }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use http_body_util::BodyExt as _;
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, http_body_util::Full::new(body));
        let client = self.client.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let answer = async {
                #[allow(clippy::disallowed_methods)] // The host's own export to its collector, not plugin egress.
                let response = client.request(request).await?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
            }
            .await;
            let _ = tx.send(answer);
        });
        rx.await.map_err(|e| -> opentelemetry_http::HttpError { Box::new(e) })?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn traceparent_parses_and_prints_as_w3c_says() {
        let t = EventTrace::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("vendor=x"),
        )
        .unwrap();
        assert!(t.sampled);
        assert_eq!(
            t.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(t.state.as_deref(), Some("vendor=x"));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert!(EventTrace::parse(bad, None).is_none(), "{bad}");
        }
        // A later version may add fields; its first four are read.
        assert!(EventTrace::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x", None).is_some());
    }

    #[test]
    fn the_sampler_follows_the_parent_or_the_ratio() {
        let parent = EventTrace::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None).unwrap();
        let based = Sampler::from_otel("parentbased_traceidratio", Some("1.0")).unwrap();
        assert!(
            !based.sampled(parent.trace_id, Some(&parent)),
            "an unsampled parent decides"
        );
        assert!(based.sampled(parent.trace_id, None));
        let off = Sampler::from_otel("traceidratio", Some("0")).unwrap();
        assert!(!off.sampled(parent.trace_id, None));
        let half = Sampler::from_otel("traceidratio", Some("0.5")).unwrap();
        let sampled = (0..2000)
            .filter(|_| half.sampled(RandomIdGenerator::default().new_trace_id(), None))
            .count();
        assert!((800..1200).contains(&sampled), "{sampled} of 2000 at 0.5");
        assert!(Sampler::from_otel("jaeger_remote", None).is_none());
    }
}
