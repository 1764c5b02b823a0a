//! The host imports as plain functions: logging, configuration, kv, clock and keyed hashes.

use crate::PluginError;
use crate::bindings::transform::kaunter::plugin::{clock, config, crypto, kv, log as wit_log};

/// Writes a log line at info level into the host's log, tagged with plugin and event.
pub fn info(message: &str) {
    wit_log::log(wit_log::Level::Info, message);
}

/// Writes a log line at warn level.
pub fn warn(message: &str) {
    wit_log::log(wit_log::Level::Warn, message);
}

/// Writes a log line at error level.
pub fn error(message: &str) {
    wit_log::log(wit_log::Level::Error, message);
}

/// Writes a log line at debug level.
pub fn debug(message: &str) {
    wit_log::log(wit_log::Level::Debug, message);
}

/// The plugin's configuration, deserialised into the plugin's own type. A configuration that
/// does not fit becomes `PluginError::InvalidConfig` naming the field.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, PluginError> {
    let json = config::get();
    serde_json::from_str(&json).map_err(|e| PluginError::InvalidConfig(format!("{e} (config was {json})")))
}

/// Milliseconds since the Unix epoch, as the host sees it.
pub fn now_ms() -> i64 {
    clock::now_ms()
}

/// Reads a kv value.
pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, kv::KvError> {
    kv::get(key)
}

/// Writes a kv value.
pub fn kv_set(key: &str, value: &[u8]) -> Result<(), kv::KvError> {
    kv::set(key, value)
}

/// Deletes a kv value.
pub fn kv_delete(key: &str) -> Result<(), kv::KvError> {
    kv::delete(key)
}

/// HMAC-SHA256 under a named secret; the secret itself never enters the plugin.
pub fn hmac_sha256(secret: &str, data: &[u8]) -> Result<Vec<u8>, crypto::CryptoError> {
    crypto::hmac_sha256(secret, data)
}

/// Constant-time check of an HMAC-SHA256 under a named secret.
pub fn verify_hmac_sha256(secret: &str, data: &[u8], mac: &[u8]) -> Result<bool, crypto::CryptoError> {
    crypto::verify_hmac_sha256(secret, data, mac)
}
