//! Writing checkpoints while the host runs: at start, every `anchor_every_secs` when records
//! were added, at once after an operator's action, and at a clean shutdown.
//!
//! At start it also compares the anchor file's latest checkpoint with the log, and records any
//! disagreement (`audit.anchor.problem`): a log truncated or replaced while the host was down is
//! reported the moment it comes back, not only at the next `kaunter audit verify`.

use super::anchor::{self, Checkpoint, CheckpointError, SigningKey};
use crate::store::audit::{AuditEntry, AuditHead};
use crate::store::{Store, now_ms};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};

/// Writes checkpoints of the chain's head to the anchor file.
pub struct Anchorer {
    key: SigningKey,
    file: PathBuf,
    heads: watch::Receiver<AuditHead>,
    /// Position of the latest checkpoint written (held while one is written).
    last: Mutex<i64>,
}

impl Anchorer {
    /// Checks the anchor file against the log, writes a checkpoint of the head, and keeps writing
    /// them in the background.
    ///
    /// Fails when the file cannot be written, or when its checkpoints are signed with another key
    /// (a new signing key needs a new anchor file).
    pub async fn start(
        key: SigningKey,
        file: PathBuf,
        store: Arc<dyn Store>,
        heads: watch::Receiver<AuditHead>,
        every: Duration,
    ) -> anyhow::Result<Arc<Anchorer>> {
        let lines = {
            let path = file.clone();
            tokio::task::spawn_blocking(move || anchor::read(&path))
                .await
                .context("reading the anchor file")?
                .with_context(|| format!("reading the anchor file {}", file.display()))?
        };
        let mut last = 0;
        if let Some((line, latest)) = lines.last() {
            let problem = match latest {
                Ok(checkpoint) => match checkpoint.check(&key.public()) {
                    Err(CheckpointError::OtherKey { found, expected }) => anyhow::bail!(
                        "the anchor file {} holds checkpoints signed by key {found}, but [audit] signing_key is key {expected}; after a new signing key, set a new anchor_file (keep the old one to verify older checkpoints; docs/audit.md)",
                        file.display()
                    ),
                    Err(e) => Some(e.to_string()),
                    Ok(()) => {
                        last = checkpoint.seq;
                        disagreement(&store, checkpoint).await?
                    }
                },
                Err(e) => Some(e.clone()),
            };
            if let Some(problem) = problem {
                tracing::error!(file = %file.display(), line, %problem, "the anchor file's latest checkpoint does not check out against the audit log; run `kaunter audit verify`");
                store
                    .audit(vec![AuditEntry::new(
                        "host",
                        "audit.anchor.problem",
                        file.display().to_string(),
                        serde_json::json!({ "line": line, "problem": problem }),
                    )])
                    .await
                    .context("recording an anchor problem in the audit log")?;
                // The chain moved away from that checkpoint: anchor the head as it is now.
                last = 0;
            }
        }
        tracing::info!(file = %file.display(), public_key = %key.public().hex(), "audit checkpoints are signed with this Ed25519 key");
        let anchorer = Arc::new(Anchorer {
            key,
            file,
            heads: heads.clone(),
            last: Mutex::new(last),
        });
        anchorer.anchor_head().await.context("writing the first checkpoint")?;
        tokio::spawn(run(anchorer.clone(), heads, every));
        Ok(anchorer)
    }

    /// Writes a checkpoint of the head if records were added since the latest one.
    pub async fn anchor_head(&self) -> anyhow::Result<Option<Checkpoint>> {
        let mut last = self.last.lock().await;
        let head = self.heads.borrow().clone();
        if head.seq <= *last {
            return Ok(None);
        }
        let checkpoint = self.key.sign(head.seq, &head.hash, now_ms());
        let (file, line) = (self.file.clone(), checkpoint.clone());
        tokio::task::spawn_blocking(move || anchor::append(&file, &line))
            .await
            .context("writing a checkpoint")?
            .with_context(|| format!("appending a checkpoint to {}", self.file.display()))?;
        *last = head.seq;
        Ok(Some(checkpoint))
    }
}

