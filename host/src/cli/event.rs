//! `kaunter event show ID | --order ORDER [--store S]`: what happened to an event (or to every
//! event about an order) on a running host: per sink its state, every failed attempt with its
//! time and destination, dead-lettering and replays (who, and how the replay went), the remote
//! id and note the target answered, and the events it was derived from and gave rise to.

use super::client::{Target, call, urlencode};
use clap::Subcommand;
use serde_json::Value;
use std::process::ExitCode;

/// `kaunter event …`.
#[derive(Subcommand)]
pub enum EventCommand {
    /// Show an event's timeline, or every event about an order.
    Show {
        /// The event id.
        #[arg(required_unless_present = "order", conflicts_with = "order")]
        id: Option<String>,
        /// Every event about this order: its sale, refunds, voids, payments.
        #[arg(long)]
        order: Option<String>,
        /// With --order: only this store's events.
        #[arg(long, requires = "order")]
        store: Option<String>,
        /// The event's source, when several stores used the same id.
        #[arg(long, conflicts_with = "order")]
        source: Option<String>,
        /// Print the host's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `event` command.
pub(super) async fn run(target: &Target, command: EventCommand) -> anyhow::Result<ExitCode> {
    let EventCommand::Show {
        id,
        order,
        store,
        source,
        json,
    } = command;
    let (path, by_order) = match (&id, &order) {
        (Some(id), _) => {
            let mut path = format!("/v1/events/{}", urlencode(id));
            if let Some(source) = &source {
                path.push_str(&format!("?source={}", urlencode(source)));
            }
            (path, false)
        }
        (None, Some(order)) => {
            let mut path = format!("/v1/events?order={}", urlencode(order));
            if let Some(store) = &store {
                path.push_str(&format!("&store={}", urlencode(store)));
            }
            (path, true)
        }
        (None, None) => anyhow::bail!("name an event id, or --order ORDER_ID"),
    };
    let value = call(target, reqwest::Method::GET, &path, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    if by_order {
        let events = value["events"].as_array().cloned().unwrap_or_default();
        println!("order {}: {} event(s)", order.as_deref().unwrap_or(""), events.len());
        for event in &events {
            println!();
            print_event(event);
        }
    } else {
        print_event(&value);
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_owned()
}

/// One event's timeline.
fn print_event(value: &Value) {
    let event = &value["event"];
    println!(
        "event {}  {}  from {}  received {}",
        text(&event["id"]),
        text(&event["type"]),
        text(&event["source"]),
        text(&value["received_at"])
    );
    if let Some(trace) = value["trace"]["trace_id"].as_str() {
        let sampled = value["trace"]["sampled"].as_bool() == Some(true);
        println!(
            "  trace {trace}{}",
            if sampled {
                ""
            } else {
                " (not sampled: only failures were exported)"
            }
        );
    }
    if value["derived_from"].is_object() {
        let p = &value["derived_from"];
        println!(
            "  derived from {} ({}, {})",
            text(&p["id"]),
            text(&p["type"]),
            text(&p["source"])
        );
    }
    for d in value["derived"].as_array().into_iter().flatten() {
        println!("  gave rise to {} ({})", text(&d["id"]), text(&d["type"]));
    }
    let sinks = value["sinks"].as_array().cloned().unwrap_or_default();
    if sinks.is_empty() {
        println!("  no deliveries: no route sent it anywhere");
    }
    let letters = value["dead_letters"].as_array().cloned().unwrap_or_default();
    for sink in &sinks {
        let name = text(&sink["sink"]);
        let mut line = format!(
            "  {:<16} {:<13} attempts {}",
            name,
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
        for f in sink["failures"].as_array().into_iter().flatten() {
            println!(
                "      {}  attempt {} failed ({}){}: {}{}",
                text(&f["at"]),
                f["attempt"],
                text(&f["outcome"]),
                f["destination"].as_str().map(|d| format!(" → {d}")).unwrap_or_default(),
                text(&f["error"]),
                f["next_attempt_at"]
                    .as_str()
                    .map(|at| format!("; next attempt {at}"))
                    .unwrap_or_default()
            );
        }
        for l in letters.iter().filter(|l| l["sink"].as_str() == Some(name.as_str())) {
            print_letter(l);
        }
        if let Some(error) = sink["last_error"].as_str() {
            println!("      last error: {error}");
        }
    }
    for l in letters.iter().filter(|l| l["sink"].is_null()) {
        println!("  route {} failed in a transform:", text(&l["route"]));
        print_letter(l);
    }
}

fn print_letter(l: &Value) {
    println!(
        "      {}  dead-lettered (entry #{}) after {} attempt(s)",
        text(&l["failed_at"]),
        l["id"],
        l["attempts"]
    );
    if let Some(at) = l["replayed_at"].as_str() {
        println!(
            "      {at}  replayed by {}; its delivery is now {}",
            l["replayed_by"].as_str().unwrap_or("an operator"),
            l["delivery_state"].as_str().unwrap_or("routed again")
        );
    }
}
