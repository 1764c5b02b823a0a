//! The event envelope (CloudEvents 1.0 attributes) and its one JSON form.

use crate::payload::{DataError, Payload};
use serde_json::{Map, Value};
use std::fmt;

/// The only CloudEvents `specversion` kaunter speaks.
pub const SPEC_VERSION: &str = "1.0";

/// An event: CloudEvents attributes plus a typed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique within `source`.
    pub id: String,
    /// Where it happened: `/t/{tenant}/s/{store}/p/{terminal}` for POS events.
    pub source: String,
    /// Event type, e.g. `pos.sale.completed.v1`.
    pub ty: String,
    /// When it happened, RFC 3339.
    pub time: String,
    /// What it is about.
    pub subject: Option<String>,
    /// Ordering key: events with equal keys are delivered in order.
    pub partition_key: String,
    /// Extension attributes, in name order.
    pub extensions: Vec<(String, String)>,
    /// The typed body.
    pub payload: Payload,
}

/// An event that breaks a rule: which attribute (or `data` path) and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The attribute, or `data.<path>` for a payload field.
    pub attribute: String,
    /// The rule it breaks, with how to fix it.
    pub rule: String,
}

impl EventError {
    /// An error on one attribute.
    pub fn new(attribute: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            attribute: attribute.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.attribute, self.rule)
    }
}

impl std::error::Error for EventError {}

impl From<DataError> for EventError {
    fn from(e: DataError) -> Self {
        let attribute = if e.path == "." {
            "data".to_owned()
        } else {
            format!("data.{}", e.path)
        };
        EventError {
            attribute,
            rule: e.message,
        }
    }
}

/// Whether `s` is an absolute URI: a scheme (RFC 3986: a letter, then letters, digits, `+`, `-`,
/// `.`), a colon and something after it, with no spaces or control characters.
pub(crate) fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Attributes kaunter reads itself; everything else is an extension.
pub(crate) const CONTEXT_ATTRIBUTES: [&str; 9] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "partitionkey",
];

/// How strictly to read the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A CloudEvent: `specversion` and `id` are required.
    CloudEvents,
    /// kaunter's canonical POS JSON: `specversion` optional, `id` and `time` filled in when absent.
    Canonical,
}

/// Values the host supplies when the producer left them out (canonical dialect).
#[derive(Debug, Clone)]
pub struct Defaults {
    /// A fresh id (ULID) to use when the event has none.
    pub id: String,
    /// The receive time (RFC 3339), used when the event has no `time`.
    pub now: String,
}

