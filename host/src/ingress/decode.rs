//! Reading events from a request: canonical POS JSON (one or an array), CloudEvents structured,
//! batch and binary modes. Every event is parsed, then checked against the business rules (and
//! kept out of the namespace of derived events); any broken rule rejects the whole request with
//! every problem listed.

use super::error::ApiError;
use axum::http::{HeaderMap, StatusCode, header};
use kaunter_model::{Defaults, Dialect, Event, EventError};
use serde_json::{Map, Value};

/// The supported request bodies, for 415 answers.
const SUPPORTED: &str = "application/json (canonical POS events, or a CloudEvent in binary mode with ce-* headers), \
application/cloudevents+json, application/cloudevents-batch+json";

/// Events read from one request, and whether it was a batch.
pub struct Decoded {
    /// The events, in request order.
    pub events: Vec<Event>,
    /// Whether the request held a list (answers list one result per event).
    pub batch: bool,
}

/// Reads and validates the events of a `POST /v1/events`.
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Decoded, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let binary = headers.contains_key("ce-specversion");
    let (events, batch) = if binary {
        (vec![binary_mode(headers, &content_type, body)?], false)
    } else if essence == "application/cloudevents+json" {
        (vec![one(parse_json(body)?, Dialect::CloudEvents, None)?], false)
    } else if essence == "application/cloudevents-batch+json" {
        match parse_json(body)? {
            Value::Array(items) => (many(items, Dialect::CloudEvents)?, true),
            _ => {
                return Err(ApiError::bad_request(
                    "a CloudEvents batch must be a JSON array of events",
                ));
            }
        }
    } else if essence == "application/json" {
        match parse_json(body)? {
            Value::Array(items) => (many(items, Dialect::Canonical)?, true),
            value => (vec![one(value, Dialect::Canonical, None)?], false),
        }
    } else if essence.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("missing Content-Type; send one of: {SUPPORTED}"),
        ));
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type `{content_type}` is not accepted; send one of: {SUPPORTED}"),
        ));
    };
    check_rules(&events, batch)?;
    Ok(Decoded { events, batch })
}

fn defaults() -> Defaults {
    Defaults {
        id: ulid::Ulid::new().to_string(),
        now: chrono::Utc::now().to_rfc3339(),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    use serde::de::DeserializeSeed as _;
    if let Some((at, literal)) = inexact_integer(body) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "the integer `{literal}` at byte {at} does not fit in 64 bits, so it cannot be kept exactly; send it as a string"
            ),
        ));
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    StrictJson
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!(
                    "the body is not valid JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })
}

fn one(value: Value, dialect: Dialect, index: Option<usize>) -> Result<Event, ApiError> {
    Event::from_json(value, dialect, &defaults()).map_err(|e| ApiError::invalid_events(vec![(index, e)]))
}

fn many(items: Vec<Value>, dialect: Dialect) -> Result<Vec<Event>, ApiError> {
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match Event::from_json(item, dialect, &defaults()) {
            Ok(e) => events.push(e),
            Err(e) => errors.push((Some(i), e)),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(ApiError::invalid_events(errors))
    }
}

/// Business rules and the time format, for every event; all problems reported at once.
fn check_rules(events: &[Event], batch: bool) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let index = batch.then_some(i);
        if let Err(broken) = kaunter_model::validate(event) {
            errors.extend(broken.into_iter().map(|e| (index, e)));
        }
        if let Some(rule) = kaunter_model::reserved_for_host(event) {
            errors.push((index, EventError::new("source", rule)));
        }
        if event.derived_by().is_some() {
            errors.push((
                index,
                EventError::new(
                    "source",
                    format!(
                        "`{}` has an `/{}/…` segment, which is kept for events plugins derive; a till's source may not have one",
                        event.source,
                        kaunter_model::DERIVED_KEY
                    ),
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_events(errors))
    }
}

/// The first integer literal in a JSON text that does not fit in 64 bits (a JSON reader would keep
/// it only as an approximate float), with its byte offset; bounded to 80 characters. Integers
/// within 64 bits are kept exactly throughout; fractions and exponents are numbers, not ids.
fn inexact_integer(body: &[u8]) -> Option<(usize, String)> {
    let (mut i, mut in_string) = (0, false);
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < body.len() && matches!(body[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                i += 1;
            }
            let token = &body[start..i];
            let integer = !token.iter().any(|c| matches!(c, b'.' | b'e' | b'E'));
            if integer {
                let text = String::from_utf8_lossy(token);
                if text.parse::<i64>().is_err() && text.parse::<u64>().is_err() && text != "-" {
                    return Some((start, text.chars().take(80).collect()));
                }
            }
            continue;
        }
        i += 1;
    }
    None
}

/// A binary-mode CloudEvent: attributes in `ce-*` headers, `data` is the body.
fn binary_mode(headers: &HeaderMap, content_type: &str, body: &[u8]) -> Result<Event, ApiError> {
    let mut attributes = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let value = value.to_str().map_err(|_| {
            ApiError::invalid_events(vec![(
                None,
                EventError::new(
                    attribute,
                    "header value must be ASCII (percent-encode other characters)",
                ),
            )])
        })?;
        attributes.insert(attribute.to_owned(), Value::String(percent_decode(value)));
    }
    if !content_type.is_empty() {
        attributes.insert("datacontenttype".into(), Value::String(content_type.to_owned()));
    }
    // The body is the data: parsed when JSON, else carried as its bytes in its content type.
    let event = if content_type.is_empty() || kaunter_model::is_json_content_type(content_type) {
        let data = if body.is_empty() { None } else { Some(parse_json(body)?) };
        Event::from_attributes(attributes, data, Dialect::CloudEvents, &defaults())
    } else {
        Event::from_attributes_and_bytes(attributes, body.to_vec(), Dialect::CloudEvents, &defaults())
    };
    event.map_err(|e| ApiError::invalid_events(vec![(None, e)]))
}

/// JSON read into a [`Value`] as `serde_json` does, except that an object with the same key twice
/// is refused (which of the two a reader keeps differs between parsers, so it is ambiguous).
struct StrictJson;

impl<'de> serde::de::DeserializeSeed<'de> for StrictJson {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictJson {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(StrictJson)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictJson)?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{}` appears twice in one object",
                    key.chars().take(64).collect::<String>()
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Decodes `%XX` escapes (CloudEvents HTTP binding, section 3.1.3.2).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_64_bits_are_found_outside_strings_only() {
        assert_eq!(
            inexact_integer(br#"{"a": 18446744073709551615, "b": -9223372036854775808}"#),
            None
        );
        assert_eq!(
            inexact_integer(br#"{"a": 1.5e300, "b": "123456789012345678901234567890"}"#),
            None
        );
        assert_eq!(
            inexact_integer(br#"{"s": "x\"1", "n": 99999999999999999999}"#),
            Some((19, "99999999999999999999".into()))
        );
        assert_eq!(
            inexact_integer(b"[-18446744073709551617]"),
            Some((1, "-18446744073709551617".into()))
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
