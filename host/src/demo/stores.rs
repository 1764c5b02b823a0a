//! Simulated stores: tills posting each sale to `/v1/events` as it happens.

use crate::loadgen::LoadGen;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The running simulation.
pub struct Stores {
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
}

impl Stores {
    /// Requests that did not get a 202.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Stops sending.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts `stores` stores sending `rate` events per second in total.
pub fn start(base_url: String, stores: usize, rate: u32) -> Stores {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let handle = Stores {
        stop: stop.clone(),
        errors: errors.clone(),
    };
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("{base_url}/v1/events");
        let mut generator = LoadGen::new(2026, stores, 400);
        let per_tick = rate.max(1) as f64 / 100.0;
        let mut owed = 0.0;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            owed += per_tick;
            while owed >= 1.0 {
                owed -= 1.0;
                let event = generator.next_event();
                let request = client.post(&url).bearer_auth("demo-pos-key").json(&event);
                let errors = errors.clone();
                tokio::spawn(async move {
                    #[allow(clippy::disallowed_methods)] // A simulated till calling kaunter's API.
                    let result = request.send().await;
                    match result {
                        Ok(r) if r.status().as_u16() == 202 => {}
                        Ok(r) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            tracing::warn!(%status, body = %text, "store request refused");
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "store request failed");
                        }
                    }
                });
            }
        }
    });
    handle
}