impl Event {
    /// Reads one event from its JSON object.
    pub fn from_json(value: Value, dialect: Dialect, defaults: &Defaults) -> Result<Event, EventError> {
        let Value::Object(mut object) = value else {
            return Err(EventError::new(".", "an event must be a JSON object"));
        };
        let mut attributes = Map::new();
        let data = object.remove("data");
        let data = match object.remove("data_base64") {
            None => EventData::Json(data),
            Some(_) if data.is_some() => {
                return Err(EventError::new(
                    "data_base64",
                    "an event carries `data` or `data_base64`, not both (CloudEvents JSON format)",
                ));
            }
            Some(Value::String(encoded)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| {
                        EventError::new("data_base64", format!("is not base64 (RFC 4648, with padding): {e}"))
                    })?;
                EventData::Bytes(bytes)
            }
            Some(other) => {
                return Err(EventError::new(
                    "data_base64",
                    format!("must be a base64 string, got {}", kind_of(&other)),
                ));
            }
        };
        for (name, value) in object {
            attributes.insert(name, value);
        }
        Event::assemble(attributes, data, dialect, defaults)
    }

    /// Builds an event from its attributes (binary mode: from `ce-*` headers) and its data as the
    /// raw bytes of the request body, in its `datacontenttype` (which must not be JSON; JSON data
    /// goes through [`Event::from_attributes`]).
    pub fn from_attributes_and_bytes(
        attributes: Map<String, Value>,
        bytes: Vec<u8>,
        dialect: Dialect,
        defaults: &Defaults,
    ) -> Result<Event, EventError> {
        Event::assemble(attributes, EventData::Bytes(bytes), dialect, defaults)
    }

    /// Builds an event from its attributes (as JSON values) and its `data`. Binary-mode
    /// CloudEvents arrive this way, with attributes read from `ce-*` headers.
    pub fn from_attributes(
        attributes: Map<String, Value>,
        data: Option<Value>,
        dialect: Dialect,
        defaults: &Defaults,
    ) -> Result<Event, EventError> {
        Event::assemble(attributes, EventData::Json(data), dialect, defaults)
    }

    fn assemble(
        mut attributes: Map<String, Value>,
        data: EventData,
        dialect: Dialect,
        defaults: &Defaults,
    ) -> Result<Event, EventError> {
        let mut data_json: Option<Value> = None;
        match attributes.remove("specversion") {
            Some(Value::String(v)) if v == SPEC_VERSION => {}
            Some(other) => {
                return Err(EventError::new("specversion", format!("must be \"1.0\", got {other}")));
            }
            None if dialect == Dialect::CloudEvents => {
                return Err(EventError::new("specversion", "is required and must be \"1.0\""));
            }
            None => {}
        }
        let id = match take_string(&mut attributes, "id")? {
            Some(id) => id,
            None if dialect == Dialect::Canonical => defaults.id.clone(),
            None => return Err(EventError::new("id", "is required: a non-empty string")),
        };
        let source = take_string(&mut attributes, "source")?.ok_or_else(|| {
            EventError::new(
                "source",
                "is required: a URI-reference such as /t/acme/s/hk-001/p/till-1",
            )
        })?;
        if source.contains(char::is_whitespace) {
            return Err(EventError::new("source", "must be a URI-reference without spaces"));
        }
        let ty = take_string(&mut attributes, "type")?
            .ok_or_else(|| EventError::new("type", "is required: e.g. pos.sale.completed.v1"))?;
        let time = take_string(&mut attributes, "time")?.unwrap_or_else(|| defaults.now.clone());
        let subject = take_string(&mut attributes, "subject")?;
        let partition_key = take_string(&mut attributes, "partitionkey")?;
        let content_type = take_string(&mut attributes, "datacontenttype")?;
        if let Some(ct) = &content_type
            && !is_media_type(ct)
        {
            return Err(EventError::new(
                "datacontenttype",
                format!("`{ct}` is not a media type such as application/json or text/plain (RFC 2046)"),
            ));
        }
        // Data in any other content type is carried as it came: its bytes, with the type.
        let opaque = match (content_type, data) {
            (Some(ct), data) if !is_json_content_type(&ct) => match data {
                EventData::Bytes(bytes) => Some((ct, bytes)),
                EventData::Json(None) => Some((ct, Vec::new())),
                EventData::Json(Some(Value::String(text))) => Some((ct, text.into_bytes())),
                EventData::Json(Some(other)) => {
                    return Err(EventError::new(
                        "data",
                        format!(
                            "is {} but datacontenttype `{ct}` is not JSON: send the data as a string in `data`, or base64 in `data_base64`",
                            kind_of(&other)
                        ),
                    ));
                }
            },
            (None, EventData::Bytes(bytes)) => Some(("application/octet-stream".to_owned(), bytes)),
            (_, EventData::Bytes(bytes)) => {
                let value = serde_json::from_slice(&bytes).map_err(|e| {
                    EventError::new(
                        "data_base64",
                        format!("the datacontenttype is JSON, but the decoded data is not: {e}"),
                    )
                })?;
                data_json = Some(value);
                None
            }
            (_, EventData::Json(value)) => {
                data_json = value;
                None
            }
        };
        let data_schema = take_string(&mut attributes, "dataschema")?;
        if let Some(schema) = &data_schema
            && !is_absolute_uri(schema)
        {
            return Err(EventError::new(
                "dataschema",
                "must be a non-empty absolute URI such as https://schemas.example.com/sale/v1 (CloudEvents 1.0)",
            ));
        }
        let mut extensions = Vec::with_capacity(attributes.len() + 2);
        // Carried as they came (written back as the `dataschema` and `datacontenttype` attributes).
        extensions.extend(data_schema.map(|schema| ("dataschema".to_owned(), schema)));
        if let Some((ct, _)) = &opaque {
            extensions.push(("datacontenttype".to_owned(), ct.clone()));
        }
        for (name, value) in attributes {
            if !is_attribute_name(&name) {
                return Err(EventError::new(
                    name,
                    "attribute names must be 1-20 lower-case letters or digits (CloudEvents 1.0)",
                ));
            }
            let value = match value {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) if n.is_i64() => n.to_string(),
                _ => {
                    return Err(EventError::new(
                        name,
                        "extension attributes must be strings, integers or booleans",
                    ));
                }
            };
            extensions.push((name, value));
        }
        let payload = match opaque {
            Some((ct, bytes)) => {
                if is_modelled_type(&ty) {
                    return Err(EventError::new(
                        "datacontenttype",
                        format!("`{ty}` events carry JSON data (application/json), not `{ct}`"),
                    ));
                }
                Payload::Custom(bytes)
            }
            None => Payload::from_json(&ty, data_json.unwrap_or(Value::Null))?,
        };
        let mut event = Event {
            id,
            source,
            ty,
            time,
            subject,
            partition_key: String::new(),
            extensions,
            payload,
        };
        event.partition_key = partition_key.unwrap_or_else(|| event.default_partition_key());
        Ok(event)
    }

    /// The event as a structured-mode CloudEvent (the form kaunter stores and sends), as a value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The event as structured-mode CloudEvent JSON bytes, written directly (no value tree).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serialising strings, integers and well-formed payload records into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads back what [`Event::to_json`] wrote (stored events; trusted, already validated).
    pub fn from_stored(bytes: &[u8]) -> Result<Event, EventError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| EventError::new(".", format!("stored event is not JSON: {e}")))?;
        let defaults = Defaults {
            id: String::new(),
            now: String::new(),
        };
        Event::from_json(value, Dialect::CloudEvents, &defaults)
    }

    /// The tenant named in a POS source (`/t/{tenant}/...`).
    pub fn tenant(&self) -> Option<&str> {
        source_segment(&self.source, "t")
    }

    /// The store named in a POS source (`.../s/{store}/...`).
    pub fn store(&self) -> Option<&str> {
        source_segment(&self.source, "s")
    }

    /// The plugin that derived this event: the last `/x/{plugin}` segment of its source (see
    /// [`derived_source`]); `None` for an event from a till or a source plugin.
    pub fn derived_by(&self) -> Option<&str> {
        derived_by(&self.source)
    }

    /// The order this event is about, if its payload names one.
    pub fn order_id(&self) -> Option<&str> {
        match &self.payload {
            Payload::Sale(s) => Some(&s.order_id),
            Payload::Refund(r) => Some(&r.original_order_id),
            Payload::VoidSale(v) => Some(&v.order_id),
            Payload::PaymentSettled(p) => Some(&p.order_id),
            Payload::StockAdjusted(s) => Some(&s.sku),
            Payload::RestockSuggested(r) => Some(&r.sku),
            Payload::MemberUpdated(m) => Some(&m.member_id),
            _ => None,
        }
    }

    /// `{store}:{order}` when both are known, else the subject, else the id.
    pub fn default_partition_key(&self) -> String {
        let store = self.store().unwrap_or(self.source.as_str());
        match (self.order_id(), &self.subject) {
            (Some(order), _) => format!("{store}:{order}"),
            (None, Some(subject)) => format!("{store}:{subject}"),
            (None, None) => format!("{store}:{}", self.id),
        }
    }

    /// Keeps the partition key inside the event's own store (or, without a store, its source):
    /// a key that is not `{store}` or `{store}:…` gets `{store}:` put in front. A caller can
    /// therefore order its own events as it likes, but never join (and hold up) another store's
    /// ordering lane, e.g. `hk-002:A-1` sent for hk-001 becomes `hk-001:hk-002:A-1`.
    pub fn scope_partition_key(&mut self) {
        let scope = self.store().unwrap_or(self.source.as_str());
        let inside = self
            .partition_key
            .strip_prefix(scope)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'));
        if !inside {
            self.partition_key = format!("{scope}:{}", self.partition_key);
        }
    }

    /// The value of an extension attribute.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The content type of data that is not JSON (`text/plain`, `application/octet-stream`, …),
    /// carried as the raw bytes of a `Custom` payload; `None` for JSON data.
    pub fn opaque_content_type(&self) -> Option<&str> {
        self.extension("datacontenttype").filter(|ct| !is_json_content_type(ct))
    }
}

impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("specversion", SPEC_VERSION)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("source", &self.source)?;
        map.serialize_entry("type", &self.ty)?;
        map.serialize_entry("time", &self.time)?;
        if let Some(subject) = &self.subject {
            map.serialize_entry("subject", subject)?;
        }
        map.serialize_entry("partitionkey", &self.partition_key)?;
        for (name, value) in &self.extensions {
            map.serialize_entry(name, value)?;
        }
        match (self.opaque_content_type(), &self.payload) {
            // Other content types: text as a string in `data`, anything else base64 in
            // `data_base64` (CloudEvents JSON format, section 3.1).
            (Some(_), Payload::Custom(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => map.serialize_entry("data", text)?,
                Err(_) => {
                    use base64::Engine as _;
                    map.serialize_entry("data_base64", &base64::engine::general_purpose::STANDARD.encode(bytes))?
                }
            },
            (Some(_), payload) => map.serialize_entry("data", payload)?,
            (None, payload) => {
                if self.extension("datacontenttype").is_none() {
                    map.serialize_entry("datacontenttype", "application/json")?;
                }
                map.serialize_entry("data", payload)?;
            }
        }
        map.end()
    }
}

fn take_string(attributes: &mut Map<String, Value>, name: &str) -> Result<Option<String>, EventError> {
    match attributes.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(EventError::new(name, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(EventError::new(name, format!("must be a string, got {other}"))),
    }
}

/// The key of the source segment that marks a derived event's namespace: `/x/{plugin}`.
pub const DERIVED_KEY: &str = "x";

/// The source of an event that plugin `plugin` derived from an event with source `parent`: the
/// parent's source with `/x/{plugin}` added, e.g. `/t/acme/s/hk-001/p/till-1/x/restock`.
///
/// Segments pair up as key and value, so adding a pair leaves the tenant and store where they
/// were. A parent whose segments do not pair up (`/shopify`) first gets an empty value
/// (`/shopify//x/restock`), so that `x` is always read as a key. Since no till or source plugin
/// may use the `x` key ([`derived_by`]), a derived event's `(source, id)` never collides with
/// theirs, nor with what another plugin derives.
pub fn derived_source(parent: &str, plugin: &str) -> String {
    let parent = parent.trim_end_matches('/');
    let segments = parent.split('/').skip_while(|p| p.is_empty()).count();
    let pad = if segments % 2 == 1 { "/" } else { "" };
    format!("{parent}{pad}/{DERIVED_KEY}/{plugin}")
}

/// How the ids of the host's own alerts (`kaunter.alert.v1` raised by the monitor) begin. No till,
/// source or plugin may use it ([`crate::validate`] refuses it), so work on a host alert is told
/// apart by its id alone.
pub const HOST_ALERT_ID_PREFIX: &str = "kaunter-alert:";

/// The source of the host's own alerts.
pub const HOST_ALERT_SOURCE: &str = "/kaunter/host";

/// Why an event from outside the host (a till, a source plugin) may not be taken: its source is
/// the host's own ([`HOST_ALERT_SOURCE`], where only the host's alerts come from).
pub fn reserved_for_host(event: &Event) -> Option<String> {
    let own = event.source == HOST_ALERT_SOURCE || event.source.starts_with(&format!("{HOST_ALERT_SOURCE}/"));
    own.then(|| {
        format!(
            "`{}` is reserved for the host's own alerts; events from tills and sources name their store (/t/{{tenant}}/s/{{store}}/p/{{terminal}})",
            event.source
        )
    })
}

/// Whether `event_id` is one of the host's own alerts.
pub fn is_host_alert(event_id: &str) -> bool {
    event_id.starts_with(HOST_ALERT_ID_PREFIX)
}

/// The plugin named by the last `/x/{plugin}` pair of `source`, if any. A source whose last
/// segment is a lone `x` key counts too (as the empty name): it is in the derived namespace.
pub fn derived_by(source: &str) -> Option<&str> {
    let mut parts = source.split('/').skip_while(|p| p.is_empty());
    let mut found = None;
    while let Some(key) = parts.next() {
        let value = parts.next();
        if key == DERIVED_KEY {
            found = Some(value.unwrap_or(""));
        }
    }
    found
}

/// The store a source names (`/t/{tenant}/s/{store}/…`), as [`Event::store`] reads it.
pub fn store_of(source: &str) -> Option<&str> {
    source_segment(source, "s")
}

fn source_segment<'a>(source: &'a str, key: &str) -> Option<&'a str> {
    let mut parts = source.split('/').skip_while(|p| p.is_empty());
    while let Some(part) = parts.next() {
        let value = parts.next()?;
        if part == key {
            return Some(value);
        }
    }
    None
}

