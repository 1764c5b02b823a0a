//! Checks that span the whole file: unique names, references that resolve, numbers in range.

use super::{Config, PluginKind, Role};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A configuration that cannot be used, with where and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The TOML is malformed or has a key or value of the wrong kind.
    #[error("{origin}, line {line}: {message}")]
    Syntax {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// What is wrong, from the parser.
        message: String,
    },
    /// The TOML is well-formed but does not make sense as a whole.
    #[error("{origin}: {message}")]
    Invalid {
        /// File name.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// The same error with every one of `secrets` taken out of its message.
    pub fn redacted(self, secrets: &[String]) -> ConfigError {
        use super::redact::redact;
        match self {
            ConfigError::Syntax { origin, line, message } => ConfigError::Syntax {
                origin,
                line,
                message: redact(&message, secrets),
            },
            ConfigError::Invalid { origin, message } => ConfigError::Invalid {
                origin,
                message: redact(&message, secrets),
            },
            read @ ConfigError::Read { .. } => read,
        }
    }
}

pub(super) fn parse_error(origin: &str, text: &str, e: toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(0);
    let mut message = e.message().trim().to_owned();
    if let Some(source) = text
        .lines()
        .nth(line.saturating_sub(1))
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        message = format!("{message} (at `{source}`)");
    }
    ConfigError::Syntax {
        origin: origin.to_owned(),
        line,
        message,
    }
}

