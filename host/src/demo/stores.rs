//! Simulated stores: tills posting each sale to `/v1/events` as it happens, shaped so every part of
//! the demo chain has work.
//!
//! - Sales and refunds (about one in twenty, most of them restocking) from [`LoadGen`]; the
//!   members among the customers (about two in five) come from a pool of [`MEMBERS`], so the same
//!   people return, earn points, change tier and update their HubSpot contact.
//! - Stock counts (`pos.stock.adjusted.v1` with `on_hand_milli`): each store counts its five
//!   best sellers at the start, then every few seconds one store recounts one of them and finds
//!   it low, so the restock transform projects cover from the day's sales and suggests an order.
//! - Now and then one cashier at one store refunds six recent sales in a row: the anomaly
//!   transform's refund spike (one alert per cashier per cool-down, not one per refund).
//!
//! Deterministic for a given store count: every random choice comes from fixed seeds.

use crate::loadgen::{LoadGen, MAPPED_BARCODES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Loyalty members who shop across the chain.
pub const MEMBERS: u64 = 600;
/// Seconds between stock recounts (one store, one SKU each).
const RECOUNT_EVERY: Duration = Duration::from_secs(3);
/// When the first refund burst comes, and how often after.
const FIRST_BURST: Duration = Duration::from_secs(7);
const BURST_EVERY: Duration = Duration::from_secs(20);
/// Refunds in a burst (the anomaly transform's threshold is five).
const BURST_REFUNDS: usize = 6;

/// The running simulation.
pub struct Stores {
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
    /// `(source, id)` of every event a till received a `202` for.
    acknowledged: Acknowledged,
    /// Stock counts sent.
    pub counts: Arc<AtomicU64>,
    /// Refund bursts sent.
    pub bursts: Arc<AtomicU64>,
}

/// What the tills were told was accepted, shared with every request's task.
type Acknowledged = Arc<std::sync::Mutex<Vec<(String, String)>>>;

impl Stores {
    /// `(source, id)` of every event a till received a `202` for, so far.
    pub fn acknowledged(&self) -> Vec<(String, String)> {
        self.acknowledged.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Requests that did not get a 202.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Stops sending.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A recent sale a refund can point at: order id, its first line, member.
struct Sold {
    order: String,
    line: Value,
    member: Value,
}

/// What the tills send besides [`LoadGen`]'s traffic.
struct Chain {
    rng: StdRng,
    stores: Vec<String>,
    recent: Vec<VecDeque<Sold>>,
    counter: u64,
}

impl Chain {
    fn new(stores: usize) -> Chain {
        Chain {
            rng: StdRng::seed_from_u64(852),
            stores: (1..=stores.max(1)).map(|i| format!("hk-{i:03}")).collect(),
            recent: (0..stores.max(1)).map(|_| VecDeque::new()).collect(),
            counter: 0,
        }
    }

    /// Puts a generated event's member in the pool and remembers sales for the bursts.
    fn shape(&mut self, mut event: Value) -> Value {
        if let Some(member) = event["data"]["member_id"].as_str() {
            let n: u64 = member.trim_start_matches('M').parse().unwrap_or(0);
            event["data"]["member_id"] = json!(format!("M-{:05}", n % MEMBERS + 1));
        }
        let store = event["source"]
            .as_str()
            .and_then(|s| s.split('/').nth(4))
            .and_then(|s| self.stores.iter().position(|x| x == s));
        if let (Some(store), Some("pos.sale.completed.v1")) = (store, event["type"].as_str()) {
            let data = &event["data"];
            let recent = &mut self.recent[store];
            if recent.len() >= 20 {
                recent.pop_front();
            }
            recent.push_back(Sold {
                order: data["order_id"].as_str().unwrap_or_default().to_owned(),
                line: data["lines"][0].clone(),
                member: data["member_id"].clone(),
            });
        }
        event
    }

    /// A stock count of one best seller at one store.
    fn count(&mut self, store: usize, sku: &str, units: i64) -> Value {
        self.counter += 1;
        let correction = self.rng.random_range(-3..=1i64) * 1000;
        json!({
            "id": format!("{}-count-{}", self.stores[store], self.counter),
            "source": format!("/t/demo-pharmacy/s/{}/p/backoffice", self.stores[store]),
            "type": "pos.stock.adjusted.v1",
            "time": hong_kong_now(),
            "data": {"sku": sku, "delta_milli": correction, "reason": "count", "on_hand_milli": units * 1000},
        })
    }

    /// The opening counts: every store, every best seller, plenty on the shelf.
    fn opening_counts(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        for store in 0..self.stores.len() {
            for sku in MAPPED_BARCODES {
                let units = self.rng.random_range(600..1500);
                out.push(self.count(store, sku, units));
            }
        }
        out
    }

    /// A recount that finds one best seller low at one store.
    fn recount(&mut self) -> Value {
        let store = self.rng.random_range(0..self.stores.len());
        let sku = MAPPED_BARCODES[self.rng.random_range(0..MAPPED_BARCODES.len())];
        let units = self.rng.random_range(4..40);
        self.count(store, sku, units)
    }

    /// One cashier at one store refunding recent sales in a row.
    fn burst(&mut self, n: u64) -> Vec<Value> {
        let store = (n as usize * 7) % self.stores.len();
        let cashier = format!("C{:03}", 900 + n % 100);
        let name = self.stores[store].clone();
        let sold: Vec<&Sold> = self.recent[store].iter().rev().take(BURST_REFUNDS).collect();
        let mut out = Vec::new();
        for (k, sale) in sold.into_iter().enumerate() {
            let price = sale.line["unit_price"]["amount_minor"].as_i64().unwrap_or(0);
            let mut line = sale.line.clone();
            line["quantity_milli"] = json!(-1000);
            line["gross"] = hkd(-price);
            line["discount"] = hkd(0);
            line["net"] = hkd(-price);
            let original_line = line["line_no"].clone();
            line["line_no"] = json!(1);
            out.push(json!({
                "id": format!("{name}-burst{n}-{k}"),
                "source": format!("/t/demo-pharmacy/s/{name}/p/till-1"),
                "type": "pos.refund.completed.v1",
                "time": hong_kong_now(),
                "data": {
                    "refund_id": format!("R-{name}-B{n}-{k}"), "original_order_id": sale.order,
                    "business_date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
                    "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
                    "lines": [{"line": line, "original_line_no": original_line, "restock": k % 2 == 0}],
                    "tenders": [{"method": "cash", "amount": hkd(-price)}],
                    "totals": {"gross": hkd(-price), "discount": hkd(0), "net": hkd(-price), "tax": hkd(0),
                               "total": hkd(-price), "tendered": hkd(-price), "change": hkd(0)},
                    "reason": "customer return", "member_id": sale.member, "cashier_id": cashier,
                },
            }));
        }
        out
    }
}

/// Starts `stores` stores sending `rate` sales and refunds per second in total, plus the stock
/// counts and refund bursts described in the module docs.
pub fn start(base_url: String, stores: usize, rate: u32) -> Stores {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let acknowledged = Acknowledged::default();
    let handle = Stores {
        stop: stop.clone(),
        errors: errors.clone(),
        acknowledged: acknowledged.clone(),
        counts: Arc::default(),
        bursts: Arc::default(),
    };
    let (counts, bursts) = (handle.counts.clone(), handle.bursts.clone());
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("{base_url}/v1/events");
        let send = |event: Value| post(&client, &url, event, errors.clone(), acknowledged.clone());
        let mut generator = LoadGen::new(2026, stores, 400);
        let mut chain = Chain::new(stores);
        for event in chain.opening_counts() {
            counts.fetch_add(1, Ordering::Relaxed);
            send(event);
        }
        let started = Instant::now();
        let (mut next_recount, mut next_burst) = (RECOUNT_EVERY, FIRST_BURST);
        let per_tick = rate.max(1) as f64 / 100.0;
        let mut owed = 0.0;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            owed += per_tick;
            while owed >= 1.0 {
                owed -= 1.0;
                send(chain.shape(generator.next_event()));
            }
            if started.elapsed() >= next_recount {
                next_recount += RECOUNT_EVERY;
                counts.fetch_add(1, Ordering::Relaxed);
                send(chain.recount());
            }
            if started.elapsed() >= next_burst {
                next_burst += BURST_EVERY;
                let n = bursts.fetch_add(1, Ordering::Relaxed);
                for event in chain.burst(n) {
                    send(event);
                }
            }
        }
    });
    handle
}