impl Anchorer {
    /// Prunes the audit log through the latest checkpoint of this host whose record is older than
    /// `before_ms` (`[retention] audit_max_age_secs`): first a signed prune statement goes to the
    /// anchor file, then the records go, then the prune is recorded (`audit.pruned`). Returns the
    /// last record pruned and how many went, or `None` when nothing was due.
    pub async fn prune_audit(&self, store: &Arc<dyn Store>, before_ms: i64) -> anyhow::Result<Option<(i64, u64)>> {
        let _writing = self.last.lock().await;
        let lines = {
            let path = self.file.clone();
            tokio::task::spawn_blocking(move || anchor::read(&path))
                .await
                .context("reading the anchor file")?
                .with_context(|| format!("reading the anchor file {}", self.file.display()))?
        };
        let public = self.key.public();
        let mut candidates: Vec<Checkpoint> = lines
            .into_iter()
            .filter_map(|(_, line)| line.ok())
            .filter(|c| c.pruned_through.is_none() && c.check(&public).is_ok())
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.seq));
        let first = store.audit_log(0, 1).await.context("reading the audit log")?;
        let pruned_so_far = first.first().map_or(0, |r| r.seq - 1);
        for c in candidates {
            if c.seq <= pruned_so_far {
                break;
            }
            let record = store.audit_log(c.seq - 1, 1).await.context("reading the audit log")?;
            let Some(record) = record.into_iter().next().filter(|r| r.seq == c.seq) else {
                continue;
            };
            if record.at_ms >= before_ms || record.hash != c.hash {
                continue;
            }
            let statement = self.key.sign_prune(c.seq, &c.hash, now_ms());
            let (file, line) = (self.file.clone(), statement.clone());
            tokio::task::spawn_blocking(move || anchor::append(&file, &line))
                .await
                .context("writing a prune statement")?
                .with_context(|| format!("appending a prune statement to {}", self.file.display()))?;
            let removed = store
                .prune_audit(c.seq, &c.hash)
                .await
                .context("pruning the audit log")?;
            store
                .audit(vec![AuditEntry::new(
                    "host",
                    "audit.pruned",
                    "audit_log",
                    serde_json::json!({ "through": c.seq, "removed": removed, "statement_at": statement.at }),
                )])
                .await
                .context("recording the prune in the audit log")?;
            return Ok(Some((c.seq, removed)));
        }
        Ok(None)
    }
}

/// How `checkpoint` disagrees with the log, if it does.
async fn disagreement(store: &Arc<dyn Store>, checkpoint: &Checkpoint) -> anyhow::Result<Option<String>> {
    if checkpoint.pruned_through.is_some() {
        // A prune statement: its record is the last one pruned, gone by design.
        return Ok(None);
    }
    let record = store
        .audit_log(checkpoint.seq - 1, 1)
        .await
        .context("reading the audit log")?
        .into_iter()
        .next()
        .filter(|r| r.seq == checkpoint.seq);
    Ok(match record {
        None => Some(format!(
            "the latest checkpoint holds record #{}, which is not in the log (truncated or replaced)",
            checkpoint.seq
        )),
        Some(r) if r.hash != checkpoint.hash => Some(format!(
            "record #{} does not have the hash the latest checkpoint holds (rewritten or replaced)",
            checkpoint.seq
        )),
        Some(_) => None,
    })
}

/// Writes checkpoints every `every` when records were added, and at once after an operator's
/// action, until the store's writer stops.
async fn run(anchorer: Arc<Anchorer>, mut heads: watch::Receiver<AuditHead>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = heads.changed() => {
                if changed.is_err() {
                    return;
                }
                let operator_seq = heads.borrow_and_update().operator_seq;
                if operator_seq <= *anchorer.last.lock().await {
                    continue;
                }
            }
        }
        if let Err(e) = anchorer.anchor_head().await {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot write an audit checkpoint; retrying at the next interval"
            );
        }
    }
}
