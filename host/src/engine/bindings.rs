//! The one place host bindings are generated from `wit/`.
//!
//! Everything else in the host uses the curated types re-exported here. The host interfaces
//! (`log`, `config`, `kv`, `clock`, `crypto`) are generated once, from world `host-services`; the
//! plugin worlds reuse them through `with`.

#![allow(missing_docs)]

/// Imports shared by every world.
pub mod services {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "host-services",
        imports: {
            "kaunter:plugin/kv": async | trappable,
            default: trappable,
        },
    });
}

/// World `transform`.
pub mod transform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kaunter:plugin/types": super::services::kaunter::plugin::types,
            "kaunter:plugin/log": super::services::kaunter::plugin::log,
            "kaunter:plugin/config": super::services::kaunter::plugin::config,
            "kaunter:plugin/kv": super::services::kaunter::plugin::kv,
            "kaunter:plugin/clock": super::services::kaunter::plugin::clock,
            "kaunter:plugin/crypto": super::services::kaunter::plugin::crypto,
        },
    });
}

/// World `connector`.
pub mod connector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "connector",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kaunter:plugin/types": super::services::kaunter::plugin::types,
            "kaunter:plugin/log": super::services::kaunter::plugin::log,
            "kaunter:plugin/config": super::services::kaunter::plugin::config,
            "kaunter:plugin/kv": super::services::kaunter::plugin::kv,
            "kaunter:plugin/clock": super::services::kaunter::plugin::clock,
            "kaunter:plugin/crypto": super::services::kaunter::plugin::crypto,
        },
    });
}

/// World `source`.
pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kaunter:plugin/types": super::services::kaunter::plugin::types,
            "kaunter:plugin/log": super::services::kaunter::plugin::log,
            "kaunter:plugin/config": super::services::kaunter::plugin::config,
            "kaunter:plugin/kv": super::services::kaunter::plugin::kv,
            "kaunter:plugin/clock": super::services::kaunter::plugin::clock,
            "kaunter:plugin/crypto": super::services::kaunter::plugin::crypto,
        },
    });
}

pub use connector::kaunter::plugin::delivery::{DeliveryContext, DeliveryError, Receipt};
pub use services::kaunter::plugin::types as wit;
pub use source::kaunter::plugin::webhook::{DecodeError, WebhookRequest};
pub use transform::kaunter::plugin::errors::PluginError;

kaunter_model::wit_conversions!(wit);
