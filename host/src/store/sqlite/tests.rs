//! Store tests on a real SQLite file.

use super::*;
use crate::store::{DeadLetterQuery, NewDeadLetter, NewDelivery};
use kaunter_model::{Defaults, Dialect};

fn event(id: &str, key: &str) -> NewEvent {
    let value = serde_json::json!({
        "specversion": "1.0", "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "x.test",
        "partitionkey": key, "data": {"n": id}
    });
    let defaults = Defaults {
        id: String::new(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    NewEvent::new(
        Event::from_json(value, Dialect::CloudEvents, &defaults).unwrap(),
        None,
        1,
    )
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, Duration::from_micros(200), 64).unwrap()
}

fn delivery(sink: &str, key: &str) -> NewDelivery {
    NewDelivery {
        sink: sink.into(),
        route: "r".into(),
        partition_key: key.into(),
        body: b"{}".to_vec(),
        handled_by: String::new(),
        max_backlog: 0,
    }
}

/// Appends an event and routes it to `deliveries`; returns what was created.
async fn route_one(store: &SqliteStore, id: &str, key: &str, deliveries: Vec<NewDelivery>) -> Vec<Delivery> {
    let seq = store.append(vec![event(id, key)]).await.unwrap()[0].seq;
    let committed = store
        .commit_routes(std::sync::Arc::new(vec![RouteCommit {
            trace: None,
            event_seq: seq,
            event_id: id.into(),
            received_at_us: 1,
            derived: vec![],
            deliveries,
            dead_letters: vec![],
            dropped_routes: vec![],
            redeliver: false,
        }]))
        .await
        .unwrap();
    committed[0].deliveries.clone()
}

fn backlog(sink: &str, open: u64, parked: u64) -> crate::store::SinkBacklog {
    crate::store::SinkBacklog {
        sink: sink.into(),
        open,
        parked,
    }
}

#[tokio::test]
async fn a_sink_over_its_backlog_limit_parks_new_work_until_unparked_and_counts_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let limited = |key: &str| NewDelivery {
        max_backlog: 3,
        ..delivery("slow", key)
    };
    let mut created = Vec::new();
    for i in 0..5 {
        let key = if i % 2 == 0 { "even" } else { "odd" };
        created.extend(route_one(&store, &format!("e{i}"), key, vec![limited(key), delivery("fast", key)]).await);
    }
    let states: Vec<_> = created.iter().filter(|d| d.sink == "slow").map(|d| d.state).collect();
    use DeliveryState::{Parked, Pending};
    assert_eq!(states, [Pending, Pending, Pending, Parked, Parked]);
    assert_eq!(
        store.backlogs().await.unwrap(),
        [backlog("fast", 5, 0), backlog("slow", 3, 2)]
    );
    // Once one is parked, the next is parked too even below the limit: nothing overtakes it.
    let first = created.iter().find(|d| d.sink == "slow").unwrap();
    store
        .update_deliveries(vec![DeliveryUpdate::Delivered {
            id: first.id,
            attempts: 1,
            connector_version: "v".into(),
            remote_id: None,
            note: None,
        }])
        .await
        .unwrap();
    let more = route_one(&store, "e5", "odd", vec![limited("odd")]).await;
    assert_eq!(more[0].state, Parked);
    assert_eq!(
        store.backlogs().await.unwrap(),
        [backlog("fast", 5, 0), backlog("slow", 2, 3)]
    );
    // Windows are read in row order, after a position; a key's rows on their own.
    let window = store.open_deliveries("fast", 0, 2).await.unwrap();
    assert_eq!(
        window.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e0", "e1"]
    );
    let next = store.open_deliveries("fast", window[1].id, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e2", "e3", "e4"]
    );
    let odd = store.open_deliveries_of_key("fast", "odd", 10).await.unwrap();
    assert_eq!(
        odd.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e1", "e3"]
    );
    assert_eq!(store.unpark("slow").await.unwrap(), 3);
    let slow = store.open_deliveries("slow", 0, 10).await.unwrap();
    assert_eq!(
        slow.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e1", "e2", "e3", "e4", "e5"]
    );
    assert_eq!(
        store.backlogs().await.unwrap(),
        [backlog("fast", 5, 0), backlog("slow", 5, 0)]
    );
    // Recounted from the rows on open, the counts are the same.
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.backlogs().await.unwrap(),
        [backlog("fast", 5, 0), backlog("slow", 5, 0)]
    );
    assert_eq!(
        store.dead_letter_sink("slow", "webhook", "sink removed").await.unwrap(),
        5
    );
    assert_eq!(store.backlogs().await.unwrap(), [backlog("fast", 5, 0)]);
}

