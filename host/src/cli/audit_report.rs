//! `kaunter audit`: for each configured plugin, what it may do and what its component can ask for.
//!
//! The imports come from the component's own type (not from anything the plugin says about
//! itself), so the report is true of the binary that will run. Each import is classed by the
//! capability it reaches, and set against the grants in the configuration: imports nothing grants
//! are listed (calls to them find nothing: no directories, no variables, no socket addresses), and
//! so are over-grants (a grant the component cannot use).

use crate::config::{Config, PluginConfig};
use crate::engine::{Runtime, version_of};
use serde::Serialize;
use std::process::ExitCode;
use wasmtime::component::types::ComponentItem;

/// One plugin's audit.
#[derive(Debug, Serialize)]
pub struct PluginAudit {
    /// Name in the config.
    pub name: String,
    /// `name@version`.
    pub label: String,
    /// Full SHA-256 of the component file.
    pub sha256: String,
    /// Component file.
    pub path: String,
    /// `transform`, `connector` or `source`.
    pub kind: String,
    /// Whether the component carries (or sits beside) a manifest.
    pub manifest: bool,
    /// What the manifest requests.
    pub requested: crate::plugins::manifest::Requests,
    /// Granted outbound HTTP destinations.
    pub http_grants: Vec<String>,
    /// Granted secrets (by name).
    pub secret_grants: Vec<String>,
    /// Granted OAuth credentials: where their tokens come from and the only destinations the
    /// egress checkpoint adds them to.
    pub credential_grants: Vec<CredentialGrant>,
    /// Event types (globs) it may emit: what a transform derives, what a source decodes. Other
    /// types are refused (dead-lettered or, for a source, the webhook refused) and audited.
    pub emits_grants: Vec<String>,
    /// Sources (globs) a source plugin's events may carry; a transform's derived events always
    /// carry their input's source plus `/x/{name}`.
    pub source_grants: Vec<String>,
    /// Limits in force.
    pub limits: serde_json::Value,
    /// Every import of the component, with the capability it reaches and whether it is granted.
    pub imports: Vec<ImportAudit>,
    /// Imports that nothing grants.
    pub ungranted_imports: Vec<String>,
    /// Grants the component cannot use.
    pub over_grants: Vec<String>,
}

/// One OAuth credential granted to a plugin.
#[derive(Debug, Serialize)]
pub struct CredentialGrant {
    /// Its name under `[credentials]`.
    pub name: String,
    /// Where the host gets its tokens.
    pub token_url: String,
    /// The destinations (grant syntax) its tokens may be added to; requests elsewhere never carry it.
    pub destinations: Vec<String>,
    /// Whether the plugin's manifest requests it (by name, or as operator-chosen).
    pub requested: bool,
}

/// One import.
#[derive(Debug, Serialize)]
pub struct ImportAudit {
    /// The import name, e.g. `wasi:http/outgoing-handler@0.2.4`.
    pub name: String,
    /// What it reaches.
    pub capability: &'static str,
    /// Where it stands for this plugin.
    pub standing: Standing,
    /// What it does for this plugin, in words.
    pub status: String,
}

/// Where one import stands for one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Something is behind it for this plugin.
    Granted,
    /// The linker provides it, but for this plugin every call finds nothing or is refused.
    NotGranted,
    /// Every component built with a language's standard library imports it (Rust's `std` on
    /// `wasm32-wasip2` does); nothing is behind it, and nothing needs to be.
    Expected,
    /// Only types cross it; there is nothing to call.
    TypesOnly,
    /// The host's linker does not provide it: the plugin fails to load.
    NotProvided,
}

