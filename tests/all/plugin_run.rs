//! `kaunter plugin run`: a component run on sample events or webhooks, outside any host, with
//! its requests captured (or, with `--live`, sent through the egress checkpoint and shown), and
//! what a host would do with each outcome.

use crate::harness::*;
use kaunter_tests::plugins;
use serde_json::Value;

/// Runs `kaunter plugin run …`; returns (success, stdout, stderr).
fn sandbox(args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["plugin", "run"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn plugin_run_captures_requests_and_reports_time_fuel_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sale.json");
    let config = dir.path().join("webhook.json");
    std::fs::write(&config, r#"{"url": "http://erp.example/hooks", "secret": "erp"}"#).unwrap();
    let common = [
        plugins::CONNECTOR_WEBHOOK,
        "--event",
        sample,
        "--config",
        config.to_str().unwrap(),
        "--secret",
        &format!("erp={WEBHOOK_SECRET}"),
    ];
    let (ok, out, err) = sandbox(&[&common[..], &["--allow", "POST http://erp.example/hooks"]].concat());
    assert!(ok, "{out}{err}");
    assert!(out.contains("sandbox: requests are captured, not sent"), "{out}");
    assert!(out.contains("POST http://erp.example/hooks → 200"), "{out}");
    let key = kaunter::store::idempotency_key("/t/acme/s/hk-001/p/till-1", "01JDEMO0SALE000000000000001", "sandbox");
    assert!(out.contains(&format!("webhook-id: {key}")), "{out}");
    assert!(out.contains("webhook-signature: v1,"), "{out}");
    assert!(out.contains("\"type\":\"pos.sale.completed.v1\""), "{out}");
    assert!(
        out.contains("  time ") && out.contains("  fuel ") && out.contains(" MiB"),
        "{out}"
    );

    // Canned answers exercise the connector's error handling.
    let responses = dir.path().join("responses.json");
    std::fs::write(
        &responses,
        r#"[{"match": "POST http://erp.example/", "status": 429, "headers": {"retry-after": "7"}, "body": {"error": "slow down"}}]"#,
    )
    .unwrap();
    let (ok, out, _) = sandbox(
        &[
            &common[..],
            &[
                "--allow",
                "POST http://erp.example/hooks",
                "--responses",
                responses.to_str().unwrap(),
                "--json",
            ],
        ]
        .concat(),
    );
    assert!(!ok);
    let report: Value = serde_json::from_str(&out).unwrap();
    let run = &report["runs"][0];
    assert_eq!(run["outcome"]["error"], "throttled", "{run}");
    assert_eq!(
        run["outcome"]["host"], "retried after the hint; the whole sink waits meanwhile",
        "the sandbox says what a host would do with it: {run}"
    );
    assert!(
        run["outcome"]["message"].as_str().unwrap().starts_with("throttled"),
        "{run}"
    );
    assert_eq!(run["requests"][0]["status"], 429);
    assert!(run["stats"]["fuel"].as_u64().unwrap() > 0);

    // Nothing is granted that the operator would not grant.
    let (ok, _, err) = sandbox(&common);
    assert!(!ok);
    assert!(
        err.contains("requests outbound HTTP to destinations you choose, but none is granted"),
        "{err}"
    );

    // A transform: its output events.
    let table = dir.path().join("sku.toml");
    std::fs::write(&table, "[table]\n\"4891234500017\" = \"PANADOL-500-20\"\n").unwrap();
    let (ok, out, err) = sandbox(&[
        plugins::TRANSFORM_SKU_MAP,
        "--event",
        sample,
        "--config",
        table.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("output: 1 event(s)"), "{out}");
    assert!(out.contains("\"sku\": \"PANADOL-500-20\""), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_run_live_sends_through_the_checkpoint_and_shows_what_it_sent() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sale.json");
    let config = dir.path().join("webhook.json");
    std::fs::write(&config, format!(r#"{{"url": "{}", "secret": "erp"}}"#, sink.url)).unwrap();
    let allow = format!("POST {}", sink.url);
    let secret = format!("erp={WEBHOOK_SECRET}");
    let (ok, out, err) = sandbox(&[
        plugins::CONNECTOR_WEBHOOK,
        "--event",
        sample,
        "--config",
        config.to_str().unwrap(),
        "--secret",
        &secret,
        "--allow",
        &allow,
        "--live",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let run = &report["runs"][0];
    // Sent for real, once, and shown with the status the target answered.
    assert_eq!(sink.delivery_count(), 1);
    assert_eq!(run["requests"].as_array().unwrap().len(), 1, "{run}");
    assert_eq!(run["requests"][0]["status"], 204, "{run}");
    assert_eq!(run["stats"]["http_calls"], 1, "{run}");
    // A connector without a deadline of its own gets room for its HTTP budget, and the run says
    // how much of it the call used.
    assert_eq!(run["stats"]["deadline_ms"], 30000, "{run}");
    assert!(run["stats"]["deadline_used_percent"].is_number(), "{run}");
}

/// The sku-map component with every `kaunter:plugin/…@0.2.0` name rewritten to `@0.1.0` (same
/// length, so the binary stays valid): a build against the previous contract.
fn built_against_0_1_0(dir: &std::path::Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(plugins::TRANSFORM_SKU_MAP).unwrap();
    let (from, to) = (b"@0.2.0".as_slice(), b"@0.1.0".as_slice());
    let mut replaced = 0;
    for i in from.len()..bytes.len().saturating_sub(from.len()) {
        let names_the_contract = bytes[i.saturating_sub(40)..i]
            .windows(15)
            .any(|w| w == b"kaunter:plugin/");
        if &bytes[i..i + from.len()] == from && names_the_contract {
            bytes[i..i + to.len()].copy_from_slice(to);
            replaced += 1;
        }
    }
    assert!(replaced > 0, "the component names no kaunter:plugin interface");
    let path = dir.join("sku-map-0.1.0.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_component_built_against_another_contract_version_is_refused_with_the_rebuild_command() {
    let dir = tempfile::tempdir().unwrap();
    let old = built_against_0_1_0(dir.path());
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sale.json");
    let (ok, out, err) = sandbox(&[old.to_str().unwrap(), "--event", sample, "--kind", "transform"]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("built against kaunter:plugin@0.1.0")
            && err.contains("implements kaunter:plugin@0.2.0")
            && err.contains("cargo build --release --target wasm32-wasip2"),
        "{err}"
    );
}
