//! `kaunter.toml`: the typed host configuration.
//!
//! This module owns parsing and checking the configuration: every key is typed, unknown keys are
//! errors that name the key and its line, and cross-references (a route naming a sink that does not
//! exist) are caught here, before anything starts. It never touches the network, the store or Wasm.

mod alerts;
mod audit;
mod check;
pub mod fingerprint;
mod limits;
mod secrets;
mod stores;
mod telemetry;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use audit::AuditConfig;
pub use check::{ConfigError, FieldProblem};
pub use limits::{
    CONNECTOR_DEADLINE_CAP_MS, DEFAULT_DEADLINE_MS, DEFAULT_HTTP_TIMEOUT_MS, LimitsConfig, connector_deadline_ms,
};
pub mod redact;
pub use alerts::AlertsConfig;
pub use secrets::{NamedSecret, SecretEncoding, SecretRef, decode_secret};
pub use stores::{QuietHours, StoreConfig};
pub use telemetry::TelemetryConfig;

/// The demo configuration used by `kaunter serve` and `kaunter demo` without `--config`.
pub const DEMO_CONFIG: &str = include_str!("demo.toml");

/// The whole host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, storage and ingest limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Who may call the API.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Named secrets plugins may use through the `crypto` interface, by name only.
    #[serde(default)]
    pub secrets: BTreeMap<String, NamedSecret>,
    /// OAuth 2.0 credentials the host maintains and injects into granted plugins' requests.
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialConfig>,
    /// Wasm components the host loads.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// Destinations: a connector plugin plus delivery policy.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// Which events go through which transforms to which sinks.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Named groups of stores (globs), for staged rollout: `pilot = ["hk-001", "hk-002"]`.
    #[serde(default)]
    pub store_groups: BTreeMap<String, Vec<String>>,
    /// `[stores.ID]`: the store registry (group, time zone, quiet hours).
    #[serde(default)]
    pub stores: BTreeMap<String, StoreConfig>,
    /// How the audit chain is sealed (HMAC key) and anchored (signed checkpoints elsewhere).
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[retention]`: how long finished events stay in the log.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[alerts]`: the host's own SOP alerts.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `[telemetry]`: OpenTelemetry traces (off unless an endpoint is given).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Directory the config was read from; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file it was read from (`None` for the bundled demo config); what a reload re-reads.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `[server]` as the file says, before command-line overrides (`--listen`, `--data`): what a
    /// reload compares to tell whether `[server]` changed.
    #[serde(skip)]
    pub file_server: Option<ServerConfig>,
}

/// `[retention]`: pruning of finished events. Undelivered work (open or parked deliveries, dead
/// letters not yet replayed) is never pruned, whatever its age.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Finished events older than this many seconds are pruned, with their deliveries, bodies and
    /// replayed dead letters. 0: kept forever.
    pub events_max_age_secs: u64,
    /// When the log's pages in use pass this many MiB, the oldest finished events are pruned too,
    /// whatever their age. 0: no size limit.
    pub max_log_mib: u64,
    /// A pruned event's source, id and content digest are kept this many seconds more, so a late
    /// resend is still answered as a duplicate (or a 409 conflict), never taken as a new sale.
    /// Longer than any vendor's retry window and a branch's outage budget.
    pub dedupe_secs: u64,
    /// How often the pruner runs, in seconds.
    pub prune_interval_secs: u64,
    /// Audit records older than this many seconds are pruned, up to the latest signed checkpoint
    /// that covers them (needs `[audit] signing_key` and `anchor_file`). 0: never.
    pub audit_max_age_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events_max_age_secs: 0,
            max_log_mib: 0,
            dedupe_secs: 14 * 24 * 3600,
            prune_interval_secs: 60,
            audit_max_age_secs: 0,
        }
    }
}

