//! Plugin manifests: what a plugin requests, and the check that the operator granted it.
//!
//! A manifest is TOML, embedded in the component as the custom section `kaunter-manifest`
//! (`kaunter_sdk::manifest!`), or, for components built without the SDK, a file beside the
//! component named `<file stem>.manifest.toml`. A component with neither requests nothing.
//!
//! The host loads a plugin only if every request is granted in `kaunter.toml`; otherwise the
//! error names the plugin, the missing grant and the line to add. Grants beyond the requests are
//! over-grants: they load, are logged, and `kaunter audit` lists them.

use crate::config::{PluginConfig, PluginKind, glob_match};
use crate::net::HttpGrant;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The custom section holding an embedded manifest.
pub const SECTION: &str = "kaunter-manifest";
/// A request whose value the operator chooses (the destination in the plugin's own config).
pub const OPERATOR_CHOSEN: &str = "operator-chosen";
/// Like [`OPERATOR_CHOSEN`], for a plugin that works without it in some configurations (Slack's
/// chat.postMessage needs a credential and no secret, its incoming webhook a secret and no
/// credential): the operator may grant values of their choosing, and none is required.
pub const OPERATOR_CHOSEN_OPTIONAL: &str = "operator-chosen-optional";

/// Whether a requested value is left to the operator (required or optional).
pub fn is_operator_chosen(value: &str) -> bool {
    value == OPERATOR_CHOSEN || value == OPERATOR_CHOSEN_OPTIONAL
}

/// A plugin manifest.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Who the plugin is.
    pub plugin: Option<ManifestPlugin>,
    /// What it asks for.
    #[serde(default)]
    pub requests: Requests,
    /// Sample events, each canonical POS JSON (or a CloudEvent) in a string. The host runs each
    /// through a new version, with side effects captured, before it can be deployed (the smoke call).
    #[serde(default)]
    pub samples: Vec<String>,
}

impl Manifest {
    /// The sample events, parsed like ingested canonical JSON.
    pub fn sample_events(&self) -> Result<Vec<kaunter_model::Event>, String> {
        self.samples
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("samples[{i}] is not JSON: {e}"))?;
                let defaults = kaunter_model::Defaults {
                    id: format!("sample-{i}"),
                    now: "2026-01-01T00:00:00Z".into(),
                };
                kaunter_model::Event::from_json(value, kaunter_model::Dialect::Canonical, &defaults)
                    .map_err(|e| format!("samples[{i}]: {e}"))
            })
            .collect()
    }
}

/// `[plugin]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestPlugin {
    /// Package name.
    pub name: String,
    /// World it implements.
    pub kind: PluginKind,
    /// One line for operators and auditors.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[requests]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// Destinations (grant syntax), or `operator-chosen`.
    #[serde(default)]
    pub http: Vec<String>,
    /// Secret names, or `operator-chosen` (`operator-chosen-optional` when none is required).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Whether the plugin reads the wall clock.
    #[serde(default)]
    pub clock: bool,
    /// OAuth credential names, or `operator-chosen` (`operator-chosen-optional` when none is
    /// required).
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Event types the plugin handles (globs), for operators and auditors.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Event types the plugin emits: what a transform derives (not what it maps 1:1), every event a
    /// source decodes. Each must be granted (`grants.emits`); the host refuses other types.
    #[serde(default)]
    pub emits: Vec<String>,
    /// The plugin's configuration keys and what they mean, for operators and auditors.
    #[serde(default)]
    pub config: toml::Table,
    /// Limits the plugin needs to work (each must be granted at least this much).
    #[serde(default)]
    pub limits: RequestedLimits,
    /// The plugin keeps state in kv that two concurrent calls could both read and overwrite
    /// (running totals, windows, balances): the host then calls it for one event at a time.
    /// Not a capability; nothing to grant.
    #[serde(default)]
    pub serial: bool,
}

/// `[requests.limits]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    /// Wall-clock per call, ms.
    pub deadline_ms: Option<u64>,
    /// Linear memory, MiB.
    pub memory_mib: Option<u32>,
    /// kv bytes.
    pub kv_quota_bytes: Option<u64>,
    /// Outbound requests per event.
    pub max_http_calls: Option<u32>,
}

