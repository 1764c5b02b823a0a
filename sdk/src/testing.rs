//! A fake host for native unit tests: plugin logic runs with `cargo test` on the development
//! machine, no Wasm involved. Install a [`FakeHost`] at the start of a test; every host call the
//! plugin makes on that thread (configuration, clock, kv, crypto, logging, outbound HTTP) is served
//! by it, and the test can then look at what the plugin did.
//!
//! ```
//! use kaunter_sdk::testing::FakeHost;
//! use kaunter_sdk::{host, http};
//!
//! let fake = FakeHost::new()
//!     .config(serde_json::json!({ "url": "http://erp.example/hooks" }))
//!     .clock(1_764_000_000_000)
//!     .respond(429, &[("retry-after", "7")], "slow down")
//!     .install();
//! let url: String = host::config::<serde_json::Value>().unwrap()["url"].as_str().unwrap().into();
//! let answer = http::send(&http::Request::post_json(&url, &"hello").unwrap()).unwrap();
//! assert_eq!(answer.status, 429);
//! assert_eq!(fake.requests()[0].url, "http://erp.example/hooks");
//! assert_eq!(host::now_ms(), 1_764_000_000_000);
//! ```
//!
//! This module exists only in native builds; in a component the same calls reach the real host.
#![cfg(not(target_arch = "wasm32"))]

use crate::host::{CryptoError, KvError, Level};
use crate::http::{HttpError, Request, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

thread_local! {
    static FAKE: RefCell<Option<FakeHost>> = const { RefCell::new(None) };
}

/// What the fake host serves and what it saw. Build it, then [`FakeHost::install`] it.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    config: String,
    now_ms: i64,
    secrets: BTreeMap<String, Vec<u8>>,
    kv: BTreeMap<String, Vec<u8>>,
    responses: VecDeque<Result<Response, HttpError>>,
    requests: Vec<Request>,
    logs: Vec<(Level, String)>,
}

impl FakeHost {
    /// A host with an empty configuration (`{}`), the clock at 0, no secrets, empty kv, and
    /// outbound requests answered `200` with an empty body.
    pub fn new() -> FakeHost {
        FakeHost {
            config: "{}".into(),
            ..FakeHost::default()
        }
    }

    /// The plugin configuration, as `[plugins.config]` would give it (as JSON).
    pub fn config(mut self, config: serde_json::Value) -> FakeHost {
        self.config = config.to_string();
        self
    }

    /// The wall clock, in milliseconds since the Unix epoch; it does not move by itself.
    pub fn clock(mut self, now_ms: i64) -> FakeHost {
        self.now_ms = now_ms;
        self
    }

    /// A named secret (what `[secrets]` would hold; `whsec_` values are not decoded here: give
    /// the bytes the host would use).
    pub fn secret(mut self, name: &str, bytes: &[u8]) -> FakeHost {
        self.secrets.insert(name.to_owned(), bytes.to_vec());
        self
    }

    /// A kv value already present.
    pub fn kv(mut self, key: &str, value: &[u8]) -> FakeHost {
        self.kv.insert(key.to_owned(), value.to_vec());
        self
    }

    /// Queues the answer to the next outbound request (answers are used in order).
    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &str) -> FakeHost {
        self.responses.push_back(Ok(Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }));
        self
    }

    /// Queues a failure to connect as the answer to the next outbound request.
    pub fn fail_request(mut self, reason: &str) -> FakeHost {
        self.responses.push_back(Err(HttpError(reason.to_owned())));
        self
    }

    /// Serves this thread's host calls until the returned handle is dropped.
    pub fn install(self) -> Installed {
        FAKE.with(|f| *f.borrow_mut() = Some(self));
        Installed { _private: () }
    }
}

/// The installed fake host: what the plugin did so far. Uninstalls when dropped.
pub struct Installed {
    _private: (),
}

impl Installed {
    /// Outbound requests, in order.
    pub fn requests(&self) -> Vec<Request> {
        with(|h| h.requests.clone())
    }

    /// Log lines, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        with(|h| h.logs.clone())
    }

    /// A kv value now.
    pub fn kv(&self, key: &str) -> Option<Vec<u8>> {
        with(|h| h.kv.get(key).cloned())
    }

    /// Moves the clock.
    pub fn set_clock(&self, now_ms: i64) {
        with(|h| h.now_ms = now_ms);
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        FAKE.with(|f| *f.borrow_mut() = None);
    }
}

fn with<T>(f: impl FnOnce(&mut FakeHost) -> T) -> T {
    FAKE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some(host) => f(host),
            None => no_fake_host(),
        }
    })
}

#[allow(clippy::panic)] // A test without a fake host is a test bug; say how to fix it.
fn no_fake_host() -> ! {
    panic!(
        "a plugin called the host outside a component with no fake host installed: start the test with `let host = kaunter_sdk::testing::FakeHost::new().install();`"
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    m.update(data);
    m
}

/// HMAC takes keys of any length; this only satisfies the types.
fn unreachable_hmac() -> Hmac<Sha256> {
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default())
}

/// Outbound HTTP in native tests: recorded, answered from the queue (else `200`, empty).
pub(crate) fn send(request: &Request) -> Result<Response, HttpError> {
    with(|h| {
        h.requests.push(request.clone());
        h.responses.pop_front().unwrap_or(Ok(Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }))
    })
}

/// The host imports, served by the fake (what [`crate::host`] calls natively).
pub(crate) mod imports {
    use super::*;

    pub fn log(level: Level, message: &str) {
        with(|h| h.logs.push((level, message.to_owned())));
    }
    pub fn config() -> String {
        with(|h| h.config.clone())
    }
    pub fn now_ms() -> i64 {
        with(|h| h.now_ms)
    }
    pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(with(|h| h.kv.get(key).cloned()))
    }
    pub fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
        with(|h| h.kv.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }
    pub fn kv_delete(key: &str) -> Result<(), KvError> {
        with(|h| h.kv.remove(key));
        Ok(())
    }
    fn secret(name: &str) -> Result<Vec<u8>, CryptoError> {
        with(|h| h.secrets.get(name).cloned()).ok_or_else(|| {
            CryptoError::UnknownSecret(format!(
                "secret `{name}` is not set on the fake host; add .secret(\"{name}\", b\"...\")"
            ))
        })
    }
    pub fn hmac_sha256(name: &str, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(hmac(&secret(name)?, data).finalize().into_bytes().to_vec())
    }
    pub fn hmac_sha256_templated(name: &str, prefix: &[u8], suffix: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = secret(name)?;
        let data = [prefix, &key, suffix].concat();
        Ok(hmac(&key, &data).finalize().into_bytes().to_vec())
    }
    pub fn verify_hmac_sha256(name: &str, data: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
        Ok(hmac(&secret(name)?, data).verify_slice(mac).is_ok())
    }
    pub fn sha256(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        Sha256::digest(data).to_vec()
    }
}