impl RetentionConfig {
    /// Whether anything is ever pruned.
    pub fn enabled(&self) -> bool {
        self.events_max_age_secs > 0 || self.max_log_mib > 0 || self.audit_max_age_secs > 0
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Where the SQLite log and the compile cache live.
    pub data_dir: PathBuf,
    /// Directory plugin `path`s are relative to.
    pub plugin_dir: PathBuf,
    /// Where compiled components are cached (default `<data_dir>/cache`); may be shared by hosts.
    pub cache_dir: Option<PathBuf>,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Most events accepted but not yet routed before ingest answers 503 (deliveries waiting
    /// for a sink do not count: they queue in the log, up to each sink's `max_backlog`).
    pub max_pending: usize,
    /// Most MiB the log (database and write-ahead log) may take; past it ingest answers 503
    /// until it shrinks. 0: no budget.
    pub log_budget_mib: u64,
    /// Group commit: longest wait for more writes before committing, in microseconds.
    pub commit_window_us: u64,
    /// Group commit: most writes in one commit.
    pub commit_max_ops: usize,
    /// Parallel routing lanes (events of one partition key always share a lane).
    pub router_lanes: usize,
    /// Whether to watch the plugins' component files and hot-load new builds dropped there.
    pub watch_plugins: bool,
    /// How often the watch looks at the files, in milliseconds.
    pub watch_interval_ms: u64,
    /// PEM files of certificate authorities trusted for outbound https besides the public web PKI
    /// (a TLS-inspecting proxy, a vendor's sandbox, a private token endpoint).
    pub extra_ca_files: Vec<PathBuf>,
    /// Longest time from the first byte of a request to its complete head, in seconds.
    pub header_read_timeout_secs: u64,
    /// Grace before a request body must keep up `body_min_bytes_per_sec`, in seconds.
    pub body_read_timeout_secs: u64,
    /// Slowest average rate a request body may arrive at after the grace (408 below it).
    pub body_min_bytes_per_sec: u64,
    /// Longest a keep-alive connection may wait for its next request, in seconds.
    pub keep_alive_idle_secs: u64,
    /// Most open connections; at the limit the longest-idle one is closed for a new client.
    pub max_connections: usize,
    /// The write-ahead log is checkpointed in full and truncated once it passes this many MiB.
    pub wal_truncate_mib: u64,
    /// Also serve `GET /metrics`, without an API key, on this address (e.g. a port only the
    /// monitoring network reaches). Unset: only on `listen`, to metrics and admin keys.
    pub metrics_listen: Option<String>,
    /// Free space on the data directory's file system below which the host reports itself
    /// degraded (`disk-low`), in MiB.
    pub disk_low_mib: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("kaunter-data"),
            plugin_dir: PathBuf::from("plugins/target/wasm32-wasip2/release"),
            cache_dir: None,
            max_body_bytes: 1024 * 1024,
            max_pending: 100_000,
            log_budget_mib: 0,
            commit_window_us: 200,
            commit_max_ops: 2048,
            router_lanes: 4,
            watch_plugins: true,
            watch_interval_ms: 1000,
            extra_ca_files: Vec::new(),
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            body_min_bytes_per_sec: 1024,
            keep_alive_idle_secs: 60,
            max_connections: 4096,
            wal_truncate_mib: 16,
            metrics_listen: None,
            disk_low_mib: 1024,
        }
    }
}

/// `[[api_keys]]`: one credential for the HTTP API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs and the audit trail.
    pub name: String,
    /// Where the key's value comes from: `{ env = "VAR" }`, `{ file = "path" }` or `{ value = "..." }`.
    pub key: SecretRef,
    /// Store globs this key may send events for (`hk-*`); `["*"]` for all.
    #[serde(default)]
    pub stores: Vec<String>,
    /// What the key may do: `ingest` (the default), `metrics`, `viewer` or `admin`.
    #[serde(default)]
    pub role: Option<Role>,
    /// The older spelling of `role = "admin"`, kept as an alias.
    #[serde(default)]
    pub admin: bool,
}

impl ApiKeyConfig {
    /// The key's role: `role` if set, `admin` when `admin = true`, else `ingest`.
    pub fn effective_role(&self) -> Role {
        match (self.role, self.admin) {
            (Some(role), _) => role,
            (None, true) => Role::Admin,
            (None, false) => Role::Ingest,
        }
    }
}