/// One problem with one part of a configuration: where (a dotted path such as
/// `sinks.erp.connector`) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldProblem {
    /// Dotted path of the offending key (`server`, `plugins.sku-map.limits`, ...).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Config {
    /// Fails with the first problem [`Config::problems`] finds.
    pub(super) fn check(&self, origin: &str) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(problem) => Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                message: problem.message,
            }),
        }
    }

    /// Every problem of a parsed configuration, each with the field it is about (what the
    /// admin API's validate endpoint reports).
    pub fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let mut add = |field: String, message: String| out.push(FieldProblem { field, message });
        let s = &self.server;
        if s.max_body_bytes == 0 || s.max_pending == 0 || s.commit_max_ops == 0 || s.router_lanes == 0 {
            add(
                "server".into(),
                "[server] max_body_bytes, max_pending, commit_max_ops and router_lanes must be at least 1".into(),
            );
        }
        if s.header_read_timeout_secs == 0
            || s.body_read_timeout_secs == 0
            || s.body_min_bytes_per_sec == 0
            || s.keep_alive_idle_secs == 0
            || s.max_connections == 0
        {
            add(
                "server".into(),
                "[server] header_read_timeout_secs, body_read_timeout_secs, body_min_bytes_per_sec, keep_alive_idle_secs and max_connections must be at least 1".into(),
            );
        }
        for (names, table) in [
            (
                self.plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                "plugins",
            ),
            (self.sinks.iter().map(|p| p.name.as_str()).collect(), "sinks"),
            (self.routes.iter().map(|p| p.name.as_str()).collect(), "routes"),
            (self.api_keys.iter().map(|p| p.name.as_str()).collect(), "api_keys"),
        ] {
            if let Err((name, message)) = unique(names.into_iter(), &format!("[[{table}]]")) {
                add(format!("{table}.{name}.name"), message);
            }
        }
        for plugin in &self.plugins {
            let at = |key: &str| format!("plugins.{}.{key}", plugin.name);
            if !is_plugin_name(&plugin.name) {
                add(
                    at("name"),
                    format!(
                        "plugin name {:?} is not allowed: use 1 to 64 letters, digits, `-`, `_` or `.` (it becomes a URL path segment and part of its derived events' source)",
                        plugin.name
                    ),
                );
            }
            match plugin.kind {
                PluginKind::Source if plugin.grants.sources.is_empty() => add(
                    at("grants.sources"),
                    format!(
                        "source plugin `{}` has no grants.sources, so every event it decodes would be refused; add sources = [\"/t/TENANT/s/STORE/p/{}\"] (the sources its events carry, globs allowed) to its [plugins.grants]",
                        plugin.name, plugin.name
                    ),
                ),
                PluginKind::Source => {}
                kind if !plugin.grants.sources.is_empty() => add(
                    at("grants.sources"),
                    format!(
                        "plugin `{}` is a {}; grants.sources is for source plugins (the sources a transform's events carry are set by the host); remove it",
                        plugin.name,
                        kind.name()
                    ),
                ),
                PluginKind::Connector if !plugin.grants.emits.is_empty() => add(
                    at("grants.emits"),
                    format!(
                        "plugin `{}` is a connector, which emits no events; remove grants.emits",
                        plugin.name
                    ),
                ),
                _ => {}
            }
            if plugin.limits.deadline_ms == 0 || !(1..=4096).contains(&plugin.limits.memory_mib) {
                add(
                    at("limits"),
                    format!(
                        "plugin `{}`: limits.deadline_ms must be at least 1 and limits.memory_mib between 1 and 4096",
                        plugin.name
                    ),
                );
            }
            if !(1..=300_000).contains(&plugin.limits.http_timeout_ms) {
                add(
                    at("limits.http_timeout_ms"),
                    format!(
                        "plugin `{}`: limits.http_timeout_ms is {}; give each outbound request between 1 and 300000 ms",
                        plugin.name, plugin.limits.http_timeout_ms
                    ),
                );
            }
            for credential in &plugin.grants.credentials {
                if !self.credentials.contains_key(credential) {
                    add(
                        at("grants.credentials"),
                        format!(
                            "plugin `{}` is granted credential `{credential}`, which is not defined; add a [credentials.{credential}] table",
                            plugin.name
                        ),
                    );
                }
            }
            for secret in &plugin.secrets {
                if !self.secrets.contains_key(secret) {
                    add(
                        at("secrets"),
                        format!(
                            "plugin `{}` uses secret `{secret}`, which is not defined; add `{secret} = {{ env = \"VAR\" }}` under [secrets]",
                            plugin.name
                        ),
                    );
                }
            }
        }
        for (name, c) in &self.credentials {
            if c.grant == super::OAuthGrant::RefreshToken && c.refresh_token.is_none() {
                add(
                    format!("credentials.{name}.refresh_token"),
                    format!(
                        "credential `{name}` uses grant = \"refresh_token\" but has no refresh_token; add refresh_token = {{ env = \"VAR\" }}"
                    ),
                );
            }
            if !(c.token_url.starts_with("https://") || c.token_url.starts_with("http://")) {
                add(
                    format!("credentials.{name}.token_url"),
                    format!("credential `{name}`: token_url must be an https:// (or http://) URL"),
                );
            }
            match (&c.client_secret, &c.client_assertion) {
                (None, None) => add(
                    format!("credentials.{name}.client_secret"),
                    format!(
                        "credential `{name}` has neither client_secret nor client_assertion; add client_secret = {{ env = \"VAR\" }}, or a [credentials.{name}.client_assertion] table for a signed-JWT client"
                    ),
                ),
                (Some(_), Some(_)) => add(
                    format!("credentials.{name}.client_assertion"),
                    format!(
                        "credential `{name}` has both client_secret and client_assertion; keep the one the authorization server expects"
                    ),
                ),
                (None, Some(a)) if !["PS256", "RS256", "ES256"].contains(&a.algorithm.as_str()) => add(
                    format!("credentials.{name}.client_assertion.algorithm"),
                    format!(
                        "credential `{name}`: client_assertion algorithm `{}` is not supported; use PS256, RS256 or ES256",
                        a.algorithm
                    ),
                ),
                (None, Some(a)) if !(1..=3600).contains(&a.lifetime_secs) => add(
                    format!("credentials.{name}.client_assertion.lifetime_secs"),
                    format!(
                        "credential `{name}`: lifetime_secs = {} is out of range; an assertion lives 1 to 3600 seconds (300 is usual)",
                        a.lifetime_secs
                    ),
                ),
                (None, Some(_)) if c.client_auth == super::ClientAuthStyle::Form => add(
                    format!("credentials.{name}.client_auth"),
                    format!(
                        "credential `{name}`: client_auth = \"form\" sends a client secret, but this credential signs a client_assertion instead; remove client_auth"
                    ),
                ),
                _ => {}
            }
            if http::HeaderName::from_bytes(c.header.as_bytes()).is_err() {
                add(
                    format!("credentials.{name}.header"),
                    format!(
                        "credential `{name}`: header = {:?} is not a valid HTTP header name (e.g. \"authorization\", \"x-shopify-access-token\")",
                        c.header
                    ),
                );
            }
        }
        for sink in &self.sinks {
            let at = |key: &str| format!("sinks.{}.{key}", sink.name);
            match self.plugin(&sink.connector) {
                Some(p) if p.kind == PluginKind::Connector => {}
                Some(p) => add(
                    at("connector"),
                    format!(
                        "sink `{}`: plugin `{}` is a {}; a sink needs a plugin with kind = \"connector\"",
                        sink.name,
                        sink.connector,
                        p.kind.name()
                    ),
                ),
                None => add(
                    at("connector"),
                    format!(
                        "sink `{}` names connector `{}`, but no [[plugins]] entry has that name",
                        sink.name, sink.connector
                    ),
                ),
            }
            if sink.max_attempts == 0 || sink.concurrency == 0 || sink.backoff_base_ms == 0 {
                add(
                    at("max_attempts"),
                    format!(
                        "sink `{}`: max_attempts, concurrency and backoff_base_ms must be at least 1",
                        sink.name
                    ),
                );
            }
            if sink.window < sink.concurrency {
                add(
                    at("window"),
                    format!(
                        "sink `{}`: window ({}) must be at least concurrency ({}): the worker can only run what it holds in memory",
                        sink.name, sink.window, sink.concurrency
                    ),
                );
            }
        }
        for route in &self.routes {
            let at = |key: &str| format!("routes.{}.{key}", route.name);
            if route.types.is_empty() || route.sinks.is_empty() {
                add(
                    at("types"),
                    format!(
                        "route `{}` needs at least one entry in `types` and one in `sinks`",
                        route.name
                    ),
                );
            }
            for t in &route.transforms {
                match self.plugin(t) {
                    Some(p) if p.kind == PluginKind::Transform => {}
                    Some(p) => add(
                        at("transforms"),
                        format!(
                            "route `{}`: plugin `{t}` is a {}; only transforms go under a route's `transforms`",
                            route.name,
                            p.kind.name()
                        ),
                    ),
                    None => add(
                        at("transforms"),
                        format!(
                            "route `{}` names transform `{t}`, but no [[plugins]] entry has that name",
                            route.name
                        ),
                    ),
                }
            }
            for sink in &route.sinks {
                if !self.sinks.iter().any(|s| &s.name == sink) {
                    add(
                        at("sinks"),
                        format!(
                            "route `{}` names sink `{sink}`, but no [[sinks]] entry has that name",
                            route.name
                        ),
                    );
                }
            }
        }
        for (id, store) in &self.stores {
            for (field, message) in store.problems(id) {
                add(field, message);
            }
        }
        for (field, message) in self.alerts.problems().into_iter().chain(self.telemetry.problems()) {
            add(field, message);
        }
        for (group, globs) in &self.store_groups {
            if globs.is_empty() {
                add(
                    format!("store_groups.{group}"),
                    format!("store group `{group}` lists no stores; add store ids or globs such as \"hk-0*\""),
                );
            }
        }
        for key in &self.api_keys {
            if key.admin && key.role.is_some_and(|role| role != Role::Admin) {
                add(
                    format!("api_keys.{}.role", key.name),
                    format!(
                        "api key `{}` sets both `admin = true` and role = \"{}\"; keep one (`admin = true` is the old spelling of role = \"admin\")",
                        key.name,
                        key.role.map(Role::as_str).unwrap_or_default()
                    ),
                );
            }
            if key.stores.is_empty() && key.effective_role() == Role::Ingest {
                add(
                    format!("api_keys.{}.stores", key.name),
                    format!(
                        "api key `{}` has the ingest role and no `stores`, so it could do nothing; add stores = [\"*\"] or a glob, or give it another role",
                        key.name
                    ),
                );
            }
        }
        if self.retention.audit_max_age_secs > 0 && self.audit.anchor_file.is_none() {
            add(
                "retention.audit_max_age_secs".into(),
                "[retention] audit_max_age_secs prunes the audit log only through signed checkpoints: set [audit] signing_key and anchor_file, or remove audit_max_age_secs".into(),
            );
        }
        out.extend(self.audit.problems(self));
        out
    }
}

/// Plugin names are path segments: in `/v1/webhooks/{name}` and in the `/x/{name}` of the
/// events a plugin derives, which must not be able to reach out of that segment.
fn is_plugin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, table: &str) -> Result<(), (String, String)> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err((
                name.to_owned(),
                format!("{table}: the name `{name}` is used twice; names must be unique"),
            ));
        }
    }
    Ok(())
}
