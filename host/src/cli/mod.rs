//! The `kaunter` command line: run the host or the demo, check a config, and operate a running
//! host over its admin API (`dlq`, `sink`, `stats`).
//!
//! Commands that talk to a running host read its address from `--url` / `KAUNTER_URL` and the
//! API key from `--api-key` / `KAUNTER_API_KEY`.

mod audit;
pub mod audit_report;
mod client;
mod dlq;
mod event;
mod new;
mod plugin;
mod run;
mod status;

use crate::config::Config;
use crate::server::Server;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// kaunter: the shop counter as a real-time integration hub.
#[derive(Parser)]
#[command(name = "kaunter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host. Without --config: the bundled demo configuration on the embedded store.
    Serve {
        /// Configuration file (kaunter.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding server.listen (use port 0 for any free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory, overriding server.data_dir.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Run the demo: host, simulated stores, a local signed-webhook sink and a live progress line.
    Demo(crate::demo::DemoArgs),
    /// Write a new plugin project: code, manifest, sample event, tests, README.
    New(new::NewArgs),
    /// Check a configuration file without starting anything.
    Check {
        /// Configuration file.
        config: PathBuf,
    },
    /// Dead-letter queue of a running host.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
        #[command(flatten)]
        target: client::Target,
    },
    /// Sinks of a running host.
    Sink {
        #[command(subcommand)]
        command: client::SinkCommand,
        #[command(flatten)]
        target: client::Target,
    },
    /// What each configured plugin may do, from its component's imports and the grants; with a
    /// subcommand, the audit log (`log`, `verify`).
    Audit {
        #[command(subcommand)]
        command: Option<audit::AuditCommand>,
        /// Configuration file (default: the bundled demo configuration).
        #[arg(long)]
        config: Option<PathBuf>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Plugin versions on a running host (upload, list, deploy, promote, rollback, shadow,
    /// approve), and sandbox runs of a component (`run`).
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
        #[command(flatten)]
        target: client::Target,
    },
    /// Shadow comparisons of a running host.
    Shadow {
        #[command(subcommand)]
        command: ShadowCommand,
        #[command(flatten)]
        target: client::Target,
    },
    /// Re-run historic events from the log through their routes, with progress.
    Replay {
        /// Events received at or after this RFC 3339 time.
        #[arg(long)]
        since: String,
        /// Only this route.
        #[arg(long)]
        route: Option<String>,
        /// Run them through this plugin version instead of the deployed one (plugin@version).
        #[arg(long)]
        through: Option<String>,
        /// Report what would happen; commit and send nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        target: client::Target,
    },
    /// Configuration of a running host: validate a candidate, or reload the file.
    Config {
        #[command(subcommand)]
        command: client::ConfigCommand,
        #[command(flatten)]
        target: client::Target,
    },
    /// Did every event received since a time reach every sink its routes name, or is it
    /// dead-lettered? Exits 1 when a delivery is missing.
    Verify {
        /// RFC 3339 time (default: the whole log).
        #[arg(long)]
        since: Option<String>,
        /// Print the host's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: client::Target,
    },
    /// A running host's health on one screen: open alerts, sinks with freshness, dead letters,
    /// paused and failing, plugin faults, disk. Exits 0 ok, 1 degraded (or an alert open), 2 not
    /// accepting events, 3 unknown.
    Status {
        /// Print the host's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: client::Target,
    },
    /// A running host's counters since it started, then its state now.
    Stats {
        /// Print the host's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: client::Target,
    },
    /// One event of a running host: where it went, every sink's state, attempts, last error,
    /// and what the target answered (its remote id, a note).
    Event {
        #[command(subcommand)]
        command: event::EventCommand,
        #[command(flatten)]
        target: client::Target,
    },
}

/// `kaunter shadow …`.
#[derive(Subcommand)]
enum ShadowCommand {
    /// How the shadow version compares with the live one: counts and recent differences.
    Report {
        /// Only this plugin.
        plugin: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the `kaunter` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        exit_quietly_on_a_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `kaunter dlq list | head` closes the pipe before everything is printed: end the command the
/// way a shell tool does (status 141, SIGPIPE's), with no panic message or stack trace. The
/// server keeps the default: a peer closing a socket is handled where it happens.
fn exit_quietly_on_a_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, listen, data } => {
            crate::telemetry::init("info");
            let mut config = match &config {
                Some(path) => Config::load(path)?,
                None => Config::demo()?,
            };
            if let Some(listen) = listen {
                config.server.listen = listen.to_string();
            }
            if let Some(data) = data {
                config.server.data_dir = std::env::current_dir()?.join(data);
            }
            let server = Server::start(&config).await?;
            // Scripts and tests read this line to learn the address (port 0 picks a free one).
            println!("kaunter listening on {}", server.url());
            server.serve_until_signal().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => crate::demo::run(args).await,
        Command::New(args) => new::run(args),
        Command::Check { config } => {
            let config = Config::load(&config)?;
            // The files too: every component must exist (relative paths are relative to the
            // config file's directory) and its manifest must be satisfied by the grants.
            let findings = crate::lifecycle::plugin_findings(&config);
            for w in &findings.warnings {
                eprintln!("warning: {}: {}", w.field, w.message);
            }
            let problems = findings.errors;
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("error: {}: {}", p.field, p.message);
                }
                eprintln!("{} problem(s) with the plugin files", problems.len());
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "ok: {} plugins, {} sinks, {} routes, {} API keys",
                config.plugins.len(),
                config.sinks.len(),
                config.routes.len(),
                config.api_keys.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { command, target } => dlq::run(&target, command).await,
        Command::Sink { command, target } => client::sink(&target, command).await,
        Command::Status { json, target } => status::run(&target, json).await,
        Command::Stats { json, target } => client::stats(&target, json).await,
        Command::Verify { since, json, target } => client::verify(&target, since.as_deref(), json).await,
        Command::Event { command, target } => event::run(&target, command).await,
        Command::Plugin { command, target } => plugin::run(command, &target).await,
        Command::Shadow {
            command: ShadowCommand::Report { plugin, json },
            target,
        } => client::shadow_report(&target, plugin, json).await,
        Command::Replay {
            since,
            route,
            through,
            dry_run,
            target,
        } => client::replay(&target, since, route, through, dry_run).await,
        Command::Config { command, target } => client::config(&target, command).await,
        Command::Audit {
            command: Some(command), ..
        } => audit::run(command),
        Command::Audit {
            command: None,
            config,
            json,
        } => {
            let config = match &config {
                Some(path) => Config::load(path)?,
                None => Config::demo()?,
            };
            audit_report::run(&config, json)
        }
    }
}