/// What an API key may do. Each role is one capability set, not a rank, except that `admin`
/// may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Send events and read back its own stores' events (`stores` says which).
    Ingest,
    /// Scrape `GET /metrics`; nothing else.
    Metrics,
    /// Read the operator views (sinks, dead letters, stats, plugins, any event); change nothing.
    Viewer,
    /// Everything: the operator API, every store's events, metrics.
    Admin,
}

impl Role {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Metrics => "metrics",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// What a plugin component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Exports `handle` (world `transform`).
    Transform,
    /// Exports `deliver` (world `connector`).
    Connector,
    /// Exports `decode` (world `source`): served at `POST /v1/webhooks/{name}`.
    Source,
}

impl PluginKind {
    /// The world's name of the kind: `transform`, `connector` or `source`.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Transform => "transform",
            PluginKind::Connector => "connector",
            PluginKind::Source => "source",
        }
    }
}

/// `[[plugins]]`: one Wasm component and its configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Name routes and sinks refer to.
    pub name: String,
    /// Which world the component implements.
    pub kind: PluginKind,
    /// The `.wasm` component, relative to `server.plugin_dir`.
    pub path: PathBuf,
    /// The plugin's own configuration, handed to it as JSON through the `config` interface.
    #[serde(default)]
    pub config: toml::Table,
    /// Secrets the plugin may use by name through `crypto`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// What the plugin may reach outside the host.
    #[serde(default)]
    pub grants: GrantsConfig,
    /// Resource limits.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// The OAuth 2.0 grant a credential uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    /// `grant_type=client_credentials` (machine-to-machine).
    ClientCredentials,
    /// `grant_type=refresh_token`, with rotation: a new refresh token replaces the old, durably.
    RefreshToken,
}

/// `[credentials.NAME]`: an OAuth 2.0 client the host runs. Tokens never enter a plugin: the egress
/// checkpoint adds `Authorization: Bearer …` to granted requests to the `for` destinations.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Which grant.
    pub grant: OAuthGrant,
    /// The authorization server's token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: SecretRef,
    /// Client secret (sent with HTTP Basic authentication). Give this or `client_assertion`.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// Authenticate with a signed JWT instead of a secret (RFC 7523; NetSuite machine-to-machine).
    #[serde(default)]
    pub client_assertion: Option<ClientAssertionConfig>,
    /// How the client secret is sent: `basic` (HTTP Basic, the OAuth 2.0 default) or `form`
    /// (`client_id` and `client_secret` in the form body, as Shopify's token endpoint expects).
    #[serde(default)]
    pub client_auth: ClientAuthStyle,
    /// The request header the token goes in (default `authorization`; Shopify's Admin API reads
    /// `x-shopify-access-token`).
    #[serde(default = "default_token_header")]
    pub header: String,
    /// What comes before the token in that header (default `"Bearer "`; `""` for Shopify).
    #[serde(default = "default_token_prefix")]
    pub prefix: String,
    /// Scope to ask for, if any.
    #[serde(default)]
    pub scope: Option<String>,
    /// The first refresh token (grant = "refresh_token"); rotated ones are kept in the store.
    #[serde(default)]
    pub refresh_token: Option<SecretRef>,
    /// Destinations (grant syntax) whose requests get the token.
    #[serde(rename = "for")]
    pub destinations: Vec<crate::net::HttpGrant>,
}

/// How a client secret reaches the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthStyle {
    /// HTTP Basic authentication (RFC 6749 §2.3.1's recommended way).
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form fields.
    Form,
}

fn default_token_header() -> String {
    "authorization".into()
}

fn default_token_prefix() -> String {
    "Bearer ".into()
}

