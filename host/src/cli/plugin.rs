//! `kaunter plugin approve NAME@VERSION`: approve a plugin version that requests more than the
//! version before it (the upgrade guard), after reading what it asks for.

use crate::config::Config;
use crate::engine::{hex, version_of};
use crate::plugins::{guard, manifest};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use clap::Subcommand;
use sha2::{Digest, Sha256};
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
    let entry = config
        .plugin(name)
        .ok_or_else(|| anyhow::anyhow!("no plugin `{name}` in the configuration"))?;
    let path = config.plugin_path(entry);
    let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let digest = hex(&Sha256::digest(&bytes));
    if version_of(&digest) != version {
        anyhow::bail!(
            "{} is version {}, not {version}: approve what is actually deployed",
            path.display(),
            version_of(&digest)
        );
    }
    let requests = manifest::read(&path, &bytes)
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default()
        .requests;
    let data = data.unwrap_or_else(|| config.resolve(&config.server.data_dir));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data, Duration::from_micros(200), 64)?);
    let who = format!(
        "operator:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    guard::approve(&store, name, version, &digest, &requests, &who).await?;
    println!(
        "approved {name}@{version} ({who}): requests {}",
        serde_json::to_string(&requests)?
    );
    Ok(ExitCode::SUCCESS)
}
