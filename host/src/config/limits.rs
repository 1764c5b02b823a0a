//! `[plugins.limits]`: what one plugin call may use, and the defaults that depend on the kind of
//! plugin (a connector waits on its target, so its deadline makes room for its outbound calls).

use serde::Deserialize;

/// `[plugins.limits]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Wall-clock deadline for one call, in milliseconds. Unset, a transform or source gets
    /// 2000; a connector gets room for its outbound calls ([`connector_deadline_ms`]).
    pub deadline_ms: u64,
    /// Longest one outbound HTTP request may take (connect, send, answer), in milliseconds.
    pub http_timeout_ms: u64,
    /// Linear memory cap, in MiB.
    pub memory_mib: u32,
    /// Most kv bytes the plugin may store.
    pub kv_quota_bytes: u64,
    /// Most events a transform may return for one event.
    pub max_output_events: usize,
    /// Most bytes (as stored JSON) a transform may return for one event.
    pub max_output_bytes: usize,
    /// Most outbound HTTP requests while handling one event.
    pub max_http_calls: u32,
    /// Optional instruction budget per call (wasmtime fuel); unset means no fuel accounting.
    pub fuel: Option<u64>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            deadline_ms: DEFAULT_DEADLINE_MS,
            http_timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            memory_mib: 64,
            kv_quota_bytes: 16 * 1024 * 1024,
            max_output_events: 100,
            max_output_bytes: 1024 * 1024,
            max_http_calls: 16,
            fuel: None,
        }
    }
}

/// A transform's or source's deadline when `limits.deadline_ms` is unset.
pub const DEFAULT_DEADLINE_MS: u64 = 2000;
/// One outbound request's timeout when `limits.http_timeout_ms` is unset.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 10_000;
/// The most a connector's default deadline grows to for its HTTP budget.
pub const CONNECTOR_DEADLINE_CAP_MS: u64 = 30_000;

/// A connector's deadline when `limits.deadline_ms` is unset: room for its HTTP budget
/// (`http_timeout_ms` × `max_http_calls`), at least [`DEFAULT_DEADLINE_MS`] and at most
/// [`CONNECTOR_DEADLINE_CAP_MS`]. A connector waits on its target; a 2 s deadline makes a slow
/// vendor look like a broken plugin and fills the dead-letter queue.
pub fn connector_deadline_ms(limits: &LimitsConfig) -> u64 {
    (limits.http_timeout_ms.saturating_mul(u64::from(limits.max_http_calls)))
        .clamp(DEFAULT_DEADLINE_MS, CONNECTOR_DEADLINE_CAP_MS)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn deadlines_of(text: &str) -> Vec<(String, u64)> {
        Config::from_toml(text)
            .unwrap()
            .plugins
            .iter()
            .map(|p| (p.name.clone(), p.limits.deadline_ms))
            .collect()
    }

    #[test]
    fn an_unset_connector_deadline_makes_room_for_its_http_budget() {
        let text = r#"
[[plugins]]
name = "default-connector"
kind = "connector"
path = "c.wasm"

[[plugins]]
name = "small-budget"
kind = "connector"
path = "c.wasm"
[plugins.limits]
max_http_calls = 2
http_timeout_ms = 4000

[[plugins]]
name = "set-by-operator"
kind = "connector"
path = "c.wasm"
[plugins.limits]
deadline_ms = 1500

[[plugins]]
name = "transform"
kind = "transform"
path = "t.wasm"
"#;
        assert_eq!(
            deadlines_of(text),
            vec![
                ("default-connector".to_owned(), CONNECTOR_DEADLINE_CAP_MS),
                ("small-budget".to_owned(), 8000),
                ("set-by-operator".to_owned(), 1500),
                ("transform".to_owned(), DEFAULT_DEADLINE_MS),
            ]
        );
    }
}
