//! The host imports as plain functions: logging, configuration, kv, clock and keyed hashes.
//!
//! In a component they call the host. In native unit tests (`cargo test`, not `wasm32`) they
//! call the [`crate::testing::FakeHost`] the test installed, so plugin logic runs unchanged.

use crate::PluginError;
pub use crate::bindings::transform::kaunter::plugin::crypto::CryptoError;
pub use crate::bindings::transform::kaunter::plugin::kv::KvError;
pub use crate::bindings::transform::kaunter::plugin::log::Level;

#[cfg(target_arch = "wasm32")]
mod imports {
    use super::{CryptoError, KvError, Level};
    use crate::bindings::transform::kaunter::plugin::{clock, config, crypto, kv, log};

    pub fn log(level: Level, message: &str) {
        log::log(level, message);
    }
    pub fn config() -> String {
        config::get()
    }
    pub fn now_ms() -> i64 {
        clock::now_ms()
    }
    pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        kv::get(key)
    }
    pub fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
        kv::set(key, value)
    }
    pub fn kv_delete(key: &str) -> Result<(), KvError> {
        kv::delete(key)
    }
    pub fn hmac_sha256(secret: &str, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        crypto::hmac_sha256(secret, data)
    }
    pub fn verify_hmac_sha256(secret: &str, data: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
        crypto::verify_hmac_sha256(secret, data, mac)
    }
    pub fn hmac_sha256_templated(secret: &str, prefix: &[u8], suffix: &[u8]) -> Result<Vec<u8>, CryptoError> {
        crypto::hmac_sha256_templated(secret, prefix, suffix)
    }
    pub fn sha256(data: &[u8]) -> Vec<u8> {
        crypto::sha256(data)
    }
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::imports;

/// Writes a log line at info level into the host's log, tagged with plugin and event.
pub fn info(message: &str) {
    imports::log(Level::Info, message);
}

/// Writes a log line at warn level.
pub fn warn(message: &str) {
    imports::log(Level::Warn, message);
}

/// Writes a log line at error level.
pub fn error(message: &str) {
    imports::log(Level::Error, message);
}

/// Writes a log line at debug level.
pub fn debug(message: &str) {
    imports::log(Level::Debug, message);
}

/// The plugin's configuration, deserialised into the plugin's own type. A configuration that
/// does not fit becomes `PluginError::InvalidConfig` naming the field.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, PluginError> {
    let json = imports::config();
    serde_json::from_str(&json).map_err(|e| PluginError::InvalidConfig(format!("{e} (config was {json})")))
}

/// A plugin's configuration, parsed from the host on first use and kept for the life of the
/// instance. Declare it as a `static`:
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct MyConfig {
///     table: std::collections::BTreeMap<String, String>,
/// }
///
/// static CONFIG: kaunter_sdk::PluginConfig<MyConfig> = kaunter_sdk::PluginConfig::new();
///
/// fn lookup(sku: &str) -> Result<Option<String>, kaunter_sdk::PluginError> {
///     Ok(CONFIG.get()?.table.get(sku).cloned())
/// }
/// # let _host = kaunter_sdk::testing::FakeHost::new()
/// #     .config(serde_json::json!({ "table": { "111": "PANADOL-500" } }))
/// #     .install();
/// assert_eq!(lookup("111").unwrap().as_deref(), Some("PANADOL-500"));
/// ```
pub struct PluginConfig<T>(std::sync::OnceLock<T>);

impl<T: serde::de::DeserializeOwned> PluginConfig<T> {
    /// Not yet parsed.
    pub const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }

    /// The parsed configuration; `PluginError::InvalidConfig` naming the field if it does not fit
    /// (the host then dead-letters the event with that message).
    pub fn get(&self) -> Result<&T, PluginError> {
        // Native tests: each test installs its own configuration, so nothing is kept between
        // calls (the parsed value is leaked; tests are short-lived).
        #[cfg(not(target_arch = "wasm32"))]
        return config::<T>().map(|parsed| &*Box::leak(Box::new(parsed)));
        #[cfg(target_arch = "wasm32")]
        {
            if let Some(parsed) = self.0.get() {
                return Ok(parsed);
            }
            let parsed: T = config()?;
            Ok(self.0.get_or_init(|| parsed))
        }
    }
}

impl<T: serde::de::DeserializeOwned> Default for PluginConfig<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Milliseconds since the Unix epoch, as the host sees it (needs `clock = true` granted).
pub fn now_ms() -> i64 {
    imports::now_ms()
}

/// Reads a kv value (the plugin's own namespace, persisted by the host).
pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    imports::kv_get(key)
}

/// Writes a kv value, within the plugin's `kv_quota_bytes`.
pub fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
    imports::kv_set(key, value)
}

/// Deletes a kv value.
pub fn kv_delete(key: &str) -> Result<(), KvError> {
    imports::kv_delete(key)
}

/// HMAC-SHA256 under a named secret; the secret itself never enters the plugin.
pub fn hmac_sha256(secret: &str, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    imports::hmac_sha256(secret, data)
}

/// HMAC-SHA256 under a named secret of `prefix`, then the secret's own bytes, then `suffix`, for
/// schemes whose string-to-sign contains the secret (a DingTalk robot signs `"{timestamp}\n{secret}"`:
/// `hmac_sha256_with_secret_in_data("dingtalk", format!("{ts}\n").as_bytes(), b"")`). The host
/// splices the secret in; it never enters the plugin.
pub fn hmac_sha256_with_secret_in_data(secret: &str, prefix: &[u8], suffix: &[u8]) -> Result<Vec<u8>, CryptoError> {
    imports::hmac_sha256_templated(secret, prefix, suffix)
}

/// Constant-time check of an HMAC-SHA256 under a named secret.
pub fn verify_hmac_sha256(secret: &str, data: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
    imports::verify_hmac_sha256(secret, data, mac)
}

/// SHA-256 of `data` (computed by the host).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    imports::sha256(data)
}
