//! `kaunter demo`: a Hong Kong retail chain end to end on one machine, with a live progress line.
//!
//! Starts the host on the bundled demo configuration (`config/demo.toml`, embedded SQLite store):
//! till events run through SKU mapping, loyalty, restock and anomaly transforms and fan out to a
//! signed head-office webhook, Xero, Shopify inventory and HubSpot; the restock suggestions and
//! anomaly alerts the chain derives go through redaction to Slack and DingTalk, tier changes to
//! HubSpot. Beside the host it serves the head-office receiver ([`sink`], which verifies every
//! Standard Webhooks signature), the vendors ([`vendors`]: demo-only simulators of those APIs and
//! of an OAuth 2.0 token endpoint, on one loopback port) and simulated stores ([`stores`]: sales,
//! member purchases, refunds, stock counts and now and then a refund spike).
//!
//! Each second it prints events/s accepted and delivered, retries, dead letters, in-flight work,
//! ingest→delivered latency and what each system has received. At the end it waits for in-flight
//! work to drain, reads the log and checks that nothing acknowledged was lost: every event the
//! tills had accepted was delivered to head office, and every delivery of a derived event was made.

mod check;
mod sink;
mod stores;
mod vendors;

use crate::config::Config;
use crate::server::Server;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use vendors::thousands;

/// Options of `kaunter demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Simulated stores.
    #[arg(long, default_value_t = 20)]
    pub stores: usize,
    /// Events per second across all stores.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
    /// Data directory (wiped at start unless --keep-data).
    #[arg(long, default_value = "kaunter-data/demo")]
    pub data: PathBuf,
    /// Keep the data directory's previous contents.
    #[arg(long)]
    pub keep_data: bool,
    /// Run with this configuration file instead of the bundled one (start from
    /// `kaunter demo --print-config > kaunter.toml`); then `kaunter config reload` and `SIGHUP`
    /// apply edits to it while the demo runs.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the bundled demo configuration and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Take the Xero simulator down for this many seconds, 5 s into the run, to show the SOP
    /// alerts (`sink-failing`, `sync-delayed`, then `resolved`) and the backlog draining in
    /// order; 0: no outage.
    #[arg(long, default_value_t = 8)]
    pub outage: u64,
}

