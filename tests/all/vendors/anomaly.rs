//! `transform-anomaly` end to end: the real component in a route before a `connector-webhook`
//! sink, and the alert it derives routed, like any event, to a second webhook sink for alerts.
//! Both sinks are loopback fakes answering as a Standard Webhooks receiver does (2xx accepts;
//! 5xx asks for a retry).

use super::{Reply, VendorFake, host_config};
use crate::harness::{ADMIN_KEY, Host, WEBHOOK_SECRET, hkd, wait_for_state};
use serde_json::{Value, json};

/// A webhook receiver: accepts every delivery.
async fn receiver() -> VendorFake {
    VendorFake::start(|_| Reply::text(200, "ok")).await
}

fn config(erp: &VendorFake, alerts: &VendorFake) -> String {
    host_config(&format!(
        r#"
[secrets]
hook-signing = {{ value = "{WEBHOOK_SECRET}" }}

[[plugins]]
name = "anomaly"
kind = "transform"
path = {anomaly:?}
[plugins.grants]
emits = ["pos.anomaly.detected.v1"]
[plugins.config]
cooldown_minutes = 60
[plugins.config.refund_void_spike]
window_minutes = 30
per_cashier = {{ count = 3 }}
per_store = {{}}

[[plugins]]
name = "erp-hook"
kind = "connector"
path = {webhook:?}
secrets = ["hook-signing"]
[plugins.config]
url = "{erp}/erp"
secret = "hook-signing"
[plugins.grants]
http = ["POST {erp}/erp"]
clock = true

[[plugins]]
name = "alerts-hook"
kind = "connector"
path = {webhook:?}
secrets = ["hook-signing"]
[plugins.config]
url = "{alerts}/alerts"
secret = "hook-signing"
[plugins.grants]
http = ["POST {alerts}/alerts"]
clock = true

[[sinks]]
name = "erp"
connector = "erp-hook"

[[sinks]]
name = "alerts"
connector = "alerts-hook"
backoff_base_ms = 50
backoff_max_ms = 200

[[routes]]
name = "pos"
types = ["pos.sale.*", "pos.refund.*"]
transforms = ["anomaly"]
sinks = ["erp"]

[[routes]]
name = "alerts"
types = ["pos.anomaly.*"]
sinks = ["alerts"]
"#,
        anomaly = kaunter_tests::plugins::TRANSFORM_ANOMALY,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        erp = erp.url,
        alerts = alerts.url,
    ))
}

/// A refund of `minor` by cashier c-07 at hk-001, at `time` (Hong Kong).
fn refund(id: &str, time: &str, minor: i64) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
        "time": format!("2026-11-25T{time}:00+08:00"),
        "data": {
            "refund_id": format!("R-{id}"), "original_order_id": format!("HK001-{id}"),
            "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20",
                "quantity_milli": -1000, "unit_price": hkd(minor), "gross": hkd(-minor),
                "discount": hkd(0), "net": hkd(-minor), "taxes": []}, "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "cash", "amount": hkd(-minor)}],
            "totals": {"gross": hkd(-minor), "discount": hkd(0), "net": hkd(-minor), "tax": hkd(0),
                       "total": hkd(-minor), "tendered": hkd(-minor), "change": hkd(0)},
            "reason": "customer returned", "cashier_id": "c-07"
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_spike_reaches_the_alerts_sink_once_with_its_evidence() {
    let (erp, alerts) = (receiver().await, receiver().await);
    // The alerts receiver is briefly down: the alert is retried, not lost.
    alerts.script([Reply::text(503, "busy")]);
    let host = Host::start(&config(&erp, &alerts));

    // One at a time, so the window sees them in order.
    for (id, time, minor) in [
        ("rf-1", "10:00", 12_000),
        ("rf-2", "10:05", 8_000),
        ("rf-3", "10:10", 5_000),
    ] {
        let (status, body) = host.post_json(&refund(id, time, minor)).await;
        assert_eq!(status, 202, "{body}");
        wait_for_state(&host, id, "erp", "delivered").await;
    }
    let alert_id = "rf-3:anomaly:refund_void_spike:cashier";
    wait_for_state(&host, alert_id, "alerts", "delivered").await;

    // The refunds went on to the ERP unchanged.
    let to_erp = erp.calls_to("POST", "/erp");
    assert_eq!(to_erp.len(), 3);
    assert!(to_erp.iter().all(|c| c.json().get("evidence").is_none()));
    assert_eq!(to_erp[2].json()["data"]["refund_id"], "R-rf-3");

    // The alert: tried twice (503, then accepted) with the same idempotency key and body.
    let calls = alerts.calls_to("POST", "/alerts");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].header("webhook-id"),
        kaunter::store::idempotency_key(calls[0].json()["source"].as_str().unwrap(), alert_id, "alerts")
    );
    assert_eq!(calls[0].header("webhook-id"), calls[1].header("webhook-id"));
    assert_eq!(calls[0].body, calls[1].body);
    let alert = calls[1].json();
    assert_eq!(alert["type"], "pos.anomaly.detected.v1");
    assert_eq!(alert["id"], alert_id);
    assert_eq!(alert["source"], "/t/acme/s/hk-001/p/till-1/x/anomaly");
    assert_eq!(alert["causationid"], "rf-3");
    assert_eq!(alert["data"]["kind"], "refund_void_spike");
    assert_eq!(alert["data"]["severity"], "warning");
    assert_eq!(alert["data"]["related_event_id"], "rf-3");
    assert_eq!(
        alert["data"]["description"],
        "Cashier c-07 at store hk-001: 3 refunds/voids (3 refunds, 0 voids) totalling HKD 250.00 within 30 minutes, \
         at or over the threshold of 3 refunds/voids"
    );
    let evidence: Value = serde_json::from_str(alert["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["count"], 3);
    assert_eq!(evidence["amount_minor"], 25_000);
    assert_eq!(evidence["cashier"], "c-07");
    assert_eq!(evidence["events"], json!(["rf-3", "rf-2", "rf-1"]));

    // A fourth refund inside the cool-down passes on but derives no alert.
    host.post_json(&refund("rf-4", "10:12", 1_000)).await;
    wait_for_state(&host, "rf-4", "erp", "delivered").await;
    let (status, _) = host
        .get("/v1/events/rf-4:anomaly:refund_void_spike:cashier", ADMIN_KEY)
        .await;
    assert_eq!(status, 404);
    assert_eq!(alerts.calls_to("POST", "/alerts").len(), 2);
}
