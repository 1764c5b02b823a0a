//! `kaunter plugin …`: upload, list, deploy (everywhere, per store group or route), promote,
//! roll back, shadow and approve plugin versions on a running host; `run` a component in the
//! sandbox (see [`super::run`]).

use super::client::{Target, call};
use crate::config::Config;
use crate::plugins::guard;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `kaunter plugin …`.
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Plugins of a running host: versions, their state, and where each runs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Upload a build of a configured plugin (validated, smoke-tested, kept; not yet deployed).
    Upload {
        /// Plugin name (its [[plugins]] entry).
        name: String,
        /// The component.
        file: PathBuf,
        /// Its manifest, when not embedded (default: `<file stem>.manifest.toml` if present).
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Run a version everywhere, or only for a store group and/or route (staged rollout).
    Deploy {
        /// Plugin name.
        name: String,
        /// Version (from `kaunter plugin list` or `upload`).
        version: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Make the version pinned for a group/route the default everywhere.
    Promote {
        /// Plugin name.
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Go back to the version that ran before (everywhere, or in a group/route).
    Rollback {
        /// Plugin name.
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Run a version as a shadow: it gets live events, its side effects are captured, and
    /// `kaunter shadow report` compares it with the live version.
    Shadow {
        /// Plugin name.
        name: String,
        /// The shadow version; omit with --stop.
        version: Option<String>,
        /// Stop shadowing.
        #[arg(long, conflicts_with = "version")]
        stop: bool,
    },
    /// Approve a version held back by the upgrade guard (recorded in the audit log). With
    /// --config, works on the data directory directly (host stopped); else asks the running host.
    Approve {
        /// `name@version` as the refusal printed it.
        plugin: String,
        /// The configuration naming the plugin (offline approval).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (default: the config's server.data_dir).
        #[arg(long, requires = "config")]
        data: Option<PathBuf>,
    },
    /// Run a component once in the sandbox: outbound HTTP captured, outputs printed.
    Run(super::run::RunArgs),
}

/// Where a deployment applies.
#[derive(Args)]
pub struct ScopeArgs {
    /// A store group from [store_groups].
    #[arg(long)]
    group: Option<String>,
    /// A route name.
    #[arg(long)]
    route: Option<String>,
}

impl ScopeArgs {
    fn body(&self, version: Option<&str>) -> Value {
        json!({ "version": version, "group": self.group, "route": self.route })
    }
}

/// Runs a plugin subcommand.
pub async fn run(command: PluginCommand, target: &Target) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::List { json } => {
            let value = call(target, Method::GET, "/v1/admin/plugins", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_list(&value);
            }
        }
        PluginCommand::Upload { name, file, manifest } => {
            let value = upload(target, &name, &file, manifest).await?;
            println!(
                "uploaded {name}@{} ({})",
                value["version"].as_str().unwrap_or(""),
                if value["approved"].as_bool().unwrap_or(false) {
                    "approved".to_owned()
                } else {
                    format!("waits for approval: {}", value["pending_approval"])
                }
            );
            for line in value["smoke"].as_array().into_iter().flatten() {
                println!("  smoke: {}", line.as_str().unwrap_or(""));
            }
            println!(
                "deploy it with: kaunter plugin deploy {name} {} [--group GROUP]",
                value["version"].as_str().unwrap_or("")
            );
        }
        PluginCommand::Deploy { name, version, scope } => {
            let value = call(
                target,
                Method::POST,
                &format!("/v1/admin/plugins/{name}/deploy"),
                Some(scope.body(Some(&version))),
            )
            .await?;
            if value["unchanged"].as_bool().unwrap_or(false) {
                println!(
                    "{name}@{version} already runs for {}",
                    value["scope"].as_str().unwrap_or("")
                );
            } else {
                println!(
                    "{name}@{version} now runs for {}",
                    value["scope"].as_str().unwrap_or("")
                );
            }
        }
        PluginCommand::Promote { name, scope } => {
            let value = call(
                target,
                Method::POST,
                &format!("/v1/admin/plugins/{name}/promote"),
                Some(scope.body(None)),
            )
            .await?;
            println!(
                "{name}@{} now runs for all stores",
                value["version"].as_str().unwrap_or("")
            );
        }
        PluginCommand::Rollback { name, scope } => {
            let value = call(
                target,
                Method::POST,
                &format!("/v1/admin/plugins/{name}/rollback"),
                Some(scope.body(None)),
            )
            .await?;
            println!(
                "rolled back: {name}@{} runs for {}",
                value["version"].as_str().unwrap_or(""),
                value["scope"].as_str().unwrap_or("")
            );
        }
        PluginCommand::Shadow { name, version, stop } => {
            if version.is_none() && !stop {
                anyhow::bail!("name the shadow version, or pass --stop");
            }
            call(
                target,
                Method::POST,
                &format!("/v1/admin/plugins/{name}/shadow"),
                Some(json!({ "version": version })),
            )
            .await?;
            match version {
                Some(v) => println!("{name}@{v} shadows the live version; see `kaunter shadow report {name}`"),
                None => println!("{name}: shadow stopped"),
            }
        }
        PluginCommand::Approve { plugin, config, data } => approve(target, &plugin, config, data).await?,
        PluginCommand::Run(args) => return super::run::run(args).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn upload(
    target: &Target,
    name: &str,
    file: &std::path::Path,
    manifest: Option<PathBuf>,
) -> anyhow::Result<Value> {
    use base64::Engine as _;
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let manifest = match manifest {
        Some(path) => {
            Some(std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?)
        }
        None => std::fs::read_to_string(file.with_extension("manifest.toml")).ok(),
    };
    let body = json!({
        "component": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "manifest": manifest,
    });
    call(
        target,
        Method::POST,
        &format!("/v1/admin/plugins/{name}/versions"),
        Some(body),
    )
    .await
}

async fn approve(target: &Target, plugin: &str, config: Option<PathBuf>, data: Option<PathBuf>) -> anyhow::Result<()> {
    let (name, version) = plugin
        .split_once('@')
        .ok_or_else(|| anyhow::anyhow!("name the version: NAME@VERSION, as kaunter printed it"))?;
    let Some(config) = config else {
        let value = call(
            target,
            Method::POST,
            "/v1/admin/plugins/approve",
            Some(json!({ "plugin": plugin })),
        )
        .await?;
        println!("approved {plugin}: requests {}", value["requests"]);
        return Ok(());
    };
    let config = Config::load(&config)?;
    let data = data.unwrap_or_else(|| config.resolve(&config.server.data_dir));
    // Sealed with the audit key, like the host's own records; checkpointed at the host's next start.
    let audit = crate::audit::AuditSetup::from_config(&config)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_keyed(
        &data,
        Duration::from_micros(200),
        64,
        audit.key,
    )?);
    // No key authenticates an offline approval: record the account that ran it as the system
    // knows it (its uid), and say it is unauthenticated, instead of trusting `$USER`.
    let who = offline_identity();
    let requests = guard::approve_version(&config, &data, &store, name, version, &who).await?;
    println!(
        "approved {name}@{version} ({who}): requests {}",
        serde_json::to_string(&requests)?
    );
    Ok(())
}

/// Who ran an offline command, as the audit log records it: the process's uid (read from the
/// kernel, not from the environment), marked unauthenticated.
fn offline_identity() -> String {
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("offline:uid={uid} (unauthenticated: no API key; local account)")
}

fn print_list(value: &Value) {
    // Which stores a pin to a group reaches.
    if let Some(groups) = value["store_groups"].as_object().filter(|g| !g.is_empty()) {
        println!("store groups:");
        for (name, members) in groups {
            let members: Vec<&str> = members
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!("  {name}: {}", members.join(", "));
        }
    }
    for plugin in value["plugins"].as_array().into_iter().flatten() {
        let d = &plugin["deployment"];
        println!(
            "{} ({})  active {}{}",
            plugin["name"].as_str().unwrap_or(""),
            plugin["kind"].as_str().unwrap_or(""),
            d["active"].as_str().unwrap_or("-"),
            d["shadow"]
                .as_str()
                .map(|s| format!("  shadow {s}"))
                .unwrap_or_default()
        );
        for pin in d["pins"].as_array().into_iter().flatten() {
            let mut scope = Vec::new();
            if let Some(g) = pin["group"].as_str() {
                scope.push(format!("group {g}"));
            }
            if let Some(r) = pin["route"].as_str() {
                scope.push(format!("route {r}"));
            }
            println!(
                "    pinned {} for {}",
                pin["version"].as_str().unwrap_or(""),
                scope.join(", ")
            );
        }
        for v in plugin["versions"].as_array().into_iter().flatten() {
            println!(
                "    {}  {:<16} {}  from {}",
                v["version"].as_str().unwrap_or(""),
                v["state"].as_str().unwrap_or(""),
                v["registered_at"].as_str().unwrap_or(""),
                v["origin"].as_str().unwrap_or(""),
            );
            for line in v["pending"].as_array().into_iter().flatten() {
                println!("        {}", line.as_str().unwrap_or(""));
            }
        }
    }
}
