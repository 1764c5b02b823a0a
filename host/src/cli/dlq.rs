//! `kaunter dlq list|replay`: the dead-letter queue of a running host, filtered by sink, store,
//! error text and time; listed a page at a time with the total and the largest groups; replayed
//! by id or by the same filters, with a summary instead of every id.

use super::client::{Target, call, urlencode};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;

/// Filters shared by `dlq list` and `dlq replay`.
#[derive(Args, Clone, Default)]
pub struct DlqFilter {
    /// Only this sink's entries (`transform` for route failures).
    #[arg(long)]
    sink: Option<String>,
    /// Only events of this store (e.g. hk-003).
    #[arg(long)]
    store: Option<String>,
    /// Only entries whose error contains this text (e.g. "HTTP 503").
    #[arg(long)]
    error: Option<String>,
    /// Only entries dead-lettered at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only entries dead-lettered before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
}

impl DlqFilter {
    fn pairs(&self) -> Vec<(&'static str, &String)> {
        [
            ("sink", &self.sink),
            ("store", &self.store),
            ("error", &self.error),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name, v)))
        .collect()
    }
}

/// `kaunter dlq …`.
#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest first: a page at a time, with how many match and the largest
    /// groups by sink and error.
    List {
        /// Include entries already replayed (with how their delivery went since).
        #[arg(long)]
        all: bool,
        /// Entries per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Skip this many (the next page starts at offset + limit).
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[command(flatten)]
        filter: DlqFilter,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replay dead letters by id, or every one the filters match (not yet replayed).
    Replay {
        /// Entry ids (from `kaunter dlq list`).
        ids: Vec<i64>,
        #[command(flatten)]
        filter: DlqFilter,
    },
}

/// Runs a `dlq` command.
pub(super) async fn run(target: &Target, command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List {
            all,
            limit,
            offset,
            filter,
            json,
        } => list(target, all, limit, offset, &filter, json).await,
        DlqCommand::Replay { ids, filter } => replay(target, ids, &filter).await,
    }
}

async fn list(
    target: &Target,
    all: bool,
    limit: usize,
    offset: usize,
    filter: &DlqFilter,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/v1/admin/dlq?all={all}&limit={limit}&offset={offset}");
    for (name, value) in filter.pairs() {
        path.push_str(&format!("&{name}={}", urlencode(value)));
    }
    let value = call(target, reqwest::Method::GET, &path, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let entries = value["dead_letters"].as_array().cloned().unwrap_or_default();
    let total = value["total"].as_u64().unwrap_or(0);
    if total == 0 {
        println!(
            "no dead letters{}",
            if filter.pairs().is_empty() { "" } else { " match" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let shown_to = offset + entries.len();
    println!(
        "{} of {total} dead letter(s){}",
        if entries.is_empty() {
            format!("none past {offset}")
        } else {
            format!("{}–{shown_to}", offset + 1)
        },
        if (shown_to as u64) < total {
            format!(" (next page: --offset {shown_to})")
        } else {
            String::new()
        }
    );
    let groups = value["groups"].as_array().cloned().unwrap_or_default();
    if groups.len() > 1 || total > entries.len() as u64 {
        println!("by sink and error:");
        for g in &groups {
            println!(
                "  {:>7}  {:<14} {}",
                g["count"],
                g["sink"].as_str().unwrap_or("(transform)"),
                g["error"].as_str().unwrap_or("")
            );
        }
    }
    for e in entries {
        let replayed = match e["replayed_at"].as_str() {
            None => String::new(),
            Some(at) => format!(
                "  replayed {at}, now {}",
                e["delivery_state"].as_str().unwrap_or("re-routed")
            ),
        };
        println!(
            "#{:<6} {}  event {}  {} → {}  {}@{}  attempts {}{replayed}\n        {}",
            e["id"],
            e["failed_at"].as_str().unwrap_or(""),
            e["event_id"].as_str().unwrap_or(""),
            e["route"].as_str().unwrap_or(""),
            e["sink"].as_str().unwrap_or("(transform)"),
            e["plugin"].as_str().unwrap_or(""),
            e["plugin_version"].as_str().unwrap_or(""),
            e["attempts"],
            e["error"].as_str().unwrap_or(""),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(target: &Target, ids: Vec<i64>, filter: &DlqFilter) -> anyhow::Result<ExitCode> {
    let pairs = filter.pairs();
    let body = match (ids.is_empty(), pairs.is_empty()) {
        (false, true) => json!({ "ids": ids }),
        (true, false) => Value::Object(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), Value::String((*value).clone())))
                .collect(),
        ),
        (true, true) => anyhow::bail!(
            "name entry ids to replay, or filters (--sink, --store, --error, --since, --until); `kaunter dlq list` with the same filters shows what they take"
        ),
        (false, false) => anyhow::bail!("give entry ids or filters, not both"),
    };
    let value = call(target, reqwest::Method::POST, "/v1/admin/dlq/replay", Some(body)).await?;
    let replayed: Vec<i64> = value["replayed"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    if replayed.len() <= 10 {
        let ids: Vec<String> = replayed.iter().map(|id| format!("#{id}")).collect();
        println!("replayed {} dead letter(s): {}", replayed.len(), ids.join(" "));
    } else {
        println!(
            "replayed {} dead letter(s), #{} to #{}; `kaunter dlq list --all` shows how each went",
            replayed.len(),
            replayed.first().copied().unwrap_or(0),
            replayed.last().copied().unwrap_or(0)
        );
    }
    Ok(ExitCode::SUCCESS)
}
