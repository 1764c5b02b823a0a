//! CLI commands that operate a running host through its admin API.

use clap::{Args, Subcommand};
use serde_json::Value;
use std::process::ExitCode;

/// Which host to talk to, and with which key.
#[derive(Args)]
pub struct Target {
    /// Base URL of the host.
    #[arg(long, env = "KAUNTER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Admin API key.
    #[arg(long, env = "KAUNTER_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
}

/// `kaunter dlq …`.
#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead letters (newest first).
    List {
        /// Include entries already replayed.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replay dead letters by id, or all since a time.
    Replay {
        /// Entry ids (from `kaunter dlq list`).
        ids: Vec<i64>,
        /// Replay every entry dead-lettered at or after this RFC 3339 time.
        #[arg(long, conflicts_with = "ids")]
        since: Option<String>,
    },
}

/// `kaunter sink …`.
#[derive(Subcommand)]
pub enum SinkCommand {
    /// List sinks: paused or running, open and parked deliveries in the log, and held in memory.
    List,
    /// Resume a sink paused by its endpoint (HTTP 410) or an operator.
    Resume {
        /// Sink name.
        name: String,
    },
    /// Pause a sink: attempts in flight finish, nothing new is sent until it is resumed.
    Pause {
        /// Sink name.
        name: String,
    },
    /// Send a sink's parked deliveries (set aside past its `max_backlog`), oldest first.
    Unpark {
        /// Sink name.
        name: String,
    },
}

/// `kaunter config …` against a running host.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a candidate configuration on the running host without applying it: every problem
    /// with its field, and what applying it would change.
    Validate {
        /// The candidate file (default: the file the host was started with).
        file: Option<std::path::PathBuf>,
    },
    /// Re-read the host's configuration file and apply what changed (like SIGHUP).
    Reload,
}

pub(super) async fn call(
    target: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let key = target
        .api_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no API key: pass --api-key or set KAUNTER_API_KEY to an admin key"))?;
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = client.request(method, &url).bearer_auth(key);
    match body {
        Some(Value::String(text)) => request = request.body(text),
        Some(body) => request = request.json(&body),
        None => {}
    }
    #[allow(clippy::disallowed_methods)]
    // Operator CLI talking to kaunter's own API, not plugin egress.
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!("cannot reach kaunter at {url}: {e} (is it running? check --url / KAUNTER_URL)")
    })?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("kaunter answered {status}: {message}");
    }
    Ok(value)
}

