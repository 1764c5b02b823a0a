//! `POST /v1/webhooks/{source}`: how the host answers for a source plugin that misbehaves, an
//! unknown source and a plugin that is not a source, and that a signed webhook replayed with fresh
//! unsigned headers is stored once. (Each vendor's source is tested against its own signature
//! scheme in `vendors/`.)

use crate::harness::*;
use crate::vendors::host_config;
use serde_json::{Value, json};

fn config() -> String {
    host_config(&format!(
        r#"
[[plugins]]
name = "misbehaving"
kind = "source"
path = {source:?}
[plugins.limits]
deadline_ms = 300
[plugins.grants]
emits = ["vendor.note.v1"]
sources = ["/t/acme/s/hk-001/p/web*"]

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

    // A failing source answers 500 with only a reference: the detail (which can name destinations,
    // secrets and plugin internals) goes to the operator log under that reference.
    let failure = |misbehave: &'static str| {
        let host = &host;
        async move {
            let (status, body) = webhook(host, "misbehaving", Some(misbehave), b"{}".to_vec()).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (500, Some("source_failed")),
                "{body}"
            );
            let message = body["error"]["message"].as_str().unwrap().to_owned();
            assert!(
                message.starts_with(
                    "source `misbehaving` failed; nothing was stored, so a retry is safe; quote reference "
                ),
                "{message}"
            );
            let reference = message.rsplit(' ').nth(3).unwrap().to_owned();
            let logged = wait_for("the failure in the host log", 10, || async {
                host.log().lines().find(|l| l.contains(&reference)).map(str::to_owned)
            })
            .await;
            (message, logged)
        }
    };
    let (message, logged) = failure("trap").await;
    assert!(!message.contains("trapped"), "{message}");
    assert!(logged.contains("plugin trapped"), "{logged}");
    let (_, logged) = failure("loop").await;
    assert!(logged.contains("exceeded its 300 ms deadline"), "{logged}");
    let (_, logged) = failure("invalid").await;
    assert!(
        logged.contains(
            "it produced events that break the event rules (a plugin bug): events[0].time must be an RFC 3339 timestamp"
        ) && logged.contains("events[0].type is required")
            && logged.contains("events[0].id is a CloudEvents context attribute"),
        "{logged}"
    );
    assert_eq!(host.get("/v1/events/bad-1", ADMIN_KEY).await.0, 404);

    // A source that cannot work until an operator acts answers 503 with Retry-After, so the vendor
    // keeps the webhook and tries again; the reason goes to the log only.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/misbehaving", host.url))
        .header("x-misbehave", "unavailable")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "60");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "source_unavailable", "{body}");
    assert!(!body.to_string().contains("vendor-signing"), "{body}");
    assert!(host.log().contains("secret `vendor-signing` is not granted"));

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
    // A plugin of another kind gets the same answer: callers learn nothing about what exists.
    let (status, body) = webhook(&host, "sku-map", None, b"{}".to_vec()).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no source plugin named `sku-map`"),
        "{body}"
    );

    // The host and the same source still work.
    let (status, _) = webhook(&host, "misbehaving", None, b"{}".to_vec()).await;
    assert_eq!(status, 202);
    assert_eq!(host.get("/healthz", ADMIN_KEY).await.0, 200);
}

/// A source speaks only for the sources and types granted to it (here `/t/acme/s/hk-001/p/web*`
/// and `vendor.note.v1`): an event in a till's name, in the namespace of derived events or of
/// another type refuses the webhook (nothing stored) and is audited; the till's own event with
/// that id is then accepted as new, not taken for a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_cannot_speak_for_a_till_a_plugin_or_an_ungranted_type() {
    let host = Host::start(&config());
    for (misbehave, reason) in [
        (
            "claim-till",
            "source plugin `misbehaving` returned event `hk-001-till-sale-1` with source `/t/acme/s/hk-001/p/till-1`, which is not in its grants.sources [\"/t/acme/s/hk-001/p/web*\"]",
        ),
        (
            "claim-derived",
            "source plugin `misbehaving` returned event `web-1:restock:4891234500017` with source `/t/acme/s/hk-001/p/web/x/restock`, which is in the namespace of events plugin `restock` derives",
        ),
        (
            "other-type",
            "source plugin `misbehaving` emitted event `web-2` of type `vendor.order.v1`, which is not in its grants.emits [\"vendor.note.v1\"]",
        ),
    ] {
        let (status, body) = webhook(&host, "misbehaving", Some(misbehave), b"{}".to_vec()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (500, Some("source_failed")),
            "{misbehave}: {body}"
        );
        assert!(!body.to_string().contains("grants"), "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        let reference = message.rsplit(' ').nth(3).unwrap().to_owned();
        let logged = wait_for("the refusal in the host log", 10, || async {
            host.log().lines().find(|l| l.contains(&reference)).map(str::to_owned)
        })
        .await;
        assert!(
            logged.contains("capability denied: plugin `misbehaving` emitted 1 event(s) it may not; refused the webhook (nothing was stored)"),
            "{logged}"
        );
        // The log escapes quotes; compare without them.
        assert!(logged.replace('\\', "").contains(reason), "{misbehave}: {logged}");
    }
    for id in ["hk-001-till-sale-1", "web-1:restock:4891234500017", "web-2"] {
        assert_eq!(host.get(&format!("/v1/events/{id}"), ADMIN_KEY).await.0, 404, "{id}");
    }
    let denials: Vec<Value> = host
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "capability.denied")
        .collect();
    assert_eq!(denials.len(), 3, "{denials:?}");
    assert!(
        denials
            .iter()
            .all(|d| d["actor"].as_str().unwrap().starts_with("plugin:misbehaving@"))
    );
    assert_eq!(denials[0]["subject"], "hk-001-till-sale-1");

    // The till's sale with the id the source tried to take is new.
    let (status, answer) = host
        .post_json(&sale("hk-001-till-sale-1", "hk-001", "TS-1", &[("1", 1, 100)]))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({"id": "hk-001-till-sale-1", "status": "accepted"}));
}
