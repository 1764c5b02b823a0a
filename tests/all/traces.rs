//! OpenTelemetry traces end to end: the host exports over OTLP/HTTP to a real receiver that
//! decodes the protobuf with the official definitions (`opentelemetry-proto`), and the span tree
//! of a sale is checked: `ingest` under the till's `traceparent`, `transform sku-map@…`, one
//! `deliver erp` per attempt (a 500, then a 200) each with its `POST` egress span, and the
//! `traceparent` the sink received naming the second egress span. An unsampled sale's failing
//! attempt is exported on its own, linked to the sale's context and carrying its id.

use crate::harness::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::sync::{Arc, Mutex};

/// An OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf` bodies.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let services: Arc<Mutex<Vec<String>>> = Arc::default();
        let (kept, named) = (spans.clone(), services.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (kept, named) = (kept.clone(), named.clone());
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                    for resource in request.resource_spans {
                        for attribute in resource.resource.iter().flat_map(|r| &r.attributes) {
                            if attribute.key == "service.name" {
                                named
                                    .lock()
                                    .unwrap()
                                    .push(text(attribute.value.as_ref().and_then(|v| v.value.as_ref())));
                            }
                        }
                        for scope in resource.scope_spans {
                            kept.lock().unwrap().extend(scope.spans);
                        }
                    }
                    ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Collector { url, spans, services }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn text(value: Option<&Any>) -> String {
    match value {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn attr(span: &Span, key: &str) -> String {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn traced_config(sink: &Sink, collector: &Collector, telemetry: &str) -> String {
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 3;
    options.extra = format!(
        "[telemetry]\nendpoint = \"{}\"\nservice_name = \"kaunter-test\"\n{telemetry}\n",
        collector.url
    );
    config(&options)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_is_one_trace_from_the_tills_traceparent_to_the_sinks() {
    let collector = Collector::start().await;
    let sink = Sink::start().await;
    sink.script(&[500, 200]);
    let host = Host::start(&traced_config(&sink, &collector, ""));
    let till_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let till_span = "00f067aa0ba902b7";
    let response = host
        .http
        .post(format!("{}/v1/events", host.url))
        .bearer_auth(POS_KEY)
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{till_trace}-{till_span}-01"))
        .body(sale("tr-1", "hk-001", "TR-1", &[("4891234500017", 1, 3990)]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    wait_for_state(&host, "tr-1", "erp", "delivered").await;

    let spans = wait_for("the sale's spans at the collector", 60, || async {
        let spans = collector.spans();
        let delivers = spans.iter().filter(|s| s.name == "deliver erp").count();
        let egress = spans.iter().filter(|s| s.name.starts_with("POST ")).count();
        (delivers == 2 && egress == 2).then_some(spans)
    })
    .await;
    assert!(collector.services.lock().unwrap().iter().all(|s| s == "kaunter-test"));
    let trace = hex(&spans[0].trace_id);
    assert_eq!(trace, till_trace, "the till's trace is the sale's trace");
    assert!(spans.iter().all(|s| hex(&s.trace_id) == till_trace), "one trace");
    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let ingest = named("ingest");
    assert_eq!(ingest.len(), 1);
    let ingest = ingest[0];
    assert_eq!(
        hex(&ingest.parent_span_id),
        till_span,
        "ingest is a child of the till's span"
    );
    assert_eq!(attr(ingest, "kaunter.event.id"), "tr-1");
    assert_eq!(attr(ingest, "kaunter.ingest.outcome"), "accepted");
    let transform = spans
        .iter()
        .find(|s| s.name.starts_with("transform sku-map@"))
        .expect("the transform span");
    assert_eq!(transform.parent_span_id, ingest.span_id);
    assert_eq!(attr(transform, "kaunter.call.outcome"), "ok");
    assert!(!attr(transform, "kaunter.call.peak_memory_bytes").is_empty());
    let mut delivers = named("deliver erp");
    delivers.sort_by_key(|s| attr(s, "kaunter.delivery.attempt"));
    for (attempt, (span, outcome)) in delivers.iter().zip(["retry", "delivered"]).enumerate() {
        assert_eq!(
            span.parent_span_id, ingest.span_id,
            "each attempt hangs under the event"
        );
        assert_eq!(attr(span, "kaunter.delivery.attempt"), (attempt + 1).to_string());
        assert_eq!(attr(span, "kaunter.delivery.outcome"), outcome);
    }
    assert!(!attr(delivers[0], "kaunter.delivery.retry_in_ms").is_empty());
    let egress_of = |deliver: &Span| {
        spans
            .iter()
            .find(|s| s.parent_span_id == deliver.span_id && s.name.starts_with("POST "))
            .cloned()
            .expect("an egress span under the attempt")
    };
    let (first, second) = (egress_of(delivers[0]), egress_of(delivers[1]));
    assert_eq!(attr(&first, "http.response.status_code"), "500");
    assert_eq!(attr(&second, "http.response.status_code"), "200");
    assert_eq!(attr(&second, "url.template"), "/hooks");
    // What the sink received names the egress span of the attempt that delivered.
    let received = sink.requests_for("tr-1");
    let last = received.last().unwrap().header("traceparent").to_owned();
    assert_eq!(last, format!("00-{till_trace}-{}-01", hex(&second.span_id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsampled_sale_exports_only_its_failing_attempt_linked_to_its_context() {
    let collector = Collector::start().await;
    let sink = Sink::start().await;
    sink.script(&[500, 200]);
    let host = Host::start(&traced_config(&sink, &collector, "sampling_ratio = 0.0"));
    assert_eq!(
        host.post_json(&sale("un-1", "hk-001", "UN-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "un-1", "erp", "delivered").await;
    wait_for("the failing attempt at the collector", 60, || async {
        collector.spans().iter().any(|s| s.name == "deliver erp").then_some(())
    })
    .await;
    // A moment for anything else that would (wrongly) be exported.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !names.contains(&"ingest") && !names.iter().any(|n| n.starts_with("transform")),
        "{names:?}"
    );
    let delivers: Vec<&Span> = spans.iter().filter(|s| s.name == "deliver erp").collect();
    assert_eq!(delivers.len(), 1, "only the failing attempt: {names:?}");
    let failed = delivers[0];
    assert_eq!(attr(failed, "kaunter.event.id"), "un-1");
    assert_eq!(attr(failed, "kaunter.delivery.outcome"), "retry");
    assert!(failed.parent_span_id.is_empty(), "a trace of its own");
    assert_eq!(failed.links.len(), 1, "linked to the sale's stored context");
    let stored = sink.requests_for("un-1")[0].header("traceparent").to_owned();
    assert!(
        stored.ends_with("-00"),
        "the vendor is told the sale is not sampled: {stored}"
    );
    assert_eq!(hex(&failed.links[0].trace_id), stored.split('-').nth(1).unwrap());
}