/// Finds the manifest of a component: embedded section first, then the file beside it.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Option<Manifest>, String> {
    let mut embedded = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::CustomSection(reader)) = payload
            && reader.name() == SECTION
        {
            embedded = Some(reader.data().to_vec());
            break;
        }
    }
    let (text, origin) = match embedded {
        Some(data) => (
            String::from_utf8(data).map_err(|_| "the embedded manifest is not UTF-8".to_owned())?,
            "embedded manifest".to_owned(),
        ),
        None => {
            let beside = path.with_extension("manifest.toml");
            match std::fs::read_to_string(&beside) {
                Ok(text) => (text, beside.display().to_string()),
                Err(_) => return Ok(None),
            }
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{origin}: {}", e.message().trim()))
}

/// What the check found: over-grants (allowed, reported).
#[derive(Debug, Default, Clone, Serialize)]
pub struct GrantCheck {
    /// Grants the plugin did not request.
    pub over_grants: Vec<String>,
}

/// Checks that every request is granted; returns the over-grants, or the first missing grant.
pub fn check(plugin: &PluginConfig, manifest: &Manifest) -> Result<GrantCheck, String> {
    let name = &plugin.name;
    let r = &manifest.requests;
    if let Some(p) = &manifest.plugin
        && p.kind != plugin.kind
    {
        return Err(format!(
            "plugin `{name}`: the component is a {} but the config says kind = \"{}\"; fix `kind`",
            p.kind.name(),
            plugin.kind.name()
        ));
    }
    let mut over = Vec::new();
    let operator_http = r.http.iter().any(|h| is_operator_chosen(h));
    if r.http.iter().any(|h| h == OPERATOR_CHOSEN) && plugin.grants.http.is_empty() {
        return Err(format!(
            "plugin `{name}` requests outbound HTTP to destinations you choose, but none is granted; \
             add grants.http = [\"POST https://host/path\"] (the destination in its config) to its [[plugins]] entry"
        ));
    }
    let requested: Vec<HttpGrant> = r
        .http
        .iter()
        .filter(|h| !is_operator_chosen(h))
        .map(|h| {
            h.parse::<HttpGrant>()
                .map_err(|e| format!("plugin `{name}`'s manifest: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for want in &requested {
        if !plugin.grants.http.iter().any(|g| same_destination(g, want)) {
            return Err(format!(
                "plugin `{name}` requests {}, which is not granted; add \"{}\" to grants.http in its [[plugins]] entry",
                want.text, want.text
            ));
        }
    }
    if !operator_http {
        for g in &plugin.grants.http {
            if !requested.iter().any(|want| same_destination(g, want)) {
                over.push(format!("http {} (not requested)", g.text));
            }
        }
    }
    let operator_secrets = r.secrets.iter().any(|s| is_operator_chosen(s));
    if r.secrets.iter().any(|s| s == OPERATOR_CHOSEN) && plugin.secrets.is_empty() {
        return Err(format!(
            "plugin `{name}` requests a secret you name in its config, but none is granted; add secrets = [\"NAME\"] to its [[plugins]] entry"
        ));
    }
    for want in r.secrets.iter().filter(|s| !is_operator_chosen(s)) {
        if !plugin.secrets.contains(want) {
            return Err(format!(
                "plugin `{name}` requests secret `{want}`, which is not granted; add \"{want}\" to secrets in its [[plugins]] entry"
            ));
        }
    }
    if !operator_secrets {
        over.extend(
            plugin
                .secrets
                .iter()
                .filter(|s| !r.secrets.contains(s))
                .map(|s| format!("secret {s} (not requested)")),
        );
    }
    if r.credentials.iter().any(|c| c == OPERATOR_CHOSEN) && plugin.grants.credentials.is_empty() {
        return Err(format!(
            "plugin `{name}` requests an OAuth credential you choose, but none is granted; add credentials = [\"NAME\"] to its [plugins.grants]"
        ));
    }
    for want in r.credentials.iter().filter(|c| !is_operator_chosen(c)) {
        if !plugin.grants.credentials.contains(want) {
            return Err(format!(
                "plugin `{name}` requests credential `{want}`, which is not granted; add \"{want}\" to credentials in its [plugins.grants]"
            ));
        }
    }
    if !r.credentials.iter().any(|c| is_operator_chosen(c)) {
        over.extend(
            plugin
                .grants
                .credentials
                .iter()
                .filter(|c| !r.credentials.contains(c))
                .map(|c| format!("credential {c} (not requested: its tokens would ride on this plugin's requests)")),
        );
    }
    over.extend(wider_than_needed(plugin, &requested));
    for want in &r.emits {
        if !plugin.grants.emits.iter().any(|g| glob_match(g, want)) {
            return Err(format!(
                "plugin `{name}` requests to emit events of type `{want}`, which is not granted; add \"{want}\" to emits in its [plugins.grants]"
            ));
        }
    }
    over.extend(
        plugin
            .grants
            .emits
            .iter()
            .filter(|g| !r.emits.iter().any(|want| glob_match(g, want)))
            .map(|g| format!("emits {g} (not requested)")),
    );
    if r.clock && !plugin.grants.clock {
        return Err(format!(
            "plugin `{name}` requests the wall clock, which is not granted; add clock = true to its [plugins.grants]"
        ));
    }
    if plugin.grants.clock && !r.clock {
        over.push("clock (not requested)".into());
    }
    let l = &plugin.limits;
    let short = |what: &str, want: String, have: String| {
        format!(
            "plugin `{name}` needs limits.{what} = {want} but is granted {have}; set limits.{what} = {want} in its [[plugins]] entry"
        )
    };
    if let Some(want) = r.limits.deadline_ms.filter(|w| *w > l.deadline_ms) {
        return Err(short("deadline_ms", want.to_string(), l.deadline_ms.to_string()));
    }
    if let Some(want) = r.limits.memory_mib.filter(|w| *w > l.memory_mib) {
        return Err(short("memory_mib", want.to_string(), l.memory_mib.to_string()));
    }
    if let Some(want) = r.limits.kv_quota_bytes.filter(|w| *w > l.kv_quota_bytes) {
        return Err(short("kv_quota_bytes", want.to_string(), l.kv_quota_bytes.to_string()));
    }
    if let Some(want) = r.limits.max_http_calls.filter(|w| *w > l.max_http_calls) {
        return Err(short("max_http_calls", want.to_string(), l.max_http_calls.to_string()));
    }
    if let Some(want) = r.limits.max_http_calls
        && l.max_http_calls > want.saturating_mul(2)
        && l.max_http_calls - want >= 4
    {
        over.push(format!(
            "limits.max_http_calls {} (requested {want}: set limits.max_http_calls = {want})",
            l.max_http_calls
        ));
    }
    Ok(GrantCheck { over_grants: over })
}

/// HTTP grants wider than the plugin needs: plain `http://` beyond loopback (requests, tokens and
/// secrets cross the network unencrypted), and a whole host (`/`) where the manifest or the
/// plugin's configuration names exact paths on it.
fn wider_than_needed(plugin: &PluginConfig, requested: &[HttpGrant]) -> Vec<String> {
    let mut named_paths: Vec<(String, String)> = requested
        .iter()
        .filter(|r| r.path_prefix != "/")
        .map(|r| (r.host.clone(), r.path_prefix.clone()))
        .collect();
    collect_urls(&toml::Value::Table(plugin.config.clone()), &mut named_paths);
    let mut out = Vec::new();
    for g in &plugin.grants.http {
        let loopback = g.host == "localhost" || g.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if g.scheme == "http" && !loopback {
            out.push(format!(
                "http {} (plain http:// beyond loopback: requests, tokens and secrets cross the network unencrypted)",
                g.text
            ));
        }
        if g.path_prefix == "/"
            && let Some((_, path)) = named_paths.iter().find(|(host, _)| *host == g.host)
        {
            out.push(format!(
                "http {} (the whole host, where only {path} is named: grant that path)",
                g.text
            ));
        }
    }
    out
}

/// `(host, path)` of every `http(s)://` URL among a configuration's string values.
fn collect_urls(value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(s) => {
            let text = s.split_whitespace().last().unwrap_or(s);
            if let Ok(uri) = text.parse::<http::Uri>()
                && matches!(uri.scheme_str(), Some("http" | "https"))
                && let Some(host) = uri.host()
                && uri.path() != "/"
                && !uri.path().is_empty()
            {
                out.push((
                    host.trim_matches(['[', ']']).to_ascii_lowercase(),
                    uri.path().to_owned(),
                ));
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| collect_urls(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| collect_urls(v, out)),
        _ => {}
    }
}

fn same_destination(a: &HttpGrant, b: &HttpGrant) -> bool {
    a.scheme == b.scheme
        && a.host == b.host
        && a.port == b.port
        && a.path_prefix == b.path_prefix
        && a.methods == b.methods
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(grants: &str) -> PluginConfig {
        let text = format!("name = \"restock\"\nkind = \"transform\"\npath = \"r.wasm\"\n[grants]\n{grants}\n");
        toml::from_str(&text).unwrap()
    }

    fn requesting(emits: &[&str]) -> Manifest {
        Manifest {
            requests: Requests {
                emits: emits.iter().map(|t| (*t).to_owned()).collect(),
                ..Requests::default()
            },
            ..Manifest::default()
        }
    }

    #[test]
    fn a_plugin_requesting_an_ungranted_type_is_refused_naming_the_grant() {
        let error = check(&plugin(""), &requesting(&["pos.restock.suggested.v1"])).unwrap_err();
        assert_eq!(
            error,
            "plugin `restock` requests to emit events of type `pos.restock.suggested.v1`, which is not granted; add \"pos.restock.suggested.v1\" to emits in its [plugins.grants]"
        );
        let error = check(
            &plugin("emits = [\"pos.anomaly.*\"]"),
            &requesting(&["pos.restock.suggested.v1"]),
        )
        .unwrap_err();
        assert!(
            error.contains("`pos.restock.suggested.v1`, which is not granted"),
            "{error}"
        );
    }

    #[test]
    fn granted_emits_load_and_broader_grants_than_requested_are_reported() {
        let checked = check(
            &plugin("emits = [\"pos.restock.*\", \"pos.sale.*\"]"),
            &requesting(&["pos.restock.suggested.v1"]),
        )
        .unwrap();
        assert_eq!(checked.over_grants, vec!["emits pos.sale.* (not requested)".to_owned()]);
    }

    #[test]
    fn an_upgrade_that_emits_a_new_type_needs_approval() {
        let old = requesting(&["pos.restock.suggested.v1"]).requests;
        let new = requesting(&["pos.restock.suggested.v1", "pos.sale.completed.v1"]).requests;
        assert_eq!(
            crate::plugins::guard::escalations(&old, &new),
            vec!["+ emits pos.sale.completed.v1".to_owned()]
        );
    }
}
