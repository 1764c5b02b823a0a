//! `connector-slack` in the real host against a fake of Slack, answering as Slack documents it.
//! Incoming webhooks: `POST /services/T…/B…/…` with a JSON body holding `text` or `blocks` answers
//! `200 ok`; a body without them `400 invalid_payload`; an unknown webhook `404 no_service`; a rate
//! limit `429` with `Retry-After`. `chat.postMessage`: `POST /api/chat.postMessage` with a bot token
//! answers `200 {"ok": true, "channel", "ts", "message"}`, or `200 {"ok": false, "error"}`
//! (`not_authed` without a token, `channel_not_found` for a channel the bot cannot see). Tokens come
//! from a real OAuth 2.0 server through a host credential.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Value, json};

pub(super) const HOOK: &str = "/services/T0KAUNTER/B0ALERTS/q8ZyV3nKp2sX7wR1mT4cL9dA";

/// Answers like Slack's incoming webhooks (one live webhook at [`HOOK`]) and `chat.postMessage`
/// (one channel, `C0ALERTS`).
pub(super) fn slack(call: &Call) -> Reply {
    match call.path.as_str() {
        HOOK => {
            let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
            if body["text"].as_str().is_none() && body["blocks"].as_array().is_none() {
                return Reply::text(400, "invalid_payload");
            }
            Reply::text(200, "ok")
        }
        "/api/chat.postMessage" => {
            if !call.header("authorization").starts_with("Bearer ") {
                return Reply::json(200, &json!({"ok": false, "error": "not_authed"}));
            }
            let body = call.json();
            if body["channel"] != "C0ALERTS" {
                return Reply::json(200, &json!({"ok": false, "error": "channel_not_found"}));
            }
            Reply::json(
                200,
                &json!({"ok": true, "channel": "C0ALERTS", "ts": "1764036900.000200",
                        "message": {"type": "message", "subtype": "bot_message", "text": body["text"],
                                    "ts": "1764036900.000200"}}),
            )
        }
        _ if call.path.starts_with("/services/") => Reply::text(404, "no_service"),
        _ => Reply::text(404, "Not Found"),
    }
}

