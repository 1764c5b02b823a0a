//! Wasm isolation in the event path: a plugin that never returns is stopped on time, its event is
//! dead-lettered with the reason, and everything else keeps flowing.

use crate::harness::*;

/// Pilot stores' sales go through `plugin`; Hong Kong stores' through the SKU map; both to `erp`.
fn pilot_stores_through(sink: &Sink, plugin: &str) -> ConfigOptions {
    let mut options = ConfigOptions::new(&sink.url);
    options.routes = format!(
        r#"
[[routes]]
name = "pilot"
types = ["pos.sale.*"]
stores = ["pilot-*"]
transforms = ["{plugin}"]
sinks = ["erp"]

[[routes]]
name = "sales"
types = ["pos.sale.*"]
stores = ["hk-*"]
transforms = ["sku-map"]
sinks = ["erp"]
"#
    );
    options
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_transform_is_stopped_and_other_routes_keep_delivering() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, "spin")));
    host.post_json(&sale("loop-1", "pilot-01", "L-1", &[("1", 1, 100)]))
        .await;
    for i in 0..5 {
        host.post_json(&sale(
            &format!("fine-{i}"),
            "hk-001",
            &format!("F-{i}"),
            &[("1", 1, 100)],
        ))
        .await;
    }
    let letter = wait_for("the looping event in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(letter["event_id"], "loop-1");
    assert_eq!(letter["plugin"], "spin");
    assert_eq!(letter["sink"], serde_json::Value::Null);
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("exceeded its 300 ms deadline"),
        "{letter}"
    );
    for i in 0..5 {
        wait_for_state(&host, &format!("fine-{i}"), "erp", "delivered").await;
    }
    // The host is still healthy and the spinning instance was discarded: it fails again, on time.
    host.post_json(&sale("loop-2", "pilot-02", "L-2", &[("1", 1, 100)]))
        .await;
    wait_for("the second looping event in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        (dlq["dead_letters"].as_array()?.len() == 2).then_some(())
    })
    .await;
    assert!(sink.requests_for("loop-1").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_over_its_memory_cap_traps_and_only_its_event_fails() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, "hog")));
    host.post_json(&sale("hog-1", "pilot-01", "H-1", &[("1", 1, 100)]))
        .await;
    host.post_json(&sale("calm-1", "hk-001", "C-1", &[("1", 1, 100)])).await;
    let letter = wait_for("the memory hog in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(letter["event_id"], "hog-1");
    assert_eq!(letter["plugin"], "hog");
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.starts_with("plugin trapped:") && error.contains("memory"),
        "{letter}"
    );
    wait_for_state(&host, "calm-1", "erp", "delivered").await;
    assert!(sink.requests_for("hog-1").is_empty());
}