/// `[credentials.NAME.client_assertion]`: the client authenticates to the token endpoint with a
/// JWT it signs (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientAssertionConfig {
    /// `PS256`, `RS256` (RSA keys) or `ES256` (P-256 keys).
    pub algorithm: String,
    /// The key id the authorization server knows the key by (NetSuite: the certificate id); sent
    /// as the JWT header `kid`.
    pub key_id: String,
    /// The private key, PEM (PKCS#8 or PKCS#1 for RSA, PKCS#8 for EC).
    pub private_key: SecretRef,
    /// The JWT `aud`; default the token URL.
    #[serde(default)]
    pub audience: Option<String>,
    /// How long each assertion is valid, in seconds (default 300; NetSuite allows at most 3600).
    #[serde(default = "default_assertion_lifetime")]
    pub lifetime_secs: u64,
}

fn default_assertion_lifetime() -> u64 {
    300
}

/// `[plugins.grants]`: capabilities the operator grants a plugin. Nothing is granted by default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsConfig {
    /// Outbound HTTP destinations, e.g. `"POST https://api.xero.com/api.xro/2.0/"`.
    #[serde(default)]
    pub http: Vec<crate::net::HttpGrant>,
    /// OAuth credentials (names under `[credentials]`) injected into this plugin's requests.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Whether the plugin may read the wall clock (`kaunter:plugin/clock`, `wasi:clocks/wall-clock`).
    #[serde(default)]
    pub clock: bool,
    /// Event types (globs) the plugin may emit: what a transform derives (an event it maps keeps
    /// its input's type and needs no grant) and every event a source decodes. Others are refused.
    #[serde(default)]
    pub emits: Vec<String>,
    /// Source plugins only: the sources (globs) its events may carry, e.g.
    /// `"/t/acme/s/web/p/shopify"`. Others are refused, so a source cannot speak for a till.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Destinations (grant syntax) whose requests get no W3C `traceparent` header from the egress
    /// checkpoint (a vendor that refuses unknown headers, or one that must not see trace ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_traceparent: Vec<crate::net::HttpGrant>,
}

impl Config {
    /// Reads a configuration's TOML (no checks), with the defaults that depend on more than
    /// one key settled: a connector without `limits.deadline_ms` gets [`connector_deadline_ms`].
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        let mut config = toml::from_str::<Config>(text)?;
        let raw = toml::from_str::<toml::Table>(text)?;
        let entries = raw.get("plugins").and_then(toml::Value::as_array);
        for (i, plugin) in config.plugins.iter_mut().enumerate() {
            let deadline_set = entries
                .and_then(|e| e.get(i))
                .and_then(|p| p.get("limits"))
                .and_then(|l| l.get("deadline_ms"))
                .is_some();
            if plugin.kind == PluginKind::Connector && !deadline_set {
                plugin.limits.deadline_ms = connector_deadline_ms(&plugin.limits);
            }
        }
        Ok(config)
    }

    /// Whether any plugin sets a fuel budget (the engine then counts fuel for all of them).
    pub fn uses_fuel(&self) -> bool {
        self.plugins.iter().any(|p| p.limits.fuel.is_some())
    }
}

/// `[[sinks]]`: a destination fed by a connector plugin.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Name routes refer to; part of every idempotency key.
    pub name: String,
    /// The connector plugin that delivers.
    pub connector: String,
    /// Deliveries in flight at once (each for a different partition key).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Attempts before an event is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Age (since ingest) after which a failing event is dead-lettered, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// First retry delay, in milliseconds; doubles each attempt (with jitter).
    #[serde(default = "default_backoff_base")]
    pub backoff_base_ms: u64,
    /// Longest retry delay, in milliseconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// Most of the sink's deliveries held in memory; the rest of its queue stays in the log and
    /// is read as these finish.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Most open deliveries the sink may have in the log; past it, new ones are parked (kept,
    /// not attempted) until an operator unparks the sink. 0: no limit.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: u64,
    /// Freshness objective: once its oldest undelivered event is older than this many seconds,
    /// the sink counts as delayed (`sync-delayed`, and the host reports itself degraded).
    #[serde(default = "default_freshness_threshold")]
    pub freshness_threshold_secs: u64,
}

