//! What a transform may emit (DESIGN §3): derived events only of the types granted to it and only
//! in its own namespace (the input's source plus `/x/{plugin}`), and the event it maps with its
//! source, id and type unchanged. A hostile transform (`hostile-forger`) tries to book a sale for
//! another store, to take the id of a sale the till has not sent yet, and to move or retype the
//! event it maps; each attempt is refused or contained, dead-lettered and audited. (What a source
//! may emit is tested in `sources.rs`.)

use crate::harness::*;
use serde_json::Value;

const HK_002_TILL: &str = "/t/acme/s/hk-002/p/till-1";

/// A `hostile-forger` plugin entry.
fn forger(name: &str, config: &str, grants: &str) -> String {
    format!(
        "\n[[plugins]]\nname = \"{name}\"\nkind = \"transform\"\npath = {path:?}\n[plugins.config]\n{config}\n[plugins.grants]\n{grants}\n",
        path = kaunter_tests::plugins::HOSTILE_FORGER,
    )
}

/// Sales of `store` go through `plugin` to `erp`, one route per (store, plugin).
fn route(store: &str, plugin: &str) -> String {
    format!(
        "\n[[routes]]\nname = \"{store}\"\ntypes = [\"pos.*\"]\nstores = [\"{store}\"]\ntransforms = [\"{plugin}\"]\nsinks = [\"erp\"]\n"
    )
}

/// Waits for the dead letter of `event` from `plugin`.
async fn dead_letter(host: &Host, event: &str, plugin: &str) -> Value {
    wait_for(&format!("{plugin}'s dead letter for {event}"), 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"]
            .as_array()?
            .iter()
            .find(|l| l["event_id"] == event && l["plugin"] == plugin)
            .cloned()
    })
    .await
}

