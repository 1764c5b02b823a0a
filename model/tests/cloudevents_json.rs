//! The CloudEvents 1.0 JSON event format, rule by rule: each case is a structured-mode event and
//! what the spec says of it, read as a producer's event would be (parse, then the envelope rules).
//! What is accepted comes back the same from its stored form.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use kaunter_model::{Defaults, Dialect, Event, Payload, validate};
use serde_json::{Value, json};

fn defaults() -> Defaults {
    Defaults {
        id: "01TEST".into(),
        now: "2026-11-25T00:00:00Z".into(),
    }
}

/// The required attributes, plus `extra` (a `null` value removes an attribute).
fn event(extra: Value) -> Value {
    let mut base = json!({
        "specversion": "1.0", "id": "ce-1", "source": "/t/acme/s/hk-001/p/till-1", "type": "acme.note.v1"
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

/// Reads `value` as a structured CloudEvent and applies the envelope rules.
fn read(value: Value) -> Result<Event, String> {
    let event = Event::from_json(value, Dialect::CloudEvents, &defaults()).map_err(|e| e.attribute)?;
    validate(&event).map_err(|errors| errors[0].attribute.clone())?;
    Ok(event)
}

/// Accepted, and the stored form reads back as the same event.
fn accepted(case: &str, value: Value) -> Event {
    let event = read(value).unwrap_or_else(|attribute| panic!("{case}: refused at `{attribute}`"));
    assert_eq!(
        Event::from_stored(&event.to_json_bytes()).unwrap(),
        event,
        "{case}: the stored form differs"
    );
    event
}

fn refused(case: &str, value: Value, attribute: &str) {
    match read(value) {
        Ok(event) => panic!("{case}: accepted {event:?}"),
        Err(at) => assert_eq!(at, attribute, "{case}"),
    }
}

/// Section 2 (attributes) and 3 (envelope): the required attributes, their types, `specversion`.
#[test]
fn required_context_attributes() {
    accepted("the four required attributes", event(json!({})));
    refused("no specversion", event(json!({"specversion": null})), "specversion");
    refused(
        "another specversion",
        event(json!({"specversion": "0.3"})),
        "specversion",
    );
    refused(
        "specversion as a number",
        event(json!({"specversion": 1.0})),
        "specversion",
    );
    refused("no id", event(json!({"id": null})), "id");
    refused("an empty id", event(json!({"id": ""})), "id");
    refused("an id that is not a string", event(json!({"id": 7})), "id");
    refused("no source", event(json!({"source": null})), "source");
    refused("an empty source", event(json!({"source": ""})), "source");
    refused("no type", event(json!({"type": null})), "type");
    refused("an empty type", event(json!({"type": ""})), "type");
}

/// Section 2.2: optional attributes have their types (`time` a timestamp, `subject` a string,
/// `dataschema` a URI, `datacontenttype` a media type).
#[test]
fn optional_context_attributes() {
    let e = accepted(
        "time, subject",
        event(json!({"time": "2026-11-25T10:15:00+08:00", "subject": "till-1"})),
    );
    assert_eq!(e.subject.as_deref(), Some("till-1"));
    refused(
        "a time that is not RFC 3339",
        event(json!({"time": "yesterday"})),
        "time",
    );
    refused(
        "a subject that is not a string",
        event(json!({"subject": 1})),
        "subject",
    );
    let e = accepted(
        "dataschema",
        event(json!({"dataschema": "https://schemas.example.com/note/v1"})),
    );
    assert_eq!(e.extension("dataschema"), Some("https://schemas.example.com/note/v1"));
    refused(
        "a relative dataschema",
        event(json!({"dataschema": "/note/v1"})),
        "dataschema",
    );
    refused("an empty dataschema", event(json!({"dataschema": ""})), "dataschema");
    refused(
        "a datacontenttype that is no media type",
        event(json!({"datacontenttype": "json"})),
        "datacontenttype",
    );
}

/// Section 2.2 and the core spec's naming rules: extension attributes are lower-case letters and
/// digits, at most 20, with string, integer or boolean values.
#[test]
fn extension_attributes() {
    let e = accepted(
        "string, boolean and integer extensions",
        event(json!({"traceparent": "00-abc-def-01", "sampled": true, "shard": 3})),
    );
    assert_eq!(e.extension("traceparent"), Some("00-abc-def-01"));
    assert_eq!(e.extension("sampled"), Some("true"));
    assert_eq!(e.extension("shard"), Some("3"));
    refused("an upper-case name", event(json!({"myExt": "x"})), "myExt");
    refused(
        "a name over 20 characters",
        event(json!({"abcdefghijklmnopqrstu": "x"})),
        "abcdefghijklmnopqrstu",
    );
    refused("an object value", event(json!({"ext": {"a": 1}})), "ext");
}

/// Section 3.1: JSON data is carried as JSON; other data as a string in `data` (text) or in
/// `data_base64` (binary), never both.
#[test]
fn handling_of_data() {
    let e = accepted("no data", event(json!({})));
    assert_eq!(e.to_json()["data"], Value::Null);
    for data in [json!({"a": 1}), json!([1, 2]), json!("text"), json!(42), json!(true)] {
        let e = accepted(
            "JSON data of any JSON type",
            event(json!({"datacontenttype": "application/json", "data": data})),
        );
        assert_eq!(e.to_json()["data"], data);
    }
    let e = accepted(
        "a +json type",
        event(json!({"datacontenttype": "application/vnd.acme+json", "data": {"a": 1}})),
    );
    assert_eq!(e.to_json()["data"], json!({"a": 1}));
    let e = accepted(
        "text data",
        event(json!({"datacontenttype": "text/plain", "data": "shelf 4"})),
    );
    assert_eq!(e.payload, Payload::Custom(b"shelf 4".to_vec()));
    assert_eq!(e.to_json()["datacontenttype"], "text/plain");
    let e = accepted(
        "binary data",
        event(json!({"datacontenttype": "image/png", "data_base64": "iVBORw=="})),
    );
    assert_eq!(e.payload, Payload::Custom(vec![0x89, b'P', b'N', b'G']));
    assert_eq!(e.to_json()["data_base64"], "iVBORw==");
    let e = accepted(
        "binary data without a content type",
        event(json!({"data_base64": "AAE="})),
    );
    assert_eq!(e.opaque_content_type(), Some("application/octet-stream"));
    let e = accepted(
        "JSON data sent as data_base64",
        event(json!({"datacontenttype": "application/json", "data_base64": "eyJhIjoxfQ=="})),
    );
    assert_eq!(e.to_json()["data"], json!({"a": 1}));
    refused(
        "data and data_base64",
        event(json!({"data": "x", "data_base64": "eA=="})),
        "data_base64",
    );
    refused(
        "data_base64 that is not base64",
        event(json!({"data_base64": "%%%"})),
        "data_base64",
    );
    refused(
        "data_base64 that is not a string",
        event(json!({"data_base64": [1]})),
        "data_base64",
    );
    refused(
        "structured data for a non-JSON type",
        event(json!({"datacontenttype": "text/plain", "data": {"a": 1}})),
        "data",
    );
}