fn default_freshness_threshold() -> u64 {
    60
}

fn default_window() -> usize {
    1024
}
fn default_max_backlog() -> u64 {
    1_000_000
}

fn default_concurrency() -> usize {
    16
}
fn default_max_attempts() -> u32 {
    10
}
fn default_max_age() -> u64 {
    24 * 3600
}
fn default_backoff_base() -> u64 {
    200
}
fn default_backoff_max() -> u64 {
    60_000
}

/// `[[routes]]`: which events flow through which transforms to which sinks.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name, for logs and `GET /v1/events/{id}`.
    pub name: String,
    /// Event type globs (`pos.sale.*`).
    pub types: Vec<String>,
    /// Store globs (`hk-*`); default all.
    #[serde(default = "all")]
    pub stores: Vec<String>,
    /// Transform plugins, applied in order.
    #[serde(default)]
    pub transforms: Vec<String>,
    /// Sinks that receive the result.
    pub sinks: Vec<String>,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}

impl Config {
    /// Store groups as routing and rollout use them: each `[store_groups]` entry's globs, plus
    /// the registered stores that name the group.
    pub fn resolved_store_groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups = self.store_groups.clone();
        for (id, store) in &self.stores {
            if let Some(group) = &store.group {
                groups.entry(group.clone()).or_default().push(id.clone());
            }
        }
        groups
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = Config::parse(&text, &path.display().to_string(), base)?;
        config.source = Some(path.to_path_buf());
        config.file_server = Some(config.server.clone());
        Ok(config)
    }

    /// The bundled demo configuration; relative paths resolve against the working directory.
    pub fn demo() -> Result<Config, ConfigError> {
        Config::parse(DEMO_CONFIG, "<bundled demo config>", PathBuf::from("."))
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    ///
    /// Errors never carry a secret value written in `text` (see [`redact`]).
    pub fn parse(text: &str, origin: &str, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let parsed = Config::from_toml(text)
            .map_err(|e| check::parse_error(origin, text, e))
            .and_then(|mut config| {
                config.base_dir = base_dir;
                config.check(origin)?;
                Ok(config)
            });
        parsed.map_err(|e| e.redacted(&redact::secret_values(text)))
    }

    /// A path from the config, made absolute against the config's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Where a plugin's component file is.
    pub fn plugin_path(&self, plugin: &PluginConfig) -> PathBuf {
        if plugin.path.is_absolute() {
            plugin.path.clone()
        } else {
            self.resolve(&self.server.plugin_dir).join(&plugin.path)
        }
    }

    /// The named plugin.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("pos.sale.*", "pos.sale.completed.v1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("hk-*", "hk-001"));
        assert!(!glob_match("hk-*", "sg-001"));
        assert!(glob_match("pos.*.v1", "pos.refund.completed.v1"));
        assert!(!glob_match("pos.sale", "pos.sale.completed.v1"));
    }

    /// Golden tests: each `tests/config/invalid/NAME.toml` fails with exactly `NAME.err`.
    /// Run with `KAUNTER_BLESS=1` to write the `.err` files after an intended change.
    #[test]
    fn invalid_configs_fail_with_the_expected_message() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/config/invalid");
        let bless = std::env::var_os("KAUNTER_BLESS").is_some();
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let error = Config::parse(&text, &name, dir.clone()).expect_err(&name).to_string();
            let golden = path.with_extension("err");
            if bless {
                std::fs::write(&golden, format!("{error}\n")).unwrap();
            }
            let expected = std::fs::read_to_string(&golden).unwrap_or_default();
            assert_eq!(error, expected.trim_end(), "{name}");
            for secret in redact::secret_values(&text) {
                assert!(
                    !error.contains(&secret),
                    "{name}: the error shows secret `{secret}`: {error}"
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 10,
            "only {checked} golden configs found in {}",
            dir.display()
        );
    }

    #[test]
    fn the_demo_config_is_valid() {
        let config = Config::demo().unwrap();
        assert!(!config.routes.is_empty());
    }
}
