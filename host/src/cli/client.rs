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

pub(super) async fn sink(target: &Target, command: SinkCommand) -> anyhow::Result<ExitCode> {
    match command {
        SinkCommand::List => {
            let value = call(target, reqwest::Method::GET, "/v1/admin/sinks", None).await?;
            println!(
                "{:<20} {:<8} {:>8} {:>8} {:>12} {:>11} {:>10}",
                "SINK", "STATE", "OPEN", "PARKED", "OLDEST OPEN", "ERRORS 5m", "IN MEMORY"
            );
            let sinks = value["sinks"].as_array().cloned().unwrap_or_default();
            for s in &sinks {
                let oldest = s["oldest_open_age_secs"]
                    .as_i64()
                    .map(|secs| format!("{secs} s"))
                    .unwrap_or_else(|| "-".into());
                let recent = &s["recent"];
                let errors = match recent["failed"].as_u64().unwrap_or(0) + recent["delivered"].as_u64().unwrap_or(0) {
                    0 => "-".to_owned(),
                    _ => format!("{:.0}%", recent["error_rate"].as_f64().unwrap_or(0.0) * 100.0),
                };
                println!(
                    "{:<20} {:<8} {:>8} {:>8} {:>12} {:>11} {:>10}",
                    s["name"].as_str().unwrap_or(""),
                    s["state"].as_str().unwrap_or(""),
                    s["open"],
                    s["parked"],
                    oldest,
                    errors,
                    format!("{}/{}", s["in_memory"], s["window"]),
                );
            }
            for s in &sinks {
                let f = &s["last_failure"];
                if f.is_object() {
                    println!(
                        "{} last error at {}{}: {}",
                        s["name"].as_str().unwrap_or(""),
                        f["at"].as_str().unwrap_or(""),
                        f["destination"].as_str().map(|d| format!(" ({d})")).unwrap_or_default(),
                        f["error"].as_str().unwrap_or("")
                    );
                }
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

/// A configuration diff: each changed field on its own line, then the summary by section.
fn print_changes(changes: &Value) -> anyhow::Result<()> {
    for field in changes["fields"].as_array().into_iter().flatten() {
        println!("change  {}", field.as_str().unwrap_or(""));
    }
    let mut summary = changes.clone();
    if let Some(map) = summary.as_object_mut() {
        map.remove("fields");
    }
    println!("changes: {}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// `kaunter verify [--since T]`: the verdict, its per-sink tally and up to 20 missing
/// deliveries; exit 1 when any is missing.
pub(super) async fn verify(target: &Target, since: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let path = match since {
        Some(since) => format!("/v1/admin/verify?since={}", urlencode(since)),
        None => "/v1/admin/verify".to_owned(),
    };
    let value = call(target, reqwest::Method::GET, &path, None).await?;
    let v = &value["verdict"];
    let missing = v["missing"].as_u64().unwrap_or(0);
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "{} event(s) since {}: {} delivered everywhere, {} in flight, {} dead-lettered, {} waiting to be routed, {} not sent by any route (dropped by a transform or matched by none), {} MISSING a delivery",
            v["events"],
            since.unwrap_or("the start of the log"),
            v["complete"],
            v["in_flight"],
            v["dead_lettered"],
            v["waiting"],
            v["not_sent"],
            missing
        );
        for (sink, t) in v["sinks"].as_object().into_iter().flatten() {
            println!(
                "  {sink:<16} delivered {}  in flight {}  dead-lettered {}  missing {}",
                t["delivered"], t["in_flight"], t["dead_lettered"], t["missing"]
            );
        }
        for m in v["missing_examples"].as_array().into_iter().flatten() {
            println!(
                "  missing: event {} from {} at {}",
                m["id"].as_str().unwrap_or(""),
                m["source"].as_str().unwrap_or(""),
                m["sink"].as_str().unwrap_or("")
            );
        }
        if missing == 0 {
            println!("ok: nothing acknowledged is missing");
        }
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `kaunter stats`: counters since the host started, then the state now, each under its own
/// heading so the two are never confused.
pub(super) async fn stats(target: &Target, json: bool) -> anyhow::Result<ExitCode> {
    let v = call(target, reqwest::Method::GET, "/v1/admin/stats", None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let n = |key: &str| v[key].as_i64().unwrap_or(0);
    let ms = |key: &str| v[key].as_f64().unwrap_or(0.0) / 1000.0;
    println!(
        "since this host started ({}, {} s ago):",
        v["started_at"].as_str().unwrap_or("-"),
        n("uptime_secs")
    );
    println!(
        "  accepted {}  duplicates {}  conflicts {}  derived {}",
        n("accepted"),
        n("duplicates"),
        n("conflicts"),
        n("derived")
    );
    println!(
        "  delivered {}  retried {}  dead-lettered {}  pruned {}",
        n("delivered"),
        n("retried"),
        n("dead_lettered"),
        n("pruned")
    );
    println!(
        "  ingest → delivered p50 {:.1} ms, p99 {:.1} ms (live events; replays apart: p50 {:.1} ms, p99 {:.1} ms)",
        ms("p50_us"),
        ms("p99_us"),
        ms("replay_p50_us"),
        ms("replay_p99_us")
    );
    let nested = |key: &str| -> Vec<String> {
        v[key]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(who, kinds)| {
                let kinds: Vec<String> = kinds
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(kind, count)| format!("{kind} {count}"))
                    .collect();
                format!("{who}: {}", kinds.join(", "))
            })
            .collect()
    };
    for (title, key) in [
        ("plugin faults", "plugin_failures"),
        ("undelivered attempts (the target's trouble)", "delivery_outcomes"),
    ] {
        let lines = nested(key);
        if lines.is_empty() {
            println!("  {title}: none");
        } else {
            println!("  {title}: {}", lines.join("; "));
        }
    }
    println!("  log lines dropped {}", n("log_lines_dropped"));
    println!("now:");
    println!(
        "  waiting to be routed {}  open deliveries {}  parked {}  quarantined rows {}",
        n("pending"),
        n("open_deliveries"),
        n("parked_deliveries"),
        n("quarantined")
    );
    println!(
        "  disk: database {} bytes, write-ahead log {} bytes",
        v["disk"]["database_bytes"], v["disk"]["wal_bytes"]
    );
    for s in v["sinks"].as_array().into_iter().flatten() {
        println!(
            "  sink {:<16} {:<8} open {}  parked {}",
            s["name"].as_str().unwrap_or(""),
            s["state"].as_str().unwrap_or(""),
            s["open"],
            s["parked"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a path segment or query value.
pub(super) fn urlencode(text: &str) -> String {
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
            for w in value["warnings"].as_array().into_iter().flatten() {
                println!(
                    "warning  {}: {}",
                    w["field"].as_str().unwrap_or(""),
                    w["message"].as_str().unwrap_or("")
                );
            }
            print_changes(&value["changes"])?;
            if !valid {
                println!("invalid: nothing was applied");
                return Ok(ExitCode::FAILURE);
            }
            println!("valid: apply it with `kaunter config reload` (or SIGHUP)");
        }
        ConfigCommand::Reload => {
            let value = call(target, reqwest::Method::POST, "/v1/admin/config/reload", None).await?;
            println!("reloaded {}", value["reloaded"].as_str().unwrap_or(""));
            print_changes(&value["changes"])?;
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
        // The same difference on many events is printed once, with its count.
        for g in r["groups"].as_array().into_iter().flatten() {
            println!(
                "  {} event(s), e.g. {}:",
                g["events"],
                g["example_event_id"].as_str().unwrap_or("")
            );
            for line in g["differences"].as_array().into_iter().flatten() {
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
