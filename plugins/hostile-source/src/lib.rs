//! TEST ONLY. A source that misbehaves as the webhook's `x-misbehave` header says: `trap` panics,
//! `invalid` returns an event that breaks the event rules (no type, a `time` that is not a
//! timestamp, an extension named `id`), `loop` never returns, `keyless` returns a valid event with
//! no partition key, `unavailable` says it cannot work until an operator acts; without the header
//! it returns nothing. Three speak for someone else: `claim-till` returns an event in a till's name
//! (`/t/acme/s/hk-001/p/till-1`, id `hk-001-till-sale-1`, a sale the till has not sent yet),
//! `claim-derived` one in the namespace of what plugin `restock` derives, `other-type` one of a
//! type its grants do not name; the host must refuse each (nothing stored).

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
        Some("claim-till") => Ok(vec![note(
            "hk-001-till-sale-1",
            "/t/acme/s/hk-001/p/till-1",
            "vendor.note.v1",
        )]),
        Some("claim-derived") => Ok(vec![note(
            "web-1:restock:4891234500017",
            "/t/acme/s/hk-001/p/web/x/restock",
            "vendor.note.v1",
        )]),
        Some("other-type") => Ok(vec![note("web-2", "/t/acme/s/hk-001/p/web", "vendor.order.v1")]),
        Some("unavailable") => Err(DecodeError::Unavailable(
            "secret `vendor-signing` is not granted to plugin `misbehaving`".into(),
        )),
        Some("loop") => loop {
            std::hint::black_box(&request);
        },
        _ => Ok(Vec::new()),
    }
}

/// A valid event with an empty custom payload.
fn note(id: &str, source: &str, ty: &str) -> Event {
    Event {
        id: id.into(),
        source: source.into(),
        ty: ty.into(),
        time: "2026-11-25T10:15:00+08:00".into(),
        subject: None,
        partition_key: String::new(),
        extensions: Vec::new(),
        payload: Payload::Custom(b"{}".to_vec()),
    }
}