/// Posts one event in its own task; a `202` is remembered as acknowledged, anything else counts
/// as a store error.
fn post(client: &reqwest::Client, url: &str, event: Value, errors: Arc<AtomicU64>, acknowledged: Acknowledged) {
    let request = client.post(url).bearer_auth("demo-pos-key").json(&event);
    let key = (
        event["source"].as_str().unwrap_or_default().to_owned(),
        event["id"].as_str().unwrap_or_default().to_owned(),
    );
    tokio::spawn(async move {
        #[allow(clippy::disallowed_methods)] // A simulated till calling kaunter's API.
        let result = request.send().await;
        match result {
            Ok(r) if r.status().as_u16() == 202 => {
                if let Ok(mut acknowledged) = acknowledged.lock() {
                    acknowledged.push(key);
                }
            }
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

fn hkd(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "HKD", "exponent": 2})
}

/// Now, as Hong Kong local time with its +08:00 offset (RFC 3339).
fn hong_kong_now() -> String {
    let local = chrono::Utc::now() + chrono::Duration::hours(8);
    format!("{}+08:00", local.format("%Y-%m-%dT%H:%M:%S%.3f"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaunter_model::{Defaults, Dialect, Event};

    fn valid(value: Value) -> Event {
        let defaults = Defaults {
            id: "x".into(),
            now: "2026-11-25T00:00:00Z".into(),
        };
        let event = Event::from_json(value.clone(), Dialect::Canonical, &defaults).unwrap();
        kaunter_model::validate(&event).unwrap_or_else(|e| panic!("{e:?}: {value}"));
        event
    }

    #[test]
    fn counts_bursts_and_pooled_members_are_valid_events() {
        let mut generator = LoadGen::new(2026, 4, 400);
        let mut chain = Chain::new(4);
        let mut members = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let event = chain.shape(generator.next_event());
            if let Some(m) = event["data"]["member_id"].as_str() {
                members.insert(m.to_owned());
            }
            valid(event);
        }
        assert!(
            members.len() as u64 <= MEMBERS && members.len() > 100,
            "{}",
            members.len()
        );
        let opening = chain.opening_counts();
        assert_eq!(opening.len(), 4 * MAPPED_BARCODES.len());
        opening.into_iter().chain([chain.recount()]).for_each(|e| {
            valid(e);
        });
        let burst = chain.burst(0);
        assert_eq!(burst.len(), BURST_REFUNDS);
        for event in burst {
            assert_eq!(event["data"]["cashier_id"], "C900");
            valid(event);
        }
    }
}
