//! Simulated Hong Kong retail traffic for the demo and the benchmarks.
//!
//! Many stores, SKUs drawn with Zipf popularity (a few items sell most), one to five lines per
//! basket, split tenders across Octopus, cards, cash and wallets, and about one refund in twenty
//! pointing at an earlier order of the same store. Deterministic for a given seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Barcodes the demo configuration maps to unified SKUs (the most popular items).
pub const MAPPED_BARCODES: [&str; 5] = [
    "4891234500017",
    "4891234500024",
    "4891234500031",
    "4891234500048",
    "4891234500055",
];

const NAMES: [&str; 10] = [
    "Panadol 500mg 20s",
    "Vitamin C 1000mg 60s",
    "KN95 masks 10s",
    "Hand sanitiser 500ml",
    "Assorted bandages 40s",
    "Cough syrup 100ml",
    "Tiger Balm 19g",
    "Eye drops 15ml",
    "Lozenges 24s",
    "Thermometer",
];

struct Item {
    barcode: String,
    name: String,
    price_minor: i64,
}

/// A seeded generator of POS events as canonical JSON.
pub struct LoadGen {
    rng: StdRng,
    items: Vec<Item>,
    cdf: Vec<f64>,
    stores: Vec<String>,
    next_order: Vec<u64>,
    recent: Vec<Vec<(String, String, i64, i64)>>,
    counter: u64,
}