/// `application/json`, `text/json` or any `+json` type, parameters ignored.
pub fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// The data of an event as it arrived: JSON (`data`), or bytes (`data_base64`, a binary-mode body).
enum EventData {
    Json(Option<Value>),
    Bytes(Vec<u8>),
}

/// `type/subtype` with optional parameters (RFC 2046), as far as kaunter needs to tell.
pub(crate) fn is_media_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or("").trim();
    let mut parts = essence.splitn(2, '/');
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!((parts.next(), parts.next()), (Some(a), Some(b)) if token(a) && token(b))
}

/// Whether kaunter models the data of this event type (the `pos.*` and alert records).
fn is_modelled_type(ty: &str) -> bool {
    !matches!(Payload::from_json(ty, Value::Null), Ok(Payload::Custom(_)))
}

/// A JSON value's kind, for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 20
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !CONTEXT_ATTRIBUTES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            id: "01DEFAULT".into(),
            now: "2026-11-25T10:00:00+08:00".into(),
        }
    }

    /// CloudEvents JSON format, section 3.1: data in another content type is carried as it came,
    /// text as a string in `data` and other bytes as `data_base64`, and comes back the same.
    #[test]
    fn data_of_any_content_type_is_carried_and_round_trips() {
        let read = |value: Value| Event::from_json(value, Dialect::CloudEvents, &defaults());
        let base = || serde_json::json!({"specversion": "1.0", "id": "1", "source": "/x", "type": "acme.note.v1"});
        let mut text = base();
        text["datacontenttype"] = "text/plain; charset=utf-8".into();
        text["data"] = "restock shelf 4".into();
        let event = read(text).unwrap();
        assert_eq!(event.payload, Payload::Custom(b"restock shelf 4".to_vec()));
        assert_eq!(event.opaque_content_type(), Some("text/plain; charset=utf-8"));
        let stored = event.to_json();
        assert_eq!(
            (stored["data"].as_str(), stored.get("data_base64")),
            (Some("restock shelf 4"), None)
        );
        assert_eq!(Event::from_stored(&event.to_json_bytes()).unwrap(), event);

        let mut binary = base();
        binary["data_base64"] = "AAEC/w==".into();
        let event = read(binary).unwrap();
        assert_eq!(event.payload, Payload::Custom(vec![0, 1, 2, 255]));
        assert_eq!(event.opaque_content_type(), Some("application/octet-stream"));
        assert_eq!(event.to_json()["data_base64"], "AAEC/w==");
        assert_eq!(Event::from_stored(&event.to_json_bytes()).unwrap(), event);

        let mut json_in_base64 = base();
        json_in_base64["datacontenttype"] = "application/json".into();
        json_in_base64["data_base64"] = "eyJhIjoxfQ==".into();
        assert_eq!(
            read(json_in_base64).unwrap().to_json()["data"],
            serde_json::json!({"a": 1})
        );

        let refused = |value: Value| read(value).unwrap_err();
        let mut both = base();
        both["data"] = "x".into();
        both["data_base64"] = "eA==".into();
        assert_eq!(refused(both).attribute, "data_base64");
        let mut bad = base();
        bad["data_base64"] = "not base64!".into();
        assert!(refused(bad).rule.contains("is not base64"));
        let mut object_as_text = base();
        object_as_text["datacontenttype"] = "text/plain".into();
        object_as_text["data"] = serde_json::json!({"a": 1});
        assert!(
            refused(object_as_text)
                .rule
                .contains("send the data as a string in `data`, or base64")
        );
        let mut sale_as_text = base();
        sale_as_text["type"] = "pos.sale.completed.v1".into();
        sale_as_text["datacontenttype"] = "text/csv".into();
        sale_as_text["data"] = "a,b".into();
        assert!(refused(sale_as_text).rule.contains("carry JSON data"));
        let mut not_a_type = base();
        not_a_type["datacontenttype"] = "plain".into();
        assert_eq!(refused(not_a_type).attribute, "datacontenttype");
    }

    #[test]
    fn store_and_tenant_come_from_the_source() {
        let value = serde_json::json!({
            "source": "/t/acme/s/hk-001/p/till-1", "type": "x.custom", "data": {"a": 1}
        });
        let event = Event::from_json(value, Dialect::Canonical, &defaults()).unwrap();
        assert_eq!(event.tenant(), Some("acme"));
        assert_eq!(event.store(), Some("hk-001"));
        assert_eq!(event.id, "01DEFAULT");
        assert_eq!(event.partition_key, "hk-001:01DEFAULT");
    }

    #[test]
    fn a_derived_source_keeps_the_store_and_names_the_plugin() {
        let mut event = Event::from_json(
            serde_json::json!({"source": "/t/acme/s/hk-001/p/till-1", "type": "x.custom", "data": {}}),
            Dialect::Canonical,
            &defaults(),
        )
        .unwrap();
        assert_eq!(event.derived_by(), None);
        event.source = derived_source(&event.source, "loyalty");
        assert_eq!(event.source, "/t/acme/s/hk-001/p/till-1/x/loyalty");
        assert_eq!((event.tenant(), event.store()), (Some("acme"), Some("hk-001")));
        assert_eq!(event.derived_by(), Some("loyalty"));
        event.source = derived_source(&format!("{}/", event.source), "redact");
        assert_eq!(event.source, "/t/acme/s/hk-001/p/till-1/x/loyalty/x/redact");
        assert_eq!((event.store(), event.derived_by()), (Some("hk-001"), Some("redact")));
        // A store called `x` is a value, not the key; a lone trailing `x` key is in the namespace.
        assert_eq!(derived_by("/t/acme/s/x/p/till-1"), None);
        assert_eq!(derived_by("/t/acme/s/hk-001/x"), Some(""));
        assert_eq!(derived_by("/shopify/x/loyalty/p/web"), None);
    }

    /// Whatever the parent's shape, the derived source is in the namespace of the plugin and
    /// keeps the parent's tenant and store (as routes read them: none is the empty store).
    #[test]
    fn a_derived_source_never_moves_to_another_store() {
        for parent in [
            "/t/acme/s/hk-001/p/till-1",
            "/t/acme/s/hk-001/p/till-1/",
            "/t/acme/s/hk-001",
            "/t/acme/s",
            "/t/acme//s/hk-001",
            "/shopify",
            "shopify/orders",
            "/",
            "",
            "/t/acme/s/hk-001/p/till-1/x/loyalty",
        ] {
            let derived = derived_source(parent, "restock");
            assert_eq!(derived_by(&derived), Some("restock"), "{parent} -> {derived}");
            for key in ["t", "s"] {
                assert_eq!(
                    source_segment(parent, key).unwrap_or(""),
                    source_segment(&derived, key).unwrap_or(""),
                    "{parent} -> {derived}"
                );
            }
        }
        assert_eq!(derived_source("/shopify", "restock"), "/shopify//x/restock");
    }

    #[test]
    fn cloudevents_need_specversion_and_id() {
        let value = serde_json::json!({"source": "/x", "type": "t", "id": "1"});
        let err = Event::from_json(value, Dialect::CloudEvents, &defaults()).unwrap_err();
        assert_eq!(err.attribute, "specversion");
        let value = serde_json::json!({"specversion": "1.0", "source": "/x", "type": "t"});
        let err = Event::from_json(value, Dialect::CloudEvents, &defaults()).unwrap_err();
        assert_eq!(err.attribute, "id");
    }

    #[test]
    fn bad_extension_names_are_named() {
        let value = serde_json::json!({"specversion": "1.0", "id": "1", "source": "/x", "type": "t", "Bad_Name": "v"});
        let err = Event::from_json(value, Dialect::CloudEvents, &defaults()).unwrap_err();
        assert_eq!(err.attribute, "Bad_Name");
    }

    #[test]
    fn stored_form_round_trips() {
        let value = serde_json::json!({
            "specversion": "1.0", "id": "1", "source": "/t/a/s/b/p/c", "type": "x.y",
            "traceparent": "00-abc", "data": {"k": [1, 2]}
        });
        let event = Event::from_json(value, Dialect::CloudEvents, &defaults()).unwrap();
        let again = Event::from_stored(event.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(event, again);
    }
}
