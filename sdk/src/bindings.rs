//! The one place guest bindings are generated from `wit/`. Plugins use the re-exports below and
//! the typed model; they rarely need the raw modules.

#![allow(missing_docs)]
// Generated code: the raw ABI of a function with several lists takes many pointer/length pairs.
#![allow(clippy::too_many_arguments)]

/// World `transform` (also generates the shared host interfaces).
pub mod transform {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transform",
        pub_export_macro: true,
        export_macro_name: "__export_transform_world",
        default_bindings_module: "kaunter_sdk::bindings::transform",
    });
}

/// World `connector`, sharing the interfaces generated for `transform`.
pub mod connector {
    wit_bindgen::generate!({
        path: "../wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "kaunter_sdk::bindings::connector",
        with: {
            "kaunter:plugin/types@0.2.0": crate::bindings::transform::kaunter::plugin::types,
            "kaunter:plugin/log@0.2.0": crate::bindings::transform::kaunter::plugin::log,
            "kaunter:plugin/config@0.2.0": crate::bindings::transform::kaunter::plugin::config,
            "kaunter:plugin/kv@0.2.0": crate::bindings::transform::kaunter::plugin::kv,
            "kaunter:plugin/clock@0.2.0": crate::bindings::transform::kaunter::plugin::clock,
            "kaunter:plugin/crypto@0.2.0": crate::bindings::transform::kaunter::plugin::crypto,
        },
    });
}

/// World `source`, sharing the interfaces generated for `transform`.
pub mod source {
    wit_bindgen::generate!({
        path: "../wit",
        world: "source",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        default_bindings_module: "kaunter_sdk::bindings::source",
        with: {
            "kaunter:plugin/types@0.2.0": crate::bindings::transform::kaunter::plugin::types,
            "kaunter:plugin/log@0.2.0": crate::bindings::transform::kaunter::plugin::log,
            "kaunter:plugin/config@0.2.0": crate::bindings::transform::kaunter::plugin::config,
            "kaunter:plugin/kv@0.2.0": crate::bindings::transform::kaunter::plugin::kv,
            "kaunter:plugin/clock@0.2.0": crate::bindings::transform::kaunter::plugin::clock,
            "kaunter:plugin/crypto@0.2.0": crate::bindings::transform::kaunter::plugin::crypto,
        },
    });
}

pub use connector::kaunter::plugin::delivery::{DeliveryContext, DeliveryError, Receipt, RetryHint};
pub use source::kaunter::plugin::webhook::{DecodeError, WebhookRequest};
pub use transform::kaunter::plugin::errors::PluginError;
pub use transform::kaunter::plugin::types;

kaunter_model::wit_conversions!(types);
