//! Ingest: the accepted formats, the answers to bad input, authentication, limits, duplicates.

use crate::harness::*;
use serde_json::{Value, json};

async fn host_and_sink() -> (Host, Sink) {
    let sink = Sink::start().await;
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    (host, sink)
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudevents_structured_batch_and_binary_modes_are_accepted() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.routes = r#"
[[routes]]
name = "sales"
types = ["pos.*", "com.example.*"]
transforms = ["sku-map"]
sinks = ["erp"]
"#
    .into();
    let host = Host::start(&config(&options));
    let mut structured = sale("ce-1", "hk-001", "CE-1", &[("1", 1, 100)]);
    structured["specversion"] = json!("1.0");
    let (status, body) = host
        .post("application/cloudevents+json", structured.to_string(), Some(POS_KEY))
        .await;
    assert_eq!((status, body), (202, json!({"id": "ce-1", "status": "accepted"})));

    let mut a = sale("ce-2", "hk-001", "CE-2", &[("1", 1, 100)]);
    a["specversion"] = json!("1.0");
    // A type kaunter does not model is carried as custom data.
    let b = json!({"specversion": "1.0", "id": "ce-3", "source": "/t/acme/s/hk-001/p/scale-2",
                   "type": "com.example.scale.reading", "data": {"grams": 1250}});
    let (status, body) = host
        .post(
            "application/cloudevents-batch+json",
            json!([a, b]).to_string(),
            Some(POS_KEY),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["results"][1], json!({"id": "ce-3", "status": "accepted"}));

    let data = sale("x", "hk-001", "CE-4", &[("1", 1, 100)])["data"].clone();
    let response = host
        .http
        .post(format!("{}/v1/events", host.url))
        .bearer_auth(POS_KEY)
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", "ce-4")
        .header("ce-source", "/t/acme/s/hk-001/p/till-9")
        .header("ce-type", "pos.sale.completed.v1")
        .header("ce-time", "2026-11-25T10:15:00%2B08:00")
        .header(
            "ce-traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(data.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let stored = host.event("ce-4").await;
    assert_eq!(stored["event"]["time"], "2026-11-25T10:15:00+08:00");
    assert_eq!(
        stored["event"]["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    assert_eq!(stored["event"]["data"]["order_id"], "CE-4");
    for id in ["ce-1", "ce-2", "ce-3", "ce-4"] {
        wait_for_state(&host, id, "erp", "delivered").await;
    }
    let custom = sink.requests_for("ce-3");
    assert_eq!(custom[0].json()["data"], json!({"grams": 1250}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resent_event_is_answered_as_a_duplicate_and_not_processed_again() {
    let (host, sink) = host_and_sink().await;
    let event = sale("dup-1", "hk-001", "DUP-1", &[("1", 1, 100)]);
    assert_eq!(host.post_json(&event).await.0, 202);
    let (status, body) = host.post_json(&event).await;
    assert_eq!(
        (status, body),
        (202, json!({"id": "dup-1", "status": "accepted", "duplicate": true}))
    );
    wait_for_state(&host, "dup-1", "erp", "delivered").await;
    // A batch mixing old and new reports each.
    let (_, body) = host
        .post_json(&json!([event, sale("dup-2", "hk-001", "DUP-2", &[("1", 1, 100)])]))
        .await;
    assert_eq!(body["duplicates"], 1);
    assert_eq!(body["accepted"], 1);
    wait_for_state(&host, "dup-2", "erp", "delivered").await;
    assert_eq!(sink.requests_for("dup-1").len(), 1);
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(stats["duplicates"], 2);
    // Ids are unique per source: another store may use the same id, and `source` tells them apart.
    let (status, body) = host
        .post_json(&sale("dup-1", "hk-002", "OTHER-1", &[("1", 1, 100)]))
        .await;
    assert_eq!((status, body["duplicate"].clone()), (202, Value::Null));
    let (_, other) = host
        .get("/v1/events/dup-1?source=/t/acme/s/hk-002/p/till-1", ADMIN_KEY)
        .await;
    assert_eq!(other["event"]["data"]["order_id"], "OTHER-1");
    let (_, first) = host.get("/v1/events/dup-1", ADMIN_KEY).await;
    assert_eq!(first["event"]["data"]["order_id"], "DUP-1");
}

/// Sends a body and checks the status, the error code and a fragment of the message.
async fn expect_error(
    host: &Host,
    content_type: &str,
    body: String,
    key: Option<&str>,
    status: u16,
    code: &str,
    says: &str,
) -> Value {
    let (got, answer) = host.post(content_type, body, key).await;
    assert_eq!(got, status, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "message {message:?} should mention {says:?}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_precise_answer_and_nothing_is_stored() {
    let (host, sink) = host_and_sink().await;
    let good = sale("bad-x", "hk-001", "X-1", &[("1", 1, 100)]);

    expect_error(
        &host,
        "application/json",
        "{\"id\": ".into(),
        Some(POS_KEY),
        400,
        "malformed_json",
        "not valid JSON",
    )
    .await;

    let mut wrong_type = good.clone();
    wrong_type["data"]["lines"][0]["quantity_milli"] = json!("two");
    let answer = expect_error(
        &host,
        "application/json",
        wrong_type.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "data.lines[0].quantity_milli",
    )
    .await;
    assert!(
        answer["error"]["errors"][0]["rule"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{answer}"
    );

    let mut negative = good.clone();
    negative["data"]["lines"][0]["quantity_milli"] = json!(-1000);
    expect_error(
        &host,
        "application/json",
        negative.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "must be positive in a sale",
    )
    .await;

    let mut no_currency = good.clone();
    no_currency["data"]["totals"]["total"]
        .as_object_mut()
        .unwrap()
        .remove("currency");
    expect_error(
        &host,
        "application/json",
        no_currency.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "missing field `currency`",
    )
    .await;

    let mut bad_time = good.clone();
    bad_time["time"] = json!("yesterday");
    expect_error(
        &host,
        "application/json",
        bad_time.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "RFC 3339",
    )
    .await;

    let no_spec = json!({"id": "1", "source": "/x", "type": "t"});
    expect_error(
        &host,
        "application/cloudevents+json",
        no_spec.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "`specversion`",
    )
    .await;
    let no_source = json!({"specversion": "1.0", "id": "1", "type": "t"});
    expect_error(
        &host,
        "application/cloudevents+json",
        no_source.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "`source`",
    )
    .await;

    // One bad event fails the whole batch, and the answer points at it.
    let batch = json!([good.clone(), negative]);
    let answer = expect_error(
        &host,
        "application/json",
        batch.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "events[1].data.lines[0].quantity_milli",
    )
    .await;
    assert_eq!(answer["error"]["errors"].as_array().unwrap().len(), 1);

    expect_error(
        &host,
        "text/plain",
        good.to_string(),
        Some(POS_KEY),
        415,
        "unsupported_media_type",
        "text/plain",
    )
    .await;
    expect_error(
        &host,
        "application/json",
        good.to_string(),
        None,
        401,
        "unauthorized",
        "missing API key",
    )
    .await;
    expect_error(
        &host,
        "application/json",
        good.to_string(),
        Some("wrong-key-123"),
        401,
        "unauthorized",
        "unknown API key",
    )
    .await;
    let sg = sale("sg-1", "sg-001", "SG-1", &[("1", 1, 100)]);
    expect_error(
        &host,
        "application/json",
        sg.to_string(),
        Some(HK_ONLY_KEY),
        403,
        "forbidden",
        "store `sg-001`",
    )
    .await;
    let (status, _) = host.get("/v1/admin/dlq", POS_KEY).await;
    assert_eq!(status, 403);

    // Nothing above was stored or delivered.
    let (status, _) = host.get("/v1/events/bad-x", ADMIN_KEY).await;
    assert_eq!(status, 404);
    assert!(sink.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused_with_413() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.max_body_bytes = 4096;
    let host = Host::start(&config(&options));
    let lines: Vec<(&str, i64, i64)> = (0..60).map(|_| ("4891234500017", 1, 100)).collect();
    let big = sale("big-1", "hk-001", "BIG-1", &lines);
    assert!(big.to_string().len() > 4096);
    expect_error(
        &host,
        "application/json",
        big.to_string(),
        Some(POS_KEY),
        413,
        "payload_too_large",
        "4096-byte limit",
    )
    .await;
    let small = sale("small-1", "hk-001", "S-1", &[("1", 1, 100)]);
    assert_eq!(host.post_json(&small).await.0, 202);
}

/// `max_pending` bounds the events waiting to be routed (here behind a transform that spins to
/// its 5 s deadline on one lane); a sink that is down never counts against it (see backlog.rs).
#[tokio::test(flavor = "multi_thread")]
async fn over_the_queue_limit_ingest_answers_503_with_retry_after() {
    let sink = Sink::start().await;
    let mut options = ConfigOptions::new(&sink.url);
    options.max_pending = 3;
    options.server_extra = "router_lanes = 1".into();
    options.extra = format!(
        "\n[[plugins]]\nname = \"stall\"\nkind = \"transform\"\npath = {:?}\n[plugins.limits]\ndeadline_ms = 5000\n",
        kaunter_tests::plugins::HOSTILE_LOOP
    );
    options.routes =
        "[[routes]]\nname = \"slow\"\ntypes = [\"pos.*\"]\ntransforms = [\"stall\"]\nsinks = [\"erp\"]\n".into();
    let host = Host::start(&config(&options));
    let mut statuses = Vec::new();
    for i in 0..10 {
        let (status, _) = host
            .post_json(&sale(
                &format!("bp-{i}"),
                "hk-001",
                &format!("BP-{i}"),
                &[("1", 1, 100)],
            ))
            .await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], &[202, 202, 202]);
    let response = host
        .http
        .post(format!("{}/v1/events", host.url))
        .bearer_auth(POS_KEY)
        .header("content-type", "application/json")
        .body(sale("bp-x", "hk-001", "BP-X", &[("1", 1, 100)]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("queue limit"),
        "{body}"
    );
    // What was refused was never stored.
    assert_eq!(host.get("/v1/events/bp-x", ADMIN_KEY).await.0, 404);
}

/// An unauthenticated caller puts a line break, a forged log line and colour codes in a webhook
/// source name: the log keeps one line per record, and no escape codes (it is not a terminal).
#[tokio::test(flavor = "multi_thread")]
async fn untrusted_text_cannot_forge_a_log_line_or_colour_the_log() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    let forged = "x%0D%0A2026-12-07T08:00:00.000000Z%20%20INFO%20kaunter::admin:%20sink%20resumed%20by%20api-key:demo-admin%1B%5B2K";
    let status = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/{forged}", host.url))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let log = wait_for("the refusal in the log", 30, || async {
        let log = host.log();
        log.contains("webhook for a name that is not a source plugin")
            .then_some(log)
    })
    .await;
    assert!(!log.contains('\u{1b}'), "escape codes in the log:\n{log}");
    assert!(
        log.lines().all(|l| !l.starts_with("2026-12-07T08:00:00.000000Z")),
        "a forged line:\n{log}"
    );
    let refusal = log
        .lines()
        .find(|l| l.contains("webhook for a name that is not a source plugin"))
        .unwrap();
    assert!(
        refusal.contains(
            "x\\r\\n2026-12-07T08:00:00.000000Z  INFO kaunter::admin: sink resumed by api-key:demo-admin\\x1b[2K"
        ),
        "{refusal}"
    );
}

/// A store's key cannot put its events in another store's ordering lane: a partition key naming
/// hk-002 sent for hk-001 is kept inside hk-001 (`hk-001:` in front), so a stuck event of the
/// sender never holds up hk-002's orders; keys inside the sender's store are kept as sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_partition_key_stays_inside_the_senders_store() {
    let (host, _sink) = host_and_sink().await;
    let mut poison = sale("pk-1", "hk-001", "A-1", &[("1", 1, 100)]);
    poison["partitionkey"] = json!("hk-002:A-1");
    let mut own = sale("pk-2", "hk-001", "A-2", &[("1", 1, 100)]);
    own["partitionkey"] = json!("hk-001:till-lane-3");
    let mut bare = sale("pk-3", "hk-001", "A-3", &[("1", 1, 100)]);
    bare["partitionkey"] = json!("hk-001");
    for event in [&poison, &own, &bare] {
        let (status, body) = host
            .post("application/json", event.to_string(), Some(HK_ONLY_KEY))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    assert_eq!(host.event("pk-1").await["event"]["partitionkey"], "hk-001:hk-002:A-1");
    assert_eq!(host.event("pk-2").await["event"]["partitionkey"], "hk-001:till-lane-3");
    assert_eq!(host.event("pk-3").await["event"]["partitionkey"], "hk-001");
}

/// Loose input the review found accepted: each is refused with the field and rule, bounded, and
/// nothing is stored; an empty batch is a valid batch; the scheme name is case-insensitive.
#[tokio::test(flavor = "multi_thread")]
async fn loose_input_is_refused_precisely_and_bounded() {
    let (host, sink) = host_and_sink().await;
    let good = sale("loose-x", "hk-001", "X-1", &[("1", 1, 100)]);

    let mut huge_id = good.clone();
    huge_id["id"] = json!("A".repeat(500_000));
    let (status, answer) = host.post("application/json", huge_id.to_string(), Some(POS_KEY)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().len() < 2_000,
        "the id is echoed back: {} bytes",
        answer.to_string().len()
    );
    assert_eq!(answer["error"]["errors"][0]["attribute"], "id");
    assert_eq!(
        answer["error"]["errors"][0]["rule"],
        "is 500000 bytes long; at most 256 bytes are accepted"
    );

    let mut nul = good.clone();
    nul["id"] = json!("loose\u{0}1");
    expect_error(
        &host,
        "application/json",
        nul.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "`id` must not contain control characters (found '\\0')",
    )
    .await;

    expect_error(
        &host,
        "application/evil+json",
        good.to_string(),
        Some(POS_KEY),
        415,
        "unsupported_media_type",
        "Content-Type `application/evil+json` is not accepted",
    )
    .await;

    // 300,000 broken events: the answer lists the first 100 and says how many there were.
    let many = format!("[{}]", vec!["{}"; 300_000].join(","));
    let (status, answer) = host.post("application/json", many, Some(POS_KEY)).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["errors"].as_array().unwrap().len(), 100);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("rules broken; `errors` lists the first 100"),
        "{message}"
    );
    assert!(
        answer.to_string().len() < 64 * 1024,
        "{} bytes",
        answer.to_string().len()
    );

    // The same key twice: which one a reader keeps differs between parsers, so it is refused.
    let twice = good.to_string().replacen("{\"", "{\"id\":\"loose-shadow\",\"", 1);
    expect_error(
        &host,
        "application/json",
        twice,
        Some(POS_KEY),
        400,
        "malformed_json",
        "the key `id` appears twice in one object",
    )
    .await;
    // An integer a reader could keep only as a float is refused, not rounded.
    let mut wide = good.clone();
    wide["type"] = json!("acme.custom.v1");
    wide["data"] = json!({"counter": 1});
    let too_wide = wide
        .to_string()
        .replace("\"counter\":1", "\"counter\":18446744073709551616");
    expect_error(
        &host,
        "application/json",
        too_wide,
        Some(POS_KEY),
        400,
        "malformed_json",
        "the integer `18446744073709551616`",
    )
    .await;
    // Within 64 bits an integer is kept exactly, past 2^53 too.
    wide["id"] = json!("loose-wide");
    let exact = wide
        .to_string()
        .replace("\"counter\":1", "\"counter\":9007199254740993");
    assert_eq!(host.post("application/json", exact, Some(POS_KEY)).await.0, 202);
    let stored = host.event("loose-wide").await;
    assert_eq!(stored["event"]["data"]["counter"].as_u64(), Some(9_007_199_254_740_993));
    // `dataschema`, when present, is a non-empty absolute URI, and it is carried.
    for bad in [json!(""), json!("not a uri"), json!("/relative/only"), json!(7)] {
        let mut schema = good.clone();
        schema["specversion"] = json!("1.0");
        schema["dataschema"] = bad.clone();
        let (status, answer) = host
            .post("application/cloudevents+json", schema.to_string(), Some(POS_KEY))
            .await;
        assert_eq!(status, 400, "dataschema {bad}: {answer}");
        assert_eq!(answer["error"]["errors"][0]["attribute"], "dataschema", "{answer}");
    }
    let mut schema = sale("loose-schema", "hk-001", "X-3", &[("1", 1, 100)]);
    schema["specversion"] = json!("1.0");
    schema["dataschema"] = json!("https://schemas.example.com/pos/sale/v1");
    let (status, answer) = host
        .post("application/cloudevents+json", schema.to_string(), Some(POS_KEY))
        .await;
    assert_eq!(status, 202, "{answer}");
    wait_for_state(&host, "loose-schema", "erp", "delivered").await;
    assert_eq!(
        sink.requests_for("loose-schema")[0].json()["dataschema"],
        "https://schemas.example.com/pos/sale/v1"
    );
    // Data of any content type is carried (CloudEvents JSON format 3.1): text as a string,
    // other bytes as data_base64; in binary mode the body is the data.
    let note = json!({"specversion": "1.0", "id": "loose-note", "source": "/t/acme/s/hk-001/p/till-1",
        "type": "acme.note.v1", "datacontenttype": "text/plain", "data": "shelf 4 is empty"});
    assert_eq!(
        host.post("application/cloudevents+json", note.to_string(), Some(POS_KEY))
            .await
            .0,
        202
    );
    let stored = host.event("loose-note").await;
    assert_eq!(stored["event"]["data"], "shelf 4 is empty", "{stored}");
    assert_eq!(stored["event"]["datacontenttype"], "text/plain");
    let blob = json!({"specversion": "1.0", "id": "loose-blob", "source": "/t/acme/s/hk-001/p/till-1",
        "type": "acme.blob.v1", "data_base64": "AAEC/w=="});
    assert_eq!(
        host.post("application/cloudevents+json", blob.to_string(), Some(POS_KEY))
            .await
            .0,
        202
    );
    assert_eq!(host.event("loose-blob").await["event"]["data_base64"], "AAEC/w==");
    let binary = host
        .http
        .post(format!("{}/v1/events", host.url))
        .bearer_auth(POS_KEY)
        .header("ce-specversion", "1.0")
        .header("ce-id", "loose-scan")
        .header("ce-source", "/t/acme/s/hk-001/p/till-1")
        .header("ce-type", "acme.scan.v1")
        .header("content-type", "image/png")
        .body(vec![0x89u8, b'P', b'N', b'G', 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status(), 202);
    let scan = host.event("loose-scan").await;
    assert_eq!(scan["event"]["datacontenttype"], "image/png", "{scan}");
    assert_eq!(scan["event"]["data_base64"], "iVBOR/8=");
    let mut sale_as_text = good.clone();
    sale_as_text["specversion"] = json!("1.0");
    sale_as_text["id"] = json!("loose-csv");
    sale_as_text["datacontenttype"] = json!("text/csv");
    sale_as_text["data"] = json!("sku,qty");
    expect_error(
        &host,
        "application/cloudevents+json",
        sale_as_text.to_string(),
        Some(POS_KEY),
        400,
        "invalid_event",
        "`pos.sale.completed.v1` events carry JSON data (application/json), not `text/csv`",
    )
    .await;
    // A leap second and an offset no place uses.
    for time in ["2026-12-31T23:59:60Z", "2026-11-25T10:15:00+23:59"] {
        let mut odd = good.clone();
        odd["time"] = json!(time);
        expect_error(
            &host,
            "application/json",
            odd.to_string(),
            Some(POS_KEY),
            400,
            "invalid_event",
            "offset -12:00 to +14:00",
        )
        .await;
    }

    let (status, answer) = host
        .post("application/cloudevents-batch+json", "[]".to_owned(), Some(POS_KEY))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 0);

    let upper = reqwest::Client::new()
        .post(format!("{}/v1/events", host.url))
        .header("content-type", "application/json")
        .header("authorization", format!("BEARER {POS_KEY}"))
        .body(sale("loose-upper", "hk-001", "X-2", &[("1", 1, 100)]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(upper.status(), 202);
    wait_for_state(&host, "loose-upper", "erp", "delivered").await;
    assert!(sink.requests_for("loose\u{0}1").is_empty());
}

/// The `/x/…` part of a source belongs to the events plugins derive: a till cannot send in a
/// plugin's name, so it cannot take the id of a restock suggestion (or any derived event) first.
#[tokio::test(flavor = "multi_thread")]
async fn a_till_cannot_send_in_the_namespace_of_derived_events() {
    let (host, _sink) = host_and_sink().await;
    let mut claim = sale("claim-1:restock:4891234500017", "hk-001", "CL-1", &[("1", 1, 100)]);
    claim["source"] = json!("/t/acme/s/hk-001/p/till-1/x/restock");
    let (status, answer) = host.post_json(&claim).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["errors"][0]["attribute"], "source", "{answer}");
    assert_eq!(
        answer["error"]["errors"][0]["rule"],
        "`/t/acme/s/hk-001/p/till-1/x/restock` has an `/x/…` segment, which is kept for events plugins derive; a till's source may not have one"
    );
    assert_eq!(
        host.get("/v1/events/claim-1:restock:4891234500017", ADMIN_KEY).await.0,
        404
    );
    // A store called `x` is no such segment.
    claim["source"] = json!("/t/acme/s/x/p/till-1");
    assert_eq!(host.post_json(&claim).await.0, 202);

    // Nor may a till speak as the host: its alerts' source and id prefix are the host's own.
    let mut forged = claim.clone();
    forged["source"] = json!("/kaunter/host");
    forged["id"] = json!("kaunter-alert:sink-failing:erp:1:resolved");
    let (status, answer) = host.post_json(&forged).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["errors"][0]["rule"],
        "`/kaunter/host` is reserved for the host's own alerts; events from tills and sources name their store (/t/{tenant}/s/{store}/p/{terminal})"
    );
    forged["source"] = json!("/t/acme/s/hk-001/p/till-1");
    let (status, answer) = host.post_json(&forged).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["errors"][0]["rule"]
            .as_str()
            .unwrap()
            .contains("must not begin with `kaunter-alert:`"),
        "{answer}"
    );
}

/// The same source and id with other content is not a duplicate to drop silently: 409 with both
/// digests, counted, and the original kept; a resend of the same content is still a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_id_with_other_content_is_a_conflict_and_the_original_is_kept() {
    let (host, sink) = host_and_sink().await;
    let original = sale("reuse-1", "hk-001", "R-1", &[("1", 1, 100)]);
    assert_eq!(host.post_json(&original).await.0, 202);
    let (status, body) = host.post_json(&original).await;
    assert_eq!((status, body["duplicate"].clone()), (202, json!(true)), "{body}");

    let changed = sale("reuse-1", "hk-001", "R-1-CHANGED", &[("1", 2, 100)]);
    let (status, body) = host.post_json(&changed).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already accepted from this source with other content"),
        "{body}"
    );
    let (stored, sent) = (
        body["error"]["stored_sha256"].as_str().unwrap(),
        body["error"]["sent_sha256"].as_str().unwrap(),
    );
    assert_eq!((stored.len(), sent.len()), (64, 64));
    assert_ne!(stored, sent);

    // In a batch: the new event is stored, the conflicting one is not, and the answer says which.
    let batch = json!([sale("reuse-2", "hk-001", "R-2", &[("1", 1, 100)]), changed]);
    let (status, body) = host.post_json(&batch).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["conflicts"].clone()),
        (json!(1), json!(1)),
        "{body}"
    );
    assert_eq!(body["results"][0]["status"], "accepted");
    assert_eq!(body["results"][1]["status"], "conflict");

    assert_eq!(host.event("reuse-1").await["event"]["data"]["order_id"], "R-1");
    wait_for_state(&host, "reuse-2", "erp", "delivered").await;
    wait_for_state(&host, "reuse-1", "erp", "delivered").await;
    assert_eq!(sink.requests_for("reuse-1").len(), 1);
    let (_, stats) = host.get("/v1/admin/stats", ADMIN_KEY).await;
    assert_eq!(
        (stats["conflicts"].clone(), stats["duplicates"].clone()),
        (json!(2), json!(1)),
        "{stats}"
    );
}

/// A store-scoped key looking up an id without `?source=` sees its own store's event, even when
/// another store logged the same id first (and never that other store's).
#[tokio::test(flavor = "multi_thread")]
async fn an_event_lookup_without_source_looks_inside_the_callers_stores() {
    let (host, _sink) = host_and_sink().await;
    assert_eq!(
        host.post_json(&sale("scope-1", "sg-001", "SG-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    assert_eq!(
        host.post_json(&sale("scope-1", "hk-001", "HK-1", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    let (status, found) = host.get("/v1/events/scope-1", HK_ONLY_KEY).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["event"]["data"]["order_id"], "HK-1");
    assert_eq!(
        host.post_json(&sale("scope-2", "sg-001", "SG-2", &[("1", 1, 100)]))
            .await
            .0,
        202
    );
    let (status, _) = host.get("/v1/events/scope-2", HK_ONLY_KEY).await;
    assert_eq!(status, 404);
    let (_, first) = host.get("/v1/events/scope-1", ADMIN_KEY).await;
    assert_eq!(first["event"]["data"]["order_id"], "SG-1");
}
