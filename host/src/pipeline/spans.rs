//! The `deliver {sink}` span of one delivery attempt and the `egress` spans of its requests, in
//! the trace the event was kept with. Attempts after a restart and replayed dead letters read
//! that context back from the log, so they join the same trace.

use crate::store::Delivery;
use crate::telemetry::trace::{self, CallTrace, EgressSpan, Step};
use opentelemetry::trace::{SpanId, SpanKind};
use std::time::SystemTime;

/// What one attempt did, filled in as it runs.
pub(super) struct AttemptSpan {
    span_id: SpanId,
    started: SystemTime,
    /// The connector version that made it.
    pub plugin: Option<(String, String)>,
    /// Its requests.
    pub egress: Vec<EgressSpan>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it is retried, if it is.
    pub retry_in_ms: Option<u64>,
    /// Whether it was the last (dead-lettered).
    pub dead_lettered: bool,
}

impl AttemptSpan {
    /// An attempt starting now.
    pub fn begin() -> AttemptSpan {
        AttemptSpan {
            span_id: trace::new_span_id(),
            started: SystemTime::now(),
            plugin: None,
            egress: Vec::new(),
            error: None,
            retry_in_ms: None,
            dead_lettered: false,
        }
    }

    /// The attempt's span id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The trace the connector's requests carry (`traceparent`), when the event has one.
    pub fn call_trace(&self, d: &Delivery) -> Option<CallTrace> {
        let event = d.trace.as_ref()?;
        trace::enabled().then(|| CallTrace {
            parent: event.child(self.span_id),
        })
    }

    /// Records the attempt (number `attempt`) at `sink`, and its requests under it.
    pub fn finish(self, d: &Delivery, sink: &str, attempt: u32) {
        let Some(event) = d.trace.as_ref() else { return };
        let outcome = match (&self.error, self.dead_lettered) {
            (None, _) => "delivered",
            (Some(_), true) => "dead-lettered",
            (Some(_), false) => "retry",
        };
        let mut step = Step::new(format!("deliver {sink}"), SpanKind::Internal, self.started)
            .attr("kaunter.sink", sink.to_owned())
            .attr("kaunter.route", d.route.clone())
            .attr("kaunter.delivery.attempt", i64::from(attempt))
            .attr("kaunter.delivery.outcome", outcome);
        if let Some(wait) = self.retry_in_ms {
            step = step.attr("kaunter.delivery.retry_in_ms", wait as i64);
        }
        if let Some((name, version)) = self.plugin {
            step = step
                .attr("kaunter.plugin", name)
                .attr("kaunter.plugin.version", version);
        }
        if d.replayed_at_ms.is_some() {
            step = step.attr("kaunter.delivery.replayed", true);
        }
        step.span_id = self.span_id;
        step.error = self.error;
        if let Some(context) = trace::record(event, &d.event_id, step) {
            for request in &self.egress {
                trace::record_child(&context, request.step());
            }
        }
    }
}
