//! `kaunter-sdk`: write kaunter plugins in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2`. This crate generates the guest
//! bindings for the `kaunter:plugin` worlds (once, here), converts them to the typed event model
//! ([`Event`], [`Payload`], [`Money`], ...) and wraps the host imports in plain functions.
//!
//! A transform is a function marked `#[kaunter_sdk::transform]`:
//!
//! ```no_run
//! use kaunter_sdk::{Event, PluginError};
//!
//! #[kaunter_sdk::transform]
//! fn handle(mut event: Event) -> Result<Event, PluginError> {
//!     event.extensions.push(("checked".into(), "yes".into()));
//!     Ok(event)
//! }
//! ```
//!
//! It may return `Event`, `Option<Event>` (`None` drops the event) or `Vec<Event>` (split, or
//! derive new events). A connector is a function marked `#[kaunter_sdk::connector]`, taking the
//! event and its [`DeliveryContext`] and returning a [`Receipt`] or a [`DeliveryError`]; it
//! reaches the network with [`http`], which speaks standard `wasi:http` and so passes the host's
//! egress checkpoint:
//!
//! ```no_run
//! use kaunter_sdk::{DeliveryContext, DeliveryError, Event, Receipt, host, http};
//!
//! #[kaunter_sdk::connector]
//! fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
//!     let request = http::Request::post_json("http://erp.example/orders", &event)
//!         .map_err(|e| DeliveryError::Rejected(e.to_string()))?
//!         .header("idempotency-key", &context.idempotency_key);
//!     http::delivery_outcome(http::send(&request), host::now_ms())
//! }
//! ```
//! A source is a function marked `#[kaunter_sdk::source]`, turning one inbound webhook (served by
//! the host at `/v1/webhooks/{source}`) into events; it checks the vendor's signature with
//! [`host::verify_hmac_sha256`], so the webhook secret never enters the plugin:
//!
//! ```no_run
//! use kaunter_sdk::{DecodeError, Event, WebhookRequest, host};
//!
//! #[kaunter_sdk::source]
//! fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError> {
//!     let mac = request.header("x-signature").unwrap_or_default();
//!     let mac = kaunter_sdk::hex_decode(mac).ok_or_else(|| DecodeError::Unauthorized("bad signature".into()))?;
//!     match host::verify_hmac_sha256("vendor", &request.body, &mac) {
//!         Ok(true) => Ok(Vec::new()),
//!         _ => Err(DecodeError::Unauthorized("signature does not match".into())),
//!     }
//! }
//! ```
//!
//! The functions stay ordinary Rust functions, so plugin logic is unit-tested
//! natively with `cargo test`. (The traits [`Transform`] and [`Connector`] with
//! [`export_transform!`] and [`export_connector!`] are the same thing spelled out.)

pub mod alerts;
pub mod bindings;
pub mod documents;
pub mod host;
pub mod http;
pub mod testing;
pub mod webhooks;

pub use bindings::{DecodeError, DeliveryContext, DeliveryError, PluginError, Receipt, RetryHint, WebhookRequest};
pub use host::PluginConfig;
pub use kaunter_model::*;
pub use kaunter_sdk_macros::{connector, source, transform};

/// What a `#[transform]` function may return (inside `Ok`): the events to pass on.
pub trait IntoEvents {
    /// The events, in order.
    fn into_events(self) -> Vec<Event>;
}

impl IntoEvents for Vec<Event> {
    fn into_events(self) -> Vec<Event> {
        self
    }
}

impl IntoEvents for Event {
    fn into_events(self) -> Vec<Event> {
        vec![self]
    }
}

impl IntoEvents for Option<Event> {
    fn into_events(self) -> Vec<Event> {
        self.into_iter().collect()
    }
}

/// A transform: reshape one event into zero or more events.
pub trait Transform {
    /// Handles one event. Return it (changed or not) to pass it on, nothing to drop it, several to
    /// split it or to derive new events (give derived events their own `id`).
    fn handle(event: Event) -> Result<Vec<Event>, PluginError>;
}

/// A connector: deliver one event to an external system.
pub trait Connector {
    /// Delivers one event. Forward `context.idempotency_key` to the target so retries are harmless.
    fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError>;
}

/// A source: turn one inbound webhook into zero or more events.
pub trait Source {
    /// Decodes one webhook. Check its signature first; answer [`DecodeError::Unauthorized`] when
    /// it does not match and [`DecodeError::Malformed`] when the body is not what the vendor
    /// documents. Give each event a stable `id` read from content the signature covers (the
    /// object id in the signed body), never from an unsigned header, so a webhook sent twice, or
    /// replayed with fresh headers, is stored once.
    fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError>;
}

impl WebhookRequest {
    /// First value of a header (name case-insensitive; the host gives names lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, or [`DecodeError::Malformed`] saying why not.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| DecodeError::Malformed(format!("the body is not the JSON this source expects: {e}")))
    }
}

/// Lower-case hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string (either case); `None` when it is not hex.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Exports a type implementing [`Transform`] as the component's `transform` world.
#[macro_export]
macro_rules! export_transform {
    ($ty:ident) => {
        impl $crate::bindings::transform::Guest for $ty {
            fn handle(
                event: $crate::bindings::types::Event,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::bindings::types::Event>, $crate::PluginError> {
                <$ty as $crate::Transform>::handle(event.into())
                    .map(|events| events.into_iter().map(::core::convert::Into::into).collect())
            }
        }
        $crate::bindings::transform::__export_transform_world!($ty with_types_in $crate::bindings::transform);
    };
}

/// Exports a type implementing [`Connector`] as the component's `connector` world.
#[macro_export]
macro_rules! export_connector {
    ($ty:ident) => {
        impl $crate::bindings::connector::Guest for $ty {
            fn deliver(
                event: $crate::bindings::types::Event,
                context: $crate::DeliveryContext,
            ) -> ::core::result::Result<$crate::Receipt, $crate::DeliveryError> {
                <$ty as $crate::Connector>::deliver(event.into(), context)
            }
        }
        $crate::bindings::connector::__export_connector_world!($ty with_types_in $crate::bindings::connector);
    };
}

/// Exports a type implementing [`Source`] as the component's `source` world.
#[macro_export]
macro_rules! export_source {
    ($ty:ident) => {
        impl $crate::bindings::source::Guest for $ty {
            fn decode(
                request: $crate::WebhookRequest,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::bindings::types::Event>, $crate::DecodeError> {
                <$ty as $crate::Source>::decode(request)
                    .map(|events| events.into_iter().map(::core::convert::Into::into).collect())
            }
        }
        $crate::bindings::source::__export_source_world!($ty with_types_in $crate::bindings::source);
    };
}

/// Embeds the plugin's manifest (what it requests: HTTP destinations, secrets, limits) in the
/// component, as the custom section `kaunter-manifest`, so the request travels with the binary
/// and is covered by its digest. Give the path of a TOML file relative to the calling source file.
///
/// ```ignore
/// kaunter_sdk::manifest!("../kaunter-plugin.toml");
/// ```
#[macro_export]
macro_rules! manifest {
    ($path:literal) => {
        #[used]
        #[unsafe(link_section = "kaunter-manifest")]
        static KAUNTER_MANIFEST: [u8; include_bytes!($path).len()] = *include_bytes!($path);
    };
}
