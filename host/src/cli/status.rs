//! `kaunter status`: one screen of a running host's health, and an exit code monitoring
//! scripts can use: 0 ok, 1 degraded, 2 not accepting events, 3 unknown (unreachable, refused).

use super::client::{Target, call};
use serde_json::Value;
use std::process::ExitCode;

/// Exit code: the host reports nothing wrong.
pub const OK: u8 = 0;
/// Exit code: degraded (a sink failing, paused or delayed, disk low); ingest still works.
pub const DEGRADED: u8 = 1;
/// Exit code: ingest refuses events (over `max_pending` or the log budget).
pub const NOT_ACCEPTING: u8 = 2;
/// Exit code: the host could not be asked.
pub const UNKNOWN: u8 = 3;

pub(super) async fn run(target: &Target, json: bool) -> anyhow::Result<ExitCode> {
    let v = match call(target, reqwest::Method::GET, "/v1/admin/status", None).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("status unknown: {e:#}");
            return Ok(ExitCode::from(UNKNOWN));
        }
    };
    let code = exit_code(&v);
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(ExitCode::from(code))
}

/// Open alerts count as degraded too (a silent store, a failing plugin are not sink states).
fn exit_code(v: &Value) -> u8 {
    let alerts_open = v["alerts"]["open"].as_array().is_some_and(|a| !a.is_empty());
    match (v["accepting"].as_bool(), v["status"].as_str()) {
        (Some(false), _) => NOT_ACCEPTING,
        (_, Some("ok")) if alerts_open => DEGRADED,
        (_, Some("ok")) => OK,
        (_, Some("degraded")) => DEGRADED,
        _ => UNKNOWN,
    }
}

/// The screen, from `GET /v1/admin/status`.
fn render(v: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let reasons = v["reasons"].as_array().cloned().unwrap_or_default();
    let headline = match exit_code(v) {
        OK => "OK".to_owned(),
        NOT_ACCEPTING => format!("NOT ACCEPTING EVENTS ({} reasons)", reasons.len()),
        _ => format!("DEGRADED ({} reasons)", reasons.len()),
    };
    let _ = writeln!(out, "kaunter: {headline}");
    for r in &reasons {
        let _ = writeln!(
            out,
            "  ! {:<14} {}",
            r["kind"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        );
    }
    let open = v["alerts"]["open"].as_array().cloned().unwrap_or_default();
    if open.is_empty() {
        out.push_str("open alerts: none\n");
    } else {
        let _ = writeln!(out, "open alerts: {}", open.len());
        for a in &open {
            let _ = writeln!(
                out,
                "  * {:<8} {:<30} since {}  {}",
                a["severity"].as_str().unwrap_or(""),
                a["key"].as_str().unwrap_or(""),
                a["since"].as_str().unwrap_or(""),
                a["title"].as_str().unwrap_or("")
            );
        }
    }
    let _ = writeln!(
        out,
        "{:<18} {:<8} {:>7} {:>7} {:>6} {:>10} {:>10}",
        "sink", "state", "open", "parked", "dead", "oldest", "threshold"
    );
    for s in v["sinks"].as_array().into_iter().flatten() {
        let oldest = s["oldest_open_age_secs"]
            .as_u64()
            .map_or("-".to_owned(), |a| format!("{a} s"));
        let _ = writeln!(
            out,
            "{:<18} {:<8} {:>7} {:>7} {:>6} {:>10} {:>10}",
            s["name"].as_str().unwrap_or(""),
            s["state"].as_str().unwrap_or(""),
            s["open"].to_string(),
            s["parked"].to_string(),
            s["dead_letters"].to_string(),
            oldest,
            format!("{} s", s["freshness_threshold_secs"])
        );
    }
    let _ = writeln!(out, "dead letters: {} (kaunter dlq list)", v["dead_letters"]);
    let plugins: Vec<String> = v["failing_plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let kinds: Vec<String> = p["failures"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            format!("{} ({})", p["plugin"].as_str().unwrap_or(""), kinds.join(", "))
        })
        .collect();
    let plugins = if plugins.is_empty() {
        "none".to_owned()
    } else {
        plugins.join("; ")
    };
    let _ = writeln!(out, "plugin faults since start: {plugins}");
    let _ = writeln!(
        out,
        "ingest: {}; {} events waiting to be routed",
        if v["accepting"].as_bool() == Some(true) {
            "accepting"
        } else {
            "REFUSING"
        },
        v["unrouted"]
    );
    let mib = |key: &str| v[key].as_u64().map(|b| b / (1024 * 1024));
    match mib("disk_free_bytes") {
        Some(free) => {
            let _ = writeln!(
                out,
                "disk: {free} MiB free (low under {} MiB)",
                mib("disk_low_bytes").unwrap_or(0)
            );
        }
        None => out.push_str("disk: free space unknown\n"),
    }
    let ms = |key: &str| v["latency"][key].as_f64().unwrap_or(0.0) / 1000.0;
    let _ = writeln!(
        out,
        "latency acknowledged → delivered: p50 {:.1} ms, p99 {:.1} ms (deliveries made; `oldest` above is what still waits)",
        ms("p50_us"),
        ms("p99_us")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_exit_code_follows_the_worst_condition() {
        assert_eq!(exit_code(&json!({"status": "ok", "accepting": true})), OK);
        assert_eq!(exit_code(&json!({"status": "degraded", "accepting": true})), DEGRADED);
        assert_eq!(
            exit_code(&json!({"status": "degraded", "accepting": false})),
            NOT_ACCEPTING
        );
        assert_eq!(exit_code(&json!({})), UNKNOWN);
        let silent_store = json!({"status": "ok", "accepting": true, "alerts": {"open": [
            {"key": "store-silent:hk-003", "severity": "warning", "since": "2026-12-07T10:00:00.000Z",
             "title": "Store hk-003 is silent"}]}});
        assert_eq!(exit_code(&silent_store), DEGRADED, "an open alert is degraded");
        assert!(
            render(&silent_store).contains(
                "open alerts: 1\n  * warning  store-silent:hk-003            since 2026-12-07T10:00:00.000Z  Store hk-003 is silent\n"
            ),
            "{}",
            render(&silent_store)
        );
        let screen = render(&json!({
            "status": "degraded", "accepting": true,
            "reasons": [{"kind": "sync-delayed", "sink": "xero", "message": "sink `xero`: its oldest undelivered event is 75 s old"}],
            "sinks": [{"name": "xero", "state": "failing", "open": 12, "parked": 0, "dead_letters": 1,
                       "oldest_open_age_secs": 75, "freshness_threshold_secs": 60}],
            "dead_letters": 1, "failing_plugins": [], "unrouted": 0,
            "disk_free_bytes": 2147483648u64, "disk_low_bytes": 1073741824u64,
            "latency": {"p50_us": 1500, "p99_us": 9000},
        }));
        assert!(
            screen.starts_with("kaunter: DEGRADED (1 reasons)\n  ! sync-delayed"),
            "{screen}"
        );
        assert!(
            screen.contains("xero               failing       12       0      1       75 s       60 s"),
            "{screen}"
        );
        assert!(screen.contains("disk: 2048 MiB free (low under 1024 MiB)"), "{screen}");
    }
}