/// Each case: a plugin name, its grants, the request it tries, and what the operator reads.
#[tokio::test(flavor = "multi_thread")]
async fn outbound_requests_outside_the_grants_are_denied_and_fail_the_event() {
    let sink = Sink::start().await;
    let port = sink.port();
    // A second receiver on another port, to catch what `other-port` would send there.
    let neighbour = Sink::start().await;
    let other_port = neighbour.port();
    let granted = format!("POST http://127.0.0.1:{port}/hooks");
    let cases = [
        (
            "ungranted-host",
            granted.clone(),
            "POST http://api.evil.example/steal".to_owned(),
            "tried POST http://api.evil.example:80/steal, which no grant allows".to_owned(),
        ),
        (
            "other-port",
            granted.clone(),
            format!("POST http://127.0.0.1:{other_port}/hooks"),
            format!("tried POST http://127.0.0.1:{other_port}/hooks, which no grant allows"),
        ),
        (
            "other-path",
            granted.clone(),
            format!("POST http://127.0.0.1:{port}/admin"),
            format!("tried POST http://127.0.0.1:{port}/admin, which no grant allows"),
        ),
        (
            "other-method",
            granted.clone(),
            format!("DELETE http://127.0.0.1:{port}/hooks"),
            format!("tried DELETE http://127.0.0.1:{port}/hooks, which no grant allows"),
        ),
        (
            "loopback-ungranted",
            format!("POST http://10.1.2.3:{port}/hooks"),
            format!("GET http://127.0.0.1:{port}/hooks"),
            format!("tried GET http://127.0.0.1:{port}/hooks, which no grant allows"),
        ),
        (
            "metadata",
            granted.clone(),
            "GET http://169.254.169.254/latest/meta-data/".to_owned(),
            "tried GET http://169.254.169.254:80/latest/meta-data/, which no grant allows".to_owned(),
        ),
        (
            "dot-segments",
            format!("POST http://127.0.0.1:{port}/hooks/"),
            format!("POST http://127.0.0.1:{port}/hooks/../admin/steal"),
            format!("tried POST http://127.0.0.1:{port}/admin/steal, which no grant allows"),
        ),
        (
            "escaped-dots",
            format!("POST http://127.0.0.1:{port}/hooks/"),
            format!("POST http://127.0.0.1:{port}/hooks/%2e%2e/admin/steal"),
            format!("tried POST http://127.0.0.1:{port}/admin/steal, which no grant allows"),
        ),
        (
            "escaped-slash",
            format!("POST http://127.0.0.1:{port}/hooks/"),
            format!("POST http://127.0.0.1:{port}/hooks/..%2fadmin"),
            "refused before any check: the path segment `..%2fadmin` encodes a `/` or `\\`".to_owned(),
        ),
        (
            "dot-parameter",
            format!("POST http://127.0.0.1:{port}/hooks/"),
            format!("POST http://127.0.0.1:{port}/hooks/..;/admin"),
            "`;` parameters on an empty or dot segment".to_owned(),
        ),
        (
            "name-to-loopback",
            format!("POST http://localhost:{port}/hooks"),
            format!("POST http://localhost:{port}/hooks"),
            "an internal (loopback, link-local, metadata or private) address; grant that address as an IP literal"
                .to_owned(),
        ),
    ];
    let mut options = ConfigOptions::new(&sink.url);
    let mut routes = String::new();
    for (name, grant, target, _) in &cases {
        options.extra.push_str(&format!(
            "\n[[plugins]]\nname = \"{name}\"\nkind = \"transform\"\npath = {path:?}\n[plugins.config]\ntarget = \"{target}\"\n[plugins.grants]\nhttp = [\"{grant}\"]\n",
            path = kaunter_tests::plugins::HOSTILE_EGRESS
        ));
        routes.push_str(&format!(
            "\n[[routes]]\nname = \"{name}\"\ntypes = [\"pos.sale.*\"]\nstores = [\"{name}\"]\ntransforms = [\"{name}\"]\nsinks = [\"erp\"]\n"
        ));
    }
    routes.push_str("\n[[routes]]\nname = \"sales\"\ntypes = [\"pos.sale.*\"]\nstores = [\"hk-*\"]\ntransforms = [\"sku-map\"]\nsinks = [\"erp\"]\n");
    options.routes = routes;
    let host = Host::start(&config(&options));
    for (name, ..) in &cases {
        host.post_json(&sale(&format!("x-{name}"), name, "X-1", &[("1", 1, 100)]))
            .await;
    }
    host.post_json(&sale("honest-1", "hk-001", "H-1", &[("1", 1, 100)]))
        .await;
    let letters = wait_for("every exfiltration attempt in the DLQ", 30, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        let letters = dlq["dead_letters"].as_array()?.clone();
        (letters.len() == cases.len()).then_some(letters)
    })
    .await;
    for (name, _, _, says) in &cases {
        let letter = letters.iter().find(|l| l["event_id"] == format!("x-{name}")).unwrap();
        let error = letter["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("capability denied: plugin `{name}` ")),
            "{name}: {error}"
        );
        assert!(error.contains(says.as_str()), "{name}: {error}\nshould say: {says}");
        assert_eq!(letter["plugin"], *name);
    }
    wait_for_state(&host, "honest-1", "erp", "delivered").await;
    // Each denial is in the audit log, naming the plugin version and the event.
    let data = host.dir.path().join("data");
    let log = host.cli(&["audit", "log", "--json", "--data", data.to_str().unwrap()]);
    let denials: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "capability.denied")
        .collect();
    assert_eq!(denials.len(), cases.len(), "{log}");
    assert!(
        denials
            .iter()
            .any(|r| r["subject"] == "x-metadata" && r["actor"].as_str().unwrap().starts_with("plugin:metadata@"))
    );
    // Nothing sneaked through: on any method and path of the sink's port only the honest event
    // arrived, and the other port got nothing.
    let seen: Vec<(String, String, String)> = sink
        .all_requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.header("webhook-id").to_owned()))
        .collect();
    let honest = host.key_of("honest-1", "erp").await;
    assert_eq!(seen, [("POST".to_owned(), "/hooks".to_owned(), honest)]);
    let strays: Vec<(String, String)> = neighbour
        .all_requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

