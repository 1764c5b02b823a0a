//! `kaunter plugin approve NAME@VERSION`: approve a plugin version that requests more than the
//! version before it (the upgrade guard), after reading what it asks for.

use crate::config::Config;
use crate::plugins::guard;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `kaunter plugin …`.
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Approve a plugin version held back by the upgrade guard (records who and what in the audit log).
    Approve {
        /// `name@version` as the refusal printed it.
        plugin: String,
        /// The configuration naming the plugin.
        #[arg(long)]
        config: PathBuf,
        /// Data directory (default: the config's server.data_dir).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// Runs a plugin subcommand.
pub async fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let PluginCommand::Approve { plugin, config, data } = command;
    let (name, version) = plugin
        .split_once('@')
        .ok_or_else(|| anyhow::anyhow!("name the version: NAME@VERSION, as `kaunter serve` printed it"))?;
    let config = Config::load(&config)?;
    let data = data.unwrap_or_else(|| config.resolve(&config.server.data_dir));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data, Duration::from_micros(200), 64)?);
    let who = format!(
        "operator:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let requests = guard::approve_deployed(&config, &store, name, version, &who).await?;
    println!(
        "approved {name}@{version} ({who}): requests {}",
        serde_json::to_string(&requests)?
    );
    Ok(ExitCode::SUCCESS)
}
