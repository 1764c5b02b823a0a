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

/// The spans as an indented tree (printed: `--nocapture` shows what a trace UI would).
fn tree(spans: &[Span], parent: &[u8], depth: usize, out: &mut String) {
    let mut children: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == parent).collect();
    children.sort_by_key(|s| s.start_time_unix_nano);
    for span in children {
        let ms = (span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano)) as f64 / 1e6;
        let keys = [
            "kaunter.ingest.outcome",
            "kaunter.call.outcome",
            "kaunter.delivery.attempt",
            "kaunter.delivery.outcome",
            "http.response.status_code",
        ];
        let shown: Vec<String> = keys
            .iter()
            .filter_map(|k| {
                Some(format!("{}={}", k.rsplit('.').next()?, attr(span, k))).filter(|_| !attr(span, k).is_empty())
            })
            .collect();
        out.push_str(&format!(
            "{}{} ({ms:.1} ms) {}\n",
            "  ".repeat(depth),
            span.name,
            shown.join(" ")
        ));
        tree(spans, &span.span_id, depth + 1, out);
    }
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
    let mut drawn = String::new();
    let root = spans
        .iter()
        .find(|s| s.name == "ingest")
        .unwrap()
        .parent_span_id
        .clone();
    tree(&spans, &root, 0, &mut drawn);
    eprintln!("trace {till_trace}:\n{drawn}");
    let trace = hex(&spans[0].trace_id);
    assert_eq!(trace, till_trace, "the till's trace is the sale's trace");
    let (_, shown) = host.get("/v1/events/tr-1", ADMIN_KEY).await;
    assert_eq!(
        shown["trace"]["trace_id"], till_trace,
        "the event's page names its trace"
    );
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

/// A dead letter replayed later, by another host process, joins the sale's trace: the trace
/// context is read back from the log.
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_dead_letter_after_a_restart_joins_the_sales_trace() {
    let collector = Collector::start().await;
    let sink = Sink::start().await;
    sink.script(&[500]);
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 1;
    options.extra = format!("[telemetry]\nendpoint = \"{}\"\n", collector.url);
    let mut host = Host::start_under(&config(&options), &["env", "KAUNTER_LOG_FORMAT=json"]);
    assert_eq!(
        host.post_json(&sale("rp-1", "hk-001", "RP-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "rp-1", "erp", "dead_lettered").await;
    // The log line of the dead letter names the trace and the attempt's span.
    let logged: Vec<serde_json::Value> = host
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let dead = logged
        .iter()
        .find(|l| l["fields"]["message"] == "delivery dead-lettered")
        .expect("the dead-letter line");
    let logged_trace = dead["span"]["trace_id"]
        .as_str()
        .expect("a trace_id on the line")
        .to_owned();
    assert_eq!(dead["span"]["span_id"].as_str().map(str::len), Some(16), "{dead}");
    // Spans leave in batches (every half second): the first attempt's before the restart.
    wait_for("the first attempt at the collector", 60, || async {
        collector.spans().iter().any(|s| s.name == "deliver erp").then_some(())
    })
    .await;
    host.restart();
    host.cli(&["dlq", "replay", "--since", "2000-01-01T00:00:00Z"]);
    wait_for_state(&host, "rp-1", "erp", "delivered").await;
    let spans = wait_for("both attempts at the collector", 60, || async {
        let spans = collector.spans();
        (spans.iter().filter(|s| s.name == "deliver erp").count() == 2).then_some(spans)
    })
    .await;
    let ingest = spans.iter().find(|s| s.name == "ingest").unwrap();
    assert_eq!(hex(&ingest.trace_id), logged_trace);
    let delivers: Vec<&Span> = spans.iter().filter(|s| s.name == "deliver erp").collect();
    for span in &delivers {
        assert_eq!(span.trace_id, ingest.trace_id, "the same trace");
        assert_eq!(span.parent_span_id, ingest.span_id);
    }
    let replayed = delivers
        .iter()
        .find(|s| attr(s, "kaunter.delivery.outcome") == "delivered")
        .unwrap();
    assert_eq!(attr(replayed, "kaunter.delivery.replayed"), "true");
    let dead = delivers
        .iter()
        .find(|s| attr(s, "kaunter.delivery.outcome") == "dead-lettered")
        .unwrap();
    assert!(
        dead.status.as_ref().is_some_and(|s| s.message.contains("500")),
        "{:?}",
        dead.status
    );
}
