//! Durability: whatever was acknowledged survives a kill -9 and is delivered after restart —
//! killed idle, killed mid-stream over several cycles, and restarted on a large backlog.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_is_delivered_after_the_host_is_killed() {
    let sink = Sink::start().await;
    // The sink is down while events arrive, so work is in flight when the host dies.
    sink.respond_with(|_| (503, vec![]));
    let mut options = ConfigOptions::new(&sink.url);
    options.max_attempts = 1000;
    let mut host = Host::start(&config(&options));
    let mut acknowledged = BTreeSet::new();
    for batch in 0..10 {
        let events: Vec<_> = (0..20)
            .map(|i| {
                sale(
                    &format!("k{batch}-{i}"),
                    "hk-020",
                    &format!("K-{batch}-{i}"),
                    &[("4891234500017", 1, 100)],
                )
            })
            .collect();
        let (status, body) = host.post_json(&serde_json::json!(events)).await;
        assert_eq!(status, 202, "{body}");
        for r in body["results"].as_array().unwrap() {
            acknowledged.insert(r["id"].as_str().unwrap().to_owned());
        }
    }
    // A failed attempt is in the log before the kill.
    wait_for_state(&host, "k0-0", "erp", "retrying").await;
    host.kill();
    sink.respond_with(|_| (204, vec![]));
    host.restart();
    // The start-up says what it recovered: events still to route, and open deliveries per sink,
    // which together are every acknowledged event.
    let log = host.log();
    let line = log
        .lines()
        .find_map(|l| l.split("resuming unfinished work from the log: ").nth(1))
        .expect("the start-up says what it recovered");
    let to_route: usize = line.split(' ').next().unwrap().parse().unwrap();
    let open: usize = line
        .split("open deliveries per sink: erp ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .map_or(0, |n| n.parse().unwrap());
    assert_eq!(to_route + open, 200, "{line}");
    wait_for("every acknowledged event at the sink", 60, || async {
        let delivered: BTreeSet<String> = sink.accepted_ids().into_iter().collect();
        acknowledged.is_subset(&delivered).then_some(())
    })
    .await;
    assert_eq!(acknowledged.len(), 200);
    // The attempt count survived the kill: the recorded failure plus the success, and never more
    // than the sink actually saw (an attempt made just before the kill may not be recorded).
    let entry = wait_for_state(&host, "k0-0", "erp", "delivered").await;
    let attempts = entry["attempts"].as_u64().unwrap() as usize;
    let requests = sink.requests_for("k0-0");
    assert!(
        attempts >= 2 && attempts <= requests.len(),
        "{attempts} attempts, {} requests",
        requests.len()
    );
    assert_eq!(requests.iter().filter(|r| r.status == 204).count(), 1);
    assert_eq!(sink.accepted_ids().len(), 200, "each event accepted once");
}

