//! What monitoring sees: API key roles, `GET /metrics` read by a Prometheus text-format parser
//! and checked against a known run, freshness, `/readyz`, `kaunter status` and JSON logs.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The samples of a scrape, by metric name and labels (sorted `k=v` pairs joined by `,`).
struct Scrape(HashMap<(String, String), f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("the exposition parses as Prometheus text format");
        let mut samples = HashMap::new();
        for s in scrape.samples {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                prometheus_parse::Value::Summary(_) => continue,
            };
            samples.insert((s.metric, labels.join(",")), value);
        }
        Scrape(samples)
    }

    /// The sample `name{labels}`, 0 when absent (a counter never incremented is not listed).
    fn get(&self, name: &str, labels: &str) -> f64 {
        self.0
            .get(&(name.to_owned(), labels.to_owned()))
            .copied()
            .unwrap_or(0.0)
    }
}

async fn scrape(host: &Host, key: &str) -> Scrape {
    let response = host
        .http
        .get(format!("{}/metrics", host.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    Scrape::parse(&response.text().await.unwrap())
}

fn observed_config(sink: &Sink) -> String {
    let mut o = ConfigOptions::new(&sink.url);
    o.max_attempts = 50;
    // Inside the `erp` sink table, then the store registry.
    o.extra = r#"freshness_threshold_secs = 1

[stores.hk-001]
group = "kowloon"
quiet_hours = "23:00-07:00"
"#
    .into();
    config(&o)
}

#[tokio::test]
async fn each_role_may_do_its_own_work_and_nothing_else() {
    let sink = Sink::start().await;
    let host = Host::start(&observed_config(&sink));
    let (status, body) = host
        .post_json(&sale("role-1", "hk-002", "O-1", &[("4891234500017", 1, 100)]))
        .await;
    assert_eq!(status, 202, "{body}");
    let get = |path: &'static str, key: &'static str| {
        let host = &host;
        async move { host.get(path, key).await }
    };
    // metrics: /metrics only.
    assert_eq!(get("/metrics", METRICS_KEY).await.0, 200);
    let (status, body) = get("/v1/admin/sinks", METRICS_KEY).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["message"],
        "API key `prometheus` has the metrics role, which may not do this; use a viewer or admin key"
    );
    let (status, body) = host
        .post(
            "application/json",
            sale("role-2", "hk-002", "O-2", &[]).to_string(),
            Some(METRICS_KEY),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("use an ingest key"),
        "{body}"
    );
    // viewer: reads every operator view and every store's events, changes nothing.
    assert_eq!(get("/v1/admin/sinks", VIEWER_KEY).await.0, 200);
    assert_eq!(get("/v1/admin/dlq", VIEWER_KEY).await.0, 200);
    assert_eq!(get("/v1/admin/status", VIEWER_KEY).await.0, 200);
    assert_eq!(get("/v1/events/role-1", VIEWER_KEY).await.0, 200);
    assert_eq!(get("/metrics", VIEWER_KEY).await.0, 403);
    let response = host
        .http
        .post(format!("{}/v1/admin/sinks/erp/pause", host.url))
        .bearer_auth(VIEWER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // ingest: no operator views, no metrics; its own stores' events only.
    assert_eq!(get("/metrics", POS_KEY).await.0, 403);
    assert_eq!(get("/v1/admin/sinks", POS_KEY).await.0, 403);
    assert_eq!(get("/v1/events/role-1", HK_ONLY_KEY).await.0, 200);
    // admin (`admin = true`, the old spelling): everything.
    assert_eq!(get("/metrics", ADMIN_KEY).await.0, 200);
    assert_eq!(get("/v1/admin/sinks", ADMIN_KEY).await.0, 200);
}

#[tokio::test]
async fn metrics_match_a_known_run_and_freshness_sees_a_stalled_sink() {
    let sink = Sink::start().await;
    let host = Host::start(&observed_config(&sink));
    // hk-001 is registered; hk-002 and hk-003 are not and share the `other` label.
    sink.script(&[500]);
    for (i, store) in ["hk-001", "hk-001", "hk-001", "hk-002", "hk-003"].iter().enumerate() {
        let (status, body) = host
            .post_json(&sale(
                &format!("m-{i}"),
                store,
                &format!("O-{i}"),
                &[("4891234500017", 1, 100)],
            ))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, _) = host
        .post_json(&sale("m-0", "hk-001", "O-0", &[("4891234500017", 1, 100)]))
        .await;
    assert_eq!(status, 202, "a resend is a duplicate");
    let (status, _) = host.post("application/json", "{not json", Some(POS_KEY)).await;
    assert_eq!(status, 400);
    wait_for("five deliveries", 60, || async {
        (sink.accepted_ids().len() >= 5).then_some(())
    })
    .await;
    let m = wait_for("the delivered counter to reach 5", 30, || async {
        let m = scrape(&host, METRICS_KEY).await;
        (m.get("kaunter_sink_delivered_total", "sink=erp") == 5.0).then_some(m)
    })
    .await;
    assert_eq!(
        m.get("kaunter_ingest_events_total", "outcome=accepted,store=hk-001"),
        3.0
    );
    assert_eq!(
        m.get("kaunter_ingest_events_total", "outcome=accepted,store=other"),
        2.0
    );
    assert_eq!(
        m.get("kaunter_ingest_events_total", "outcome=duplicate,store=hk-001"),
        1.0
    );
    assert_eq!(
        m.get("kaunter_ingest_rejected_total", "endpoint=events,reason=malformed_json"),
        1.0
    );
    assert_eq!(m.get("kaunter_sink_retried_total", "sink=erp"), 1.0);
    assert_eq!(m.get("kaunter_sink_delivery_latency_seconds_count", "sink=erp"), 5.0);
    assert_eq!(
        m.get(
            "kaunter_egress_requests_total",
            "host=127.0.0.1,plugin=webhook,status=500"
        ),
        1.0
    );
    assert_eq!(
        m.get(
            "kaunter_egress_requests_total",
            "host=127.0.0.1,plugin=webhook,status=204"
        ),
        5.0
    );
    let sku_map = m
        .0
        .iter()
        .find(|((name, labels), _)| {
            name == "kaunter_plugin_call_duration_seconds_count" && labels.starts_with("call=handle,plugin=sku-map,")
        })
        .map(|(_, v)| *v);
    assert_eq!(sku_map, Some(5.0), "sku-map ran once per new event");
    assert!(m.get("kaunter_store_commit_duration_seconds_count", "") >= 5.0);
    assert!(m.get("kaunter_store_database_bytes", "") > 0.0);
    assert!(m.get("kaunter_store_disk_free_bytes", "") > 0.0);
    assert_eq!(
        m.get("kaunter_build_info", &format!("version={}", env!("CARGO_PKG_VERSION"))),
        1.0
    );
    assert_eq!(m.get("kaunter_sink_pending", "sink=erp"), 0.0);
    assert_eq!(m.get("kaunter_sink_oldest_undelivered_age_seconds", "sink=erp"), 0.0);
    let (code, screen) = host.cli_code(&["status"]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.starts_with("kaunter: OK\n"), "{screen}");
    let ready: Value = host
        .http
        .get(format!("{}/readyz", host.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, json!({"status": "ready", "reasons": []}));

    // The sink stalls: latency percentiles cannot see it, freshness does.
    sink.respond_with(|_| (503, vec![]));
    let (status, _) = host
        .post_json(&sale("stuck-1", "hk-001", "O-9", &[("4891234500017", 1, 100)]))
        .await;
    assert_eq!(status, 202);
    let m = wait_for("freshness to pass the 1 s threshold", 60, || async {
        let m = scrape(&host, METRICS_KEY).await;
        (m.get("kaunter_sink_oldest_undelivered_age_seconds", "sink=erp") > 1.0).then_some(m)
    })
    .await;
    assert_eq!(m.get("kaunter_sink_pending", "sink=erp"), 1.0);
    let ready = host.http.get(format!("{}/readyz", host.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "a failing sink does not stop ingest");
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    let kinds: Vec<&str> = ready["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sink-failing", "sync-delayed"], "{ready}");
    let (code, screen) = host.cli_code(&["status"]);
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("! sync-delayed   sink `erp`: its oldest undelivered event is"),
        "{screen}"
    );
    let row: Vec<&str> = screen
        .lines()
        .find(|l| l.starts_with("erp "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], ["erp", "failing", "1"], "{screen}");
    // It recovers: the backlog drains and the status says so.
    sink.clear_responder();
    wait_for("the stuck sale to be delivered", 60, || async {
        sink.accepted_ids().iter().any(|id| id == "stuck-1").then_some(())
    })
    .await;
    let (code, screen) = wait_for("status ok again", 30, || async {
        let (code, screen) = host.cli_code(&["status"]);
        (code == 0).then_some((code, screen))
    })
    .await;
    assert_eq!(code, 0, "{screen}");
}

#[tokio::test]
async fn metrics_listen_serves_metrics_without_a_key_and_json_logs_are_one_object_a_line() {
    let sink = Sink::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = ConfigOptions::new(&sink.url);
    o.server_extra = format!("metrics_listen = \"127.0.0.1:{port}\"");
    let host = Host::start_under(&config(&o), &["env", "KAUNTER_LOG_FORMAT=json"]);
    // Refused by the target: the dead letter is logged, naming the event's id and source.
    sink.script(&[400]);
    let (status, _) = host
        .post_json(&sale("j-1", "hk-001", "O-1", &[("4891234500017", 1, 100)]))
        .await;
    assert_eq!(status, 202);
    let text = wait_for("the open metrics listener", 30, || async {
        let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.ok()?;
        (response.status() == 200).then_some(response.text().await.ok()?)
    })
    .await;
    let m = Scrape::parse(&text);
    assert_eq!(
        m.get("kaunter_ingest_events_total", "outcome=accepted,store=other"),
        1.0
    );
    every_served_metric_is_documented(&text);
    // Only /metrics there: the API is not reachable through the open port.
    let other = reqwest::get(format!("http://127.0.0.1:{port}/v1/admin/sinks"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    wait_for_state(&host, "j-1", "erp", "dead_lettered").await;
    let log = host.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "kaunter is serving"),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string()),
        "{log}"
    );
    let dead = lines
        .iter()
        .find(|l| l["fields"]["message"] == "delivery dead-lettered")
        .unwrap_or_else(|| panic!("no dead-letter line: {log}"));
    assert_eq!(dead["fields"]["event"], "j-1", "{dead}");
    assert_eq!(dead["fields"]["source"], "/t/acme/s/hk-001/p/till-1", "{dead}");
    assert_eq!(dead["level"], "WARN", "{dead}");
}

/// Every metric served is in docs/observability.md (the reverse, and the dashboard, are checked
/// with every instrument touched in `telemetry::prom`'s unit tests).
fn every_served_metric_is_documented(exposition: &str) {
    let docs =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/observability.md"))
            .unwrap();
    for name in exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/observability.md does not describe `{name}`"
        );
    }
}
