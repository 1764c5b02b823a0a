//! Operating a running host: upload, deploy, staged rollout per store group, promote, roll back,
//! hot-load from the plugins directory, config reload, shadow mode, sandbox runs and historic
//! replay — and no acknowledged event lost while any of it happens.

use crate::harness::*;
use kaunter_tests::{plugins, variant, version_of};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The test config with a pilot store group, and the webhook connector's component at `webhook`.
pub(crate) fn rollout_config(sink: &Sink, webhook: &std::path::Path) -> String {
    let mut o = ConfigOptions::new(&sink.url);
    o.extra = "[store_groups]\npilot = [\"hk-001\", \"hk-002\"]\n".into();
    config(&o).replace(
        &format!("path = {:?}", plugins::CONNECTOR_WEBHOOK),
        &format!("path = {webhook:?}"),
    )
}

pub(crate) fn one_line_sale(id: &str, store: &str) -> Value {
    sale(id, store, id, &[("4891234500017", 1, 3990)])
}

/// Milliseconds since the Unix epoch, the clock the host stamps deliveries with.
fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every delivery to `sink` in the host's log: event id → (store, connector version, delivered at
/// ms), read from the SQLite file. Fails on any delivery not (yet) delivered.
fn deliveries_of(host: &Host, sink: &str) -> BTreeMap<String, (String, String, i64)> {
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let mut query = db
        .prepare(
            "SELECT e.id, e.source, d.state, d.connector_version, d.delivered_at_ms
             FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.sink = ?1",
        )
        .unwrap();
    query
        .query_map([sink], |r| {
            let (id, source, state): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            assert_eq!(state, "delivered", "{id}");
            let store = source.split('/').nth(4).unwrap_or("").to_owned();
            Ok((id, (store, r.get(3)?, r.get(4)?)))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The host's count of deliveries to `sink` not yet delivered (pending, retrying, parked or dead).
fn undelivered(host: &Host, sink: &str) -> i64 {
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    db.query_row(
        "SELECT count(*) FROM deliveries WHERE sink = ?1 AND state != 'delivered'",
        [sink],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_acknowledged_event_is_lost_while_the_connector_is_swapped_under_load() {
    let sink = Sink::start().await;
    let builds = tempfile::tempdir().unwrap();
    let v1 = version_of(std::path::Path::new(plugins::CONNECTOR_WEBHOOK));
    let b2 = variant(plugins::CONNECTOR_WEBHOOK, 2, builds.path());
    let b3 = variant(plugins::CONNECTOR_WEBHOOK, 3, builds.path());
    let (v2, v3) = (version_of(&b2), version_of(&b3));
    let broken = builds.path().join("broken.wasm");
    let mut bytes = std::fs::read(plugins::CONNECTOR_WEBHOOK).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&broken, bytes).unwrap();
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));

    // A steady stream: 12 stores, ~150 events/s, every acknowledged id remembered and every other
    // answer kept to fail the test with.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (url, acknowledged, refused, stop) =
            (host.url.clone(), acknowledged.clone(), refused.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<Value> = (0..3)
                    .map(|i| {
                        n += 1;
                        one_line_sale(&format!("swap-{n}"), &format!("hk-{:03}", 1 + (n + i) % 12))
                    })
                    .collect();
                let response = http
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(POS_KEY)
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status == 202 {
                    let mut acked = acknowledged.lock().unwrap();
                    for r in body["results"].as_array().unwrap() {
                        assert_eq!(r["status"], "accepted", "{body}");
                        acked.push(r["id"].as_str().unwrap().to_owned());
                    }
                } else {
                    refused.lock().unwrap().push(format!("{status} {body}"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Each step's changes, and the time after its answer (the window it governs starts there).
    let mut steps: Vec<(&str, i64)> = vec![("start", epoch_ms())];
    let pause = || tokio::time::sleep(Duration::from_millis(1000));
    pause().await;
    assert_eq!(host.upload("webhook", &b2).await.0, 201);
    assert_eq!(host.upload("webhook", &b3).await.0, 201);
    let deploy = |version: &str, group: Option<&str>| json!({ "version": version, "group": group });
    steps.push(("v2 everywhere: before", epoch_ms()));
    let (status, _) = host
        .admin_post("/v1/admin/plugins/webhook/deploy", &deploy(&v2, None))
        .await;
    assert_eq!(status, 200);
    steps.push(("v2 everywhere", epoch_ms()));
    pause().await;
    steps.push(("v3 on the pilot: before", epoch_ms()));
    let (status, _) = host
        .admin_post("/v1/admin/plugins/webhook/deploy", &deploy(&v3, Some("pilot")))
        .await;
    assert_eq!(status, 200);
    steps.push(("v3 on the pilot", epoch_ms()));
    pause().await;
    // A build that fails validation is refused; what runs keeps running.
    let (status, refused_build) = host.upload("webhook", &broken).await;
    assert_eq!(status, 400, "{refused_build}");
    pause().await;
    steps.push(("v3 everywhere: before", epoch_ms()));
    let (status, _) = host
        .admin_post("/v1/admin/plugins/webhook/deploy", &deploy(&v3, None))
        .await;
    assert_eq!(status, 200);
    steps.push(("v3 everywhere", epoch_ms()));
    pause().await;
    steps.push(("rolled back: before", epoch_ms()));
    let (status, back) = host.admin_post("/v1/admin/plugins/webhook/rollback", &json!({})).await;
    assert_eq!((status, back["version"].as_str()), (200, Some(v2.as_str())));
    steps.push(("rolled back", epoch_ms()));
    pause().await;
    steps.push(("pilot rolled back: before", epoch_ms()));
    let (status, _) = host
        .admin_post("/v1/admin/plugins/webhook/rollback", &json!({ "group": "pilot" }))
        .await;
    assert_eq!(status, 200);
    steps.push(("pilot rolled back", epoch_ms()));
    pause().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.await.unwrap();
    steps.push(("stopped", epoch_ms()));

    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "requests not acknowledged during the swaps: {refused:?}"
    );
    let acked: BTreeSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() > 300, "only {} events were sent", acked.len());
    // The host's own record says every delivery is done, so no request can still be on its way;
    // only then are the sink's requests counted.
    wait_for("the host to finish every delivery", 60, || async {
        (undelivered(&host, "erp") == 0 && deliveries_of(&host, "erp").len() == acked.len()).then_some(())
    })
    .await;
    let requests = sink.all_requests();
    let ids: BTreeSet<String> = requests
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(ids, acked, "the sink got exactly the acknowledged events");
    for r in &requests {
        let body = r.json();
        let key =
            kaunter::store::idempotency_key(body["source"].as_str().unwrap(), body["id"].as_str().unwrap(), "erp");
        assert_eq!(r.header("webhook-id"), key);
    }
    assert_eq!(requests.len(), acked.len(), "some events were delivered twice");

    // Every delivery records the connector version that handled it. Between two steps the
    // versions are exactly what the steps deployed: the pilot stores on v3 while the rest stay on
    // v2. An attempt that began before a step's answer may finish just after it, so a delivery in
    // the first 300 ms of a window may still show the previous window's version.
    let pilot = |store: &str| store == "hk-001" || store == "hk-002";
    let expected = |window: &str, store: &str| -> &str {
        match window {
            "start" => &v1,
            "v2 everywhere" => &v2,
            "v3 on the pilot" if pilot(store) => &v3,
            "v3 on the pilot" => &v2,
            "v3 everywhere" => &v3,
            // The default goes back to v2; the pilot keeps its own pin (v3) until it is rolled
            // back too.
            "rolled back" if pilot(store) => &v3,
            "rolled back" => &v2,
            "pilot rolled back" => &v2,
            other => panic!("{other}"),
        }
    };
    let windows: Vec<(&str, i64, i64)> = steps
        .windows(2)
        .filter(|w| !w[0].0.ends_with(": before") && w[0].0 != "stopped")
        .map(|w| (w[0].0, w[0].1, w[1].1))
        .collect();
    let delivered = deliveries_of(&host, "erp");
    let mut seen: BTreeMap<(String, bool), BTreeSet<String>> = BTreeMap::new();
    for (id, (store, version, at)) in &delivered {
        let Some((window, start, _)) = windows.iter().find(|(_, from, to)| from <= at && at < to) else {
            continue; // delivered after the stream stopped, or while a step was being answered
        };
        let previous = windows
            .iter()
            .rev()
            .find(|(_, from, ..)| from < start)
            .map(|(w, ..)| expected(w, store));
        let settled = *at >= start + 300;
        let ok = version == expected(window, store) || (!settled && Some(version.as_str()) == previous);
        assert!(
            ok,
            "{id} from {store} delivered at +{} ms of `{window}` by {version}; expected {}",
            at - start,
            expected(window, store)
        );
        if settled {
            seen.entry((window.to_string(), pilot(store)))
                .or_default()
                .insert(version.clone());
        }
    }
    let versions: BTreeSet<&str> = delivered.values().map(|(_, v, _)| v.as_str()).collect();
    assert_eq!(
        versions,
        [v1.as_str(), v2.as_str(), v3.as_str()].into(),
        "all three versions ran"
    );
    assert_eq!(
        seen[&("v3 on the pilot".to_owned(), true)],
        [v3.clone()].into(),
        "{seen:?}"
    );
    assert_eq!(
        seen[&("v3 on the pilot".to_owned(), false)],
        [v2.clone()].into(),
        "{seen:?}"
    );
    let actions: Vec<String> = host
        .audit_records()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    for action in [
        "plugin.upload",
        "plugin.deploy",
        "plugin.upload.refused",
        "plugin.rollback",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} not audited: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pilot_stores_run_the_new_version_until_it_is_promoted_or_rolled_back() {
    let sink = Sink::start().await;
    let builds = tempfile::tempdir().unwrap();
    let v1 = version_of(std::path::Path::new(plugins::CONNECTOR_WEBHOOK));
    let b2 = variant(plugins::CONNECTOR_WEBHOOK, 2, builds.path());
    let mut host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    let uploaded = host.cli(&["plugin", "upload", "webhook", b2.to_str().unwrap()]);
    let v2 = version_of(&b2);
    assert!(
        uploaded.starts_with(&format!("uploaded webhook@{v2} (approved)")),
        "{uploaded}"
    );
    let said = host.cli(&["plugin", "deploy", "webhook", &v2, "--group", "pilot"]);
    assert_eq!(said.trim(), format!("webhook@{v2} now runs for store group `pilot`"));

    assert_eq!(round(&host, 1).await, (v2.clone(), v1.clone()));
    let listed = host.cli(&["plugin", "list"]);
    assert!(listed.contains(&format!("pinned {v2} for group pilot")), "{listed}");
    assert!(
        listed.contains("store groups:\n  pilot: hk-001, hk-002"),
        "the group's members: {listed}"
    );
    assert!(listed.contains(&format!("{v1}  active")), "{listed}");

    let said = host.cli(&["plugin", "promote", "webhook", "--group", "pilot"]);
    assert_eq!(said.trim(), format!("webhook@{v2} now runs for all stores"));
    assert_eq!(round(&host, 2).await, (v2.clone(), v2.clone()));

    let said = host.cli(&["plugin", "rollback", "webhook"]);
    assert_eq!(said.trim(), format!("rolled back: webhook@{v1} runs for all stores"));
    assert_eq!(round(&host, 3).await, (v1.clone(), v1.clone()));

    // Deployments survive a restart.
    let error = host.cli_fails(&["plugin", "deploy", "webhook", &v2, "--group", "nowhere"]);
    assert!(error.contains("no store group `nowhere`"), "{error}");
    host.cli(&["plugin", "deploy", "webhook", &v2, "--group", "pilot"]);
    host.restart();
    assert_eq!(round(&host, 4).await, (v2.clone(), v1.clone()));
    let error = host.cli_fails(&["plugin", "deploy", "webhook", "000000000000"]);
    assert!(
        error.contains("plugin `webhook` has no version 000000000000 (registered: "),
        "{error}"
    );
}

/// One sale from a pilot store and one from another; the connector versions that delivered them.
async fn round(host: &Host, n: u32) -> (String, String) {
    let pilot = format!("pilot-{n}");
    let other = format!("other-{n}");
    assert_eq!(host.post_json(&one_line_sale(&pilot, "hk-001")).await.0, 202);
    assert_eq!(host.post_json(&one_line_sale(&other, "hk-050")).await.0, 202);
    (
        host.delivered_by(&pilot, "erp").await,
        host.delivered_by(&other, "erp").await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_dropped_into_the_plugins_directory_is_hot_loaded_and_a_broken_one_is_not() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let deployed = dir.path().join("webhook.wasm");
    std::fs::copy(plugins::CONNECTOR_WEBHOOK, &deployed).unwrap();
    let text = rollout_config(&sink, &deployed).replace("[server]\n", "[server]\nwatch_interval_ms = 100\n");
    let host = Host::start(&text);
    let b2 = variant(plugins::CONNECTOR_WEBHOOK, 2, dir.path());
    let v2 = version_of(&b2);
    // Written under another name, then renamed into place, as a deploy script would.
    let staging = dir.path().join("incoming.tmp");
    std::fs::copy(&b2, &staging).unwrap();
    std::fs::rename(&staging, &deployed).unwrap();
    wait_for("the new build to be hot-loaded", 30, || async {
        let (_, list) = host.get("/v1/admin/plugins", ADMIN_KEY).await;
        let webhook = list["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "webhook")?
            .clone();
        (webhook["deployment"]["active"] == v2.as_str()).then_some(())
    })
    .await;
    assert_eq!(host.post_json(&one_line_sale("after-hot-load", "hk-003")).await.0, 202);
    assert_eq!(host.delivered_by("after-hot-load", "erp").await, v2);

    std::fs::write(&deployed, b"\0asm this is not a component").unwrap();
    wait_for("the broken build to be reported", 30, || async {
        host.audit_records()
            .iter()
            .any(|r| r["action"] == "plugin.rejected" && r["actor"] == "watch")
            .then_some(())
    })
    .await;
    assert!(host.log().contains("new build rejected; the running version stays"));
    assert_eq!(host.post_json(&one_line_sale("after-broken", "hk-003")).await.0, 202);
    assert_eq!(host.delivered_by("after-broken", "erp").await, v2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_reload_applies_what_changed_and_keeps_the_old_config_when_invalid() {
    let sink = Sink::start().await;
    let second = Sink::start().await;
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    let path = host.dir.path().join("kaunter.toml");
    let original = std::fs::read_to_string(&path).unwrap();

    // Validation reports every problem with its field, and applies nothing.
    let broken = original
        .replace("sinks = [\"erp\"]", "sinks = [\"erp\", \"nowhere\"]")
        .replace("pilot = [\"hk-001\", \"hk-002\"]", "pilot = []");
    let response = host
        .http
        .post(format!("{}/v1/admin/config/validate", host.url))
        .bearer_auth(ADMIN_KEY)
        .body(broken.clone())
        .send()
        .await
        .unwrap();
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["valid"], false);
    let fields: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["routes.sales.sinks", "store_groups.pilot"], "{report}");

    // A second sink on its own route: reloaded with SIGHUP, only that is added.
    let grown = format!(
        "{original}\n[[plugins]]\nname = \"webhook-2\"\nkind = \"connector\"\npath = {:?}\nsecrets = [\"erp-signing\"]\n[plugins.config]\nurl = \"{}\"\nsecret = \"erp-signing\"\n[plugins.grants]\nhttp = [\"POST {}\"]\nclock = true\n\n[[sinks]]\nname = \"crm\"\nconnector = \"webhook-2\"\n\n[[routes]]\nname = \"to-crm\"\ntypes = [\"pos.sale.*\"]\nsinks = [\"crm\"]\n",
        plugins::CONNECTOR_WEBHOOK,
        second.url,
        second.url
    );
    std::fs::write(&path, &grown).unwrap();
    let validated = host.cli(&["config", "validate"]);
    assert!(validated.contains("valid: apply it with"), "{validated}");
    host.hangup();
    wait_for("the reload", 30, || async {
        host.log().contains("configuration reloaded on SIGHUP").then_some(())
    })
    .await;
    assert_eq!(host.post_json(&one_line_sale("to-both", "hk-001")).await.0, 202);
    wait_for_state(&host, "to-both", "crm", "delivered").await;
    wait_for_state(&host, "to-both", "erp", "delivered").await;
    let reload = host
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "config.reload")
        .unwrap();
    assert_eq!(reload["actor"], "signal:SIGHUP");
    let detail: Value = match &reload["detail"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    assert_eq!(detail["changes"]["sinks"]["added"], json!(["crm"]), "{detail}");
    assert_eq!(detail["changes"]["routes"]["changed"], json!([]), "{detail}");
    // Field by field, in the record itself.
    assert!(
        detail["changes"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("sinks.crm: (absent) → {")),
        "{detail}"
    );
    // The host runs with --listen and --data overrides; an unchanged [server] is not a change.
    assert_eq!(detail["changes"]["needs_restart"], json!([]), "{detail}");

    // An invalid file is refused; the running configuration stays.
    std::fs::write(&path, &broken).unwrap();
    let error = host.cli_fails(&["config", "reload"]);
    assert!(
        error.contains("route `sales` names sink `nowhere`, but no [[sinks]] entry has that name"),
        "{error}"
    );
    assert_eq!(host.post_json(&one_line_sale("still-both", "hk-001")).await.0, 202);
    wait_for_state(&host, "still-both", "crm", "delivered").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_version_sees_live_events_with_its_side_effects_captured() {
    let sink = Sink::start().await;
    let builds = tempfile::tempdir().unwrap();
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    // The connector shadowed by a rebuild: same requests, and none of them sent twice.
    let b2 = variant(plugins::CONNECTOR_WEBHOOK, 2, builds.path());
    let v2 = version_of(&b2);
    host.cli(&["plugin", "upload", "webhook", b2.to_str().unwrap()]);
    host.cli(&["plugin", "shadow", "webhook", &v2]);
    // The SKU map shadowed by a version that traps on every event.
    let trapping = version_of(std::path::Path::new(plugins::HOSTILE_TRAP));
    assert_eq!(
        host.upload("sku-map", std::path::Path::new(plugins::HOSTILE_TRAP))
            .await
            .0,
        201
    );
    host.cli(&["plugin", "shadow", "sku-map", &trapping]);

    for n in 0..5 {
        assert_eq!(
            host.post_json(&one_line_sale(&format!("shadowed-{n}"), "hk-001"))
                .await
                .0,
            202
        );
    }
    let reports = wait_for("five comparisons of each plugin", 30, || async {
        let (_, body) = host.get("/v1/admin/shadow", ADMIN_KEY).await;
        let reports = body["shadows"].as_array()?.clone();
        (reports.len() == 2 && reports.iter().all(|r| r["compared"] == 5)).then_some(reports)
    })
    .await;
    let sku = reports.iter().find(|r| r["plugin"] == "sku-map").unwrap();
    assert_eq!(
        (sku["different"].as_u64(), sku["shadow_failed"].as_u64()),
        (Some(5), Some(5))
    );
    let first = &sku["recent_differences"][0];
    assert_eq!(first["shadow"]["outcome"]["error"], "trap", "{first}");
    assert!(
        first["differences"][0]
            .as_str()
            .unwrap()
            .starts_with("$.outcome.events: "),
        "{first}"
    );
    let webhook = reports.iter().find(|r| r["plugin"] == "webhook").unwrap();
    assert_eq!(webhook["identical"], 5, "{webhook}");
    // Live deliveries only: five events, five requests. The report (the host's record) says the
    // shadow ran on all five, so its requests, had any escaped, would be at the sink by now.
    wait_for("five deliveries", 30, || async {
        (sink.requests().len() == 5).then_some(())
    })
    .await;
    let text = host.cli(&["shadow", "report", "sku-map"]);
    assert_eq!(sink.all_requests().len(), 5);
    assert!(
        text.contains("compared 5  identical 0  different 5  shadow failed 5"),
        "{text}"
    );
    // The same difference on five events is one group, printed once with its count.
    assert_eq!(sku["groups"].as_array().unwrap().len(), 1, "{sku}");
    assert_eq!(sku["groups"][0]["events"], 5, "{sku}");
    assert!(text.contains("  5 event(s), e.g. shadowed-"), "{text}");
    host.cli(&["plugin", "shadow", "sku-map", "--stop"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_that_fail_validation_or_ask_for_more_are_refused_with_the_reason() {
    let sink = Sink::start().await;
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    let refusal = |plugin: &'static str, component: &'static str| {
        let host = &host;
        async move {
            let (status, body) = host.upload(plugin, std::path::Path::new(component)).await;
            assert_eq!(status, 400, "{body}");
            body["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    // A transform offered as the connector: the world check fails.
    let said = refusal("webhook", plugins::TRANSFORM_SKU_MAP).await;
    assert!(
        said.contains("the component is a transform but the config says kind = \"connector\""),
        "{said}"
    );
    // A build asking for network access the operator has not granted.
    let said = refusal("sku-map", plugins::HOSTILE_EGRESS).await;
    assert!(
        said.contains("requests outbound HTTP to destinations you choose, but none is granted"),
        "{said}"
    );
    let (status, body) = host
        .upload("nonexistent", std::path::Path::new(plugins::CONNECTOR_WEBHOOK))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = host.upload("webhook", std::path::Path::new("/dev/null")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_sink_holds_its_deliveries_and_admin_changes_need_the_admin_scope() {
    let sink = Sink::start().await;
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    assert_eq!(host.cli(&["sink", "pause", "erp"]).trim(), "sink erp paused");
    assert!(host.cli(&["sink", "list"]).contains("paused"));
    assert_eq!(host.post_json(&one_line_sale("held", "hk-001")).await.0, 202);
    // The host's record: routed to the paused sink and never attempted.
    let entry = wait_for_state(&host, "held", "erp", "pending").await;
    assert_eq!(entry["attempts"], 0, "{entry}");
    let resumed_at = std::time::Instant::now();
    assert_eq!(host.cli(&["sink", "resume", "erp"]).trim(), "sink erp resumed");
    let entry = wait_for_state(&host, "held", "erp", "delivered").await;
    // One attempt in all, and the sink saw nothing before the resume was asked for.
    assert_eq!(entry["attempts"], 1, "{entry}");
    let requests = sink.all_requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].at >= resumed_at, "a paused sink must not be sent to");

    // Changing plugins takes the admin scope; a till's key cannot, and no key is no entry.
    let deploy = format!("{}/v1/admin/plugins/webhook/rollback", host.url);
    let as_pos = host.http.post(&deploy).bearer_auth(POS_KEY).send().await.unwrap();
    assert_eq!(as_pos.status().as_u16(), 403);
    let anonymous = host.http.post(&deploy).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let upload = host
        .http
        .post(format!("{}/v1/admin/plugins/webhook/versions", host.url))
        .bearer_auth(POS_KEY)
        .body(vec![0u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 403);
    // Nothing to roll back to: refused with the reason, and the refusal is audited.
    let (status, body) = host.admin_post("/v1/admin/plugins/webhook/rollback", &json!({})).await;
    assert_eq!(status, 400);
    let v1 = version_of(std::path::Path::new(plugins::CONNECTOR_WEBHOOK));
    assert_eq!(
        body["error"]["message"],
        format!("nothing to roll back to: version {v1} is the only one ever deployed for all stores")
    );
    let records = host.audit_records();
    assert!(records.iter().any(|r| r["action"] == "plugin.rollback.refused"));
    assert!(records.iter().any(|r| r["action"] == "sink.pause"));
}

/// A sink removed by a reload does not strand its backlog: its open deliveries move to the DLQ
/// with reason `sink removed` (audited), nothing loops on the missing connector, and after the
/// sink comes back they replay. Sinks removed while the host was down are handled at start.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_sink_dead_letters_its_backlog_instead_of_looping() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    // `stuck` points at a closed port: its deliveries stay retrying.
    let extra = "\n[[plugins]]\nname = \"webhook-stuck\"\nkind = \"connector\"\npath = PATH\nsecrets = [\"erp-signing\"]\n[plugins.config]\nurl = \"http://127.0.0.1:9/hooks\"\nsecret = \"erp-signing\"\n[plugins.grants]\nhttp = [\"POST http://127.0.0.1:9/hooks\"]\nclock = true\n\n[[sinks]]\nname = \"stuck\"\nconnector = \"webhook-stuck\"\nmax_attempts = 1000\nbackoff_base_ms = 50\nbackoff_max_ms = 200\n"
        .replace("PATH", &format!("{:?}", plugins::CONNECTOR_WEBHOOK));
    options.extra = extra.clone();
    options
        .routes
        .push_str("\n[[routes]]\nname = \"to-stuck\"\ntypes = [\"pos.sale.*\"]\nsinks = [\"stuck\"]\n");
    let mut host = Host::start(&config(&options));
    for i in 0..3 {
        assert_eq!(
            host.post_json(&one_line_sale(&format!("rm-{i}"), "hk-001")).await.0,
            202
        );
        wait_for_state(&host, &format!("rm-{i}"), "stuck", "retrying").await;
    }
    let path = host.dir.path().join("kaunter.toml");
    let with_stuck = std::fs::read_to_string(&path).unwrap();
    let without = with_stuck.replace(&extra, "").replace(
        "\n[[routes]]\nname = \"to-stuck\"\ntypes = [\"pos.sale.*\"]\nsinks = [\"stuck\"]\n",
        "",
    );
    assert!(!without.contains("stuck"));
    std::fs::write(&path, &without).unwrap();
    let out = host.cli(&["config", "reload"]);
    assert!(out.contains("reloaded"), "{out}");
    for i in 0..3 {
        let entry = wait_for_state(&host, &format!("rm-{i}"), "stuck", "dead_lettered").await;
        assert!(
            entry["last_error"]
                .as_str()
                .unwrap()
                .starts_with("sink removed: sink `stuck`"),
            "{entry}"
        );
    }
    let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    assert_eq!(dlq["dead_letters"].as_array().unwrap().len(), 3, "{dlq}");
    let removed = host
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "sink.removed")
        .unwrap();
    assert_eq!(removed["subject"], "stuck");
    assert!(!host.log().contains("the sink's connector is not loaded"));

    // Removed while the host is down: dead-lettered at start, never retried forever.
    std::fs::write(&path, &with_stuck).unwrap();
    host.restart();
    assert_eq!(host.post_json(&one_line_sale("rm-down", "hk-001")).await.0, 202);
    wait_for_state(&host, "rm-down", "stuck", "retrying").await;
    host.kill();
    std::fs::write(&path, &without).unwrap();
    host.restart();
    let entry = wait_for_state(&host, "rm-down", "stuck", "dead_lettered").await;
    assert!(
        entry["last_error"]
            .as_str()
            .unwrap()
            .contains("is not in the configuration the host started with"),
        "{entry}"
    );
}