/// The audited denials of `plugin` (any version).
fn denials(host: &Host, plugin: &str) -> Vec<Value> {
    host.audit_records()
        .into_iter()
        .filter(|r| {
            r["action"] == "capability.denied"
                && r["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(&format!("plugin:{plugin}@")))
        })
        .collect()
}

/// `GET /v1/events/{id}?source=…` with the admin key.
async fn stored_at(host: &Host, id: &str, source: &str) -> (u16, Value) {
    host.get(&format!("/v1/events/{id}?source={source}"), ADMIN_KEY).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transform_cannot_book_a_sale_for_another_store() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    let forge = format!("mode = \"forge\"\nsource = \"{HK_002_TILL}\"");
    options.extra = forger("forger", &forge, "") + &forger("forger-granted", &forge, "emits = [\"pos.sale.*\"]");
    options.routes = route("hk-001", "forger") + &route("hk-003", "forger-granted");
    let host = Host::start(&config(&options));

    // Not granted the type: the copy is refused, the sale itself goes on.
    assert_eq!(
        host.post_json(&sale("fg-1", "hk-001", "FG-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "fg-1", "erp", "delivered").await;
    let letter = dead_letter(&host, "fg-1", "forger").await;
    let version = letter["plugin_version"].as_str().unwrap();
    assert_eq!(
        letter["error"],
        format!(
            "capability denied: plugin `forger` emitted 1 event(s) it may not; refused (what else it returned went on): \
             plugin `forger` emitted event `fg-1-forged` of type `pos.sale.completed.v1`, which is not in its grants.emits []; \
             to allow it add \"pos.sale.completed.v1\" to emits in its [plugins.grants] (forger@{version})"
        )
    );
    assert_eq!(host.get("/v1/events/fg-1-forged", ADMIN_KEY).await.0, 404);
    let audited = denials(&host, "forger");
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["subject"], "fg-1");
    assert!(
        audited[0]["detail"]
            .as_str()
            .unwrap()
            .contains("`fg-1-forged` of type `pos.sale.completed.v1`"),
        "{audited:?}"
    );

    // Granted the type (an operator's mistake): the copy is kept in the forger's namespace under
    // the store it came from, so it is hk-003's, never hk-002's.
    assert_eq!(
        host.post_json(&sale("fg-2", "hk-003", "FG-2", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "fg-2-forged", "erp", "delivered").await;
    let forged = host.event("fg-2-forged").await;
    assert_eq!(forged["event"]["source"], "/t/acme/s/hk-003/p/till-1/x/forger-granted");
    assert_eq!(forged["parent_seq"], host.event("fg-2").await["seq"]);
    // Both ways by id: what it was derived from, and what the sale gave rise to.
    assert_eq!(forged["derived_from"]["id"], "fg-2", "{forged}");
    assert_eq!(host.event("fg-2").await["derived"][0]["id"], "fg-2-forged");
    assert!(denials(&host, "forger-granted").is_empty());
    let sent = sink.requests_for("fg-2-forged");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json()["source"], "/t/acme/s/hk-003/p/till-1/x/forger-granted");
    // Nothing reached the ERP in hk-002's name.
    assert!(
        sink.requests()
            .iter()
            .all(|r| !r.json()["source"].as_str().unwrap().contains("/s/hk-002/")),
        "a sale was booked for hk-002"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transform_cannot_take_the_id_of_a_sale_the_till_has_not_sent() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    // Even granted the sale type, its copy under the next sale's id lives in its own namespace.
    options.extra = forger(
        "preempter",
        "mode = \"preempt\"\nid = \"pe-2\"",
        "emits = [\"pos.sale.*\"]",
    );
    options.routes = route("hk-001", "preempter");
    let host = Host::start(&config(&options));
    let till = "/t/acme/s/hk-001/p/till-1";

    assert_eq!(
        host.post_json(&sale("pe-1", "hk-001", "PE-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "pe-2", "erp", "delivered").await;
    let copy = host.event("pe-2").await;
    assert_eq!(copy["event"]["source"], "/t/acme/s/hk-001/p/till-1/x/preempter");
    assert_eq!(stored_at(&host, "pe-2", till).await.0, 404);

    // The till's real sale pe-2 is a new event, stored and delivered, not a duplicate.
    let (status, answer) = host.post_json(&sale("pe-2", "hk-001", "PE-2", &[("1", 3, 100)])).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, serde_json::json!({"id": "pe-2", "status": "accepted"}));
    wait_for("the till's pe-2 delivered to erp", 30, || async {
        let (_, stored) = stored_at(&host, "pe-2", till).await;
        stored["sinks"]
            .as_array()?
            .iter()
            .any(|s| s["sink"] == "erp" && s["state"] == "delivered")
            .then_some(())
    })
    .await;
    let sources: Vec<String> = sink
        .requests_for("pe-2")
        .iter()
        .map(|r| r.json()["source"].as_str().unwrap().to_owned())
        .collect();
    assert!(sources.contains(&till.to_owned()), "{sources:?}");
    assert!(
        sources.contains(&"/t/acme/s/hk-001/p/till-1/x/preempter".to_owned()),
        "{sources:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transform_cannot_move_or_retype_the_event_it_maps() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.extra = forger(
        "mover",
        &format!("mode = \"move\"\nsource = \"{HK_002_TILL}\""),
        "emits = [\"*\"]",
    ) + &forger(
        "retyper",
        "mode = \"retype\"\ntype = \"pos.sale.voided.v1\"",
        "emits = [\"*\"]",
    );
    options.routes = route("hk-001", "mover") + &route("hk-003", "retyper");
    let host = Host::start(&config(&options));

    assert_eq!(
        host.post_json(&sale("mv-1", "hk-001", "MV-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    assert_eq!(
        host.post_json(&sale("rt-1", "hk-003", "RT-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    let moved = dead_letter(&host, "mv-1", "mover").await;
    let version = moved["plugin_version"].as_str().unwrap();
    assert_eq!(
        moved["error"],
        format!(
            "capability denied: plugin `mover` returned event `mv-1` (its input's id) with source `{HK_002_TILL}`; \
             an event a transform maps keeps its input's source, id and type (source `/t/acme/s/hk-001/p/till-1`), \
             and an event it derives needs an id of its own (mover@{version})"
        )
    );
    let retyped = dead_letter(&host, "rt-1", "retyper").await;
    assert!(
        retyped["error"].as_str().unwrap().starts_with(
            "capability denied: plugin `retyper` returned event `rt-1` (its input's id) with type `pos.sale.voided.v1`; \
             an event a transform maps keeps its input's source, id and type (type `pos.sale.completed.v1`)"
        ),
        "{retyped}"
    );
    assert_eq!(denials(&host, "mover").len(), 1);
    assert_eq!(denials(&host, "retyper").len(), 1);
    assert!(sink.requests().is_empty(), "{} deliveries", sink.requests().len());

    // Nothing was stored in hk-002's name: its till's own mv-1 is new.
    assert_eq!(stored_at(&host, "mv-1", HK_002_TILL).await.0, 404);
    let (status, answer) = host.post_json(&sale("mv-1", "hk-002", "MV-1", &[("1", 1, 100)])).await;
    assert_eq!((status, answer.get("duplicate")), (202, None), "{answer}");
}

/// The sandbox shows what the host would do with what a transform emits: a derived event of a
/// type not granted is refused (and the run fails), the event it maps goes on.
#[test]
fn the_sandbox_refuses_what_the_host_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forge.json");
    std::fs::write(
        &config,
        format!("{{\"mode\": \"forge\", \"source\": \"{HK_002_TILL}\"}}"),
    )
    .unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sale.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args([
            "plugin",
            "run",
            kaunter_tests::plugins::HOSTILE_FORGER,
            "--kind",
            "transform",
        ])
        .arg("--event")
        .arg(&sample)
        .arg("--config")
        .arg(&config)
        .arg("--json")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let outcome = &report["runs"][0]["outcome"];
    assert!(!output.status.success(), "{outcome}");
    assert_eq!(outcome["events"].as_array().unwrap().len(), 1, "{outcome}");
    assert_eq!(
        outcome["refused"][0],
        "plugin `hostile_forger` emitted event `01JDEMO0SALE000000000000001-forged` of type `pos.sale.completed.v1`, \
         which is not in its grants.emits []; to allow it add \"pos.sale.completed.v1\" to emits in its [plugins.grants]"
    );
}
