//! Historic replay: re-run events from the log through their routes again, for instance after a
//! sink lost data or with a fixed transform (`kaunter replay --since T [--route R]
//! [--through plugin@version] [--dry-run]`).
//!
//! A replay runs as a background job over the log in pages, against a routing table the caller
//! prepares (the live one, or one with a given version swapped in; for a dry run, one whose
//! plugins capture their side effects). A real replay commits like routing does, except that a
//! sink that already holds the event gets its delivery reset to pending: the connector sends it
//! again with the same idempotency key. A dry run commits nothing and reports what would happen.

use super::Pipeline;
use super::router::{Chains, MAX_DERIVATION_DEPTH, commit_and_hand_off};
use super::routing::Routing;
use crate::store::{RouteCommit, StoreResult, StoredEvent};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Events read from the log at a time.
const PAGE: usize = 200;
/// Outcomes a dry run shows in full.
const DRY_RUN_SAMPLES: usize = 5;

/// What to replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySpec {
    /// Events received at or after this time (ms since the epoch).
    pub since_ms: i64,
    /// Only this route.
    pub route: Option<String>,
    /// `plugin@version` swapped in for the replay, if any.
    pub through: Option<String>,
    /// Report only; commit and send nothing.
    pub dry_run: bool,
}

/// A replay job's progress, as `GET /v1/admin/replays/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayProgress {
    /// Job id.
    pub id: String,
    /// What it replays.
    pub spec: ReplaySpec,
    /// Events selected.
    pub total: u64,
    /// Events re-run so far.
    pub processed: u64,
    /// Deliveries (re)queued, or that would be, by sink.
    pub deliveries: BTreeMap<String, u64>,
    /// Events that a transform failed on (dead-lettered, or would be).
    pub dead_letters: u64,
    /// Derived events produced.
    pub derived: u64,
    /// Whether the job has finished.
    pub done: bool,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
    /// Dry run: what the first few events would produce.
    pub samples: Vec<Value>,
    /// Start time (RFC 3339).
    pub started_at: Value,
    /// Milliseconds since the start.
    pub elapsed_ms: u64,
}

/// Running and finished replay jobs of a host.
#[derive(Default)]
pub struct ReplayJobs {
    jobs: Mutex<BTreeMap<String, Arc<Mutex<ReplayProgress>>>>,
}

impl ReplayJobs {
    /// A job's progress.
    pub fn get(&self, id: &str) -> Option<ReplayProgress> {
        let jobs = self.jobs.lock().ok()?;
        let job = jobs.get(id)?.lock().ok()?;
        Some(job.clone())
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<ReplayProgress> {
        let Ok(jobs) = self.jobs.lock() else {
            return Vec::new();
        };
        jobs.values().filter_map(|j| j.lock().ok().map(|p| p.clone())).collect()
    }
}

impl Pipeline {
    /// Starts a replay job over the log with `routing`; returns its id at once.
    pub async fn start_replay(
        self: &Arc<Self>,
        id: String,
        spec: ReplaySpec,
        routing: Arc<Routing>,
    ) -> StoreResult<String> {
        let since_us = spec.since_ms.saturating_mul(1000);
        // The events in the log now, and only those: what arrives while the replay runs is live
        // traffic, delivered by the lanes, and must not be sent a second time.
        let (total, through_seq) = self.store.count_events_since(since_us).await?;
        let progress = Arc::new(Mutex::new(ReplayProgress {
            id: id.clone(),
            spec,
            total,
            processed: 0,
            deliveries: BTreeMap::new(),
            dead_letters: 0,
            derived: 0,
            done: false,
            error: None,
            samples: Vec::new(),
            started_at: crate::store::rfc3339(Some(crate::store::now_ms())),
            elapsed_ms: 0,
        }));
        if let Ok(mut jobs) = self.replays.jobs.lock() {
            jobs.insert(id.clone(), progress.clone());
        }
        let pipeline = self.clone();
        // A replay's calls of serial plugins let live calls go first.
        tokio::spawn(crate::engine::BACKGROUND.scope(true, async move {
            let started = std::time::Instant::now();
            let result = pipeline
                .run_replay(&progress, &routing, (since_us, through_seq), started)
                .await;
            if let Ok(mut p) = progress.lock() {
                p.done = true;
                p.elapsed_ms = started.elapsed().as_millis() as u64;
                if let Err(e) = result {
                    p.error = Some(format!("the store failed: {e}"));
                }
            }
        }));
        Ok(id)
    }

