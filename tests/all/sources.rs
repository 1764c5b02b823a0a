//! `POST /v1/webhooks/{source}`: how the host answers for a source plugin that misbehaves, an
//! unknown source and a plugin that is not a source. (Each vendor's source is tested against its
//! own signature scheme in `vendors/`.)

use crate::harness::*;
use crate::vendors::host_config;
use serde_json::Value;

fn config() -> String {
    host_config(&format!(
        r#"
[[plugins]]
name = "misbehaving"
kind = "source"
path = {source:?}
[plugins.limits]
deadline_ms = 300

[[plugins]]
name = "sku-map"
kind = "transform"
path = {sku:?}
"#,
        source = kaunter_tests::plugins::HOSTILE_SOURCE,
        sku = kaunter_tests::plugins::TRANSFORM_SKU_MAP,
    ))
    .replacen("[server]\n", "[server]\nmax_body_bytes = 4096\n", 1)
}

async fn webhook(host: &Host, source: &str, misbehave: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/{source}", host.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(how) = misbehave {
        request = request.header("x-misbehave", how);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_stores_nothing_and_the_host_keeps_serving() {
    let host = Host::start(&config());
    let (status, body) = webhook(&host, "misbehaving", None, b"{}".to_vec()).await;
    assert_eq!(
        (status, &body["accepted"], &body["duplicates"]),
        (202, &0.into(), &0.into()),
        "{body}"
    );

    let (status, body) = webhook(&host, "misbehaving", Some("trap"), b"{}".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("source_failed")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("source `misbehaving` (misbehaving@"), "{message}");
    assert!(
        message.contains("plugin trapped") && message.ends_with("nothing was stored, so the vendor's retry is safe"),
        "{message}"
    );

    let (status, body) = webhook(&host, "misbehaving", Some("loop"), b"{}".to_vec()).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded its 300 ms deadline"),
        "{body}"
    );

    let (status, body) = webhook(&host, "misbehaving", Some("invalid"), b"{}".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("invalid_event")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("produced events that break the event rules (a plugin bug; nothing was stored)"),
        "{body}"
    );
    let broken: Vec<&str> = body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attribute"].as_str().unwrap())
        .collect();
    assert_eq!(broken, ["events[0].time", "events[0].type", "events[0].id"], "{body}");
    assert_eq!(host.get("/v1/events/bad-1", ADMIN_KEY).await.0, 404);

    // An event without a partition key gets the default one (`{store}:{id}`), not a shared "".
    let (status, body) = webhook(&host, "misbehaving", Some("keyless"), b"{}".to_vec()).await;
    assert_eq!((status, &body["accepted"]), (202, &1.into()), "{body}");
    let stored = host.get("/v1/events/keyless-1", ADMIN_KEY).await.1;
    assert_eq!(stored["event"]["partitionkey"], "hk-001:keyless-1", "{stored}");

    let (status, body) = webhook(&host, "misbehaving", None, vec![b' '; 5000]).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("4096-byte limit"),
        "{body}"
    );

    let (status, body) = webhook(&host, "shopify", None, b"{}".to_vec()).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "no source plugin named `shopify`; configure a [[plugins]] entry with kind = \"source\" and name = \"shopify\""
    );
    let (status, body) = webhook(&host, "sku-map", None, b"{}".to_vec()).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("plugin `sku-map` is a transform, not a source"),
        "{body}"
    );

    // The host and the same source still work.
    let (status, _) = webhook(&host, "misbehaving", None, b"{}".to_vec()).await;
    assert_eq!(status, 202);
    assert_eq!(host.get("/healthz", ADMIN_KEY).await.0, 200);
}