#[tokio::test]
async fn duplicates_keep_their_original_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store.append(vec![event("a", "k"), event("b", "k")]).await.unwrap();
    let again = store.append(vec![event("b", "k"), event("c", "k")]).await.unwrap();
    assert!(!first[0].duplicate && !first[1].duplicate);
    assert_eq!(
        again[0],
        Appended {
            seq: first[1].seq,
            duplicate: true,
            conflict: None,
        }
    );
    assert!(!again[1].duplicate);
}

/// A real interruption, not a clean close: this test runs itself again as a child process,
/// which appends, sees the append acknowledged and kills itself with SIGKILL (no destructor, no
/// close, no checkpoint). The parent then opens the same files.
#[tokio::test]
async fn acknowledged_writes_survive_a_kill() {
    const CHILD: &str = "KAUNTER_TEST_KILL_AFTER_APPEND";
    if let Ok(dir) = std::env::var(CHILD) {
        let store = open(std::path::Path::new(&dir));
        store.append(vec![event("a", "k"), event("b", "k")]).await.unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        unreachable!("killed");
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::sqlite::tests::acknowledged_writes_survive_a_kill",
            "--nocapture",
        ])
        .env(CHILD, dir.path())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(9), "the child must die by SIGKILL: {status:?}");
    let store = open(dir.path());
    let unrouted = store.unrouted(0, 10).await.unwrap();
    let ids: Vec<&str> = unrouted.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[tokio::test]