pub(super) async fn dlq(target: &Target, command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List { all, json } => {
            let value = call(target, reqwest::Method::GET, &format!("/v1/admin/dlq?all={all}"), None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            let entries = value["dead_letters"].as_array().cloned().unwrap_or_default();
            if entries.is_empty() {
                println!("no dead letters");
            }
            for e in entries {
                println!(
                    "#{:<6} {}  event {}  {} → {}  {}@{}  attempts {}{}\n        {}",
                    e["id"],
                    e["failed_at"].as_str().unwrap_or(""),
                    e["event_id"].as_str().unwrap_or(""),
                    e["route"].as_str().unwrap_or(""),
                    e["sink"].as_str().unwrap_or("(transform)"),
                    e["plugin"].as_str().unwrap_or(""),
                    e["plugin_version"].as_str().unwrap_or(""),
                    e["attempts"],
                    if e["replayed_at"].is_null() {
                        String::new()
                    } else {
                        format!("  replayed {}", e["replayed_at"])
                    },
                    e["error"].as_str().unwrap_or(""),
                );
            }
        }
        DlqCommand::Replay { ids, since } => {
            let body = match since {
                Some(since) => serde_json::json!({ "since": since }),
                None if ids.is_empty() => {
                    anyhow::bail!("name entry ids to replay, or --since TIME")
                }
                None => serde_json::json!({ "ids": ids }),
            };
            let value = call(target, reqwest::Method::POST, "/v1/admin/dlq/replay", Some(body)).await?;
            let replayed = value["replayed"].as_array().map(Vec::len).unwrap_or(0);
            println!("replayed {replayed} dead letter(s): {}", value["replayed"]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn sink(target: &Target, command: SinkCommand) -> anyhow::Result<ExitCode> {
    match command {
        SinkCommand::List => {
            let value = call(target, reqwest::Method::GET, "/v1/admin/sinks", None).await?;
            println!(
                "{:<24} {:<8} {:>10} {:>10} {:>12}",
                "SINK", "STATE", "OPEN", "PARKED", "IN MEMORY"
            );
            for s in value["sinks"].as_array().cloned().unwrap_or_default() {
                let state = if s["paused"].as_bool().unwrap_or(false) {
                    "paused"
                } else {
                    "running"
                };
                println!(
                    "{:<24} {state:<8} {:>10} {:>10} {:>12}",
                    s["name"].as_str().unwrap_or(""),
                    s["open"],
                    s["parked"],
                    format!("{}/{}", s["in_memory"], s["window"]),
                );
            }
        }
        SinkCommand::Pause { name } => {
            call(
                target,
                reqwest::Method::POST,
                &format!("/v1/admin/sinks/{name}/pause"),
                None,
            )
            .await?;
            println!("sink {name} paused");
        }
        SinkCommand::Resume { name } => {
            call(
                target,
                reqwest::Method::POST,
                &format!("/v1/admin/sinks/{name}/resume"),
                None,
            )
            .await?;
            println!("sink {name} resumed");
        }
        SinkCommand::Unpark { name } => {
            let value = call(
                target,
                reqwest::Method::POST,
                &format!("/v1/admin/sinks/{name}/unpark"),
                None,
            )
            .await?;
            println!(
                "sink {name}: {} parked deliveries sent back to its queue",
                value["unparked"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn stats(target: &Target) -> anyhow::Result<ExitCode> {
    let value = call(target, reqwest::Method::GET, "/v1/admin/stats", None).await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

/// `kaunter event show ID`: the event, then one line per sink (state, attempts, when delivered,
/// the remote id and note the connector reported) and its last error, if any.
pub(super) async fn event_show(
    target: &Target,
    id: &str,
    source: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/v1/events/{}", urlencode(id));
    if let Some(source) = source {
        path.push_str(&format!("?source={}", urlencode(source)));
    }
    let value = call(target, reqwest::Method::GET, &path, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let event = &value["event"];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "event {}  {}  from {}  received {}",
        text(&event["id"]),
        text(&event["type"]),
        text(&event["source"]),
        text(&value["received_at"])
    );
    let sinks = value["sinks"].as_array().cloned().unwrap_or_default();
    if sinks.is_empty() {
        println!("  no deliveries: no route sent it anywhere");
    }
    for sink in &sinks {
        let mut line = format!(
            "  {:<16} {:<13} attempts {}",
            text(&sink["sink"]),
            text(&sink["state"]),
            sink["attempts"]
        );
        if let Some(at) = sink["delivered_at"].as_str() {
            line.push_str(&format!("  delivered {at}"));
        }
        if let Some(version) = sink["connector_version"].as_str() {
            line.push_str(&format!("  by {version}"));
        }
        if let Some(remote) = sink["remote_id"].as_str() {
            line.push_str(&format!("  remote id {remote}"));
        }
        println!("{line}");
        if let Some(note) = sink["note"].as_str() {
            println!("      note: {note}");
        }
        if let Some(error) = sink["last_error"].as_str() {
            println!("      last error: {error}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a path segment or query value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn config(target: &Target, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Validate { file } => {
            let text = match &file {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
                }
                None => String::new(),
            };
            let value = call(
                target,
                reqwest::Method::POST,
                "/v1/admin/config/validate",
                Some(Value::String(text)),
            )
            .await?;
            let valid = value["valid"].as_bool().unwrap_or(false);
            for e in value["errors"].as_array().into_iter().flatten() {
                println!(
                    "error  {}: {}",
                    e["field"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
            println!("changes: {}", serde_json::to_string_pretty(&value["changes"])?);
            if !valid {
                println!("invalid: nothing was applied");
                return Ok(ExitCode::FAILURE);
            }
            println!("valid: apply it with `kaunter config reload` (or SIGHUP)");
        }
        ConfigCommand::Reload => {
            let value = call(target, reqwest::Method::POST, "/v1/admin/config/reload", None).await?;
            println!("reloaded {}", value["reloaded"].as_str().unwrap_or(""));
            println!("changes: {}", serde_json::to_string_pretty(&value["changes"])?);
            for w in value["warnings"].as_array().into_iter().flatten() {
                println!("warning: {}", w.as_str().unwrap_or(""));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kaunter shadow report [PLUGIN]`.
pub(super) async fn shadow_report(target: &Target, plugin: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let path = match &plugin {
        Some(p) => format!("/v1/admin/shadow?plugin={p}"),
        None => "/v1/admin/shadow".to_owned(),
    };
    let value = call(target, reqwest::Method::GET, &path, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let reports = value["shadows"].as_array().cloned().unwrap_or_default();
    if reports.is_empty() {
        println!("no shadow comparisons yet (deploy one with `kaunter plugin shadow NAME VERSION`)");
    }
    for r in reports {
        println!(
            "{}: shadow {} vs live {} since {}\n  compared {}  identical {}  different {}  shadow failed {}",
            r["plugin"].as_str().unwrap_or(""),
            r["shadow_version"].as_str().unwrap_or(""),
            r["live_versions"],
            r["since"].as_str().unwrap_or(""),
            r["compared"],
            r["identical"],
            r["different"],
            r["shadow_failed"],
        );
        for d in r["recent_differences"].as_array().into_iter().flatten() {
            println!(
                "  event {} (live {}):",
                d["event_id"].as_str().unwrap_or(""),
                d["live_version"].as_str().unwrap_or("")
            );
            for line in d["differences"].as_array().into_iter().flatten() {
                println!("    {}", line.as_str().unwrap_or(""));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kaunter replay --since T …`: starts a historic replay and shows its progress until done.
pub(super) async fn replay(
    target: &Target,
    since: String,
    route: Option<String>,
    through: Option<String>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let body = serde_json::json!({ "since": since, "route": route, "through": through, "dry_run": dry_run });
    let started = call(target, reqwest::Method::POST, "/v1/admin/replays", Some(body)).await?;
    let id = started["replay"].as_str().unwrap_or_default().to_owned();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let p = call(target, reqwest::Method::GET, &format!("/v1/admin/replays/{id}"), None).await?;
        let (processed, total) = (p["processed"].as_u64().unwrap_or(0), p["total"].as_u64().unwrap_or(0));
        let secs = p["elapsed_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
        let rate = if secs > 0.0 { processed as f64 / secs } else { 0.0 };
        let line = format!(
            "replay {id}: {processed}/{total} events  {rate:.0}/s  deliveries {}  failed {}  derived {}",
            p["deliveries"], p["dead_letters"], p["derived"]
        );
        let done = p["done"].as_bool().unwrap_or(false);
        if interactive {
            print!("\r{line}   ");
            let _ = std::io::stdout().flush();
        } else if done {
            println!("{line}");
        }
        if done {
            if interactive {
                println!();
            }
            if let Some(e) = p["error"].as_str() {
                anyhow::bail!("replay stopped: {e}");
            }
            if dry_run {
                println!("dry run: nothing was committed or sent. First events:");
                println!("{}", serde_json::to_string_pretty(&p["samples"])?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