/// The `[secrets]` line and the `[[plugins]]` table of the connector posting to `fake`'s incoming
/// webhook. The secret part of the webhook URL stays in the host: the plugin's config holds only
/// the marker, which the egress checkpoint fills in after the grant check.
pub(super) fn webhook_connector(fake: &VendorFake) -> (String, String) {
    let url = &fake.url;
    let secret_part = HOOK.strip_prefix("/services/").unwrap();
    let secret =
        format!(r#"slack-webhook = {{ value = "{secret_part}", encoding = "text", for = ["POST {url}/services/"] }}"#);
    let plugin = format!(
        r#"
[[plugins]]
name = "slack"
kind = "connector"
path = {path:?}
secrets = ["slack-webhook"]
[plugins.config]
webhook_url = "{url}/services/$SECRET(slack-webhook)"
[plugins.grants]
http = ["POST {url}/services/"]
clock = true
"#,
        path = kaunter_tests::plugins::CONNECTOR_SLACK,
    );
    (secret, plugin)
}

pub(super) fn anomaly(id: &str) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.anomaly.detected.v1",
        "time": "2026-11-25T10:15:00+08:00", "causationid": "sl-sale-1",
        "evidence": "{\"refunds\":5,\"window_minutes\":30}",
        "data": {"kind": "refund_spike", "severity": "critical",
                 "description": "5 refunds in 30 minutes at till-1", "related_event_id": "sl-sale-1"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anomaly_reaches_the_incoming_webhook_once_through_a_rate_limit_and_sales_are_skipped() {
    let since = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let fake = VendorFake::start(slack).await;
    fake.script([Reply::text(429, "rate_limited").with_header("Retry-After", "1")]);
    let secret_part = HOOK.strip_prefix("/services/").unwrap();
    let (secret, plugin) = webhook_connector(&fake);
    let host = Host::start(&host_config(&format!(
        r#"
[secrets]
{secret}
{plugin}

[[sinks]]
name = "chat"
connector = "slack"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400

[[routes]]
name = "alerts"
types = ["pos.anomaly.*", "pos.sale.*"]
sinks = ["chat"]
"#
    )));

    host.post_json(&anomaly("sl-1")).await;
    let entry = wait_for_state(&host, "sl-1", "chat", "delivered").await;
    assert_eq!(entry["attempts"], 2, "throttled once, then posted: {entry}");
    host.post_json(&sale(
        "sl-sale-1",
        "hk-001",
        "HK001-000301",
        &[("4891234500017", 1, 3990)],
    ))
    .await;
    wait_for_state(&host, "sl-sale-1", "chat", "delivered").await;

    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "the 429, then the one post; the sale sent nothing");
    for call in &calls {
        assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", HOOK));
        assert_eq!(call.header("content-type"), "application/json");
        assert_eq!(call.header("authorization"), "", "an incoming webhook needs no token");
    }
    assert_eq!(calls[0].body, calls[1].body, "the retry posts the same message");
    let data = host.dir.path().join("data");
    let audit = host.cli(&["audit", "log", "--data", data.to_str().unwrap()]);
    assert!(
        !host.log().contains(secret_part) && !audit.contains(secret_part),
        "the webhook's secret path stays out of the logs"
    );
    let body = calls[1].json();
    assert_eq!(
        body["text"],
        ":rotating_light: *Anomaly: refund_spike* at store hk-001: 5 refunds in 30 minutes at till-1 (evidence: refunds: 5, window_minutes: 30)"
    );
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        ":rotating_light: *Anomaly: refund_spike*\n5 refunds in 30 minutes at till-1"
    );
    assert_eq!(
        body["blocks"][1]["text"]["text"],
        "*Evidence*\n• refunds: 5\n• window_minutes: 30"
    );

    // A replay redelivers the anomaly with the same key: the sink's record of recent posts in the
    // host's kv holds it, so it is delivered again without a second post.
    let replayed = host.cli(&["replay", "--since", &since, "--route", "alerts"]);
    assert!(replayed.contains("2/2 events"), "{replayed}");
    wait_for_state(&host, "sl-1", "chat", "delivered").await;
    wait_for_state(&host, "sl-sale-1", "chat", "delivered").await;
    assert_eq!(fake.calls().len(), 2, "the replayed anomaly was not posted again");
    assert!(
        host.log().contains("already posted to Slack for this event and sink"),
        "the replay met the record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_post_message_carries_the_hosts_token_and_a_missing_channel_dead_letters() {
    let oauth = OAuthServer::start().await;
    let fake = VendorFake::start(slack).await;
    let api = format!("{}/api", fake.url);
    let plugin = |name: &str, channel: &str| {
        format!(
            r#"
[[plugins]]
name = "{name}"
kind = "connector"
path = {path:?}
[plugins.config]
channel = "{channel}"
base_url = "{api}"
[plugins.grants]
http = ["POST {api}/chat.postMessage"]
credentials = ["slack-bot"]
clock = true

[[sinks]]
name = "{name}"
connector = "{name}"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400
"#,
            path = kaunter_tests::plugins::CONNECTOR_SLACK,
        )
    };
    let host = Host::start(&host_config(&format!(
        r#"
[credentials.slack-bot]
grant = "client_credentials"
token_url = "{token_url}"
client_id = {{ value = "kaunter-slack-app" }}
client_secret = {{ value = "slack-client-secret" }}
scope = "chat:write"
for = ["POST {api}/chat.postMessage"]
{ops}
{gone}
[[routes]]
name = "alerts"
types = ["pos.anomaly.*"]
sinks = ["slack-ops", "slack-gone"]
"#,
        token_url = oauth.token_url,
        ops = plugin("slack-ops", "C0ALERTS"),
        gone = plugin("slack-gone", "C0ARCHIVED"),
    )));

    host.post_json(&anomaly("sl-2")).await;
    let delivered = wait_for_state(&host, "sl-2", "slack-ops", "delivered").await;
    let dead = wait_for_state(&host, "sl-2", "slack-gone", "dead_lettered").await;
    assert_eq!(
        dead["last_error"],
        "rejected: chat.postMessage answered channel_not_found"
    );
    assert_eq!(dead["attempts"], 1, "a missing channel is not retried");
    assert_eq!(delivered["attempts"], 1);
    // The message's id in Slack is kept with the delivery, for the event lookup and the CLI.
    assert_eq!(delivered["remote_id"], "C0ALERTS/1764036900.000200", "{delivered}");
    let shown = host.cli(&["event", "show", "sl-2"]);
    assert!(shown.contains("remote id C0ALERTS/1764036900.000200"), "{shown}");

    let calls = fake.calls_to("POST", "/api/chat.postMessage");
    assert_eq!(calls.len(), 2);
    let mut channels: Vec<String> = calls
        .iter()
        .map(|c| c.json()["channel"].as_str().unwrap().to_owned())
        .collect();
    channels.sort();
    assert_eq!(channels, ["C0ALERTS", "C0ARCHIVED"]);
    for call in &calls {
        assert_eq!(call.header("content-type"), "application/json; charset=utf-8");
        let token = call.header("authorization").strip_prefix("Bearer ").unwrap();
        let claims = jwt_claims(token);
        assert_eq!(claims["iss"], oauth.issuer);
        assert_eq!(claims["scope"], "chat:write");
        assert!(
            !call.text().contains(token),
            "the token is a header the host added, not in the body"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_webhook_pauses_the_sink_and_keeps_the_alert_queued() {
    let fake = VendorFake::start(slack).await;
    // A webhook Slack no longer knows (the app was removed): `404 no_service`.
    let hook = format!("{}/services/T0KAUNTER/B0REMOVED/aaaaaaaaaaaaaaaaaaaaaaaa", fake.url);
    let host = Host::start(&host_config(&format!(
        r#"
[[plugins]]
name = "slack"
kind = "connector"
path = {path:?}
[plugins.config]
webhook_url = "{hook}"
[plugins.grants]
http = ["POST {hook}"]
clock = true

[[sinks]]
name = "chat"
connector = "slack"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400

[[routes]]
name = "alerts"
types = ["pos.anomaly.*"]
sinks = ["chat"]
"#,
        path = kaunter_tests::plugins::CONNECTOR_SLACK,
    )));
    host.post_json(&anomaly("sl-3")).await;
    wait_for("the sink to be paused", 30, || async {
        let (_, sinks) = host.get("/v1/admin/sinks", ADMIN_KEY).await;
        let chat = sinks["sinks"].as_array()?.iter().find(|s| s["name"] == "chat")?.clone();
        (chat["paused"] == true).then_some(())
    })
    .await;
    let entry = wait_for_state(&host, "sl-3", "chat", "retrying").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains("Slack answered HTTP 404 no_service: the incoming webhook is disabled, removed or archived"),
        "{error}"
    );
    assert_eq!(fake.calls().len(), 1, "a paused sink is not called again");
}
