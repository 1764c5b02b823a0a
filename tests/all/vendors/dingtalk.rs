//! `connector-dingtalk` in the real host against a fake DingTalk custom robot, answering as DingTalk
//! documents it: `POST /robot/send?access_token=…&timestamp=…&sign=…` answers HTTP 200 with
//! `{"errcode": 0, "errmsg": "ok"}`; an unknown token `300001 token is not exist`; a timestamp more
//! than an hour off `310000 invalid timestamp`; a signature that is not the URL-encoded base64 of
//! HMAC-SHA256 over `"{timestamp}\n{secret}"` keyed with the robot's secret `310000 sign not match`.
//! The fake checks the signature itself, from its own copy of the secret.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use base64::Engine as _;
use serde_json::{Value, json};

/// The robot's signing secret, as DingTalk shows it on the robot's security settings.
pub(super) const SECRET: &str = "SEC4c1f9a7e2b8d3c6f0a5e9b2d7c4f1a8e3b6d9c2f5a0e7b4d1c8f3a6e9b2d5c7";
pub(super) const TOKEN: &str = "8e2b5d9f1c4a7e0b3d6f9a2c5e8b1d4f7a0c3e6b9d2f5a8c1e4b7d0a3f6c9e2b5";

/// `%XX` and `+` decoding of one query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn query(call: &Call, name: &str) -> Option<String> {
    call.query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

/// DingTalk's signature, computed here from scratch.
fn expected_sign(timestamp: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{SECRET}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn errcode(code: i64, message: &str) -> Reply {
    Reply::json(200, &json!({"errcode": code, "errmsg": message}))
}

/// Answers like the custom robot endpoint for one robot with signing ("加签") security.
pub(super) fn robot(call: &Call) -> Reply {
    if (call.method.as_str(), call.path.as_str()) != ("POST", "/robot/send") {
        return Reply::text(404, "Not Found");
    }
    if query(call, "access_token").as_deref() != Some(TOKEN) {
        return errcode(300001, "token is not exist");
    }
    let more = ", more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]";
    let (Some(timestamp), Some(sign)) = (query(call, "timestamp"), query(call, "sign")) else {
        return errcode(310000, &format!("sign not match{more}"));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    match timestamp.parse::<i64>() {
        Ok(ts) if (now - ts).abs() <= 3_600_000 => {}
        _ => return errcode(310000, &format!("invalid timestamp{more}")),
    }
    if sign != expected_sign(&timestamp) {
        return errcode(310000, &format!("sign not match{more}"));
    }
    let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
    let well_formed = match body["msgtype"].as_str() {
        Some("markdown") => body["markdown"]["title"].is_string() && body["markdown"]["text"].is_string(),
        Some("text") => body["text"]["content"].is_string(),
        _ => false,
    };
    if !well_formed {
        return errcode(40035, "缺少参数 json");
    }
    errcode(0, "ok")
}

fn restock(id: &str) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-002/p/till-3", "type": "pos.restock.suggested.v1",
        "time": "2026-11-25T10:15:00+08:00", "causationid": "dt-sale-1",
        "data": {"sku": "4891234500017", "on_hand_milli": 2000, "suggested_milli": 24000,
                 "reason": "on hand 2 is below the reorder point 6"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_message_reaches_the_robot_and_a_stale_secret_dead_letters_with_dingtalks_answer() {
    let since = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let fake = VendorFake::start(robot).await;
    let plugin = |name: &str, secret: &str| {
        format!(
            r#"
[[plugins]]
name = "{name}"
kind = "connector"
path = {path:?}
secrets = ["{secret}", "dingtalk-token"]
[plugins.config]
base_url = "{base}"
access_token = "$SECRET(dingtalk-token)"
secret = "{secret}"
[plugins.grants]
http = ["POST {base}/robot/send"]
clock = true

[[sinks]]
name = "{name}"
connector = "{name}"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400
"#,
            path = kaunter_tests::plugins::CONNECTOR_DINGTALK,
            base = fake.url,
        )
    };
    let host = Host::start(&host_config(&format!(
        r#"
[secrets]
dingtalk-robot = {{ value = "{SECRET}", encoding = "text" }}
dingtalk-token = {{ value = "{TOKEN}", encoding = "text", for = ["POST {base}/robot/send"] }}
dingtalk-stale = {{ value = "SEC0000000000000000000000000000000000000000000000000000000000000000", encoding = "text" }}
{live}
{stale}
[[routes]]
name = "alerts"
types = ["pos.restock.*"]
sinks = ["dingtalk", "dingtalk-stale"]
"#,
        live = plugin("dingtalk", "dingtalk-robot"),
        stale = plugin("dingtalk-stale", "dingtalk-stale"),
        base = fake.url,
    )));

    host.post_json(&restock("dt-1")).await;
    let delivered = wait_for_state(&host, "dt-1", "dingtalk", "delivered").await;
    let dead = wait_for_state(&host, "dt-1", "dingtalk-stale", "dead_lettered").await;
    assert_eq!(delivered["attempts"], 1);
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("rejected: DingTalk answered errcode 310000: sign not match"),
        "{error}"
    );
    assert!(error.contains("check the robot's security settings"), "{error}");
    assert_eq!(dead["attempts"], 1, "a refused signature is not retried");

    let calls = fake.calls_to("POST", "/robot/send");
    assert_eq!(calls.len(), 2);
    let good: Vec<&Call> = calls
        .iter()
        .filter(|c| query(c, "sign").as_deref() == query(c, "timestamp").map(|t| expected_sign(&t)).as_deref())
        .collect();
    assert_eq!(
        good.len(),
        1,
        "exactly one request carried a signature the robot accepts"
    );
    let call = good[0];
    let keys: Vec<&str> = call.query.split('&').map(|p| p.split('=').next().unwrap()).collect();
    assert_eq!(keys, ["access_token", "timestamp", "sign"]);
    assert_eq!(call.header("content-type"), "application/json");
    assert_eq!(
        call.json(),
        json!({"msgtype": "markdown", "markdown": {
            "title": "📦 Restock suggested at store hk-002",
            "text": "### 📦 Restock suggested at store hk-002\n\nSKU 4891234500017: 2 on hand, suggest ordering 24 (on hand 2 is below the reorder point 6)\n\n> info · 2026-11-25T10:15:00+08:00 · event dt-1"
        }})
    );
    for call in &calls {
        assert!(
            !call.query.contains(&SECRET[3..]) && !call.text().contains(&SECRET[3..]),
            "the secret itself never leaves the host"
        );
    }
    assert!(!host.log().contains(&SECRET[3..]), "nor is it logged");

    // A replay redelivers dt-1 to both sinks with the same keys: the live sink's record of recent
    // sends in the host's kv holds it, so only the stale sink (which never got through) sends again.
    let replayed = host.cli(&["replay", "--since", &since, "--route", "alerts"]);
    assert!(replayed.contains("1/1 events"), "{replayed}");
    wait_for_state(&host, "dt-1", "dingtalk", "delivered").await;
    wait_for_state(&host, "dt-1", "dingtalk-stale", "dead_lettered").await;
    let calls = fake.calls_to("POST", "/robot/send");
    assert_eq!(
        calls.len(),
        3,
        "the stale sink tried again; the live one did not send twice"
    );
    assert!(
        host.log().contains("already sent to DingTalk for this event and sink"),
        "the replay met the record"
    );
}