/// Classes an import: (capability, standing, explanation). `callable` is whether the imported
/// interface has any function (an interface of records and variants only has nothing to call).
fn classify(name: &str, callable: bool, plugin: &PluginConfig, config: &Config) -> (&'static str, Standing, String) {
    let iface = name.split('@').next().unwrap_or(name);
    if !callable && iface.starts_with("kaunter:plugin/") {
        return (
            "types only",
            Standing::TypesOnly,
            "no calls: records and variants only".into(),
        );
    }
    let (capability, granted, status) = match iface {
        "wasi:http/outgoing-handler" | "wasi:http/types" => {
            let granted = !plugin.grants.http.is_empty();
            let status = if granted {
                format!(
                    "granted to {}",
                    plugin
                        .grants
                        .http
                        .iter()
                        .map(|g| g.text.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                "NOT granted: every request is refused".into()
            };
            ("outbound HTTP", granted, status)
        }
        "kaunter:plugin/crypto" => {
            let granted = !plugin.secrets.is_empty();
            let status = if granted {
                let sendable: Vec<String> = plugin
                    .secrets
                    .iter()
                    .filter_map(|name| {
                        let to = &config.secrets.get(name)?.destinations;
                        (!to.is_empty()).then(|| {
                            let to: Vec<&str> = to.iter().map(|g| g.text.as_str()).collect();
                            format!("{name} → {}", to.join(", "))
                        })
                    })
                    .collect();
                let sent = if sendable.is_empty() {
                    "none leaves the host".to_owned()
                } else {
                    format!("sent as $SECRET only to: {}", sendable.join("; "))
                };
                format!("secrets by name: {}; {sent}", plugin.secrets.join(", "))
            } else {
                "no secrets granted: only plain SHA-256 works".into()
            };
            ("keyed hashes over secrets", granted, status)
        }
        "kaunter:plugin/kv" => (
            "durable state",
            true,
            format!("own namespace, quota {} bytes", plugin.limits.kv_quota_bytes),
        ),
        "kaunter:plugin/log" => ("host log", true, "always available".into()),
        "kaunter:plugin/config" => ("own configuration", true, "always available".into()),
        "kaunter:plugin/clock" | "wasi:clocks/wall-clock" => {
            if plugin.grants.clock {
                ("wall clock", true, "granted".into())
            } else {
                ("wall clock", false, "NOT granted: reading it fails the event".into())
            }
        }
        "wasi:clocks/monotonic-clock" => ("elapsed time", true, "always available (no date)".into()),
        "kaunter:plugin/types" | "kaunter:plugin/errors" | "kaunter:plugin/delivery" => {
            ("types only", true, "no calls".into())
        }
        "wasi:random/random" | "wasi:random/insecure" | "wasi:random/insecure-seed" => {
            ("randomness", true, "always available".into())
        }
        "wasi:filesystem/preopens" | "wasi:filesystem/types" => {
            return (
                "filesystem",
                Standing::Expected,
                "expected: every Rust component imports it; no directories are opened for plugins".into(),
            );
        }
        "wasi:cli/environment" => {
            return (
                "environment variables",
                Standing::Expected,
                "expected: every Rust component imports it; plugins get an empty environment".into(),
            );
        }
        i if i.starts_with("wasi:sockets/") => {
            ("network sockets", false, "NOT granted: every address is refused".into())
        }
        i if i.starts_with("wasi:cli/") => ("standard streams, exit", true, "stdio is not connected".into()),
        i if i.starts_with("wasi:io/") => ("I/O plumbing", true, "streams of granted capabilities only".into()),
        _ => {
            return (
                "unknown",
                Standing::NotProvided,
                "not provided by kaunter: the plugin would fail to load".into(),
            );
        }
    };
    (
        capability,
        if granted {
            Standing::Granted
        } else {
            Standing::NotGranted
        },
        status,
    )
}

/// Whether an imported item has anything to call: a function, or an instance with a function.
fn callable(item: &ComponentItem, engine: &wasmtime::Engine) -> bool {
    match item {
        ComponentItem::ComponentInstance(instance) => {
            instance.exports(engine).any(|(_, item)| callable(&item.ty, engine))
        }
        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => true,
        ComponentItem::Module(_) | ComponentItem::Component(_) => true,
        ComponentItem::Type(_) | ComponentItem::Resource(_) => false,
    }
}

/// Audits every plugin of a configuration.
pub fn audit_plugins(config: &Config) -> anyhow::Result<Vec<PluginAudit>> {
    let data_dir = config.resolve(&config.server.data_dir);
    let cache = config
        .server
        .cache_dir
        .as_ref()
        .map(|d| config.resolve(d))
        .unwrap_or_else(|| data_dir.join("cache"));
    let runtime = Runtime::new(cache, config.uses_fuel())?;
    let mut out = Vec::new();
    for plugin in &config.plugins {
        let path = config.plugin_path(plugin);
        let (component, digest) = runtime.load_component(&path)?;
        let ty = component.component_type();
        let mut imports = Vec::new();
        let mut ungranted_imports = Vec::new();
        let mut uses_http = false;
        let mut uses_crypto = false;
        // What the linker really provides decides "fails to load", not the table above.
        let link_error = runtime
            .linker()
            .instantiate_pre(&component)
            .err()
            .map(|e| format!("{e:#}"));
        for (name, item) in ty.imports(runtime.engine()) {
            let (capability, mut standing, mut status) =
                classify(name, callable(&item.ty, runtime.engine()), plugin, config);
            if standing == Standing::NotProvided && link_error.is_none() {
                (standing, status) = (Standing::Granted, "provided by the host's linker".into());
            }
            if let Some(error) = link_error.as_ref().filter(|e| e.contains(name)) {
                (standing, status) = (Standing::NotProvided, format!("the plugin fails to load: {error}"));
            }
            uses_http |= capability == "outbound HTTP";
            uses_crypto |= capability == "keyed hashes over secrets";
            if matches!(standing, Standing::NotGranted | Standing::NotProvided) {
                ungranted_imports.push(name.to_owned());
            }
            imports.push(ImportAudit {
                name: name.to_owned(),
                capability,
                standing,
                status,
            });
        }
        let bytes = std::fs::read(&path)?;
        let manifest = crate::plugins::manifest::read(&path, &bytes).map_err(anyhow::Error::msg)?;
        let requested = manifest.clone().unwrap_or_default().requests;
        let mut over_grants = match crate::plugins::manifest::check(plugin, &manifest.clone().unwrap_or_default()) {
            Ok(checked) => checked.over_grants,
            Err(missing) => vec![format!("MISSING GRANT (the host refuses to load it): {missing}")],
        };
        if !uses_http {
            over_grants.retain(|o| !o.starts_with("http "));
            over_grants.extend(
                plugin
                    .grants
                    .http
                    .iter()
                    .map(|g| format!("http {} (the component cannot make HTTP requests)", g.text)),
            );
        }
        if !uses_crypto {
            over_grants.retain(|o| !o.starts_with("secret "));
            // A secret with `for` destinations can still travel as `$SECRET` in HTTP requests.
            let sendable = |s: &String| uses_http && config.secrets.get(s).is_some_and(|n| !n.destinations.is_empty());
            over_grants.extend(
                plugin
                    .secrets
                    .iter()
                    .filter(|s| !sendable(s))
                    .map(|s| format!("secret {s} (the component does not import crypto)")),
            );
        }
        let credential_grants: Vec<CredentialGrant> = plugin
            .grants
            .credentials
            .iter()
            .map(|name| {
                let defined = config.credentials.get(name);
                CredentialGrant {
                    name: name.clone(),
                    token_url: defined.map(|c| c.token_url.clone()).unwrap_or_default(),
                    destinations: defined
                        .map(|c| c.destinations.iter().map(|d| d.text.clone()).collect())
                        .unwrap_or_default(),
                    requested: requested.credentials.contains(name)
                        || requested
                            .credentials
                            .iter()
                            .any(|c| crate::plugins::manifest::is_operator_chosen(c)),
                }
            })
            .collect();
        out.push(PluginAudit {
            name: plugin.name.clone(),
            label: format!("{}@{}", plugin.name, version_of(&digest)),
            sha256: digest,
            path: path.display().to_string(),
            kind: format!("{:?}", plugin.kind).to_lowercase(),
            manifest: manifest.is_some(),
            requested,
            http_grants: plugin.grants.http.iter().map(|g| g.text.clone()).collect(),
            secret_grants: plugin.secrets.clone(),
            credential_grants,
            emits_grants: plugin.grants.emits.clone(),
            source_grants: plugin.grants.sources.clone(),
            limits: serde_json::json!(plugin.limits),
            imports,
            ungranted_imports,
            over_grants,
        });
    }
    Ok(out)
}

/// Prints the report.
pub fn run(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let audits = audit_plugins(config)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&audits)?);
        return Ok(ExitCode::SUCCESS);
    }
    for a in &audits {
        println!("{} ({})", a.label, a.kind);
        println!("  sha256   {}", a.sha256);
        println!("  file     {}", a.path);
        let requests = if a.manifest {
            format!(
                "http {:?}, secrets {:?}, emits {:?}, limits {}",
                a.requested.http,
                a.requested.secrets,
                a.requested.emits,
                serde_json::json!(a.requested.limits)
            )
        } else {
            "no manifest: requests nothing".into()
        };
        println!("  requests {requests}");
        println!(
            "  http     {}",
            if a.http_grants.is_empty() {
                "nothing granted".into()
            } else {
                a.http_grants.join(", ")
            }
        );
        println!(
            "  secrets  {}",
            if a.secret_grants.is_empty() {
                "none".into()
            } else {
                a.secret_grants.join(", ")
            }
        );
        if a.credential_grants.is_empty() {
            println!("  oauth    none");
        }
        for c in &a.credential_grants {
            println!(
                "  oauth    {}: tokens from {}, added only to {}{}",
                c.name,
                c.token_url,
                if c.destinations.is_empty() {
                    "nothing".to_owned()
                } else {
                    c.destinations.join(", ")
                },
                if c.requested {
                    ""
                } else {
                    " (NOT requested by its manifest)"
                }
            );
        }
        if a.kind != "connector" {
            println!("  emits    {}", emits_line(a));
        }
        if a.kind == "source" {
            println!(
                "  sources  {}",
                if a.source_grants.is_empty() {
                    "NOTHING granted: every event it decodes is refused".into()
                } else {
                    format!("{} (its events may carry no other source)", a.source_grants.join(", "))
                }
            );
        }
        println!("  limits   {}", a.limits);
        println!("  imports (from the component's type):");
        for i in &a.imports {
            println!("    {:<46} {:<26} {}", i.name, i.capability, i.status);
        }
        if !a.ungranted_imports.is_empty() {
            println!("  imports nothing grants: {}", a.ungranted_imports.join(", "));
        }
        if !a.over_grants.is_empty() {
            println!("  over-grants: {}", a.over_grants.join("; "));
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// What a transform or source may emit, as the report prints it.
fn emits_line(a: &PluginAudit) -> String {
    let granted = if a.emits_grants.is_empty() {
        "nothing granted".to_owned()
    } else {
        a.emits_grants.join(", ")
    };
    let rule = if a.kind == "transform" {
        format!(
            "derived events of other types are refused; derived events carry their input's source + /x/{}",
            a.name
        )
    } else {
        "events of other types are refused".to_owned()
    };
    format!("{granted} ({rule})")
}
