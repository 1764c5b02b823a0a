//! `connector-dingtalk`: posts alert-like events to a DingTalk group through a custom robot.
//!
//! Handles `pos.anomaly.detected.v1`, `pos.restock.suggested.v1` and `kaunter.alert.v1`; every
//! other event type is skipped (delivered with an empty receipt and a debug log line), as are alerts
//! below `min_severity`. The message (see [`message`]) is `markdown` (or `text`): a severity emoji,
//! the store, what happened and the evidence, no links and no `at` list.
//!
//! Request: `POST {base_url}/robot/send?access_token=…&timestamp=…&sign=…` with
//! `{"msgtype": "markdown", "markdown": {"title", "text"}}`. With a signing secret configured, `sign`
//! is the URL-encoded base64 of HMAC-SHA256, keyed with the robot's secret, over
//! `"{timestamp}\n{secret}"` (`timestamp` in ms). The string-to-sign contains the secret itself, so
//! the plugin asks the host for it with [`host::hmac_sha256_with_secret_in_data`]: the host splices
//! the secret between the prefix and suffix it is given, and the secret never enters the plugin.
//!
//! DingTalk answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or a non-zero `errcode`
//! ([`errcode_outcome`]): 310000 (signature, keyword, timestamp or IP allowlist refused) dead-letters;
//! 130101 / 410100 (sent too fast: 20 messages a minute per robot) throttle; a missing token,
//! stopped robot or dissolved group pauses the sink.
//!
//! DingTalk has no idempotency key: the plugin retries only when nothing was sent or DingTalk asks
//! (no response, 5xx, busy, too fast), and after a send adds the idempotency key to the sink's
//! record of recent sends in kv ([`recent`]: the last `dedup_window` sends, default 2000), so a
//! redelivery of one of those is not sent again.

pub mod message;
pub mod recent;

use kaunter_sdk::http::{self, Request, Response};
use kaunter_sdk::{DeliveryContext, DeliveryError, Event, PluginConfig, Receipt, RetryHint, Severity, host};
use message::{Alert, severity_rank};
use serde::Deserialize;

/// How long to hold off after DingTalk says a robot sends too fast (its limit is 20 a minute).
pub const TOO_FAST_WAIT_MS: u64 = 60_000;

/// The plugin's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DingTalkConfig {
    /// API base.
    #[serde(default = "default_base_url")]
    base_url: String,
    /// The robot's `access_token` (from its webhook URL), or — so the token stays in the host —
    /// `$SECRET(name)` naming a granted host secret that holds it.
    access_token: String,
    /// Name of the host secret holding the robot's signing secret (`SEC…`); unsigned without it.
    #[serde(default)]
    secret: Option<String>,
    /// `markdown` (default) or `text`.
    #[serde(default)]
    msgtype: MsgType,
    /// A word the robot's keyword security requires in every message; it leads the title.
    #[serde(default)]
    keyword: Option<String>,
    /// Alerts below this severity are skipped.
    #[serde(default = "default_min_severity")]
    min_severity: Severity,
    /// How many recent sends per sink are remembered, so their redelivery is not sent again.
    #[serde(default = "default_dedup_window")]
    dedup_window: usize,
}

fn default_dedup_window() -> usize {
    recent::DEFAULT_WINDOW
}

impl DingTalkConfig {
    fn check(&self) -> Result<(), DeliveryError> {
        if (1..=recent::MAX_WINDOW).contains(&self.dedup_window) {
            return Ok(());
        }
        Err(DeliveryError::Rejected(format!(
            "invalid dingtalk config: `dedup_window` = {} is out of range; set it between 1 and {} (the default is {})",
            self.dedup_window,
            recent::MAX_WINDOW,
            recent::DEFAULT_WINDOW
        )))
    }
}

/// The message type sent.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MsgType {
    /// Title and markdown text.
    #[default]
    Markdown,
    /// Plain text.
    Text,
}

fn default_base_url() -> String {
    "https://oapi.dingtalk.com".into()
}

fn default_min_severity() -> Severity {
    Severity::Info
}

/// The configuration, parsed on the first event.
static CONFIG: PluginConfig<DingTalkConfig> = PluginConfig::new();

