//! Checks that span the whole file: unique names, references that resolve, numbers in range.

use super::{Config, PluginKind};
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

impl Config {
    pub(super) fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let s = &self.server;
        if s.max_body_bytes == 0 || s.max_pending == 0 || s.commit_max_ops == 0 || s.router_lanes == 0 {
            return Err(invalid(
                "[server] max_body_bytes, max_pending, commit_max_ops and router_lanes must be at least 1".into(),
            ));
        }
        unique(self.plugins.iter().map(|p| p.name.as_str()), "[[plugins]]").map_err(&invalid)?;
        unique(self.sinks.iter().map(|p| p.name.as_str()), "[[sinks]]").map_err(&invalid)?;
        unique(self.routes.iter().map(|p| p.name.as_str()), "[[routes]]").map_err(&invalid)?;
        unique(self.api_keys.iter().map(|p| p.name.as_str()), "[[api_keys]]").map_err(&invalid)?;
        for plugin in &self.plugins {
            if plugin.limits.deadline_ms == 0 || !(1..=4096).contains(&plugin.limits.memory_mib) {
                return Err(invalid(format!(
                    "plugin `{}`: limits.deadline_ms must be at least 1 and limits.memory_mib between 1 and 4096",
                    plugin.name
                )));
            }
            for credential in &plugin.grants.credentials {
                if !self.credentials.contains_key(credential) {
                    return Err(invalid(format!(
                        "plugin `{}` is granted credential `{credential}`, which is not defined; add a [credentials.{credential}] table",
                        plugin.name
                    )));
                }
            }
            for secret in &plugin.secrets {
                if !self.secrets.contains_key(secret) {
                    return Err(invalid(format!(
                        "plugin `{}` uses secret `{secret}`, which is not defined; add `{secret} = {{ env = \"VAR\" }}` under [secrets]",
                        plugin.name
                    )));
                }
            }
        }
        for (name, c) in &self.credentials {
            if c.grant == super::OAuthGrant::RefreshToken && c.refresh_token.is_none() {
                return Err(invalid(format!(
                    "credential `{name}` uses grant = \"refresh_token\" but has no refresh_token; add refresh_token = {{ env = \"VAR\" }}"
                )));
            }
            if !c.token_url.starts_with("http://") {
                return Err(invalid(format!(
                    "credential `{name}`: token_url must be http:// in this build (https token endpoints are not supported yet)"
                )));
            }
        }
        for sink in &self.sinks {
            match self.plugin(&sink.connector) {
                Some(p) if p.kind == PluginKind::Connector => {}
                Some(_) => {
                    return Err(invalid(format!(
                        "sink `{}`: plugin `{}` is a transform; a sink needs a plugin with kind = \"connector\"",
                        sink.name, sink.connector
                    )));
                }
                None => {
                    return Err(invalid(format!(
                        "sink `{}` names connector `{}`, but no [[plugins]] entry has that name",
                        sink.name, sink.connector
                    )));
                }
            }
            if sink.max_attempts == 0 || sink.concurrency == 0 || sink.backoff_base_ms == 0 {
                return Err(invalid(format!(
                    "sink `{}`: max_attempts, concurrency and backoff_base_ms must be at least 1",
                    sink.name
                )));
            }
        }
        for route in &self.routes {
            if route.types.is_empty() || route.sinks.is_empty() {
                return Err(invalid(format!(
                    "route `{}` needs at least one entry in `types` and one in `sinks`",
                    route.name
                )));
            }
            for t in &route.transforms {
                match self.plugin(t) {
                    Some(p) if p.kind == PluginKind::Transform => {}
                    Some(_) => {
                        return Err(invalid(format!(
                            "route `{}`: plugin `{t}` is a connector; list it as a sink's `connector`, not under `transforms`",
                            route.name
                        )));
                    }
                    None => {
                        return Err(invalid(format!(
                            "route `{}` names transform `{t}`, but no [[plugins]] entry has that name",
                            route.name
                        )));
                    }
                }
            }
            for sink in &route.sinks {
                if !self.sinks.iter().any(|s| &s.name == sink) {
                    return Err(invalid(format!(
                        "route `{}` names sink `{sink}`, but no [[sinks]] entry has that name",
                        route.name
                    )));
                }
            }
        }
        for key in &self.api_keys {
            if key.stores.is_empty() && !key.admin {
                return Err(invalid(format!(
                    "api key `{}` has no `stores` and is not admin, so it could do nothing; add stores = [\"*\"] or a glob",
                    key.name
                )));
            }
        }
        Ok(())
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, table: &str) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!(
                "{table}: the name `{name}` is used twice; names must be unique"
            ));
        }
    }
    Ok(())
}