    async fn run_replay(
        &self,
        progress: &Mutex<ReplayProgress>,
        routing: &Routing,
        (since_us, through_seq): (i64, i64),
        started: std::time::Instant,
    ) -> StoreResult<()> {
        let (only_route, dry_run) = match progress.lock() {
            Ok(p) => (p.spec.route.clone(), p.spec.dry_run),
            Err(_) => return Ok(()),
        };
        let chains = Chains {
            routing,
            store: &self.store,
            metrics: &self.metrics,
            shadows: None,
            dry_run,
        };
        let mut after = 0;
        loop {
            let page = self.store.events_since(since_us, after, through_seq, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            // Received events first; derived ones (re-derived by the transforms) are routed
            // again right after their parents, on every route, like the lanes do.
            let mut work: Vec<(StoredEvent, u8)> = page.into_iter().map(|e| (e, 0)).collect();
            while !work.is_empty() {
                let replayed = self
                    .replay_batch(&chains, progress, std::mem::take(&mut work), &only_route, started)
                    .await;
                if !dry_run {
                    work = replayed
                        .into_iter()
                        .filter(|(_, depth)| *depth < MAX_DERIVATION_DEPTH)
                        .collect();
                }
            }
        }
        Ok(())
    }

    /// Routes one batch for a replay and (unless a dry run) commits it; returns the derived
    /// events to route next.
    async fn replay_batch(
        &self,
        chains: &Chains<'_>,
        progress: &Mutex<ReplayProgress>,
        batch: Vec<(StoredEvent, u8)>,
        only_route: &Option<String>,
        started: std::time::Instant,
    ) -> Vec<(StoredEvent, u8)> {
        let dry_run = chains.dry_run;
        let mut commits = Vec::with_capacity(batch.len());
        let mut depths = Vec::with_capacity(batch.len());
        for (stored, depth) in &batch {
            // Only received events are limited to one route; derived ones go wherever they match.
            let only = if *depth == 0 { only_route.as_deref() } else { None };
            let routed = chains.route_one(stored, *depth, only).await;
            if let Ok(mut p) = progress.lock() {
                if *depth == 0 {
                    p.processed += 1;
                }
                for d in &routed.deliveries {
                    *p.deliveries.entry(d.sink.clone()).or_default() += 1;
                }
                p.dead_letters += routed.dead_letters.len() as u64;
                p.derived += routed.derived.len() as u64;
                if dry_run && p.samples.len() < DRY_RUN_SAMPLES {
                    p.samples.push(json!({
                        "event_id": stored.event.id,
                        "deliveries": routed.deliveries.iter().map(|d| json!({
                            "sink": d.sink, "route": d.route, "handled_by": d.handled_by,
                            "body": serde_json::from_slice::<Value>(&d.body).unwrap_or(Value::Null),
                        })).collect::<Vec<_>>(),
                        "derived": routed.derived.iter().map(|d| d.event.to_json()).collect::<Vec<_>>(),
                        "dead_letters": routed.dead_letters.iter().map(|l| l.error.clone()).collect::<Vec<_>>(),
                    }));
                }
                p.elapsed_ms = started.elapsed().as_millis() as u64;
            }
            commits.push(RouteCommit {
                trace: stored.trace.clone(),
                event_seq: stored.seq,
                event_id: stored.event.id.clone(),
                received_at_us: stored.received_at_us,
                derived: routed.derived,
                deliveries: routed.deliveries,
                dead_letters: routed.dead_letters,
                dropped_routes: routed.dropped_routes,
                redeliver: true,
            });
            depths.push(*depth);
        }
        let mut derived = Vec::new();
        if !dry_run {
            // Handed to the workers of the replay's own table: a sink a reload removed since
            // still has its worker, so nothing committed here is left unqueued.
            let (store, metrics, router) = (&self.store, &self.metrics, &self.router);
            commit_and_hand_off(
                store,
                chains.routing,
                metrics,
                router,
                commits,
                &depths,
                Some(&mut derived),
            )
            .await;
        }
        derived
    }
}