impl LoadGen {
    /// `stores` stores selling from a catalogue of `skus` items.
    pub fn new(seed: u64, stores: usize, skus: usize) -> LoadGen {
        let mut rng = StdRng::seed_from_u64(seed);
        let skus = skus.max(MAPPED_BARCODES.len());
        let items = (0..skus)
            .map(|i| Item {
                barcode: MAPPED_BARCODES
                    .get(i)
                    .map(|b| (*b).to_owned())
                    .unwrap_or_else(|| format!("48912346{i:05}")),
                name: format!("{} #{i}", NAMES[i % NAMES.len()]),
                price_minor: rng.random_range(8..400) * 50,
            })
            .collect();
        // Zipf(s = 1.07) popularity over catalogue rank.
        let weights: Vec<f64> = (1..=skus).map(|k| 1.0 / (k as f64).powf(1.07)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights.iter().map(|w| {
            acc += w / total;
            acc
        });
        let stores_n = stores.max(1);
        LoadGen {
            rng,
            items,
            cdf: cdf.collect(),
            stores: (1..=stores_n).map(|i| format!("hk-{i:03}")).collect(),
            next_order: vec![1; stores_n],
            recent: vec![Vec::new(); stores_n],
            counter: 0,
        }
    }

    fn pick_item(&mut self) -> usize {
        let u: f64 = self.rng.random();
        self.cdf.partition_point(|c| *c < u).min(self.items.len() - 1)
    }

    /// The next event: a sale, or now and then a refund.
    pub fn next_event(&mut self) -> Value {
        self.counter += 1;
        let store = self.rng.random_range(0..self.stores.len());
        if self.rng.random_bool(0.05) && !self.recent[store].is_empty() {
            self.refund(store)
        } else {
            self.sale(store)
        }
    }

    fn envelope(&mut self, store: usize, ty: &str, data: Value) -> Value {
        let till = self.rng.random_range(1..=3);
        json!({
            "id": format!("{}-{}", self.stores[store], self.counter),
            "source": format!("/t/demo-pharmacy/s/{}/p/till-{till}", self.stores[store]),
            "type": ty,
            "time": hong_kong_now(),
            "data": data,
        })
    }

    fn sale(&mut self, store: usize) -> Value {
        let order = format!("{}-{:07}", self.stores[store], self.next_order[store]);
        self.next_order[store] += 1;
        let n_lines = self.rng.random_range(1..=5);
        let mut lines = Vec::new();
        let (mut gross_sum, mut discount_sum) = (0i64, 0i64);
        for line_no in 1..=n_lines {
            let item = self.pick_item();
            let qty = self.rng.random_range(1..=3i64);
            let price = self.items[item].price_minor;
            let gross = price * qty;
            let discount = if self.rng.random_bool(0.15) { gross / 10 } else { 0 };
            gross_sum += gross;
            discount_sum += discount;
            let barcode = self.items[item].barcode.clone();
            let name = self.items[item].name.clone();
            if self.recent[store].len() >= 50 {
                self.recent[store].remove(0);
            }
            self.recent[store].push((order.clone(), barcode.clone(), price, line_no));
            lines.push(json!({
                "line_no": line_no, "sku": barcode, "name": name, "quantity_milli": qty * 1000,
                "unit_price": hkd(price), "gross": hkd(gross), "discount": hkd(discount),
                "net": hkd(gross - discount), "taxes": []
            }));
        }
        let total = gross_sum - discount_sum;
        let tenders = self.tenders(total);
        let member = self
            .rng
            .random_bool(0.4)
            .then(|| format!("M{:08}", self.rng.random_range(1..2_000_000)));
        let data = json!({
            "order_id": order, "business_date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive", "lines": lines, "tenders": tenders,
            "totals": {"gross": hkd(gross_sum), "discount": hkd(discount_sum), "net": hkd(total),
                       "tax": hkd(0), "total": hkd(total), "tendered": hkd(total), "change": hkd(0)},
            "member_id": member, "cashier_id": format!("C{:03}", self.rng.random_range(1..40)),
        });
        self.envelope(store, "pos.sale.completed.v1", data)
    }

    fn tenders(&mut self, total: i64) -> Vec<Value> {
        let method = |rng: &mut StdRng| {
            let r: f64 = rng.random();
            match r {
                x if x < 0.35 => "octopus",
                x if x < 0.60 => "card",
                x if x < 0.80 => "cash",
                x if x < 0.88 => "alipay_hk",
                x if x < 0.95 => "wechat_pay",
                _ => "fps",
            }
        };
        if total > 100 && self.rng.random_bool(0.1) {
            let first = total / 2;
            vec![
                json!({"method": "octopus", "amount": hkd(first), "processor_ref": format!("OCT{}", self.counter)}),
                json!({"method": "cash", "amount": hkd(total - first)}),
            ]
        } else {
            let m = method(&mut self.rng);
            vec![json!({"method": m, "amount": hkd(total), "processor_ref": format!("REF{}", self.counter)})]
        }
    }

    fn refund(&mut self, store: usize) -> Value {
        let pick = self.rng.random_range(0..self.recent[store].len());
        let (order, barcode, price, line_no) = self.recent[store][pick].clone();
        let refund_id = format!("R-{}-{}", self.stores[store], self.counter);
        let restock = self.rng.random_bool(0.7);
        let data = json!({
            "refund_id": refund_id, "original_order_id": order,
            "business_date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": barcode, "quantity_milli": -1000,
                       "unit_price": hkd(price), "gross": hkd(-price), "discount": hkd(0),
                       "net": hkd(-price), "taxes": []},
                       "original_line_no": line_no, "restock": restock}],
            "tenders": [{"method": "cash", "amount": hkd(-price)}],
            "totals": {"gross": hkd(-price), "discount": hkd(0), "net": hkd(-price), "tax": hkd(0),
                       "total": hkd(-price), "tendered": hkd(-price), "change": hkd(0)},
            "reason": "customer return",
        });
        self.envelope(store, "pos.refund.completed.v1", data)
    }
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

    #[test]
    fn generated_events_are_valid() {
        let mut generator = LoadGen::new(7, 10, 200);
        let defaults = Defaults {
            id: "x".into(),
            now: "2026-11-25T00:00:00Z".into(),
        };
        let mut refunds = 0;
        for _ in 0..2000 {
            let value = generator.next_event();
            let event = Event::from_json(value, Dialect::Canonical, &defaults).unwrap();
            kaunter_model::validate(&event).unwrap();
            refunds += usize::from(event.ty == kaunter_model::REFUND_COMPLETED);
        }
        assert!(refunds > 20, "refunds: {refunds}");
    }
}
