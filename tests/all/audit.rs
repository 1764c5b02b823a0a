//! The audit log: what gets recorded, and that editing it is caught.

use crate::harness::*;
use serde_json::{Value, json};
use sha2::Digest;

#[tokio::test(flavor = "multi_thread")]
async fn loads_replays_and_resumes_are_recorded_and_an_edit_is_caught() {
    let sink = Sink::start().await;
    sink.script(&[400]);
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("aud-1", "hk-001", "AUD-1", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "aud-1", "erp", "dead_lettered").await;
    host.cli(&["dlq", "replay", "--since", "2000-01-01T00:00:00Z"]);
    host.cli(&["sink", "resume", "erp"]);
    wait_for_state(&host, "aud-1", "erp", "delivered").await;

    let records = host.audit_records();
    let actions: Vec<&str> = records.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions[0], "host.start");
    assert!(
        actions.contains(&"dlq.replay") && actions.contains(&"sink.resume"),
        "{actions:?}"
    );
    let load = records
        .iter()
        .find(|r| r["action"] == "plugin.load" && r["subject"].as_str().unwrap().starts_with("webhook@"))
        .unwrap();
    let detail: Value = serde_json::from_str(load["detail"].as_str().unwrap()).unwrap();
    let wasm = std::fs::read(kaunter_tests::plugins::CONNECTOR_WEBHOOK).unwrap();
    let digest: String = sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(detail["sha256"], digest);
    assert_eq!(detail["grants"]["http"][0], format!("POST {}", sink.url));
    assert_eq!(detail["grants"]["secrets"][0], "erp-signing");
    let replay = records.iter().find(|r| r["action"] == "dlq.replay").unwrap();
    assert_eq!(replay["actor"], "api-key:ops");

    let data = host.dir.path().join("data");
    let verified = host.cli(&["audit", "verify", "--data", data.to_str().unwrap()]);
    assert!(
        verified.starts_with(&format!("audit log intact: {} records", records.len())),
        "{verified}"
    );

    host.kill();
    let db = rusqlite::Connection::open(data.join("kaunter.db")).unwrap();
    let refused = db
        .execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", [])
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    // Someone determined drops the guard and edits a record anyway.
    db.execute_batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        .unwrap();
    drop(db);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["audit", "verify", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("audit log broken at record #2: its contents do not match its hash"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_report_reads_imports_from_the_component_and_flags_ungranted_and_over_grants() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.extra = format!(
        "\n[[plugins]]\nname = \"nosy\"\nkind = \"transform\"\npath = {:?}\n[plugins.config]\ntarget = \"GET http://example.com/\"\n",
        kaunter_tests::plugins::HOSTILE_EGRESS
    );
    let text = config(&options).replace(
        "name = \"sku-map\"\nkind = \"transform\"",
        "name = \"sku-map\"\nkind = \"transform\"\ngrants = { http = [\"GET http://10.0.0.9/prices\"] }",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaunter.toml");
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["audit", "--json", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let plugin = |name: &str| report.iter().find(|p| p["name"] == name).unwrap().clone();

    let webhook = plugin("webhook");
    let http = webhook["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"].as_str().unwrap().starts_with("wasi:http/outgoing-handler"))
        .unwrap();
    assert_eq!(http["status"], format!("granted to POST {}", sink.url));
    assert_eq!(webhook["over_grants"], serde_json::json!([]));

    let sku = plugin("sku-map");
    assert!(
        sku["imports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| !i["name"].as_str().unwrap().starts_with("wasi:http"))
    );
    assert_eq!(
        sku["over_grants"][0],
        "http GET http://10.0.0.9/prices (the component cannot make HTTP requests)"
    );

    let nosy = plugin("nosy");
    let ungranted: Vec<&str> = nosy["ungranted_imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        ungranted.iter().any(|i| i.starts_with("wasi:http/outgoing-handler")),
        "{ungranted:?}"
    );
    // Rust's std imports the environment in every component: expected, and not "ungranted".
    assert!(
        !ungranted.iter().any(|i| i.starts_with("wasi:cli/environment")),
        "{ungranted:?}"
    );
    let environment = nosy["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"].as_str().unwrap().starts_with("wasi:cli/environment"))
        .unwrap();
    assert_eq!(environment["standing"], "expected", "{environment}");

    // Every bundled plugin loads, so none of their imports is "not provided"; interfaces of
    // records and variants only (the connector's `kaunter:plugin/webhook`) are types only.
    for entry in &report {
        for import in entry["imports"].as_array().unwrap() {
            assert_ne!(import["standing"], "not_provided", "{}: {import}", entry["name"]);
            if import["name"].as_str().unwrap().starts_with("kaunter:plugin/webhook") {
                assert_eq!(import["standing"], "types_only", "{}: {import}", entry["name"]);
            }
        }
    }
}

/// Starts `kaunter serve` on a config expected to be refused; returns what it printed.
fn refused_start(config_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaunter.toml");
    std::fs::write(&path, config_text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config", path.to_str().unwrap()])
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success(), "the host started but should have refused");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_whose_requests_are_not_granted_is_refused_with_the_line_to_add() {
    let base = config(&ConfigOptions::new("http://127.0.0.1:9/hooks"));
    let no_http = base.replace("[plugins.grants]\nhttp = [\"POST http://127.0.0.1:9/hooks\"]\n", "");
    let said = refused_start(&no_http);
    assert!(
        said.contains("error: plugin `webhook` requests outbound HTTP to destinations you choose, but none is granted; add grants.http = [\"POST https://host/path\"]"),
        "{said}"
    );
    let no_secret = base.replace("secrets = [\"erp-signing\"]\n", "");
    let said = refused_start(&no_secret);
    assert!(
        said.contains(
            "plugin `webhook` requests a secret you name in its config, but none is granted; add secrets = [\"NAME\"]"
        ),
        "{said}"
    );
    let small = base.replace(
        "name = \"sku-map\"\nkind = \"transform\"",
        "name = \"sku-map\"\nkind = \"transform\"\nlimits = { memory_mib = 16 }",
    );
    let said = refused_start(&small);
    assert!(
        said.contains("plugin `sku-map` needs limits.memory_mib = 32 but is granted 16; set limits.memory_mib = 32"),
        "{said}"
    );
}

/// What a plugin emits is a capability: a transform whose manifest requests a type to derive does
/// not load until it is granted, and `kaunter audit` shows what each may emit and, for a source,
/// the sources it may speak for.
#[tokio::test(flavor = "multi_thread")]
async fn emits_must_be_granted_and_the_report_shows_emits_and_sources() {
    let restock = format!(
        "\n[[plugins]]\nname = \"restock\"\nkind = \"transform\"\npath = {:?}\n",
        kaunter_tests::plugins::TRANSFORM_RESTOCK
    );
    let mut options = ConfigOptions::new("http://127.0.0.1:9/hooks");
    options.extra = restock.clone();
    let said = refused_start(&config(&options));
    assert!(
        said.contains(
            "plugin `restock` requests to emit events of type `pos.restock.suggested.v1`, which is not granted; add \"pos.restock.suggested.v1\" to emits in its [plugins.grants]"
        ),
        "{said}"
    );

    options.extra = format!(
        "{restock}[plugins.grants]\nemits = [\"pos.restock.*\", \"pos.sale.*\"]\n\n[[plugins]]\nname = \"shopify\"\nkind = \"source\"\npath = {:?}\nsecrets = [\"erp-signing\"]\n[plugins.grants]\nemits = [\"pos.sale.completed.v1\", \"pos.refund.completed.v1\"]\nsources = [\"/t/acme/s/online/p/shopify\"]\n",
        kaunter_tests::plugins::SOURCE_SHOPIFY
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaunter.toml");
    std::fs::write(&path, config(&options)).unwrap();
    let audit = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"));
        command.args(["audit", "--config", path.to_str().unwrap()]);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let report: Vec<Value> = serde_json::from_str(&audit(true)).unwrap();
    let plugin = |name: &str| report.iter().find(|p| p["name"] == name).unwrap().clone();
    let restock = plugin("restock");
    assert_eq!(
        restock["requested"]["emits"],
        serde_json::json!(["pos.restock.suggested.v1"])
    );
    assert_eq!(
        restock["emits_grants"],
        serde_json::json!(["pos.restock.*", "pos.sale.*"])
    );
    assert_eq!(
        restock["over_grants"],
        serde_json::json!(["emits pos.sale.* (not requested)"])
    );
    let shopify = plugin("shopify");
    assert_eq!(
        shopify["source_grants"],
        serde_json::json!(["/t/acme/s/online/p/shopify"])
    );
    assert_eq!(shopify["over_grants"], serde_json::json!([]));
    let text = audit(false);
    assert!(
        text.contains(
            "  emits    pos.restock.*, pos.sale.* (derived events of other types are refused; derived events carry their input's source + /x/restock)"
        ),
        "{text}"
    );
    assert!(
        text.contains("  sources  /t/acme/s/online/p/shopify (its events may carry no other source)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_requesting_more_waits_for_approval() {
    let sink = Sink::start().await;
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.kill();
    // "sku-map" is replaced by a build that also wants outbound HTTP.
    let upgraded = config(&ConfigOptions::new(&sink.url))
        .replace(
            &format!("path = {:?}", kaunter_tests::plugins::TRANSFORM_SKU_MAP),
            &format!("path = {:?}", kaunter_tests::plugins::HOSTILE_EGRESS),
        )
        .replace(
            "name = \"sku-map\"\nkind = \"transform\"",
            "name = \"sku-map\"\nkind = \"transform\"\ngrants = { http = [\"POST http://127.0.0.1:9/x\"] }",
        );
    let config_path = host.dir.path().join("kaunter.toml");
    std::fs::write(&config_path, &upgraded).unwrap();
    let version = kaunter_tests::version_of(std::path::Path::new(kaunter_tests::plugins::HOSTILE_EGRESS));
    let approved = kaunter_tests::version_of(std::path::Path::new(kaunter_tests::plugins::TRANSFORM_SKU_MAP));

    // The host starts, keeps running the approved version, and says what waits and why.
    host.restart();
    let said = host.log();
    assert!(
        said.contains(&format!(
            "plugin `sku-map@{version}` requests more than the approved `sku-map@{approved}`:"
        )),
        "{said}"
    );
    assert!(said.contains("+ http operator-chosen"), "{said}");
    assert!(
        said.contains(&format!("kaunter plugin approve sku-map@{version}")),
        "{said}"
    );
    let listed = host.cli(&["plugin", "list"]);
    assert!(listed.contains(&format!("{version}  pending-approval")), "{listed}");
    let refused = host.cli_fails(&["plugin", "deploy", "sku-map", &version]);
    assert!(
        refused.contains(&format!("sku-map@{version} waits for approval")),
        "{refused}"
    );
    assert_eq!(
        host.post_json(&sale("still-mapped", "hk-001", "o-1", &[("4891234500017", 1, 100)]))
            .await
            .0,
        202
    );
    let delivered = wait_for_state(&host, "still-mapped", "erp", "delivered").await;
    assert_eq!(
        delivered["handled_by"],
        serde_json::json!([format!("sku-map@{approved}")])
    );

    // Approved offline (host stopped), the build is deployed at the next start.
    host.kill();
    let data = host.dir.path().join("data");
    let approval = host.cli(&[
        "plugin",
        "approve",
        &format!("sku-map@{version}"),
        "--config",
        config_path.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    // Nobody authenticated it: the record names the uid that ran it and says so, not `$USER`.
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    assert!(
        approval.starts_with(&format!(
            "approved sku-map@{version} (offline:uid={uid} (unauthenticated: no API key; local account))"
        )),
        "{approval}"
    );
    host.restart();
    let listed = host.cli(&["plugin", "list"]);
    assert!(listed.contains(&format!("active {version}")), "{listed}");
    let records = host.audit_records();
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["actor"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("plugin.pending", "host")), "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|(a, who)| *a == "plugin.approve" && who.starts_with(&format!("offline:uid={uid} (unauthenticated"))),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("plugin.approve", "host (first version)")),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_build_can_be_approved_through_the_admin_api_before_the_restart() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let deployed = dir.path().join("sku.wasm");
    std::fs::copy(kaunter_tests::plugins::TRANSFORM_SKU_MAP, &deployed).unwrap();
    let first = config(&ConfigOptions::new(&sink.url)).replace(
        &format!("path = {:?}", kaunter_tests::plugins::TRANSFORM_SKU_MAP),
        &format!("path = {deployed:?}"),
    );
    let mut host = Host::start(&first);
    // A new build lands where the old one was; the running host is asked to approve it.
    std::fs::copy(kaunter_tests::plugins::HOSTILE_EGRESS, &deployed).unwrap();
    let wasm = std::fs::read(&deployed).unwrap();
    let version: String = sha2::Sha256::digest(&wasm)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = host
        .http
        .post(format!("{}/v1/admin/plugins/approve", host.url))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({ "plugin": format!("sku-map@{version}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requests"]["http"][0], "operator-chosen");
    let granted = first.replace(
        "name = \"sku-map\"\nkind = \"transform\"",
        "name = \"sku-map\"\nkind = \"transform\"\ngrants = { http = [\"POST http://127.0.0.1:9/x\"] }",
    );
    std::fs::write(host.dir.path().join("kaunter.toml"), granted).unwrap();
    host.restart();
    let records = host.audit_records();
    assert!(
        records.iter().any(|r| r["action"] == "plugin.approve"
            && r["actor"] == "api-key:ops"
            && r["subject"] == format!("sku-map@{version}")),
        "{records:?}"
    );
}

/// An admin action whose audit record cannot be written is not applied: pause, resume, unpark,
/// dead-letter replay, historic replay and config reload each answer 500 and change nothing,
/// and work again once the audit log can be written.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_action_whose_audit_record_fails_is_not_applied() {
    let sink = Sink::start().await;
    sink.script(&[400]);
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.post_json(&sale("af-1", "hk-001", "AF-1", &[("1", 1, 100)])).await;
    wait_for_state(&host, "af-1", "erp", "dead_lettered").await;
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_operator_records BEFORE INSERT ON audit_log
         WHEN NEW.actor LIKE 'api-key:%'
         BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END;",
    )
    .unwrap();
    // A reload that would add a sink.
    let path = host.dir.path().join("kaunter.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{original}\n[[sinks]]\nname = \"extra\"\nconnector = \"webhook\"\n"),
    )
    .unwrap();

    for (path, body) in [
        ("/v1/admin/sinks/erp/pause", json!(null)),
        ("/v1/admin/sinks/erp/unpark", json!(null)),
        ("/v1/admin/dlq/replay", json!({"since": "2000-01-01T00:00:00Z"})),
        ("/v1/admin/replays", json!({"since": "2000-01-01T00:00:00Z"})),
        ("/v1/admin/config/reload", json!(null)),
    ] {
        let (status, answer) = host.admin_post(path, &body).await;
        assert_eq!(status, 500, "{path}: {answer}");
    }
    let (_, sinks) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
    assert_eq!(
        sinks["sinks"].as_array().unwrap().len(),
        1,
        "the reload was applied: {sinks}"
    );
    assert_eq!(sinks["sinks"][0]["paused"], false, "the pause was applied: {sinks}");
    let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    assert_eq!(
        dlq["dead_letters"].as_array().unwrap().len(),
        1,
        "the dead letter was replayed"
    );
    let (_, replays) = host.get("/v1/admin/replays", ADMIN_KEY).await;
    assert_eq!(replays["replays"], json!([]), "a historic replay started: {replays}");
    assert_eq!(sink.requests_for("af-1").len(), 1);

    db.execute_batch("DROP TRIGGER refuse_operator_records").unwrap();
    let (status, answer) = host
        .admin_post("/v1/admin/dlq/replay", &json!({"since": "2000-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    wait_for_state(&host, "af-1", "erp", "delivered").await;
    let replay = host
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "dlq.replay")
        .expect("the replay is in the audit log");
    // A filtered replay records its filter and how many it took, not every id.
    let detail: Value = serde_json::from_str(replay["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["count"], 1, "{replay}");
    assert!(detail["filter"]["since_ms"].is_i64(), "{replay}");
    assert!(detail.get("entries").is_none(), "{replay}");
}

/// `kaunter check` on `text`: (succeeded, stdout + stderr).
fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaunter.toml");
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["check", path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_marker_in_a_plugin_config_must_be_granted_sendable_and_requested() {
    let base = config(&ConfigOptions::new("http://127.0.0.1:9/hooks"));
    let slack = format!(
        "\n[[plugins]]\nname = \"slack\"\nkind = \"connector\"\npath = {:?}\nsecrets = [\"slack-webhook\"]\n[plugins.config]\nwebhook_url = \"http://127.0.0.1:9/services/$SECRET(slack-webhook)\"\n[plugins.grants]\nhttp = [\"POST http://127.0.0.1:9/services/\"]\nclock = true\n",
        kaunter_tests::plugins::CONNECTOR_SLACK
    );
    let sendable = "slack-webhook = { value = \"T000/B000/XXXXXXXXXXXX\", encoding = \"text\", for = [\"POST http://127.0.0.1:9/services/\"] }\n";
    let with_secret = |definition: &str, extra: &str| {
        base.replace("[secrets]\n", &format!("[secrets]\n{definition}")) + &slack + extra
    };

    // Slack's manifest requests an optional operator-chosen secret: granted and sendable, all quiet.
    let (ok, said) = check(&with_secret(sendable, ""));
    assert!(ok, "{said}");
    assert!(!said.contains("plugins.slack"), "{said}");

    // A secret without `for` never leaves the host: the marker could never be filled.
    let (ok, said) = check(&with_secret(
        "slack-webhook = { value = \"T000/B000/XXXXXXXXXXXX\", encoding = \"text\" }\n",
        "",
    ));
    assert!(!ok);
    assert!(
        said.contains("plugins.slack.config.webhook_url: `$SECRET(slack-webhook)` cannot be sent: secret `slack-webhook` has no `for`"),
        "{said}"
    );

    // Not granted to the plugin.
    let (ok, said) = check(&with_secret(sendable, "").replace("secrets = [\"slack-webhook\"]\n", ""));
    assert!(!ok);
    assert!(
        said.contains("names a secret plugin `slack` is not granted; add \"slack-webhook\" to secrets"),
        "{said}"
    );

    // A plugin whose manifest requests no secrets: it loads, and the check names the request the
    // plugin's author must add.
    let transform = format!(
        "\n[[plugins]]\nname = \"plain\"\nkind = \"transform\"\npath = {:?}\nsecrets = [\"slack-webhook\"]\n[plugins.config]\nnote = \"$SECRET(slack-webhook)\"\n",
        kaunter_tests::plugins::TRANSFORM_SKU_MAP
    );
    let (ok, said) = check(&with_secret(sendable, &transform));
    assert!(ok, "{said}");
    assert!(
        said.contains("warning: plugins.plain.config.note: `$SECRET(slack-webhook)` works, but plugin `plain`'s manifest requests no secrets"),
        "{said}"
    );
    assert!(said.contains("add secrets = [\"operator-chosen\"]"), "{said}");
}

/// Every OAuth credential a plugin holds is shown with where its tokens go, and grants wider
/// than the plugin needs are flagged: a credential its manifest does not request, plain http://
/// beyond loopback, a whole host where its config names one path, a call budget far above the
/// one requested.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_and_grants_wider_than_needed_are_in_the_report() {
    let mut options = ConfigOptions::new("http://127.0.0.1:9/hooks");
    options.extra = format!(
        r#"
[[plugins]]
name = "erp-plain"
kind = "connector"
path = {webhook:?}
secrets = ["erp-signing"]
[plugins.config]
url = "http://erp.example.com/hooks/kaunter"
secret = "erp-signing"
[plugins.grants]
http = ["POST http://erp.example.com/"]
clock = true

[[plugins]]
name = "xero"
kind = "connector"
path = {xero:?}
[plugins.config]
base_url = "https://api.xero.com/api.xro/2.0"
tenant_id = "t-1"
sales_account = "200"
[plugins.grants]
http = ["GET,PUT https://api.xero.com/api.xro/2.0/"]
credentials = ["xero"]

[credentials.xero]
grant = "refresh_token"
token_url = "https://identity.xero.com/connect/token"
client_id = {{ value = "app" }}
client_secret = {{ value = "s" }}
refresh_token = {{ value = "r" }}
for = ["GET,PUT https://api.xero.com/api.xro/2.0/"]
"#,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        xero = kaunter_tests::plugins::CONNECTOR_XERO,
    );
    // A transform holding the Xero credential: its manifest asks for none.
    let text = config(&options).replace(
        "name = \"sku-map\"\nkind = \"transform\"",
        "name = \"sku-map\"\nkind = \"transform\"\ngrants = { credentials = [\"xero\"] }",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaunter.toml");
    std::fs::write(&path, text).unwrap();
    let run = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"));
        command.args(["audit", "--config", path.to_str().unwrap()]);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let report: Vec<Value> = serde_json::from_str(&run(true)).unwrap();
    let plugin = |name: &str| report.iter().find(|p| p["name"] == name).unwrap().clone();
    let sku = plugin("sku-map");
    assert_eq!(
        sku["credential_grants"],
        serde_json::json!([{"name": "xero", "token_url": "https://identity.xero.com/connect/token",
            "destinations": ["GET,PUT https://api.xero.com/api.xro/2.0/"], "requested": false}])
    );
    let flags = |p: &Value| -> Vec<String> {
        p["over_grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        flags(&sku)
            .iter()
            .any(|f| f.starts_with("credential xero (not requested")),
        "{:?}",
        flags(&sku)
    );
    let xero = plugin("xero");
    assert_eq!(xero["credential_grants"][0]["requested"], true);
    assert!(
        flags(&xero).contains(&"limits.max_http_calls 16 (requested 3: set limits.max_http_calls = 3)".to_owned()),
        "{:?}",
        flags(&xero)
    );
    let plain = flags(&plugin("erp-plain"));
    assert!(
        plain.iter().any(|f| f.starts_with("http POST http://erp.example.com/ (plain http:// beyond loopback"))
            && plain
                .iter()
                .any(|f| f == "http POST http://erp.example.com/ (the whole host, where only /hooks/kaunter is named: grant that path)"),
        "{plain:?}"
    );
    let text = run(false);
    assert!(
        text.contains(
            "  oauth    xero: tokens from https://identity.xero.com/connect/token, added only to GET,PUT https://api.xero.com/api.xro/2.0/ (NOT requested by its manifest)"
        ),
        "{text}"
    );
}

/// `host.start` names the configuration it started with (its SHA-256) and what changed in it
/// since the last start, entry by entry, without keeping the file (or an inline secret) in the log.
#[tokio::test(flavor = "multi_thread")]
async fn host_start_records_the_config_digest_and_what_changed_since_the_last_start() {
    let sink = Sink::start().await;
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    // Each `host.start` record's detail, parsed.
    let starts = |host: &Host| -> Vec<Value> {
        host.audit_records()
            .into_iter()
            .filter(|r| r["action"] == "host.start")
            .map(|r| serde_json::json!({"details": serde_json::from_str::<Value>(r["detail"].as_str().unwrap()).unwrap()}))
            .collect()
    };
    let first = starts(&host);
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0]["details"]["config_sha256"].as_str().map(str::len),
        Some(64),
        "{}",
        first[0]
    );
    assert!(
        first[0]["details"]["config_changed_since_last_start"].is_null(),
        "a first start: {}",
        first[0]
    );
    host.kill();
    let path = host.dir.path().join("kaunter.toml");
    let edited = std::fs::read_to_string(&path).unwrap().replace(
        "\"4891234500024\" = \"VITC-1000-60\"",
        "\"4891234500024\" = \"VITC-1000-90\"",
    );
    std::fs::write(&path, edited).unwrap();
    host.restart();
    let second = starts(&host);
    assert_eq!(second.len(), 2);
    assert_eq!(
        second[1]["details"]["config_changed_since_last_start"],
        serde_json::json!({"added": [], "removed": [], "changed": ["plugins.sku-map"]})
    );
    assert_ne!(
        second[1]["details"]["config_sha256"],
        first[0]["details"]["config_sha256"]
    );
}