async fn routing_dead_lettering_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seq = store.append(vec![event("a", "k")]).await.unwrap()[0].seq;
    let committed = store
        .commit_routes(std::sync::Arc::new(vec![RouteCommit {
            trace: None,
            event_seq: seq,
            event_id: "a".into(),
            received_at_us: 1,
            derived: vec![],
            deliveries: vec![delivery("s1", "k"), delivery("s2", "k")],
            dead_letters: vec![],
            dropped_routes: vec![],
            redeliver: false,
        }]))
        .await
        .unwrap();
    assert_eq!(committed[0].deliveries.len(), 2);
    assert!(store.unrouted(0, 10).await.unwrap().is_empty());
    let d = &committed[0].deliveries[0];
    store
        .update_deliveries(vec![DeliveryUpdate::DeadLetter {
            id: d.id,
            letter: NewDeadLetter {
                event_seq: seq,
                sink: Some("s1".into()),
                route: "r".into(),
                plugin: "webhook".into(),
                plugin_version: "abc".into(),
                error: "rejected: 400".into(),
                attempts: 1,
            },
            failure: None,
        }])
        .await
        .unwrap();
    let letters = store
        .dead_letters(DeadLetterQuery::default(), 10, 0)
        .await
        .unwrap()
        .entries;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error, "rejected: 400");
    assert_eq!(store.open_deliveries("s1", 0, 10).await.unwrap().len(), 0);
    let replayed = store
        .replay(ReplaySelector::Ids(vec![letters[0].id]), None)
        .await
        .unwrap();
    assert_eq!(replayed.deliveries.len(), 1);
    assert_eq!(replayed.deliveries[0].state, DeliveryState::Pending);
    let reopened = store.open_deliveries("s1", 0, 10).await.unwrap();
    assert_eq!(reopened.len(), 1);
    // Finished rows drop a key that is the event's; reopened, the key is back (for reads by key).
    assert_eq!(store.open_deliveries_of_key("s1", "k", 10).await.unwrap().len(), 1);
    assert!(
        store
            .dead_letters(DeadLetterQuery::default(), 10, 0)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

#[tokio::test]
async fn kv_respects_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.kv_set("p", "k", vec![1; 10], 20).await.unwrap();
    assert_eq!(store.kv_get("p", "k").await.unwrap(), Some(vec![1; 10]));
    assert_eq!(store.kv_get("other", "k").await.unwrap(), None);
    let err = store.kv_set("p", "k2", vec![1; 10], 20).await.unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded { quota: 20, .. }), "{err}");
    store.kv_delete("p", "k").await.unwrap();
    assert_eq!(store.kv_get("p", "k").await.unwrap(), None);
    // The usage kept per plugin follows replacements and deletions: a value replaced in place is
    // counted once, and a deleted key frees its bytes.
    store.kv_set("p", "k2", vec![1; 10], 20).await.unwrap();
    for _ in 0..5 {
        store.kv_set("p", "k2", vec![2; 17], 20).await.unwrap();
    }
    store.kv_delete("p", "k2").await.unwrap();
    store.kv_delete("p", "never-set").await.unwrap();
    store.kv_set("p", "k3", vec![3; 18], 20).await.unwrap();
    drop(store);
    // Reopened, the usage is what is stored, not a fresh count added to an old one.
    let store = open(dir.path());
    let err = store.kv_set("p", "k4", vec![4; 1], 20).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                quota: 20,
                would_use: 23
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn pruning_takes_finished_events_only_and_remembers_them_for_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let done = route_one(&store, "done", "k1", vec![delivery("s", "k1")]).await;
    let open_one = route_one(&store, "open", "k2", vec![delivery("s", "k2")]).await;
    let failed = route_one(&store, "failed", "k3", vec![delivery("s", "k3")]).await;
    store
        .update_deliveries(vec![
            DeliveryUpdate::Delivered {
                id: done[0].id,
                attempts: 1,
                connector_version: "v".into(),
                remote_id: None,
                note: None,
            },
            DeliveryUpdate::DeadLetter {
                id: failed[0].id,
                letter: NewDeadLetter {
                    event_seq: failed[0].event_seq,
                    sink: Some("s".into()),
                    route: "r".into(),
                    plugin: "webhook".into(),
                    plugin_version: "v".into(),
                    error: "rejected".into(),
                    attempts: 1,
                },
                failure: None,
            },
        ])
        .await
        .unwrap();
    let unrouted = store.append(vec![event("unrouted", "k4")]).await.unwrap();
    assert!(!unrouted[0].duplicate);
    let policy = crate::store::PrunePolicy {
        received_before_us: Some(i64::MAX),
        max_used_bytes: None,
        dedupe_after_us: 0,
        batch: 10,
    };
    let pruned = store.prune(policy).await.unwrap();
    assert_eq!(
        (pruned.events, pruned.remembered),
        (1, 1),
        "only the delivered one is finished"
    );
    assert!(store.event("done", None).await.unwrap().is_none());
    for kept in ["open", "failed", "unrouted"] {
        assert!(store.event(kept, None).await.unwrap().is_some(), "{kept} was pruned");
    }
    assert_eq!(open_one[0].state, DeliveryState::Pending);
    // A resend of the pruned event is still a duplicate; with other content, a conflict.
    let again = store.append(vec![event("done", "k1")]).await.unwrap();
    assert!(again[0].duplicate && again[0].conflict.is_none(), "{again:?}");
    let mut changed = event("done", "k1");
    changed.body = changed
        .body
        .to_vec()
        .iter()
        .map(|b| if *b == b'n' { b'm' } else { *b })
        .collect();
    let conflict = store.append(vec![changed]).await.unwrap();
    assert!(conflict[0].duplicate && conflict[0].conflict.is_some(), "{conflict:?}");
    // Once its dead letter is replayed and delivered, the failed one goes too; the remembered
    // id is forgotten past the dedupe window.
    let letters = store
        .dead_letters(DeadLetterQuery::default(), 10, 0)
        .await
        .unwrap()
        .entries;
    let replayed = store
        .replay(ReplaySelector::Ids(vec![letters[0].id]), None)
        .await
        .unwrap();
    store
        .update_deliveries(vec![DeliveryUpdate::Delivered {
            id: replayed.deliveries[0].id,
            attempts: 1,
            connector_version: "v".into(),
            remote_id: None,
            note: None,
        }])
        .await
        .unwrap();
    let pruned = store
        .prune(crate::store::PrunePolicy {
            dedupe_after_us: i64::MAX,
            ..policy
        })
        .await
        .unwrap();
    assert_eq!((pruned.events, pruned.remembered, pruned.forgotten), (1, 0, 1));
    assert!(!store.append(vec![event("done", "k1")]).await.unwrap()[0].duplicate);
}
