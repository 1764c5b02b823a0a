//! Assembling a running host from a configuration: store, engine, plugins, pipeline, HTTP API.
//!
//! [`Server::start`] is what `kaunter serve`, the demo, the benchmarks and the tests all use, so
//! there is one way a host comes up; [`Server::stop`] is the clean way down (a `host.stop` record
//! and a last audit checkpoint). [`conn`] holds connections to their limits.

mod conn;

use crate::audit::AuditSetup;
use crate::audit::anchorer::Anchorer;
use crate::config::Config;
use crate::egress::Egress;
use crate::engine::Runtime;
use crate::ingress::AppState;
use crate::lifecycle::Lifecycle;
use crate::pipeline::Pipeline;
use crate::plugins::registry::Registry;
use crate::store::Store;
use crate::store::audit::AuditEntry;
use crate::store::sqlite::SqliteStore;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A running host.
pub struct Server {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The pipeline (metrics, replay).
    pub pipeline: Arc<Pipeline>,
    /// Deploy, roll back, reload.
    pub lifecycle: Arc<Lifecycle>,
    /// The SOP alert monitor.
    pub alerts: Arc<crate::lifecycle::alerts::Monitor>,
    /// The database file.
    pub db_path: PathBuf,
    anchorer: Option<Arc<Anchorer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens the store, loads plugins, resumes unfinished work, and starts serving.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        let data_dir = config.resolve(&config.server.data_dir);
        let cache_dir = match &config.server.cache_dir {
            Some(dir) => config.resolve(dir),
            None => data_dir.join("cache"),
        };
        let audit = AuditSetup::from_config(config)?;
        let sqlite = SqliteStore::open_keyed(
            &data_dir,
            Duration::from_micros(config.server.commit_window_us),
            config.server.commit_max_ops,
            audit.key.clone(),
        )
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
        sqlite.set_wal_truncate_bytes(config.server.wal_truncate_mib.max(1) * 1024 * 1024);
        let db_path = sqlite.path().to_path_buf();
        let audit_head = sqlite.audit_head();
        let store: Arc<dyn Store> = Arc::new(sqlite);
        let runtime = Runtime::new(cache_dir, config.uses_fuel())?;
        let tls = crate::net::tls::client_config(&config.server.extra_ca_files, &config.base_dir)?;
        let egress = Egress::new(Duration::from_secs(10), tls.clone());
        let credentials = crate::credentials::Credentials::new(config, store.clone())?;
        let tracing = config
            .telemetry
            .settings(&config.base_dir, |name| std::env::var(name).ok())
            .map_err(|e| anyhow::anyhow!("[telemetry]: {e}"))?;
        match &tracing {
            Some(settings) => {
                let client =
                    crate::telemetry::trace::HttpClient::new(tokio::runtime::Handle::current(), (*tls).clone());
                crate::telemetry::trace::install(settings, client).context("starting the OTLP trace exporter")?;
                tracing::info!(endpoint = %settings.endpoint, ratio = settings.sampler.ratio, "exporting traces over OTLP/HTTP");
            }
            None => crate::telemetry::trace::shutdown(),
        }
        let (config_sha256, config_changes) = config_since_last_start(config, &store, audit.key.as_ref()).await?;
        store
            .audit(vec![AuditEntry::new(
                "host",
                "host.start",
                config.server.listen.clone(),
                serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "config": config.source.as_ref().map_or("the bundled demo configuration".into(), |p| p.display().to_string()),
                    "config_sha256": config_sha256,
                    "config_changed_since_last_start": config_changes,
                    "plugins": config.plugins.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                    "routes": config.routes.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
                    "sinks": config.sinks.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                }),
            )])
            .await
            .context("writing the audit log")?;
        let anchorer = match audit.anchor {
            Some((key, file)) => Some(
                Anchorer::start(key, file, store.clone(), audit_head, audit.every)
                    .await
                    .context("anchoring the audit log ([audit] anchor_file)")?,
            ),
            None => None,
        };
        let registry = Registry::new(runtime, store.clone(), egress, credentials, data_dir.clone());
        let (lifecycle, pipeline) = Lifecycle::start(config, registry, store.clone()).await?;
        crate::lifecycle::retention::spawn(
            store,
            config.retention.clone(),
            pipeline.metrics().pruned.clone(),
            anchorer.clone(),
        );
        crate::lifecycle::watch::spawn(lifecycle.clone());
        let alerts = crate::lifecycle::alerts::Monitor::spawn(lifecycle.clone(), pipeline.clone())
            .await
            .context("starting the alert monitor")?;
        let state = AppState::new(config, pipeline.clone(), lifecycle.clone(), alerts.clone())?;
        spawn_reload_on_hangup(state.clone());
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("listening on {} (server.listen)", config.server.listen))?;
        let addr = listener.local_addr()?;
        if let Some(listen) = &config.server.metrics_listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen} (server.metrics_listen)"))?;
            let app = crate::admin::open_metrics_router().with_state(state.clone());
            let limits = conn::ConnLimits::of(&config.server);
            tracing::info!(addr = %listener.local_addr()?, "serving /metrics without a key (server.metrics_listen)");
            tokio::spawn(async move {
                if let Err(e) = conn::serve(listener, app, limits).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
        }
        let app = router(state);
        let limits = conn::ConnLimits::of(&config.server);
        let task = tokio::spawn(async move {
            if let Err(e) = conn::serve(listener, app, limits).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        if let Some(anchorer) = &anchorer {
            // The first checkpoint held `host.start`; this one holds what loading the plugins recorded.
            anchorer.anchor_head().await.context("writing a checkpoint")?;
        }
        tracing::info!(%addr, db = %db_path.display(), "kaunter is serving");
        Ok(Server {
            addr,
            pipeline,
            lifecycle,
            alerts,
            db_path,
            anchorer,
            task,
        })
    }

    /// Base URL of the API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until the process is stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("HTTP server task")?;
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM, then stops cleanly (see [`Server::stop`]).
    pub async fn serve_until_signal(mut self) -> anyhow::Result<()> {
        let actor = tokio::select! {
            served = &mut self.task => {
                served.context("HTTP server task")?;
                return Ok(());
            }
            actor = stop_signal() => actor,
        };
        tracing::info!(by = actor, "stopping");
        self.stop(actor).await
    }

    /// Records `host.stop` (by `actor`) and writes a final checkpoint, so the log's last records
    /// are anchored when the host goes down cleanly.
    pub async fn stop(&self, actor: &str) -> anyhow::Result<()> {
        self.pipeline
            .store()
            .audit(vec![AuditEntry::new(
                actor,
                "host.stop",
                self.addr.to_string(),
                serde_json::json!({}),
            )])
            .await
            .context("writing the audit log")?;
        if let Some(anchorer) = &self.anchorer {
            anchorer.anchor_head().await.context("writing the last checkpoint")?;
        }
        let _ = tokio::task::spawn_blocking(crate::telemetry::trace::flush).await;
        self.task.abort();
        Ok(())
    }
}

/// The setting the last start's configuration fingerprint is kept under.
const CONFIG_FINGERPRINT: &str = "host.config_fingerprint";

/// The SHA-256 of the configuration file this host starts with, and what changed in it since the
/// last start (by entry; `null` on a first start); keeps this start's fingerprint for the next.
async fn config_since_last_start(
    config: &Config,
    store: &Arc<dyn Store>,
    key: Option<&crate::store::audit::ChainKey>,
) -> anyhow::Result<(String, serde_json::Value)> {
    use crate::config::fingerprint::{Fingerprint, changes, fingerprint};
    use sha2::Digest as _;
    let text = match &config.source {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => crate::config::DEMO_CONFIG.to_owned(),
    };
    let now = fingerprint(&text, key);
    let before: Option<Fingerprint> = store
        .setting(CONFIG_FINGERPRINT)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok());
    store
        .put_setting(CONFIG_FINGERPRINT, serde_json::to_string(&now)?)
        .await?;
    let changed = before.map_or(serde_json::Value::Null, |before| changes(&before, &now));
    Ok((crate::store::hex(&sha2::Sha256::digest(text.as_bytes())), changed))
}

/// Waits for SIGTERM or SIGINT (Ctrl-C); says which, as an audit actor.
async fn stop_signal() -> &'static str {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = async {
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = terminate => "signal:SIGTERM",
            _ = interrupt => "signal:SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        interrupt.await;
        "signal:SIGINT"
    }
}

/// `SIGHUP` reloads the configuration file, like `POST /v1/admin/config/reload`.
fn spawn_reload_on_hangup(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload through the admin API instead");
            return;
        };
        while hangups.recv().await.is_some() {
            match state.reload("signal:SIGHUP").await {
                Ok(report) => tracing::info!(%report, "configuration reloaded on SIGHUP"),
                Err(e) => {
                    tracing::error!(error = %e, "configuration not reloaded; the running one stays");
                    state
                        .lifecycle
                        .audit_refusal("signal:SIGHUP", "config.reload", "config", &e.to_string())
                        .await;
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}

/// The full HTTP API: ingest and admin routes; bodies are limited per route, after
/// authentication, so axum's default limit is off.
fn router(state: AppState) -> axum::Router {
    crate::ingress::router()
        .merge(crate::admin::router())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
