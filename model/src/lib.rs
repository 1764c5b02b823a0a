//! The canonical POS event model: the Rust twin of `wit/types.wit`.
//!
//! This crate owns the one JSON shape of an event (CloudEvents 1.0 structured mode with a typed
//! `data`), its parsing with field-precise errors, and the business rules every event must meet
//! before the host acknowledges it. It is shared by the host (native) and the plugin SDK (Wasm),
//! so it must stay free of I/O, clocks and randomness.
//!
//! [`wit_conversions!`] generates the `From` impls between these types and the types that a
//! `bindgen!` (host) or `wit_bindgen::generate!` (guest) produced from the same WIT.

mod convert;
mod envelope;
mod money;
mod payload;
mod validate;

pub use envelope::{
    DERIVED_KEY, Defaults, Dialect, Event, EventError, HOST_ALERT_ID_PREFIX, HOST_ALERT_SOURCE, SPEC_VERSION,
    derived_by, derived_source, is_host_alert, is_json_content_type, reserved_for_host, store_of,
};
pub use payload::*;
pub use validate::{MAX_IDENTIFIER_BYTES, validate};
