//! The background pruner of `[retention]`: every `prune_interval_secs` it prunes finished events
//! in bounded batches (see [`Store::prune`]) until none is due, counts them, and records each run
//! that removed something in the audit log (`store.pruned`).

use crate::config::RetentionConfig;
use crate::store::audit::AuditEntry;
use crate::store::{PrunePolicy, Pruned, Store, StoreResult, now_us};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Events per batch: one short write transaction each, so commits of live work go in between.
const BATCH: usize = 500;
/// Most batches per run (the rest waits for the next run).
const MAX_BATCHES: usize = 2000;

/// Starts the pruner when `config` prunes anything; `pruned` counts the events it removed.
/// Audit records are pruned only with `anchorer` (signed checkpoints).
pub fn spawn(
    store: Arc<dyn Store>,
    config: RetentionConfig,
    pruned: Arc<AtomicU64>,
    anchorer: Option<Arc<crate::audit::anchorer::Anchorer>>,
) {
    if !config.enabled() {
        return;
    }
    tokio::spawn(async move {
        let interval = Duration::from_secs(config.prune_interval_secs.max(1));
        loop {
            tokio::time::sleep(interval).await;
            match run_once(store.as_ref(), &config).await {
                Ok(total) => {
                    pruned.fetch_add(total.events, Ordering::Relaxed);
                    if total.events + total.forgotten > 0 {
                        tracing::info!(
                            events = total.events,
                            remembered_for_dedupe = total.remembered,
                            forgotten = total.forgotten,
                            "pruned finished events ([retention])"
                        );
                        let entry = AuditEntry::new("host", "store.pruned", "events", serde_json::json!(total));
                        if let Err(e) = store.audit(vec![entry]).await {
                            tracing::error!(error = %e, "cannot record pruning in the audit log");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "pruning failed; trying again at the next run"),
            }
            if let (Some(anchorer), true) = (&anchorer, config.audit_max_age_secs > 0) {
                let age_ms = i64::try_from(config.audit_max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
                match anchorer.prune_audit(&store, now_us() / 1000 - age_ms).await {
                    Ok(Some((through, removed))) => {
                        tracing::info!(through, removed, "pruned the audit log through a signed checkpoint")
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "pruning the audit log failed; trying again at the next run")
                    }
                }
            }
        }
    });
}

/// Prunes everything due now, batch by batch; what it removed in all.
pub async fn run_once(store: &dyn Store, config: &RetentionConfig) -> StoreResult<Pruned> {
    let now = now_us();
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1_000_000);
    let policy = PrunePolicy {
        received_before_us: (config.events_max_age_secs > 0).then(|| now - secs(config.events_max_age_secs)),
        max_used_bytes: (config.max_log_mib > 0).then(|| config.max_log_mib.saturating_mul(1024 * 1024)),
        dedupe_after_us: now.saturating_sub(secs(config.dedupe_secs)),
        batch: BATCH,
    };
    let mut total = Pruned::default();
    for _ in 0..MAX_BATCHES {
        let one = store.prune(policy).await?;
        total.events += one.events;
        total.remembered += one.remembered;
        total.forgotten += one.forgotten;
        if one.events == 0 {
            break;
        }
    }
    Ok(total)
}
