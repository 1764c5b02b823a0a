//! What a configuration means for its plugin files: does every component exist, does its manifest
//! get what it requests, and does the operator's config ask for anything the plugin never
//! requested (a `$SECRET(name)` in the config of a plugin whose manifest requests no secret).
//!
//! `kaunter check`, `kaunter config validate` and reloads all use [`plugin_findings`]: errors stop
//! a configuration from being applied, warnings are said and it applies.

use crate::config::{Config, FieldProblem, PluginConfig};
use crate::egress::SECRET_MARKER;
use crate::plugins::manifest::{self, Manifest};

/// What the plugin files say about a configuration.
#[derive(Debug, Default)]
pub struct PluginFindings {
    /// Problems that keep the configuration from loading: a missing component, a request that is
    /// not granted, a `$SECRET(name)` the plugin could never send.
    pub errors: Vec<FieldProblem>,
    /// Grants the plugins did not request (they load, and are flagged), with what to change.
    pub warnings: Vec<FieldProblem>,
}

/// Checks every plugin's component and manifest against the configuration's grants.
pub fn plugin_findings(config: &Config) -> PluginFindings {
    let mut out = PluginFindings::default();
    for plugin in &config.plugins {
        let path = config.plugin_path(plugin);
        let field = format!("plugins.{}.path", plugin.name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                out.errors.push(FieldProblem {
                    field,
                    message: format!("cannot read component {}: {e}", path.display()),
                });
                continue;
            }
        };
        let manifest = match manifest::read(&path, &bytes) {
            Ok(m) => m.unwrap_or_default(),
            Err(e) => {
                out.errors.push(FieldProblem {
                    field,
                    message: format!("plugin `{}`: its manifest is invalid: {e}", plugin.name),
                });
                continue;
            }
        };
        match manifest::check(plugin, &manifest) {
            Err(message) => out.errors.push(FieldProblem {
                field: format!("plugins.{}.grants", plugin.name),
                message,
            }),
            Ok(checked) => out
                .warnings
                .extend(checked.over_grants.into_iter().map(|over| FieldProblem {
                    field: format!("plugins.{}.grants", plugin.name),
                    message: format!(
                        "plugin `{}` is granted {over}: remove the grant if it has no use",
                        plugin.name
                    ),
                })),
        }
        secret_marker_findings(config, plugin, &manifest, &mut out);
    }
    out
}

/// The `$SECRET(name)` markers in a plugin's config: each must name a secret the plugin is
/// granted, defined under `[secrets]` with a `for` (or it never leaves the host), and the
/// manifest should request secrets at all.
fn secret_marker_findings(config: &Config, plugin: &PluginConfig, manifest: &Manifest, out: &mut PluginFindings) {
    let name = &plugin.name;
    let mut markers = Vec::new();
    for (key, value) in &plugin.config {
        collect_markers(key, value, &mut markers);
    }
    let requests_secrets = !manifest.requests.secrets.is_empty();
    for (key, secret) in markers {
        let field = format!("plugins.{name}.config.{key}");
        let problem = if !plugin.secrets.contains(&secret) {
            Some(format!(
                "`$SECRET({secret})` names a secret plugin `{name}` is not granted; add \"{secret}\" to secrets in its [[plugins]] entry"
            ))
        } else {
            match config.secrets.get(&secret) {
                None => Some(format!(
                    "`$SECRET({secret})` names a secret that is not defined; add {secret} = {{ env = \"VARIABLE\", encoding = \"text\", for = [\"POST https://host/path\"] }} under [secrets]"
                )),
                Some(defined) if defined.destinations.is_empty() => Some(format!(
                    "`$SECRET({secret})` cannot be sent: secret `{secret}` has no `for`, so it never leaves the host; add for = [\"POST https://host/path\"] (the destinations that may receive it) to it under [secrets]"
                )),
                Some(_) => None,
            }
        };
        if let Some(message) = problem {
            out.errors.push(FieldProblem { field, message });
        } else if !requests_secrets {
            out.warnings.push(FieldProblem {
                field,
                message: format!(
                    "`$SECRET({secret})` works, but plugin `{name}`'s manifest requests no secrets, so the grant is flagged as an over-grant; \
                     its author should add secrets = [\"operator-chosen\"] (or \"operator-chosen-optional\") under [requests] in kaunter-plugin.toml \
                     (a version that asks for more needs approval before it is deployed)"
                ),
            });
        }
    }
}

/// Every `$SECRET(name)` in a config value, with the dotted key it sits under.
fn collect_markers(key: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(text) => {
            let mut rest = text.as_str();
            while let Some(start) = rest.find(SECRET_MARKER) {
                let after = &rest[start + SECRET_MARKER.len()..];
                let Some(end) = after.find(')') else { break };
                out.push((key.to_owned(), after[..end].to_owned()));
                rest = &after[end + 1..];
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_markers(&format!("{key}.{i}"), item, out);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table {
                collect_markers(&format!("{key}.{k}"), v, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_under_their_dotted_key() {
        let config: toml::Table = toml::from_str(
            "url = \"https://hooks.slack.com/services/$SECRET(slack-webhook)\"\nlist = [\"plain\", \"$SECRET(c)\"]\n[headers]\nx-api-key = \"$SECRET(a)-$SECRET(b)\"\n",
        )
        .unwrap();
        let mut found = Vec::new();
        for (k, v) in &config {
            collect_markers(k, v, &mut found);
        }
        found.sort();
        let expected = [
            ("headers.x-api-key", "a"),
            ("headers.x-api-key", "b"),
            ("list.1", "c"),
            ("url", "slack-webhook"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, s)| (k.to_string(), s.to_string())).collect();
        assert_eq!(found, expected);
    }
}
