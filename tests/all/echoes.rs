//! Vendors that echo the request (many error pages do) hand back the OAuth tokens and `$SECRET`
//! texts the egress checkpoint put into it. An echoing fake answers with the whole request — the
//! request line, then the headers sorted by name as httpbin lists them — as is, JSON-escaped,
//! percent-encoded or in base64 in its body, and in its headers; the host must show and store none
//! of it: not in dead letters (`GET /v1/admin/dlq`, `kaunter dlq list`), not in `last_error`
//! (`GET /v1/events/{id}`), not in its log (plugin log lines included), not in the SQLite file.

use crate::harness::*;
use crate::vendors::{Call, Reply, VendorFake, host_config};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// How the fake writes the request back, picked by `form-NAME` in the event id it carries.
const FORMS: [&str; 4] = ["raw", "json", "pct", "b64"];

/// The request as the vendor saw it.
fn dump(call: &Call) -> String {
    let query = if call.query.is_empty() {
        String::new()
    } else {
        format!("?{}", call.query)
    };
    let mut text = format!("{} {}{query}\n", call.method, call.path);
    let mut headers = call.headers.clone();
    headers.sort();
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text
}

/// Form encoding with lower-case hex and `+` for a space.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

/// A JSON string as PHP writes slashes (`\/`) and Go writes `<`, `>` and `&` (`\u00XX`).
fn json_string(text: &str) -> String {
    serde_json::to_string(text)
        .unwrap()
        .replace('/', "\\/")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Answers 400 (503 when the event id says `retry`) with the request in the form the event id
/// names, and every request header back as `x-echo-NAME`, and the whole request in base64 as
/// `x-echo`.
fn echo(call: &Call) -> Reply {
    let dump = dump(call);
    let seen = format!("{}?{} {}", call.path, call.query, call.text());
    let form = FORMS
        .into_iter()
        .find(|f| seen.contains(&format!("form-{f}")))
        .unwrap_or("raw");
    let status = if seen.contains("retry") { 503 } else { 400 };
    let body = match form {
        "json" => format!("{{\"error\":\"bad request\",\"echo\":{}}}", json_string(&dump)),
        "pct" => format!("error=bad+request&echo={}", percent(&dump)),
        "b64" => format!(
            "{{\"error\":\"bad request\",\"echo_b64\":\"{}\"}}",
            STANDARD.encode(&dump)
        ),
        _ => format!("bad request\n{dump}"),
    };
    let mut reply = Reply::text(status, &body).with_header("x-echo", &STANDARD.encode(&dump));
    for (name, value) in &call.headers {
        reply = reply.with_header(&format!("x-echo-{name}"), value);
    }
    reply
}

fn percent_decoded(text: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (text[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn json_unescaped(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let unit = text
            .get(i + 2..i + 6)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match (text[i], text.get(i + 1), unit) {
            (b'\\', Some(b'u'), Some(c)) => {
                out.extend_from_slice(c.to_string().as_bytes());
                i += 6;
            }
            (b'\\', Some(b'n'), _) => {
                out.push(b'\n');
                i += 2;
            }
            (b'\\', Some(&c @ (b'/' | b'"' | b'\\')), _) => {
                out.push(c);
                i += 2;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Some 12 bytes of `secret` that can still be read in `text` — as is, after up to two layers of
/// percent-decoding and JSON-unescaping, or base64-decoded from any offset of any run — with
/// where they were found; `None` when nothing can.
fn leak(text: &[u8], secret: &str) -> Option<String> {
    let pieces: std::collections::HashSet<&[u8]> = secret.as_bytes().windows(12).collect();
    let mut readings = vec![text.to_vec()];
    for _ in 0..2 {
        let mut more = Vec::new();
        for r in &readings {
            for decoded in [percent_decoded(r, true), percent_decoded(r, false), json_unescaped(r)] {
                if !readings.contains(&decoded) && !more.contains(&decoded) {
                    more.push(decoded);
                }
            }
        }
        readings.extend(more);
    }
    let mut decoded = Vec::new();
    for reading in &readings {
        for run in reading.split(|b| !(b.is_ascii_alphanumeric() || b"+/-_".contains(b))) {
            for offset in 0..4.min(run.len()) {
                let run = &run[offset..];
                let run = &run[..run.len() / 4 * 4];
                for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    if let Ok(bytes) = engine.decode(run) {
                        decoded.push(bytes);
                    }
                }
            }
        }
    }
    readings.extend(decoded);
    for reading in &readings {
        if let Some(at) = reading.windows(12).position(|w| pieces.contains(w)) {
            let from = at.saturating_sub(80);
            let to = (at + 80).min(reading.len());
            return Some(String::from_utf8_lossy(&reading[from..to]).into_owned());
        }
    }
    None
}

fn assert_no_leak(what: &str, text: &[u8], secrets: &[&str]) {
    for secret in secrets {
        if let Some(around) = leak(text, secret) {
            panic!("{what} reveals part of a secret: …{around}…");
        }
    }
}

/// Every place the host shows or keeps what happened to `ids` (all dead-lettered at `sink`) holds
/// `label` where the echo was, and nothing of `secrets`.
async fn assert_scrubbed(mut host: Host, ids: &[&str], sink: &str, secrets: &[&str], label: &str) {
    for id in ids {
        let entry = wait_for_state(&host, id, sink, "dead_lettered").await;
        let event = host.event(id).await.to_string();
        assert_no_leak(&format!("GET /v1/events/{id}"), event.as_bytes(), secrets);
        let error = entry["last_error"].as_str().unwrap_or("");
        assert!(
            error.contains(label),
            "{id}: the echo reached last_error, scrubbed: {error}"
        );
    }
    let (status, dlq) = host.get("/v1/admin/dlq?all=true", ADMIN_KEY).await;
    assert_eq!(status, 200, "{dlq}");
    assert_no_leak("GET /v1/admin/dlq", dlq.to_string().as_bytes(), secrets);
    for id in ids {
        let letters = dlq["dead_letters"].as_array().unwrap();
        let letter = letters.iter().find(|l| l["event_id"] == *id).unwrap();
        assert!(letter["error"].as_str().unwrap().contains(label), "{letter}");
    }
    let listed = host.cli(&["dlq", "list"]);
    assert_no_leak("kaunter dlq list", listed.as_bytes(), secrets);
    assert!(listed.contains(label), "{listed}");
    let log = host.log();
    assert_no_leak("the host log", log.as_bytes(), secrets);
    assert!(
        log.contains(label),
        "the dead-letter log lines carry the scrubbed error"
    );
    host.kill();
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(host.dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("kaunter.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert_no_leak(&name, &bytes, secrets);
            stored.extend(bytes);
        }
    }
    assert!(
        String::from_utf8_lossy(&stored).contains(label),
        "the SQLite file (and its WAL) hold the scrubbed errors"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_token_echoed_by_the_vendor_is_shown_and_stored_nowhere() {
    let oauth = OAuthServer::start().await;
    let vendor = VendorFake::start(echo).await;
    let url = format!("{}/hooks", vendor.url);
    let mut options = ConfigOptions::new(&url);
    options.extra = format!(
        "\n[credentials.erp-oauth]\ngrant = \"client_credentials\"\ntoken_url = \"{}\"\nclient_id = {{ value = \"kaunter\" }}\nclient_secret = {{ value = \"s3cret-of-the-client\" }}\nfor = [\"POST {url}\"]\n",
        oauth.token_url
    );
    let granted = format!("http = [\"POST {url}\"]\n");
    let text = config(&options).replacen(&granted, &format!("{granted}credentials = [\"erp-oauth\"]\n"), 1);
    let host = Host::start(&text);
    let ids = ["oa-form-raw", "oa-form-json", "oa-form-pct", "oa-form-b64", "oa-retry"];
    for id in ids {
        host.post_json(&sale(id, "hk-001", id, &[("1", 1, 100)])).await;
    }
    for id in ids {
        wait_for_state(&host, id, "erp", "dead_lettered").await;
    }
    let calls = vendor.calls_to("POST", "/hooks");
    let token = calls[0]
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    assert!(token.len() > 100, "a JWT from the authorization server: {token}");
    assert!(
        calls
            .iter()
            .all(|c| c.header("authorization") == format!("Bearer {token}")),
        "every request carried the token the vendor echoed"
    );
    assert_eq!(
        calls.len(),
        4 + 5,
        "four dead-letter at once, the 503 one after five attempts"
    );
    assert_scrubbed(host, &ids, "erp", &[&token], "[redacted: credential erp-oauth]").await;
}

/// A DingTalk robot token with characters each encoding escapes (real ones are hex).
const ROBOT_TOKEN: &str = "dt/9f8e7d6c5b4a+3210~a1b2c3d4e5f6";

fn restock(id: &str) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-002/p/till-3", "type": "pos.restock.suggested.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "data": {"sku": "4891234500017", "on_hand_milli": 2000, "suggested_milli": 24000,
                 "reason": "on hand 2 is below the reorder point 6"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_the_url_echoed_by_the_vendor_is_shown_and_stored_nowhere() {
    let vendor = VendorFake::start(echo).await;
    let base = vendor.url.clone();
    // The DingTalk connector puts `access_token=$SECRET(dingtalk-token)` in its URL; `peek` calls
    // the same robot URL and logs every answer it gets, headers and all.
    let host = Host::start(&host_config(&format!(
        r#"
[secrets]
dingtalk-token = {{ value = "{ROBOT_TOKEN}", encoding = "text", for = ["POST {base}/robot/send"] }}

[[plugins]]
name = "peek"
kind = "transform"
path = {peek:?}
secrets = ["dingtalk-token"]
[plugins.config]
target = "POST {base}/robot/send?access_token=$SECRET(dingtalk-token)&peek=1"
log_answers = true
[plugins.grants]
http = ["POST {base}/robot/send"]

[[plugins]]
name = "dingtalk"
kind = "connector"
path = {dingtalk:?}
secrets = ["dingtalk-token"]
[plugins.config]
base_url = "{base}"
access_token = "$SECRET(dingtalk-token)"
[plugins.grants]
http = ["POST {base}/robot/send"]
clock = true

[[sinks]]
name = "dingtalk"
connector = "dingtalk"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400

[[routes]]
name = "alerts"
types = ["pos.restock.*"]
transforms = ["peek"]
sinks = ["dingtalk"]
"#,
        peek = kaunter_tests::plugins::HOSTILE_EGRESS,
        dingtalk = kaunter_tests::plugins::CONNECTOR_DINGTALK,
    )));
    let ids = ["dt-form-raw", "dt-form-json", "dt-form-pct", "dt-form-b64"];
    for id in ids {
        host.post_json(&restock(id)).await;
    }
    for id in ids {
        wait_for_state(&host, id, "dingtalk", "dead_lettered").await;
    }
    let calls = vendor.calls_to("POST", "/robot/send");
    assert_eq!(calls.len(), 8, "peek and the connector each called once per event");
    assert!(
        calls
            .iter()
            .all(|c| c.query.starts_with(&format!("access_token={ROBOT_TOKEN}"))),
        "the vendor got the token"
    );
    let log = host.log();
    let peeked: Vec<&str> = log.lines().filter(|l| l.contains("answered 400")).collect();
    assert_eq!(peeked.len(), 4, "{log}");
    for line in peeked {
        assert!(
            line.contains("access_token=[redacted: secret dingtalk-token]&peek=1") && line.contains("x-echo-host"),
            "the plugin got the answer, headers and body, with the token taken out: {line}"
        );
    }
    assert_scrubbed(
        host,
        &ids,
        "dingtalk",
        &[ROBOT_TOKEN],
        "[redacted: secret dingtalk-token]",
    )
    .await;
}

/// An API key with characters each encoding escapes.
const API_KEY: &str = r#"hdr-key/2f+9<Q>&"z"=x~api"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_a_header_echoed_by_the_vendor_is_shown_and_stored_nowhere() {
    let vendor = VendorFake::start(echo).await;
    let url = format!("{}/hooks", vendor.url);
    let text = config(&ConfigOptions::new(&url))
        .replacen(
            "[secrets]\n",
            &format!(
                "[secrets]\nerp-api-key = {{ value = '{API_KEY}', encoding = \"text\", for = [\"POST {url}\"] }}\n"
            ),
            1,
        )
        .replacen(
            "secrets = [\"erp-signing\"]",
            "secrets = [\"erp-signing\", \"erp-api-key\"]",
            1,
        )
        .replacen(
            "secret = \"erp-signing\"\n",
            "secret = \"erp-signing\"\nheaders = { api-key = \"$SECRET(erp-api-key)\" }\n",
            1,
        );
    let host = Host::start(&text);
    let ids = ["hk-form-raw", "hk-form-json", "hk-form-pct", "hk-form-b64"];
    for id in ids {
        host.post_json(&sale(id, "hk-001", id, &[("1", 1, 100)])).await;
    }
    for id in ids {
        wait_for_state(&host, id, "erp", "dead_lettered").await;
    }
    let calls = vendor.calls_to("POST", "/hooks");
    assert_eq!(calls.len(), 4);
    assert!(
        calls.iter().all(|c| c.header("api-key") == API_KEY),
        "the vendor got the key"
    );
    assert_scrubbed(host, &ids, "erp", &[API_KEY], "[redacted: secret erp-api-key]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_endpoint_that_echoes_the_client_secret_and_refresh_token_in_its_refusal_is_scrubbed() {
    const CLIENT_SECRET: &str = "s3cret/of+the~client";
    const REFRESH_TOKEN: &str = "rt/9f8e7d6c+5b4a~3210-refresh";
    // RFC 6749 §5.2's refusal, with the request it refused (Basic client authentication, the form
    // with the refresh token) echoed in `error_description`.
    let authorization = VendorFake::start(|call| {
        let description = format!("refused {}{}", dump(call), call.text());
        Reply::json(
            401,
            &json!({"error": "invalid_client", "error_description": description}),
        )
    })
    .await;
    let vendor = VendorFake::start(echo).await;
    let url = format!("{}/hooks", vendor.url);
    let mut options = ConfigOptions::new(&url);
    options.extra = format!(
        "\n[credentials.erp-oauth]\ngrant = \"refresh_token\"\ntoken_url = \"{}/token\"\nclient_id = {{ value = \"kaunter\" }}\nclient_secret = {{ value = \"{CLIENT_SECRET}\" }}\nrefresh_token = {{ value = \"{REFRESH_TOKEN}\" }}\nfor = [\"POST {url}\"]\n",
        authorization.url
    );
    let granted = format!("http = [\"POST {url}\"]\n");
    let text = config(&options).replacen(&granted, &format!("{granted}credentials = [\"erp-oauth\"]\n"), 1);
    let host = Host::start(&text);
    host.post_json(&sale("tk-1", "hk-001", "TK-1", &[("1", 1, 100)])).await;
    let entry = wait_for_state(&host, "tk-1", "erp", "dead_lettered").await;
    let asked = authorization.calls();
    assert!(
        asked[0].header("authorization").starts_with("Basic ") && asked[0].text().contains("refresh_token=rt%2F9f8e"),
        "the endpoint got the secret and the refresh token"
    );
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("credential refused: credential `erp-oauth`: the authorization server answered invalid_client: refused POST /token"),
        "{error}"
    );
    assert!(vendor.calls().is_empty(), "nothing goes out without a token");
    let audit: String = host.audit_records().iter().map(|r| format!("{r}\n")).collect();
    assert!(
        audit.contains("credential.refused") && audit.contains("[redacted: credential erp-oauth]"),
        "{audit}"
    );
    assert_no_leak("the audit log", audit.as_bytes(), &[CLIENT_SECRET, REFRESH_TOKEN]);
    assert_scrubbed(
        host,
        &["tk-1"],
        "erp",
        &[CLIENT_SECRET, REFRESH_TOKEN],
        "[redacted: credential erp-oauth]",
    )
    .await;
}
