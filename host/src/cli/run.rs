//! `kaunter plugin run FILE.wasm --event sample.json`: the sandbox. Runs a transform or
//! connector once per sample event (a source once per `--webhook` request), exactly as the host would (same engine, limits, grants and
//! egress checkpoint), but outbound HTTP is captured instead of sent (answered from canned
//! responses) and kv writes stay in memory. Prints the outputs, the captured requests (injected
//! credentials redacted), time, fuel and memory. `--live` sends for real, still through the
//! checkpoint.
//!
//! Grants come from the component's manifest (plus `--allow`), or, with `--host-config FILE --as
//! NAME`, from that plugin's entry in a host configuration (grants, secrets, credentials,
//! config and limits), so an operator can try a new build exactly as it would be deployed.

use crate::config::{Config, GrantsConfig, LimitsConfig, PluginConfig, PluginKind, SecretRef};
use crate::credentials::Credentials;
use crate::egress::{CannedResponses, Egress, HttpGrant};
use crate::engine::bindings::{DeliveryContext, DeliveryError, WebhookRequest};
use crate::engine::emits;
use crate::engine::{CallReport, Runtime};
use crate::plugins::manifest::{self, is_operator_chosen};
use crate::plugins::registry::Registry;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use anyhow::Context as _;
use clap::Args;
use kaunter_model::{Defaults, Dialect, Event};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `kaunter plugin run`.
#[derive(Args)]
pub struct RunArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// Sample event(s): one event or a JSON array (canonical POS JSON or CloudEvents).
    #[arg(long, required_unless_present = "webhook", conflicts_with = "webhook")]
    event: Option<PathBuf>,
    /// For a source: the inbound webhook(s), a JSON object or array of
    /// {"method", "path", "headers", "body" | "body_base64"}.
    #[arg(long)]
    webhook: Option<PathBuf>,
    /// The plugin's own configuration (TOML or JSON object), as `[plugins.config]` would give it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Canned responses for captured requests: a JSON array of {"match", "status", "headers", "body"};
    /// answers with the same "match" are served in order, the last one repeating.
    #[arg(long)]
    responses: Option<PathBuf>,
    /// Grant an outbound destination, as in grants.http (repeatable), e.g. "POST http://erp.example/hooks".
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// A secret value, NAME=VALUE or NAME:ENCODING=VALUE with ENCODING auto, text, base64 or hex
    /// as in [secrets] (repeatable). In the sandbox a secret may go, as `$SECRET(NAME)`, to any
    /// destination the run allows.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// World, when the manifest does not say.
    #[arg(long, value_parser = ["transform", "connector", "source"])]
    kind: Option<String>,
    /// Take grants, secrets, credentials, config and limits from this host configuration...
    #[arg(long, requires = "as_plugin")]
    host_config: Option<PathBuf>,
    /// ...for this plugin entry.
    #[arg(long = "as", requires = "host_config")]
    as_plugin: Option<String>,
    /// Send requests for real (through the egress checkpoint) instead of capturing them.
    #[arg(long)]
    live: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the sandbox.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let manifest = manifest::read(&args.file, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: the manifest is invalid: {e}", args.file.display()))?
        .unwrap_or_default();
    let inputs = match (&args.event, &args.webhook) {
        (Some(path), _) => read_events(path)?
            .into_iter()
            .map(|e| Input::Event(Box::new(e)))
            .collect(),
        (None, Some(path)) => read_webhooks(path)?.into_iter().map(Input::Webhook).collect::<Vec<_>>(),
        (None, None) => anyhow::bail!("pass --event FILE (transforms, connectors) or --webhook FILE (sources)"),
    };
    let config = match (&args.host_config, &args.as_plugin) {
        (Some(path), Some(name)) => host_plugin_config(path, name, &args)?,
        _ => standalone_config(&args, &manifest)?,
    };
    let name = config.plugins[0].name.clone();
    let work = tempfile::tempdir().context("creating a scratch directory")?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(work.path(), Duration::from_micros(200), 64)?);
    let cache = std::env::temp_dir().join("kaunter-sandbox-cache");
    let runtime = Runtime::new(cache, true)?;
    let credentials = Credentials::new(&config, store.clone())?;
    let registry = Registry::new(
        runtime,
        store.clone(),
        Egress::new(
            Duration::from_secs(10),
            crate::net::tls::client_config(&config.server.extra_ca_files, &config.base_dir)?,
        ),
        credentials,
        work.path().to_path_buf(),
    );
    let version = registry
        // A manifest beside the component (not embedded) travels with it, samples included.
        .register(
            &config,
            &name,
            bytes,
            std::fs::read_to_string(args.file.with_extension("manifest.toml")).ok(),
            "sandbox",
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let plugin = if args.live {
        let plugin = registry.instantiate(&config, &version, false)?;
        // Sent for real, and kept (with the answer's status) to be shown like captured ones.
        plugin
            .context()
            .egress
            .record
            .store(true, std::sync::atomic::Ordering::Relaxed);
        plugin
    } else {
        let canned = match &args.responses {
            Some(path) => CannedResponses::parse(
                &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            None => CannedResponses::default(),
        };
        registry.sandbox(&config, &version, canned)?
    };
    let mode = if args.live {
        "live: requests are sent, through the egress checkpoint"
    } else {
        "sandbox: requests are captured, not sent"
    };
    let mut runs = Vec::new();
    // What the host would let through, as it would change it (derived sources), and what it
    // would refuse.
    let grants = plugin.emit_grants().clone();
    let as_events = |events: Vec<Event>, refused: Vec<String>| {
        let mut out = json!({ "events": events.iter().map(Event::to_json).collect::<Vec<_>>() });
        if !refused.is_empty() {
            out["refused"] = json!(refused);
        }
        out
    };
    for (i, input) in inputs.into_iter().enumerate() {
        let (label, (outcome, report)) = match (input, plugin.kind) {
            (Input::Webhook(request), PluginKind::Source) => {
                let label = format!("webhook {i} ({} {})", request.method, request.path);
                let (result, report) = plugin.decode_reported(&request, &label).await;
                let outcome = result.map(|out| {
                    let (events, refused): (Vec<Event>, Vec<String>) =
                        out.into_iter()
                            .map(Event::from)
                            .fold((Vec::new(), Vec::new()), |(mut ok, mut no), e| {
                                match emits::check_source_event(&name, &grants, &e) {
                                    Ok(()) => ok.push(e),
                                    Err(reason) => no.push(reason),
                                }
                                (ok, no)
                            });
                    as_events(events, refused)
                });
                (json!({ "id": label, "type": "webhook" }), (outcome, report))
            }
            (Input::Event(event), PluginKind::Transform) => {
                let label = json!({ "id": event.id, "type": event.ty });
                let parent = emits::Parent::of(&event);
                let (result, report) = plugin.handle_reported(&(*event).into()).await;
                let outcome = result.and_then(|out| {
                    let out = out.into_iter().map(Event::from).collect();
                    emits::check_transform_outputs(&name, &grants, &parent, out)
                        .map(|c| as_events(c.events, c.refused))
                        .map_err(crate::engine::CallError::Denied)
                });
                (label, (outcome, report))
            }
            (Input::Event(event), PluginKind::Connector) => {
                let label = json!({ "id": event.id, "type": event.ty });
                let context = DeliveryContext {
                    idempotency_key: crate::store::idempotency_key(&event.source, &event.id, "sandbox"),
                    sink: "sandbox".into(),
                    attempt: 1,
                };
                let (result, report) = plugin.deliver_reported(&(*event).into(), &context).await;
                // The host counts "the target already had it" as delivered: so does the sandbox.
                let outcome = match result {
                    Ok(r) => Ok(json!({ "delivered": { "status": r.status, "remote_id": r.remote_id } })),
                    Err(crate::engine::CallError::Delivery(DeliveryError::ConflictIsSuccess(note))) => {
                        Ok(json!({ "delivered": { "already_there": true, "note": note } }))
                    }
                    Err(e) => Err(e),
                };
                (label, (outcome, report))
            }
            (Input::Event(_), PluginKind::Source) => anyhow::bail!(
                "{} is a source: give it inbound webhooks with --webhook FILE, not --event",
                version.label()
            ),
            (Input::Webhook(_), kind) => anyhow::bail!(
                "{} is a {}: --webhook is for sources; give it events with --event FILE",
                version.label(),
                kind.name()
            ),
        };
        runs.push(run_json(label, &outcome, &report, plugin.kind == PluginKind::Connector));
    }
    let failed = runs
        .iter()
        .any(|r| r["outcome"].get("error").is_some() || r["outcome"].get("refused").is_some());
    if args.json {
        let out = json!({ "plugin": version.label(), "kind": plugin.kind, "mode": mode, "runs": runs });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{} ({:?}) — {mode}", version.label(), plugin.kind);
        for line in &version.smoke {
            println!("manifest sample: {line}");
        }
        if !version.smoke.is_empty() {
            println!(
                "  (manifest samples run when a version is registered, with every request captured and answered `200 {{}}`, never sent: their outcomes say how the plugin reads that answer, not what a real target would say)"
            );
        }
        for r in &runs {
            print_run(r);
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// What one sandbox call is given.
enum Input {
    /// An event, for a transform or connector.
    Event(Box<Event>),
    /// An inbound webhook, for a source.
    Webhook(WebhookRequest),
}

fn run_json(
    input: Value,
    outcome: &Result<Value, crate::engine::CallError>,
    report: &CallReport,
    connector: bool,
) -> Value {
    json!({
        "event": input,
        "outcome": match outcome {
            Ok(v) => v.clone(),
            Err(e) => json!({ "error": e.kind(), "message": e.to_string(), "host": host_treats(e, connector) }),
        },
        "requests": report.requests,
        "stats": stats(report),
    })
}

/// What a running host does with an event after this failure, in the words `plugin run` prints.
fn host_treats(e: &crate::engine::CallError, connector: bool) -> &'static str {
    use crate::engine::CallError;
    use crate::engine::bindings::PluginError;
    match e {
        CallError::Delivery(DeliveryError::Retry(_)) => "retried with backoff (no sooner than the hint)",
        CallError::Delivery(DeliveryError::Throttled(_)) => "retried after the hint; the whole sink waits meanwhile",
        CallError::Delivery(DeliveryError::Rejected(_)) => "dead-lettered at once",
        CallError::Delivery(DeliveryError::Disable(_)) => {
            "the sink is paused until an operator resumes it; the event waits"
        }
        CallError::Delivery(DeliveryError::ConflictIsSuccess(_)) => "counted as delivered",
        // A connector waiting on its target may outlast the deadline: worth another attempt.
        CallError::Deadline(_) | CallError::Instantiate(_) | CallError::NoTurn(_) if connector => {
            "retried with backoff"
        }
        CallError::Plugin(PluginError::Transient(_)) => "retried a few times in line, then dead-lettered on this route",
        _ if connector => "dead-lettered at once",
        _ => "dead-lettered on this route",
    }
}

/// Reads `--webhook`: one request or an array, as `{"method", "path", "headers", "body"}`.
fn read_webhooks(path: &std::path::Path) -> anyhow::Result<Vec<WebhookRequest>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
    let list = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            crate::ingress::webhook_request_from_json(v)
                .map_err(|e| anyhow::anyhow!("{} request {i}: {e}", path.display()))
        })
        .collect()
}