/// Sends one event through `plugin` (as a pilot store) and one honest event; returns the dead
/// letter of the first once the second is delivered.
async fn dead_letter_from(plugin: &str) -> (serde_json::Value, Sink) {
    let (letter, sink, _) = dead_letter_and_stats(plugin).await;
    (letter, sink)
}

/// As [`dead_letter_from`], with the host's stats afterwards.
async fn dead_letter_and_stats(plugin: &str) -> (serde_json::Value, Sink, serde_json::Value) {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, plugin)));
    host.post_json(&sale(&format!("bad-{plugin}"), "pilot-01", "P-1", &[("1", 1, 100)]))
        .await;
    host.post_json(&sale("good-1", "hk-001", "G-1", &[("1", 1, 100)])).await;
    let letter = wait_for(&format!("{plugin}'s event in the DLQ"), 60, || async {
        let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
        dlq["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    wait_for_state(&host, "good-1", "erp", "delivered").await;
    assert_eq!(letter["event_id"], format!("bad-{plugin}"));
    assert_eq!(letter["plugin"], plugin);
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    (letter, sink, stats)
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_hits_the_stack_limit() {
    let (letter, _) = dead_letter_from("deep").await;
    assert!(
        letter["error"].as_str().unwrap().contains("call stack exhausted"),
        "{letter}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enormous_output_is_refused() {
    let (letter, _) = dead_letter_from("flood-out").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.starts_with("limit exceeded: plugin `flood-out` returned 10001 events for one event; its limit is 100"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_trapping_on_every_event_fails_only_its_own_events() {
    let (letter, _, stats) = dead_letter_and_stats("broken").await;
    // Breaches are counted per plugin version and kind.
    let label = format!("broken@{}", letter["plugin_version"].as_str().unwrap());
    assert_eq!(stats["plugin_failures"][&label]["trap"], 1, "{stats}");
    assert!(
        letter["error"].as_str().unwrap().starts_with("plugin trapped: "),
        "{letter}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fuel_budget_stops_a_busy_plugin() {
    let (letter, _) = dead_letter_from("burner").await;
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("used up its fuel budget of 20000000 (limits.fuel)"),
        "{letter}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flooding_outbound_calls_is_cut_off_at_the_budget() {
    let (letter, sink) = dead_letter_from("flood-calls").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.contains("made more than 16 outbound requests for one event (limits.max_http_calls)"),
        "{error}"
    );
    let stolen = sink.requests().iter().filter(|r| r.body == b"stolen").count();
    assert_eq!(stolen, 16, "exactly the budget got through");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_environment_and_secrets_stay_out_of_reach() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, "snoop")));
    host.post_json(&sale("snoop-1", "pilot-01", "S-1", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "snoop-1", "erp", "delivered").await;
    let delivered = &sink.requests_for("snoop-1")[0];
    let event = delivered.json();
    for key in ["snoopfile", "snoopdir", "snoopenv", "snoopsecret"] {
        assert!(
            event[key].as_str().unwrap().starts_with("refused:"),
            "{key}: {}",
            event[key]
        );
    }
    assert!(
        event["snoopsecret"]
            .as_str()
            .unwrap()
            .contains("not granted to plugin `snoop`"),
        "{}",
        event["snoopsecret"]
    );
    assert_eq!(event["snoopvars"], "0");
    assert_eq!(event["snoopconfig"], "{}");
    let body = String::from_utf8_lossy(&delivered.body);
    let secret_b64 = WEBHOOK_SECRET.strip_prefix("whsec_").unwrap();
    assert!(
        !body.contains(SNOOP_SECRET) && !body.contains(secret_b64),
        "a secret leaked: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wall_clock_is_not_granted_by_default() {
    let (letter, _) = dead_letter_from("clock-peek").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.starts_with("capability denied: plugin `clock-peek` read the wall clock, which is not granted; add clock = true to its [plugins.grants]"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_over_the_byte_limit_is_refused() {
    let (letter, _) = dead_letter_from("flood-bytes").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.starts_with("limit exceeded: the transforms of route `pilot` produced "),
        "{error}"
    );
    assert!(
        error.ends_with("bytes of events for one event; the limit is 100000 (limits.max_output_bytes)"),
        "{error}"
    );
}

/// The output limit counts what a transform derives even when it drops the event it was given.
#[tokio::test(flavor = "multi_thread")]
async fn the_byte_limit_holds_when_the_input_is_dropped() {
    let (letter, _) = dead_letter_from("flood-dropped").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.starts_with("limit exceeded: the transforms of route `pilot` produced "),
        "{error}"
    );
}

/// A denial belongs to the call that made it: 32 deliveries of one connector run at once, half
/// of them make an ungranted request and hide the failure. Exactly those fail and are audited;
/// the others deliver.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_keep_their_own_denials() {
    let sink = Sink::start().await;
    let port = sink.port();
    let mut options = ConfigOptions::new(&sink.url);
    options.extra.push_str(&format!(
        "\n[[plugins]]\nname = \"sneaky\"\nkind = \"connector\"\npath = {path:?}\n[plugins.config]\nurl = \"{sink}\"\ntarget = \"POST http://127.0.0.1:{other}/steal\"\n[plugins.grants]\nhttp = [\"POST {sink}\"]\n\n[[sinks]]\nname = \"sometimes\"\nconnector = \"sneaky\"\nconcurrency = 32\nmax_attempts = 1\n",
        path = kaunter_tests::plugins::HOSTILE_SOMETIMES,
        sink = sink.url,
        other = port + 1,
    ));
    options.routes = "\n[[routes]]\nname = \"sneaky\"\ntypes = [\"pos.sale.*\"]\nsinks = [\"sometimes\"]\n".into();
    let host = Host::start(&config(&options));
    let ids: Vec<String> = (0..32)
        .map(|i| {
            if i % 2 == 1 {
                format!("c-{i}-sneak")
            } else {
                format!("c-{i}")
            }
        })
        .collect();
    let batch: Vec<serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| sale(id, "hk-001", &format!("C-{i}"), &[("1", 1, 100)]))
        .collect();
    let (status, _) = host.post_json(&serde_json::Value::Array(batch)).await;
    assert_eq!(status, 202);
    for id in &ids {
        let state = if id.ends_with("-sneak") {
            "dead_lettered"
        } else {
            "delivered"
        };
        wait_for_state(&host, id, "sometimes", state).await;
    }
    let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    let mut dead: Vec<String> = dlq["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let error = l["error"].as_str().unwrap();
            assert!(
                error.starts_with("capability denied: plugin `sneaky` tried POST http://127.0.0.1:"),
                "{error}"
            );
            l["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    dead.sort();
    let mut sneaky: Vec<String> = ids.iter().filter(|id| id.ends_with("-sneak")).cloned().collect();
    sneaky.sort();
    assert_eq!(dead, sneaky);
    let mut audited: Vec<String> = host
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "capability.denied")
        .map(|r| r["subject"].as_str().unwrap().to_owned())
        .collect();
    audited.sort();
    assert_eq!(audited, sneaky);
    let mut delivered = sink.accepted_ids();
    delivered.retain(|id| !id.ends_with("-sneak"));
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 16);
}

/// A plugin cannot flood the host's log: at most 100 lines per call (and 1,000 a second per
/// plugin) are written, the rest are dropped and counted in stats, and the event goes on.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_logs_are_capped_per_call_and_counted() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&pilot_stores_through(&sink, "chatty")));
    host.post_json(&sale("chatty-1", "pilot-01", "C-1", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "chatty-1", "erp", "delivered").await;
    let log = host.log();
    let written = log.lines().filter(|l| l.contains("flood line")).count();
    assert_eq!(written, 100, "{written} plugin lines written");
    assert!(log.contains("plugin log capped at 100 lines per call"), "{log}");
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["log_lines_dropped"], 4900, "{stats}");
}
