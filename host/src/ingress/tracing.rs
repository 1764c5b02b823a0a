//! The trace of events arriving over HTTP: the context each one is kept with (a child of the
//! `traceparent` it came with, per event from the CloudEvents distributed-tracing extension or
//! for the whole request from the W3C header), and the `ingest` or `source {plugin}` span that
//! ends when the events are durable.

use crate::store::Appended;
use crate::telemetry::trace::{self, EventTrace, Step};
use axum::http::HeaderMap;
use kaunter_model::Event;
use opentelemetry::trace::{SpanId, SpanKind};
use std::time::SystemTime;

/// The context `headers`' `traceparent` and `tracestate` carry, if valid.
pub fn from_headers(headers: &HeaderMap) -> Option<EventTrace> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    EventTrace::parse(header("traceparent")?, header("tracestate"))
}

/// Each event's context and the span it came from: a child of its own `traceparent` extension,
/// else of the request's. All `None` when tracing is off.
pub fn begin_events(headers: &HeaderMap, events: &[Event]) -> (Vec<Option<EventTrace>>, Vec<Option<SpanId>>) {
    if !trace::enabled() {
        return (vec![None; events.len()], vec![None; events.len()]);
    }
    let request = from_headers(headers);
    events
        .iter()
        .map(|event| {
            let own = event
                .extension("traceparent")
                .and_then(|tp| EventTrace::parse(tp, event.extension("tracestate")));
            let parent = own.as_ref().or(request.as_ref());
            (trace::begin_event(parent), parent.map(|p| p.span_id))
        })
        .unzip()
}

/// `(id, source, type)` of each event, kept for the spans once the events moved into the log.
pub fn describe(events: &[Event]) -> Vec<(String, String, String)> {
    if !trace::enabled() {
        return Vec::new();
    }
    events
        .iter()
        .map(|e| (e.id.clone(), e.source.clone(), e.ty.clone()))
        .collect()
}

/// Records one span per event, named `name`, from `started` to now, with how its append went.
pub fn record_ingest(
    name: &str,
    started: SystemTime,
    (traces, parents): &(Vec<Option<EventTrace>>, Vec<Option<SpanId>>),
    described: &[(String, String, String)],
    appended: &[Appended],
    key: &str,
) {
    for (((context, parent), (id, source, ty)), outcome) in traces.iter().zip(parents).zip(described).zip(appended) {
        let Some(context) = context else { continue };
        let result = match (&outcome.conflict, outcome.duplicate) {
            (Some(_), _) => "conflict",
            (None, true) => "duplicate",
            (None, false) => "accepted",
        };
        let mut step = Step::new(name.to_owned(), SpanKind::Server, started)
            .attr("kaunter.event.id", id.clone())
            .attr("kaunter.event.source", source.clone())
            .attr("kaunter.event.type", ty.clone())
            .attr("kaunter.ingest.outcome", result)
            .attr("kaunter.ingest.batch_size", described.len() as i64)
            .attr("kaunter.api_key", key.to_owned());
        step.span_id = context.span_id;
        // The event's own span: its parent is whatever came in (or none).
        trace::record_root(context, *parent, step);
    }
}