fn stats(report: &CallReport) -> Value {
    let deadline_ms = report.deadline.as_millis() as u64;
    json!({
        "time_ms": report.elapsed.as_secs_f64() * 1000.0,
        "deadline_ms": deadline_ms,
        // How much of its deadline the call used: a connector near 100% under a quiet vendor
        // dead-letters under load (raise `limits.deadline_ms`, or make fewer calls).
        "deadline_used_percent": (report.elapsed.as_secs_f64() * 1000.0 * 100.0 / deadline_ms.max(1) as f64).round(),
        "http_calls": report.http_calls,
        "fuel": report.fuel_used,
        "memory_bytes": report.peak_memory_bytes,
    })
}

fn print_run(r: &Value) {
    let (id, ty) = (
        r["event"]["id"].as_str().unwrap_or(""),
        r["event"]["type"].as_str().unwrap_or(""),
    );
    if ty == "webhook" {
        println!("\n{id}");
    } else {
        println!("\nevent {id} ({ty})");
    }
    let outcome = &r["outcome"];
    if let Some(kind) = outcome["error"].as_str() {
        println!("  failed ({kind}): {}", outcome["message"].as_str().unwrap_or(""));
        println!("  a host would: {}", outcome["host"].as_str().unwrap_or(""));
    } else if let Some(events) = outcome["events"].as_array() {
        println!("  output: {} event(s)", events.len());
        for e in events {
            let pretty = serde_json::to_string_pretty(e).unwrap_or_default();
            println!("    {}", pretty.replace('\n', "\n    "));
        }
        for reason in outcome["refused"].as_array().into_iter().flatten() {
            println!(
                "  REFUSED (the host would dead-letter it): {}",
                reason.as_str().unwrap_or("")
            );
        }
    } else if outcome["delivered"]["already_there"] == true {
        let note = outcome["delivered"]["note"]
            .as_str()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        println!("  delivered (the target already had it{note}); a host counts it as delivered");
    } else {
        println!("  delivered: {}", outcome["delivered"]);
    }
    let requests = r["requests"].as_array().cloned().unwrap_or_default();
    println!("  requests: {}", requests.len());
    for q in requests {
        println!(
            "    {} {} → {}",
            q["method"].as_str().unwrap_or(""),
            q["url"].as_str().unwrap_or(""),
            q["status"]
        );
        for h in q["headers"].as_array().into_iter().flatten() {
            println!("      {}: {}", h[0].as_str().unwrap_or(""), h[1].as_str().unwrap_or(""));
        }
        println!("      {}", q["body"].as_str().unwrap_or(""));
    }
    let s = &r["stats"];
    println!(
        "  time {:.2} ms ({}% of the {} ms deadline)  fuel {}  memory {:.1} MiB",
        s["time_ms"].as_f64().unwrap_or(0.0),
        s["deadline_used_percent"],
        s["deadline_ms"],
        s["fuel"].as_u64().map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
        s["memory_bytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
    if s["deadline_used_percent"].as_f64().unwrap_or(0.0) >= 50.0 {
        println!(
            "  this call used {}% of its deadline with an idle target: under load it may be stopped and retried; \
             raise limits.deadline_ms (or make fewer outbound calls)",
            s["deadline_used_percent"]
        );
    }
}

fn read_events(path: &std::path::Path) -> anyhow::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
    let list = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let dialect = if v.get("specversion").is_some() {
                Dialect::CloudEvents
            } else {
                Dialect::Canonical
            };
            let defaults = Defaults {
                id: format!("sandbox-{i}"),
                now: chrono::Utc::now().to_rfc3339(),
            };
            Event::from_json(v, dialect, &defaults).map_err(|e| anyhow::anyhow!("{} event {i}: {e}", path.display()))
        })
        .collect()
}

