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
    /// List sinks and whether they are paused.
    List,
    /// Resume a sink paused by its endpoint (HTTP 410) or an operator.
    Resume {
        /// Sink name.
        name: String,
    },
}

async fn call(target: &Target, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let key = target
        .api_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no API key: pass --api-key or set KAUNTER_API_KEY to an admin key"))?;
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = client.request(method, &url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
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
            for s in value["sinks"].as_array().cloned().unwrap_or_default() {
                let state = if s["paused"].as_bool().unwrap_or(false) {
                    "paused"
                } else {
                    "running"
                };
                println!("{:<24} {state}", s["name"].as_str().unwrap_or(""));
            }
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
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn stats(target: &Target) -> anyhow::Result<ExitCode> {
    let value = call(target, reqwest::Method::GET, "/v1/admin/stats", None).await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}