/// Sends an alert-like event to the robot; skips everything else.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid dingtalk config: {e:?}")))?;
    config.check()?;
    let Some(alert) = Alert::of(&event) else {
        host::debug(&format!("`{}` is not an alert; not sent to DingTalk", event.ty));
        return Ok(skipped());
    };
    if severity_rank(alert.severity) < severity_rank(config.min_severity) {
        host::debug("below min_severity; not sent to DingTalk");
        return Ok(skipped());
    }
    let mut recent = recent::Recent::load(&context.sink);
    if recent.contains(&context.idempotency_key) {
        host::info("already sent to DingTalk for this event and sink; not sending again");
        return Ok(skipped());
    }
    let keyword = config.keyword.as_deref();
    let body = match config.msgtype {
        MsgType::Markdown => alert.markdown(keyword),
        MsgType::Text => alert.text(keyword),
    };
    let now = host::now_ms();
    let url = robot_url(config, now)?;
    let request = Request::post_json(&url, &body).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
    let receipt = outcome(http::send(&request), now)?;
    recent.add(&context.idempotency_key, config.dedup_window);
    if let Err(e) = recent.save() {
        host::warn(&format!(
            "sent, but could not remember it (a redelivery would send again): {e:?}"
        ));
    }
    Ok(receipt)
}
kaunter_sdk::manifest!("../kaunter-plugin.toml");

/// The receipt of a deliberate skip.
fn skipped() -> Receipt {
    Receipt {
        status: None,
        remote_id: None,
    }
}

/// `{base_url}/robot/send?access_token=…`, with `&timestamp=…&sign=…` when a secret is configured.
fn robot_url(config: &DingTalkConfig, now_ms: i64) -> Result<String, DeliveryError> {
    let base = config.base_url.trim_end_matches('/');
    // A `$SECRET(name)` marker goes as written: the host's egress checkpoint fills it in.
    let token = if config.access_token.starts_with("$SECRET(") {
        config.access_token.clone()
    } else {
        http::form_encode(&config.access_token)
    };
    let mut url = format!("{base}/robot/send?access_token={token}");
    if let Some(secret) = &config.secret {
        let sign = sign(secret, now_ms)?;
        url.push_str(&format!("&timestamp={now_ms}&sign={}", http::form_encode(&sign)));
    }
    Ok(url)
}

/// The robot signature for `timestamp_ms`: base64 of HMAC-SHA256 under the named secret over
/// `"{timestamp}\n{secret}"` (not yet URL-encoded). The host supplies the secret's bytes.
pub fn sign(secret: &str, timestamp_ms: i64) -> Result<String, DeliveryError> {
    let prefix = format!("{timestamp_ms}\n");
    let mac = host::hmac_sha256_with_secret_in_data(secret, prefix.as_bytes(), b"").map_err(|e| {
        DeliveryError::Rejected(format!(
            "cannot sign with secret `{secret}`: {e:?}; grant it in the plugin's `secrets`"
        ))
    })?;
    Ok(base64(&mac))
}

/// Standard base64 with padding (what DingTalk's examples produce).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// DingTalk's answer body.
#[derive(Debug, Deserialize)]
struct Answer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// Maps DingTalk's answer: HTTP status first (5xx, 429, other 4xx), then `errcode`.
fn outcome(result: Result<Response, http::HttpError>, now_ms: i64) -> Result<Receipt, DeliveryError> {
    let response = match result {
        Ok(r) if (200..300).contains(&r.status) => r,
        other => return http::delivery_outcome(other, now_ms),
    };
    // A 2xx whose body is not the documented answer: DingTalk took the request, so it is not
    // refused (that would dead-letter a message that was most likely sent).
    let answer: Answer = match response.json() {
        Ok(answer) => answer,
        Err(e) => {
            host::warn(&format!(
                "robot/send answered {} without an errcode: {e}",
                response.status
            ));
            return Ok(Receipt {
                status: Some(response.status),
                remote_id: None,
            });
        }
    };
    errcode_outcome(&answer).map(|()| Receipt {
        status: Some(response.status),
        remote_id: None,
    })
}

/// What the host should do about an `errcode` (codes from DingTalk's custom robot documentation).
fn errcode_outcome(answer: &Answer) -> Result<(), DeliveryError> {
    let said = format!("DingTalk answered errcode {}: {}", answer.errcode, answer.errmsg);
    match answer.errcode {
        0 => Ok(()),
        // Security settings refused the message: signature or timestamp, keyword, IP allowlist.
        310000 => Err(DeliveryError::Rejected(format!(
            "{said}; check the robot's security settings against the plugin: the signing secret, the keyword, the IP allowlist and the host clock"
        ))),
        // Sent too fast: a robot takes 20 messages a minute.
        130101 | 410100 => Err(DeliveryError::Throttled(RetryHint {
            after_ms: Some(TOO_FAST_WAIT_MS),
            reason: said,
        })),
        // System busy.
        -1 => Err(DeliveryError::Retry(RetryHint {
            after_ms: None,
            reason: said,
        })),
        // The token does not exist, the robot was stopped or removed, the group was dissolved.
        300001 | 400013 | 400102 | 400106 => Err(DeliveryError::Disable(format!(
            "{said}; the robot no longer takes messages: configure a working access_token and resume the sink"
        ))),
        _ => Err(DeliveryError::Rejected(said)),
    }
}

#[cfg(test)]
mod tests;