/// Tills keep posting while the host is killed (SIGKILL) mid-stream, three times: requests are
/// in flight and commits under way at each kill. Every event whose 202 a till received is
/// delivered afterwards, exactly once; an event whose request died with the host may or may not
/// have been stored, and if it was, it is delivered once too.
#[tokio::test(flavor = "multi_thread")]
async fn kills_in_the_middle_of_a_stream_lose_no_acknowledged_event() {
    let sink = Sink::start().await;
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    let url = Arc::new(Mutex::new(host.url.clone()));
    let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tills = Vec::new();
    for till in 0..4 {
        let (url, acknowledged, stop) = (url.clone(), acknowledged.clone(), stop.clone());
        tills.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<Value> = (0..10)
                    .map(|_| {
                        n += 1;
                        sale(
                            &format!("kill-{till}-{n}"),
                            &format!("hk-{:03}", 30 + till),
                            &format!("KILL-{till}-{n}"),
                            &[("4891234500017", 1, 100)],
                        )
                    })
                    .collect();
                let target = format!("{}/v1/events", url.lock().unwrap());
                let answer = http.post(target).bearer_auth(POS_KEY).json(&events).send().await;
                sent += 1;
                let Ok(response) = answer else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue; // the host is down: this batch's fate is unknown
                };
                if response.status().as_u16() != 202 {
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else {
                    continue; // cut off mid-answer: not an acknowledgement
                };
                let mut acked = acknowledged.lock().unwrap();
                for r in body["results"].as_array().unwrap() {
                    if r["status"] == "accepted" {
                        acked.insert(r["id"].as_str().unwrap().to_owned());
                    }
                }
            }
            sent
        }));
    }
    for cycle in 0..3 {
        // Let acknowledgements pile up, then kill with requests in flight.
        let before = acknowledged.lock().unwrap().len();
        wait_for("the tills to get more acknowledgements", 60, || async {
            (acknowledged.lock().unwrap().len() >= before + 300).then_some(())
        })
        .await;
        host.kill();
        host.restart();
        *url.lock().unwrap() = host.url.clone();
        eprintln!(
            "cycle {cycle}: {} acknowledged so far",
            acknowledged.lock().unwrap().len()
        );
    }
    let before = acknowledged.lock().unwrap().len();
    wait_for("acknowledgements after the last restart", 60, || async {
        (acknowledged.lock().unwrap().len() >= before + 100).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for till in tills {
        till.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    wait_for("every acknowledged event at the sink", 120, || async {
        let delivered: BTreeSet<String> = sink.accepted_ids().into_iter().collect();
        acknowledged.is_subset(&delivered).then_some(())
    })
    .await;
    // Nothing stored twice, nothing delivered twice: each stored event is one delivery, done.
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let stored: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    wait_for("every stored event delivered", 60, || async {
        let open: i64 = db
            .query_row("SELECT count(*) FROM deliveries WHERE state != 'delivered'", [], |r| {
                r.get(0)
            })
            .unwrap();
        (open == 0).then_some(())
    })
    .await;
    // Delivery is at least once: an attempt the sink answered just before a kill, and that the
    // host had not recorded, is made again after the restart — under the same idempotency key,
    // so the receiver applies it once. So: one key per stored event, each accepted at least once.
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in sink.requests().iter().filter(|r| r.status == 204) {
        *per_key.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    let repeated = per_key.values().filter(|n| **n > 1).count();
    eprintln!(
        "{stored} stored, {} acknowledged, {repeated} keys sent again after a kill",
        acknowledged.len()
    );
    assert_eq!(per_key.len() as i64, stored, "one idempotency key per stored event");
    assert!(
        repeated <= 3 * 64,
        "{repeated} repeats: more than one window of in-flight attempts per kill"
    );
    assert!(acknowledged.len() >= 1000, "{}", acknowledged.len());
}

/// A restart on a backlog of 100,000 open deliveries: the host comes up, serves new events
/// straight away, and delivers the whole backlog, each event once.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_on_a_backlog_of_100000_deliveries_delivers_it_all() {
    const BACKLOG: usize = 100_000;
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.max_body_bytes = 8 * 1024 * 1024;
    options.routes = "[[routes]]\nname = \"sales\"\ntypes = [\"pos.*\"]\nsinks = [\"erp\"]\n".into();
    let mut host = Host::start(&config(&options).replace("concurrency = 8", "concurrency = 32"));
    assert_eq!(host.cli(&["sink", "pause", "erp"]).trim(), "sink erp paused");
    let t0 = std::time::Instant::now();
    let stores: Vec<String> = (0..50).map(|s| format!("hk-{:03}", 100 + s)).collect();
    for batch in 0..BACKLOG / 1000 {
        let events: Vec<Value> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                json!({"id": format!("big-{n}"), "source": format!("/t/acme/s/{}/p/till-1", stores[n % 50]),
                       "type": "pos.stock.adjusted.v1", "time": "2026-11-25T09:00:00+08:00",
                       "data": {"sku": "4891234500017", "delta_milli": -1000, "reason": "shrinkage"}})
            })
            .collect();
        let (status, body) = host.post_json(&json!(events)).await;
        assert_eq!(status, 202, "{body}");
    }
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let open = || -> i64 {
        db.query_row("SELECT open FROM sink_backlog WHERE sink = 'erp'", [], |r| r.get(0))
            .unwrap_or(0)
    };
    eprintln!("ingested: {:?}", t0.elapsed());
    wait_for("the whole backlog routed", 120, || async {
        (open() == BACKLOG as i64).then_some(())
    })
    .await;
    eprintln!("routed: {:?}", t0.elapsed());
    host.kill();
    host.restart();
    // The start-up says what it recovered, per sink.
    let log = host.log();
    assert!(
        log.contains(
            "resuming unfinished work from the log: 0 event(s) to route; open deliveries per sink: erp 100000"
        ),
        "{}",
        log.lines()
            .filter(|l| l.contains("resuming"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // New events are accepted at once; the paused sink is still paused after the restart.
    assert_eq!(
        host.post_json(&sale("after-restart", "hk-001", "AR-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    assert!(sink.requests().is_empty(), "paused across the restart");
    eprintln!("restarted: {:?}", t0.elapsed());
    assert_eq!(host.cli(&["sink", "resume", "erp"]).trim(), "sink erp resumed");
    wait_for("the backlog delivered", 300, || async {
        (sink.delivery_count() > BACKLOG).then_some(())
    })
    .await;
    eprintln!("delivered: {:?}", t0.elapsed());
    wait_for("the host to record it", 60, || async { (open() == 0).then_some(()) }).await;
    let keys: BTreeSet<String> = sink
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(keys.len(), BACKLOG + 1, "each event delivered once");
    assert_eq!(sink.requests().len(), BACKLOG + 1);
}

/// A damaged row does not stop the host: an unreadable event and an unreadable delivery are set
/// aside in `quarantine` (audited, counted in stats, loud in the log) and everything else is
/// routed and delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_row_is_quarantined_and_the_host_starts_serving() {
    let sink = Sink::start().await;
    sink.script(&[500; 1000]);
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    for id in ["q-ok", "q-bad-delivery"] {
        assert_eq!(host.post_json(&sale(id, "hk-001", id, &[("1", 1, 100)])).await.0, 202);
        wait_for_state(&host, id, "erp", "retrying").await;
    }
    host.kill();
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    // An event that was acknowledged but not routed yet, with a body that no longer inflates.
    db.execute(
        "INSERT INTO events (id, source, type, partition_key, received_at_us, routed, body)
         VALUES ('q-bad-event', '/t/acme/s/hk-001/p/till-1', 'pos.sale.completed.v1', 'hk-001:Q', 0, 0, X'01FFFF')",
        [],
    )
    .unwrap();
    db.execute(
        "UPDATE deliveries SET state = 'retrying', attempts = 'garbage' WHERE event_seq = (SELECT seq FROM events WHERE id = 'q-bad-delivery')",
        [],
    )
    .unwrap();
    drop(db);
    sink.clear_script();
    host.restart();
    wait_for_state(&host, "q-ok", "erp", "delivered").await;
    assert_eq!(
        host.post_json(&sale("q-after", "hk-002", "Q-2", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "q-after", "erp", "delivered").await;
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["quarantined"], 2, "{stats}");
    let log = host.log();
    assert!(log.contains("UNREADABLE ROW QUARANTINED"), "{log}");
    let audited: Vec<String> = host
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "store.quarantined")
        .map(|r| r["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited.iter().any(|s| s.starts_with("events:")));
    assert!(audited.iter().any(|s| s.starts_with("deliveries:")));
}