/// Runs the demo until Ctrl-C or `--duration`.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.print_config {
        print!("{}", crate::config::DEMO_CONFIG);
        return Ok(ExitCode::SUCCESS);
    }
    crate::telemetry::init("warn,plugin=error");
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::demo()?,
    };
    config.server.data_dir = args.data.clone();
    if args.config.is_none() && config.audit.anchor_file.is_some() {
        // A fresh demo log starts a fresh chain, so its checkpoints live (and are wiped) beside it;
        // a real host keeps them on another volume.
        config.audit.anchor_file = Some(args.data.join("audit-anchors.jsonl"));
    }
    if !args.keep_data && args.data.exists() {
        std::fs::remove_dir_all(&args.data)?;
    }
    let sink = sink::start(&config).await?;
    let vendors = vendors::start(&config).await?;
    let server = Server::start(&config).await?;
    println!(
        "kaunter demo: host {} · head office {} · vendors {} · {} stores at {} events/s",
        server.url(),
        sink.url,
        vendors.as_ref().map_or("(none configured)", |v| v.url.as_str()),
        args.stores,
        args.rate
    );
    println!(
        "  chain: sku-map → loyalty → restock → anomaly → head office, Xero, Shopify, HubSpot; derived alerts → redact → Slack, DingTalk; the host's SOP alerts → Slack, DingTalk"
    );
    println!(
        "  operate it from another terminal: export KAUNTER_URL={} KAUNTER_API_KEY=demo-admin-key; then kaunter status · kaunter sink list · kaunter stats · kaunter event show --order hk-001-0000001 · kaunter dlq list · kaunter verify (docs/operators.md)",
        server.url()
    );
    println!(
        "  scrape it: curl -H 'Authorization: Bearer demo-metrics-key' {}/metrics (docs/observability.md; readiness at {}/readyz)",
        server.url(),
        server.url()
    );
    let unlocated = config
        .plugins
        .iter()
        .filter_map(|p| p.config.get("locations").and_then(|l| l.as_table()))
        .map(|table| {
            (1..=args.stores)
                .filter(|i| !table.contains_key(&format!("hk-{i:03}")))
                .count()
        })
        .max()
        .unwrap_or(0);
    if unlocated > 0 {
        println!(
            "  note: {unlocated} of the stores have no Shopify location in the config (plugins.config.locations); their inventory deliveries will dead-letter"
        );
    }
    if let Some(endpoint) = crate::telemetry::trace::endpoint() {
        println!("  traces: every event's journey goes to {endpoint} over OTLP/HTTP (docs/observability.md#traces)");
    }
    let outage = vendors.as_ref().filter(|_| args.outage > 0).map(|v| {
        let (vendors, secs, tty) = (v.clone(), args.outage, std::io::stdout().is_terminal());
        tokio::spawn(async move {
            let note = |text: String| if tty { println!("\n{text}") } else { println!("{text}") };
            tokio::time::sleep(Duration::from_secs(5)).await;
            vendors.xero_down.store(true, Ordering::Relaxed);
            note(format!("  ▼ Xero is down for {secs} s (--outage): its deliveries wait in the log; SOP alerts go to Slack and DingTalk (kaunter status shows them)"));
            tokio::time::sleep(Duration::from_secs(secs)).await;
            vendors.xero_down.store(false, Ordering::Relaxed);
            note("  ▲ Xero is back: the backlog drains in order, and the alerts resolve".to_owned());
        })
    });
    let stores = stores::start(server.url(), args.stores, args.rate);
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut last = server.pipeline.metrics().snapshot();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut printed = false;
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let now = server.pipeline.metrics().snapshot();
        server.pipeline.metrics().reset_latency();
        let backlog = server.pipeline.store().backlogs().await.unwrap_or_default();
        progress(
            tty,
            printed,
            started.elapsed(),
            &last,
            &now,
            &backlog,
            &stores,
            &sink,
            vendors.as_deref(),
        );
        printed = true;
        last = now;
        if args.duration > 0 && started.elapsed() >= Duration::from_secs(args.duration) {
            break;
        }
    }
    stores.stop();
    if let Some(outage) = outage {
        outage.abort();
        if let Some(v) = &vendors {
            v.xero_down.store(false, Ordering::Relaxed);
        }
    }
    println!("stopping the stores; waiting for in-flight deliveries and open alerts…");
    // Requests the tills had in flight are answered within moments; then the work drains.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let open: u64 = server
            .pipeline
            .store()
            .backlogs()
            .await
            .map(|b| b.iter().map(|s| s.open).sum())
            .unwrap_or(0);
        if open == 0
            && server.pipeline.metrics().pending.load(Ordering::Relaxed) == 0
            && server.alerts.open_alerts().is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = server.pipeline.metrics().snapshot();
    let verified = sink.verified.load(Ordering::Relaxed);
    let bad = sink.bad_signatures.load(Ordering::Relaxed);
    let log = server
        .db_path
        .parent()
        .map(|dir| check::Log::read(dir, &stores.acknowledged(), &config.routes))
        .transpose()?
        .unwrap_or_default();
    println!(
        "done: {} events from the tills ({}), {} derived ({}); {} deliveries made, {} retried, {} dead-lettered",
        thousands(log.received),
        log.received_by_type,
        thousands(log.derived),
        log.derived_by_type,
        thousands(end.delivered),
        thousands(end.retried),
        thousands(end.dead_lettered),
    );
    println!(
        "  head office  {} requests with valid signatures, {bad} bad",
        thousands(verified)
    );
    if let Some(v) = &vendors {
        let c = &v.counts;
        let n = |a: &std::sync::atomic::AtomicU64| thousands(a.load(Ordering::Relaxed));
        println!(
            "  xero         {} invoices, {} credit notes, {} payments",
            n(&c.invoices),
            n(&c.credit_notes),
            n(&c.payments)
        );
        println!("  shopify      {} inventory adjustments", n(&c.adjustments));
        println!("  hubspot      {} contacts ({} upserts)", n(&c.contacts), n(&c.upserts));
        println!(
            "  slack        {} messages · dingtalk {} messages (anomalies, restock suggestions and SOP alerts)",
            n(&c.slack),
            n(&c.dingtalk)
        );
        if c.unavailable.load(Ordering::Relaxed) > 0 {
            println!(
                "  xero         {} requests answered 503 while it was down (--outage), retried until it came back",
                n(&c.unavailable)
            );
        }
        println!(
            "  vendors      {} OAuth tokens issued, {} repeated requests answered idempotently, {} refused for auth",
            n(&c.tokens),
            n(&c.duplicates),
            n(&c.bad_auth)
        );
    }
    println!("  deliveries   {}", log.by_sink);
    for letter in &log.dead_letters {
        println!("  dead letter  {letter}");
    }
    for (sink, t) in &log.verdict.sinks {
        println!(
            "  {sink:<12} {} of the tills' events delivered, {} in flight, {} dead-lettered, {} missing",
            thousands(t.delivered),
            thousands(t.in_flight),
            thousands(t.dead_lettered),
            thousands(t.missing)
        );
    }
    for m in &log.verdict.missing_examples {
        println!("  missing      event {} from {} at {}", m.id, m.source, m.sink);
    }
    println!(
        "check: {} acknowledged by the tills, {} lost ({} missing a delivery, {} still in flight), {} reached every sink their routes name; derived events: {} unfinished; {} dead letters outstanding, {} store errors",
        thousands(log.acknowledged),
        log.lost(),
        log.verdict.missing,
        log.verdict.in_flight + log.verdict.waiting,
        thousands(log.verdict.complete),
        log.derived_unfinished(),
        log.dead_lettered,
        stores.errors()
    );
    let (firing, resolved) = server.alerts.raised();
    let still_open: Vec<String> = server
        .alerts
        .open_alerts()
        .into_iter()
        .map(|a| a.condition.key)
        .collect();
    println!(
        "  sop alerts   {firing} raised, {resolved} resolved{} (kaunter.alert.v1, routed to Slack and DingTalk; docs/observability.md#alerts)",
        if still_open.is_empty() {
            String::new()
        } else {
            format!(", still open: {}", still_open.join(", "))
        }
    );
    print_health(&server, &config).await;
    let disk = server.pipeline.store().disk_usage();
    server.stop("host").await?;
    // Checkpointed in full, the database alone holds everything: what a till event costs.
    let checkpointed = rusqlite::Connection::open(&server.db_path)
        .and_then(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
        .is_ok();
    let database = std::fs::metadata(&server.db_path).map(|m| m.len()).unwrap_or(0);
    if checkpointed {
        println!(
            "  disk         {:.1} MB database for {} till events: {:.2} KB each (the WAL is truncated past wal_truncate_mib; it held {:.1} MB at the end)",
            database as f64 / 1e6,
            thousands(log.received),
            database as f64 / 1024.0 / log.received.max(1) as f64,
            disk.wal_bytes as f64 / 1e6
        );
    }
    let audit = audit_check(&config, &args.data)?;
    println!("the log is {} (open it with sqlite3)", server.db_path.display());
    let ok = bad == 0
        && log.lost() == 0
        && log.derived_unfinished() == 0
        && log.dead_lettered == 0
        && stores.errors() == 0
        && audit;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Verifies the demo's audit log as `kaunter audit verify` would, printing what it found;
/// returns whether it is intact.
fn audit_check(config: &Config, data: &std::path::Path) -> anyhow::Result<bool> {
    use crate::audit::verify;
    let setup = crate::audit::AuditSetup::from_config(config)?;
    let options = verify::Options {
        keys: setup.keys(),
        anchor: setup.anchor.map(|(key, file)| (file, key.public())),
    };
    let report = verify::verify(&crate::store::sqlite::open_read_only(data)?, &options)?;
    for line in report.problems.iter().chain(&report.notes) {
        println!("  audit        {}", line.trim_start());
    }
    Ok(report.intact())
}

#[allow(clippy::too_many_arguments)]
fn progress(
    tty: bool,
    printed: bool,
    elapsed: Duration,
    last: &crate::pipeline::metrics::Snapshot,
    now: &crate::pipeline::metrics::Snapshot,
    backlog: &[crate::store::SinkBacklog],
    stores: &stores::Stores,
    sink: &Arc<sink::DemoSink>,
    vendors: Option<&vendors::Vendors>,
) {
    // Deliveries waiting in the log (a sink that is down shows here, not in memory), and parked.
    let queued: u64 = backlog.iter().map(|b| b.open).sum();
    let parked: u64 = backlog.iter().map(|b| b.parked).sum();
    let parked = if parked > 0 {
        format!(" ({parked} parked)")
    } else {
        String::new()
    };
    let line = format!(
        "[{:>4}s] accepted {} ({}/s) · delivered {} ({}/s) · retries {} · DLQ {} · queued {}{parked} · p50 {:.1} ms p99 {:.1} ms · store errors {}",
        elapsed.as_secs(),
        now.accepted,
        now.accepted - last.accepted,
        now.delivered,
        now.delivered - last.delivered,
        now.retried,
        now.dead_lettered,
        queued + now.pending.max(0) as u64,
        now.p50_us as f64 / 1000.0,
        now.p99_us as f64 / 1000.0,
        stores.errors(),
    );
    let head_office = format!("head-office {}", thousands(sink.verified.load(Ordering::Relaxed)));
    let systems = match vendors {
        Some(v) => format!("        {} · {head_office}", v.summary()),
        None => format!("        {head_office}"),
    };
    let mut out = std::io::stdout().lock();
    if tty {
        // Two lines, rewritten in place.
        let up = if printed { "\x1b[2A" } else { "" };
        let _ = write!(out, "{up}\r\x1b[K{line}\n\x1b[K{systems}");
        let _ = writeln!(out);
    } else {
        let _ = writeln!(out, "{line}");
        let _ = writeln!(out, "{systems}");
    }
    let _ = out.flush();
}

/// The host's health as `kaunter status` judges it, and what `/metrics` counted per sink.
async fn print_health(server: &Server, config: &Config) {
    let data_dir = config.resolve(&config.server.data_dir);
    match server
        .pipeline
        .health(
            &data_dir,
            config.server.disk_low_mib * 1024 * 1024,
            crate::pipeline::health::Detail::Full,
        )
        .await
    {
        Ok(report) => {
            let reasons: Vec<String> = report.reasons.iter().map(|r| r.message.clone()).collect();
            println!(
                "  health       {}{} (kaunter status; GET /readyz)",
                match report.status {
                    crate::pipeline::health::Status::Ok => "ok",
                    crate::pipeline::health::Status::Degraded => "degraded: ",
                },
                reasons.join("; ")
            );
        }
        Err(e) => println!("  health       could not be read: {e}"),
    }
    let exposition = crate::telemetry::prom::metrics().encode();
    let delivered: Vec<&str> = exposition
        .lines()
        .filter(|l| l.starts_with("kaunter_sink_delivered_total{"))
        .collect();
    println!("  /metrics     {}", delivered.join(" · "));
}
