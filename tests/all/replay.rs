//! Historic replay: a dry run first, then the real one through the routes, and a replay running
//! beside live traffic.

use crate::harness::*;
use crate::lifecycle::{one_line_sale, rollout_config};
use kaunter_tests::plugins;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn history_is_replayed_through_the_routes_with_a_dry_run_first() {
    let sink = Sink::start().await;
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    let since = chrono_now();
    for n in 0..4 {
        assert_eq!(
            host.post_json(&one_line_sale(&format!("old-{n}"), "hk-001")).await.0,
            202
        );
    }
    wait_for("four deliveries", 30, || async {
        (sink.requests().len() == 4).then_some(())
    })
    .await;

    let dry = host.cli(&["replay", "--since", &since, "--dry-run"]);
    assert!(dry.contains("4/4 events"), "{dry}");
    assert!(dry.contains("dry run: nothing was committed or sent"), "{dry}");
    assert!(
        dry.contains("PANADOL-500-20"),
        "the dry run shows what would be sent: {dry}"
    );
    // The dry run committed nothing: the host's log holds the same deliveries as before it.
    let deliveries = || -> i64 {
        rusqlite::Connection::open(host.dir.path().join("data/kaunter.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(deliveries(), 4);
    assert_eq!(sink.all_requests().len(), 4);

    let real = host.cli(&["replay", "--since", &since, "--route", "sales"]);
    assert!(real.contains("4/4 events"), "{real}");
    assert!(real.contains("{\"erp\":4}"), "{real}");
    wait_for("four more deliveries", 30, || async {
        (sink.requests().len() == 8).then_some(())
    })
    .await;
    // The same idempotency key each time: the target can tell it is a replay.
    let keys: BTreeSet<String> = sink
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(keys.len(), 4);
    let error = host.cli_fails(&["replay", "--since", &since, "--through", "sku-map@000000000000"]);
    assert!(
        error.contains("plugin `sku-map` has no version 000000000000"),
        "{error}"
    );
}

/// A replay running while the tills keep selling: every live event is delivered, every replayed
/// one is delivered once more under its own idempotency key, and nothing else arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_alongside_live_traffic_loses_and_invents_nothing() {
    let sink = Sink::start().await;
    let host = Host::start(&rollout_config(&sink, std::path::Path::new(plugins::CONNECTOR_WEBHOOK)));
    let since = chrono_now();
    for n in 0..50 {
        assert_eq!(
            host.post_json(&one_line_sale(&format!("hist-{n}"), "hk-003")).await.0,
            202
        );
    }
    wait_for("the history delivered", 30, || async {
        (sink.delivery_count() == 50).then_some(())
    })
    .await;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = {
        let (url, acknowledged, stop) = (host.url.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let id = format!("live-{n}");
                let response = http
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(POS_KEY)
                    .json(&one_line_sale(&id, &format!("hk-{:03}", 4 + n % 6)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 202);
                acknowledged.lock().unwrap().insert(id);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    wait_for("live traffic", 30, || async {
        (acknowledged.lock().unwrap().len() >= 20).then_some(())
    })
    .await;
    let (url, since_arg) = (host.url.clone(), since.clone());
    let replay = tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
            .args(["replay", "--since", &since_arg, "--route", "sales"])
            .env("KAUNTER_URL", url)
            .env("KAUNTER_API_KEY", ADMIN_KEY)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap();
    wait_for("more live traffic", 30, || async {
        (acknowledged.lock().unwrap().len() >= 60).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    live.await.unwrap();
    // "N/N events": the replay took what was in the log when it started, history and live alike.
    let replayed: usize = replay
        .split("/")
        .next()
        .and_then(|head| head.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {replay}"));
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(replayed >= 70, "{replay}");
    let total = 50 + acknowledged.len() + replayed;
    eprintln!(
        "replay said: {replay}; {} live; expecting {total} deliveries",
        acknowledged.len()
    );
    wait_for("live and replayed deliveries", 60, || async {
        (sink.delivery_count() == total).then_some(())
    })
    .await;
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in sink.requests() {
        *per_id.entry(r.json()["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let history: BTreeSet<String> = (0..50).map(|n| format!("hist-{n}")).collect();
    let expected: BTreeSet<String> = history.union(&acknowledged).cloned().collect();
    assert_eq!(
        per_id.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "only what was sold arrived"
    );
    assert!(
        history.iter().all(|id| per_id[id] == 2),
        "each historic event replayed once"
    );
    assert_eq!(per_id.values().filter(|n| **n == 2).count(), replayed);
    assert!(per_id.values().all(|n| *n <= 2), "{per_id:?}");
}

fn chrono_now() -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
