//! Configuration reloads and kept versions: a reload removing a route keeps the deliveries it
//! made, a reload racing a deploy keeps both, and an uploaded version survives a restart.

use crate::harness::*;
use crate::lifecycle::one_line_sale;
use kaunter_tests::{plugins, variant, version_of};
use serde_json::json;

/// A reload that removes the route which made some deliveries keeps those deliveries: they
/// belong to a sink that still exists, so they are delivered once it answers; new events no longer
/// take the removed route.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_removing_a_route_keeps_the_deliveries_it_made() {
    let sink = Sink::start().await;
    sink.respond_with(|_| (503, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 1000;
    let host = Host::start(&config(&options));
    for n in 0..5 {
        assert_eq!(
            host.post_json(&one_line_sale(&format!("rr-{n}"), "hk-001")).await.0,
            202
        );
    }
    for n in 0..5 {
        wait_for_state(&host, &format!("rr-{n}"), "erp", "retrying").await;
    }
    options.routes = "[[routes]]\nname = \"refunds-only\"\ntypes = [\"pos.refund.*\"]\nsinks = [\"erp\"]\n".into();
    std::fs::write(host.dir.path().join("kaunter.toml"), config(&options)).unwrap();
    let out = host.cli(&["config", "reload"]);
    assert!(out.contains("reloaded"), "{out}");
    sink.respond_with(|_| (204, vec![]));
    for n in 0..5 {
        wait_for_state(&host, &format!("rr-{n}"), "erp", "delivered").await;
    }
    assert_eq!(host.post_json(&one_line_sale("rr-after", "hk-001")).await.0, 202);
    let after = wait_for("rr-after to be routed", 30, || async {
        let event = host.event("rr-after").await;
        event["sinks"].as_array().is_some_and(Vec::is_empty).then_some(event)
    })
    .await;
    assert_eq!(after["sinks"], json!([]), "{after}");
    assert_eq!(sink.accepted_ids().len(), 5);
}

/// A config reload and a deploy issued at the same moment both take effect, whichever lands
/// first: the new sink from the reload receives, the deployed version delivers, and both survive
/// a restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_racing_a_deploy_keeps_both() {
    let sink = Sink::start().await;
    let second = Sink::start().await;
    let builds = tempfile::tempdir().unwrap();
    let b2 = variant(plugins::CONNECTOR_WEBHOOK, 2, builds.path());
    let v2 = version_of(&b2);
    let mut options = ConfigOptions::new(&sink.url);
    let mut host = Host::start(&config(&options));
    assert_eq!(host.upload("webhook", &b2).await.0, 201);
    // The reload adds a second sink (its own connector instance) and a route to it.
    options.extra = format!(
        "\n[[plugins]]\nname = \"webhook-2\"\nkind = \"connector\"\npath = {path:?}\nsecrets = [\"erp-signing\"]\n[plugins.config]\nurl = \"{url}\"\nsecret = \"erp-signing\"\n[plugins.grants]\nhttp = [\"POST {url}\"]\nclock = true\n\n[[sinks]]\nname = \"archive\"\nconnector = \"webhook-2\"\n",
        path = plugins::CONNECTOR_WEBHOOK,
        url = second.url
    );
    options
        .routes
        .push_str("\n[[routes]]\nname = \"archive\"\ntypes = [\"pos.*\"]\nsinks = [\"archive\"]\n");
    std::fs::write(host.dir.path().join("kaunter.toml"), config(&options)).unwrap();
    let url = host.url.clone();
    let reload = tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
            .args(["config", "reload"])
            .env("KAUNTER_URL", url)
            .env("KAUNTER_API_KEY", ADMIN_KEY)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    });
    let version = json!({ "version": v2 });
    let deploy = host.admin_post("/v1/admin/plugins/webhook/deploy", &version);
    let (reloaded, (status, body)) = tokio::join!(reload, deploy);
    let (ok, out) = reloaded.unwrap();
    assert!(ok && out.contains("reloaded"), "{out}");
    assert_eq!(status, 200, "{body}");
    for round in ["before", "after"] {
        let id = format!("race-{round}");
        assert_eq!(host.post_json(&one_line_sale(&id, "hk-001")).await.0, 202);
        assert_eq!(host.delivered_by(&id, "erp").await, v2, "{round} the restart");
        wait_for_state(&host, &id, "archive", "delivered").await;
        host.restart();
    }
    assert_eq!(second.accepted_ids(), ["race-before", "race-after"]);
}

/// An uploaded version that was never deployed is still listed after a restart and can be
/// deployed then: the version store keeps it and the host registers it again at start.
#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_version_survives_a_restart_and_can_be_deployed() {
    let sink = Sink::start().await;
    let builds = tempfile::tempdir().unwrap();
    let b2 = variant(plugins::CONNECTOR_WEBHOOK, 2, builds.path());
    let v2 = version_of(&b2);
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    assert_eq!(host.upload("webhook", &b2).await.0, 201);
    host.restart();
    let listed = host.cli(&["plugin", "list"]);
    assert!(listed.contains(&v2), "{listed}");
    let (status, body) = host
        .admin_post("/v1/admin/plugins/webhook/deploy", &json!({ "version": v2 }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(host.post_json(&one_line_sale("after-upload", "hk-001")).await.0, 202);
    assert_eq!(host.delivered_by("after-upload", "erp").await, v2);
}
