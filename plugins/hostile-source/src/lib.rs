//! TEST ONLY. A source that misbehaves as the webhook's `x-misbehave` header says: `trap` panics,
//! `invalid` returns an event that breaks the event rules (no type, a `time` that is not a
//! timestamp, an extension named `id`), `loop` never returns, `keyless` returns a valid event with
//! no partition key, `unavailable` says it cannot work until an operator acts; without the header
//! it returns nothing.

use kaunter_sdk::{DecodeError, Event, Payload, WebhookRequest};

#[kaunter_sdk::source]
fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError> {
    match request.header("x-misbehave") {
        Some("trap") => {
            let nothing: Vec<Event> = Vec::new();
            Ok(vec![nothing[std::hint::black_box(request.body.len())].clone()])
        }
        Some("invalid") => Ok(vec![Event {
            id: "bad-1".into(),
            source: "/t/acme/s/hk-001/p/web".into(),
            ty: String::new(),
            time: "yesterday".into(),
            subject: None,
            partition_key: "k".into(),
            extensions: vec![("id".into(), "someone-else".into())],
            payload: Payload::Custom(b"{}".to_vec()),
        }]),
        Some("keyless") => Ok(vec![Event {
            id: "keyless-1".into(),
            source: "/t/acme/s/hk-001/p/web".into(),
            ty: "vendor.note.v1".into(),
            time: "2026-11-25T10:15:00+08:00".into(),
            subject: None,
            partition_key: String::new(),
            extensions: Vec::new(),
            payload: Payload::Custom(b"{}".to_vec()),
        }]),
        Some("unavailable") => Err(DecodeError::Unavailable(
            "secret `vendor-signing` is not granted to plugin `misbehaving`".into(),
        )),
        Some("loop") => loop {
            std::hint::black_box(&request);
        },
        _ => Ok(Vec::new()),
    }
}
