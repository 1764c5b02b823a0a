//! What an acknowledgement means at the edges: simultaneous posts of one id store it once, and a
//! store that cannot write answers 503 and acknowledges nothing.

use crate::harness::*;
use serde_json::Value;

async fn host_and_sink() -> (Host, Sink) {
    let sink = Sink::start().await;
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    (host, sink)
}

/// Two tills post the same event at the same moment (eight copies at once): one is stored, the
/// rest are answered as duplicates, and the sink gets one delivery.
#[tokio::test(flavor = "multi_thread")]
async fn simultaneous_posts_of_one_id_store_and_deliver_it_once() {
    let (host, sink) = host_and_sink().await;
    let event = sale("same-1", "hk-001", "SAME-1", &[("1", 1, 100)]);
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = host
            .http
            .post(format!("{}/v1/events", host.url))
            .bearer_auth(POS_KEY)
            .json(&event);
        posts.spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = posts.join_next().await {
        answers.push(answer.unwrap());
    }
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    let duplicates = answers.iter().filter(|(_, body)| body["duplicate"] == true).count();
    assert_eq!(duplicates, 7, "{answers:?}");
    let entry = wait_for_state(&host, "same-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 1);
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    let (events, deliveries): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM events WHERE id = 'same-1'), (SELECT count(*) FROM deliveries)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((events, deliveries), (1, 1));
    assert_eq!(sink.requests_for("same-1").len(), 1);
}

/// A store that cannot write (here another process holds SQLite's write lock past the host's
/// 10 s busy timeout, as a backup tool might) answers 503 `store_unavailable` with Retry-After:
/// never a 202 for an event it did not store. Once the lock is gone the same event is accepted
/// as new and delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_cannot_write_answers_503_and_acknowledges_nothing() {
    let (host, sink) = host_and_sink().await;
    assert_eq!(
        host.post_json(&sale("before-lock", "hk-001", "BL-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    wait_for_state(&host, "before-lock", "erp", "delivered").await;
    let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let event = sale("under-lock", "hk-001", "UL-1", &[("1", 1, 100)]);
    let response = host
        .http
        .post(format!("{}/v1/events", host.url))
        .bearer_auth(POS_KEY)
        .json(&event)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    db.execute_batch("ROLLBACK").unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the event log could not store this request, so nothing in it was accepted; send it again"),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("5"));
    let (status, _) = host.get("/v1/events/under-lock", ADMIN_KEY).await;
    assert_eq!(status, 404, "a refused event is not in the log");
    let (status, body) = host.post_json(&event).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicate"], Value::Null, "{body}");
    wait_for_state(&host, "under-lock", "erp", "delivered").await;
    assert_eq!(sink.requests_for("under-lock").len(), 1);
}