fn plugin_config(path: &std::path::Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        let value: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::Table::try_from(value).map_err(|e| anyhow::anyhow!("{}: must be a JSON object: {e}", path.display()))
    } else {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))
    }
}

/// The plugin as the manifest describes it, granted what it requests plus `--allow`.
fn standalone_config(args: &RunArgs, manifest: &manifest::Manifest) -> anyhow::Result<Config> {
    let r = &manifest.requests;
    let kind = match (&args.kind, &manifest.plugin) {
        (Some(k), _) if k == "connector" => PluginKind::Connector,
        (Some(k), _) if k == "source" => PluginKind::Source,
        (Some(_), _) => PluginKind::Transform,
        (None, Some(p)) => p.kind,
        (None, None) => {
            anyhow::bail!("the component has no manifest saying what it is; pass --kind transform|connector|source")
        }
    };
    let name = manifest
        .plugin
        .as_ref()
        .map(|p| p.name.clone())
        .or_else(|| args.file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "plugin".into());
    let mut http: Vec<HttpGrant> = r
        .http
        .iter()
        .filter(|h| !is_operator_chosen(h))
        .map(|h| h.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("the manifest's http request: {e}"))?;
    for a in &args.allow {
        http.push(a.parse().map_err(|e| anyhow::anyhow!("--allow {a:?}: {e}"))?);
    }
    let mut secrets = std::collections::BTreeMap::new();
    for s in &args.secrets {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--secret takes NAME=VALUE or NAME:ENCODING=VALUE, got {s:?}"))?;
        let (name, encoding) = match k.split_once(':') {
            None => (k, crate::config::SecretEncoding::Auto),
            Some((name, encoding)) => (
                name,
                serde_json::from_value(Value::String(encoding.to_owned())).map_err(|_| {
                    anyhow::anyhow!("--secret {k}=…: encoding `{encoding}` is not one of auto, text, base64, hex")
                })?,
            ),
        };
        let secret = crate::config::NamedSecret {
            source: SecretRef::Value(v.to_owned()),
            encoding,
            destinations: http.clone(),
        };
        secrets.insert(name.to_owned(), secret);
    }
    for want in r.secrets.iter().filter(|s| !is_operator_chosen(s)) {
        secrets
            .entry(want.clone())
            .or_insert_with(|| SecretRef::Value(format!("sandbox-secret-{want}")).into());
    }
    let mut limits = LimitsConfig::default();
    limits.deadline_ms = limits.deadline_ms.max(r.limits.deadline_ms.unwrap_or(0));
    limits.memory_mib = limits.memory_mib.max(r.limits.memory_mib.unwrap_or(0));
    limits.kv_quota_bytes = limits.kv_quota_bytes.max(r.limits.kv_quota_bytes.unwrap_or(0));
    limits.max_http_calls = limits.max_http_calls.max(r.limits.max_http_calls.unwrap_or(0));
    if kind == PluginKind::Connector && r.limits.deadline_ms.is_none() {
        // What a host gives a connector whose operator leaves `deadline_ms` unset.
        limits.deadline_ms = crate::config::connector_deadline_ms(&limits);
    }
    let plugin = PluginConfig {
        name,
        kind,
        path: args.file.clone(),
        config: args
            .config
            .as_deref()
            .map(plugin_config)
            .transpose()?
            .unwrap_or_default(),
        secrets: secrets.keys().cloned().collect(),
        grants: GrantsConfig {
            http,
            credentials: Vec::new(),
            clock: r.clock,
            emits: r.emits.clone(),
            // The operator decides which sources a source speaks for; any outside the derived
            // namespace will do here (`--host-config` runs under the operator's grants).
            sources: if kind == PluginKind::Source {
                vec!["*".into()]
            } else {
                Vec::new()
            },
            no_traceparent: Vec::new(),
        },
        limits,
    };
    let mut config = Config::parse("", "sandbox", PathBuf::from("."))?;
    config.secrets = secrets;
    config.plugins = vec![plugin];
    Ok(config)
}

/// The plugin entry `name` of a host configuration, running `args.file` instead of its path.
fn host_plugin_config(path: &std::path::Path, name: &str, args: &RunArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(path)?;
    let mut plugin = config
        .plugin(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{} has no plugin `{name}`", path.display()))?;
    plugin.path = std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone());
    if let Some(c) = &args.config {
        plugin.config = plugin_config(c)?;
    }
    for a in &args.allow {
        plugin
            .grants
            .http
            .push(a.parse().map_err(|e| anyhow::anyhow!("--allow {a:?}: {e}"))?);
    }
    config.plugins = vec![plugin];
    config.sinks.clear();
    config.routes.clear();
    Ok(config)
}
