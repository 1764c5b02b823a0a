//! `kaunter demo`: the whole path on one machine, with a live progress line.
//!
//! Starts the host on the bundled demo configuration (embedded SQLite store, the SKU-mapping
//! transform and the signed-webhook connector), a local head-office sink that verifies every
//! Standard Webhooks signature, and simulated stores posting sales and refunds over HTTP. Each
//! second it prints events/s accepted and delivered, retries, dead letters, in-flight work and
//! ingest→delivered latency. At the end it waits for in-flight work to drain and checks that every
//! accepted event reached the sink with a valid signature.

mod sink;
mod stores;

use crate::config::Config;
use crate::server::Server;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    if !args.keep_data && args.data.exists() {
        std::fs::remove_dir_all(&args.data)?;
    }
    let sink = sink::start(&config).await?;
    let server = Server::start(&config).await?;
    println!(
        "kaunter demo: host {} · sink {} · {} stores at {} events/s",
        server.url(),
        sink.url,
        args.stores,
        args.rate
    );
    println!(
        "  operate it from another terminal: export KAUNTER_URL={} KAUNTER_API_KEY=demo-admin-key; kaunter plugin list (docs/operators.md)",
        server.url()
    );
    let stores = stores::start(server.url(), args.stores, args.rate);
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut last = server.pipeline.metrics().snapshot();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let now = server.pipeline.metrics().snapshot();
        server.pipeline.metrics().reset_latency();
        progress(tty, started.elapsed(), &last, &now, &stores, &sink);
        last = now;
        if args.duration > 0 && started.elapsed() >= Duration::from_secs(args.duration) {
            break;
        }
    }
    stores.stop();
    if tty {
        println!();
    }
    println!("stopping the stores; waiting for in-flight deliveries…");
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.pipeline.metrics().pending.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = server.pipeline.metrics().snapshot();
    let verified = sink.verified.load(Ordering::Relaxed);
    let bad = sink.bad_signatures.load(Ordering::Relaxed);
    println!(
        "done: {} events accepted, {} delivered, {} dead-lettered, {} received by the sink with valid signatures, {} bad signatures",
        end.accepted, end.delivered, end.dead_lettered, verified, bad
    );
    println!("the log is {} (open it with sqlite3)", server.db_path.display());
    let ok = bad == 0 && end.delivered + end.dead_lettered >= end.accepted && stores.errors() == 0;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn progress(
    tty: bool,
    elapsed: Duration,
    last: &crate::pipeline::metrics::Snapshot,
    now: &crate::pipeline::metrics::Snapshot,
    stores: &stores::Stores,
    sink: &Arc<sink::DemoSink>,
) {
    let line = format!(
        "[{:>4}s] accepted {} ({}/s) · delivered {} ({}/s) · retries {} · DLQ {} · in flight {} · p50 {:.1} ms p99 {:.1} ms · sink verified {} · store errors {}",
        elapsed.as_secs(),
        now.accepted,
        now.accepted - last.accepted,
        now.delivered,
        now.delivered - last.delivered,
        now.retried,
        now.dead_lettered,
        now.pending,
        now.p50_us as f64 / 1000.0,
        now.p99_us as f64 / 1000.0,
        sink.verified.load(Ordering::Relaxed),
        stores.errors(),
    );
    let mut out = std::io::stdout().lock();
    if tty {
        let _ = write!(out, "\r\x1b[K{line}");
    } else {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
