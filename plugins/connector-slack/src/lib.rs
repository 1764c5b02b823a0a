//! `connector-slack`: posts alert-like events to a Slack channel.
//!
//! Handles `pos.anomaly.detected.v1`, `pos.restock.suggested.v1` and `kaunter.alert.v1`; every
//! other event type is skipped (delivered with an empty receipt and a debug log line), as are alerts
//! below `min_severity`. The message (see [`message`]) carries a severity emoji, the store, what
//! happened and the evidence, and no links.
//!
//! Two ways in, chosen by configuration:
//! - `webhook_url`: an incoming webhook. `POST {"text", "blocks", ...}`; Slack answers `200 ok` or
//!   a 4xx/5xx with a plain-text reason (`invalid_payload`, `channel_not_found`, `no_service`, ...).
//! - `channel`: the Web API, `POST {base_url}/chat.postMessage` with the bot token added by the host
//!   (an OAuth credential granted for that URL; the plugin never sees it). Slack answers `200` with
//!   `{"ok": true, "channel", "ts"}` or `{"ok": false, "error": "..."}`, and `429` with
//!   `Retry-After` when rate limited.
//!
//! Slack has no idempotency key. Duplicates are avoided two ways: the plugin retries only when
//! nothing can have been posted or Slack asks for it (no response, 5xx, 429, an expired token), and
//! after a post it adds the idempotency key to the sink's record of recent posts in kv
//! ([`recent`]: the last `dedup_window` posts, default 2000), so a redelivery of one of those
//! (after a crash, or a replay) is not posted again. A post whose answer was lost (a timeout after
//! Slack accepted it) can still appear twice, and so can a redelivery of an older alert.

pub mod message;
pub mod recent;

use kaunter_sdk::http::{self, Request, Response};
use kaunter_sdk::{DeliveryContext, DeliveryError, Event, PluginConfig, Receipt, RetryHint, Severity, host};
use message::{Alert, severity_rank};
use serde::Deserialize;
use serde_json::json;

/// The plugin's configuration: exactly one of `webhook_url` and `channel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackConfig {
    /// An incoming webhook URL (`https://hooks.slack.com/services/...`).
    #[serde(default)]
    webhook_url: Option<String>,
    /// A channel id (`C0123ABCD`) to post to with `chat.postMessage`.
    #[serde(default)]
    channel: Option<String>,
    /// The Web API base, for `chat.postMessage`.
    #[serde(default = "default_base_url")]
    base_url: String,
    /// Alerts below this severity are skipped (`info`, `warning` or `critical`).
    #[serde(default = "default_min_severity")]
    min_severity: Severity,
    /// How many recent posts per sink are remembered, so their redelivery is not posted again.
    #[serde(default = "default_dedup_window")]
    dedup_window: usize,
}

fn default_dedup_window() -> usize {
    recent::DEFAULT_WINDOW
}

fn default_base_url() -> String {
    "https://slack.com/api".into()
}

fn default_min_severity() -> Severity {
    Severity::Info
}

/// Where a message goes.
enum Destination<'a> {
    /// An incoming webhook.
    Webhook(&'a str),
    /// `chat.postMessage` to a channel.
    PostMessage { base_url: &'a str, channel: &'a str },
}

impl SlackConfig {
    fn check(&self) -> Result<(), DeliveryError> {
        if (1..=recent::MAX_WINDOW).contains(&self.dedup_window) {
            return Ok(());
        }
        Err(DeliveryError::Rejected(format!(
            "invalid slack config: `dedup_window` = {} is out of range; set it between 1 and {} (the default is {})",
            self.dedup_window,
            recent::MAX_WINDOW,
            recent::DEFAULT_WINDOW
        )))
    }

    fn destination(&self) -> Result<Destination<'_>, DeliveryError> {
        match (&self.webhook_url, &self.channel) {
            (Some(url), None) => Ok(Destination::Webhook(url)),
            (None, Some(channel)) => Ok(Destination::PostMessage {
                base_url: self.base_url.trim_end_matches('/'),
                channel,
            }),
            _ => Err(DeliveryError::Rejected(
                "invalid slack config: set exactly one of `webhook_url` (incoming webhook) and `channel` (chat.postMessage)"
                    .into(),
            )),
        }
    }
}

/// The configuration, parsed on the first event.
static CONFIG: PluginConfig<SlackConfig> = PluginConfig::new();

/// Posts an alert-like event to Slack; skips everything else.
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid slack config: {e:?}")))?;
    config.check()?;
    let destination = config.destination()?;
    let Some(alert) = Alert::of(&event) else {
        host::debug(&format!("`{}` is not an alert; not posted to Slack", event.ty));
        return Ok(skipped());
    };
    if severity_rank(alert.severity) < severity_rank(config.min_severity) {
        host::debug("below min_severity; not posted to Slack");
        return Ok(skipped());
    }
    let mut recent = recent::Recent::load(&context.sink);
    if let Some(remote) = recent.find(&context.idempotency_key) {
        host::info("already posted to Slack for this event and sink; not posting again");
        return Ok(Receipt {
            status: None,
            remote_id: (!remote.is_empty()).then(|| remote.to_owned()),
        });
    }
    let mut body = json!({
        "text": alert.text(),
        "blocks": alert.blocks(),
        "unfurl_links": false,
        "unfurl_media": false,
    });
    let now = host::now_ms();
    let receipt = match destination {
        Destination::Webhook(url) => {
            let request = Request::post_json(url, &body).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
            webhook_outcome(http::send(&request), now)?
        }
        Destination::PostMessage { base_url, channel } => {
            body["channel"] = json!(channel);
            let url = format!("{base_url}/chat.postMessage");
            let mut request = Request::post_json(&url, &body).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
            request.headers = vec![("content-type".into(), "application/json; charset=utf-8".into())];
            post_message_outcome(http::send(&request), now)?
        }
    };
    let remote = receipt.remote_id.as_deref().unwrap_or_default();
    recent.add(&context.idempotency_key, remote, config.dedup_window);
    if let Err(e) = recent.save() {
        host::warn(&format!(
            "posted, but could not remember it (a redelivery would post again): {e:?}"
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

fn hint(response: &Response, now_ms: i64, reason: String) -> RetryHint {
    RetryHint {
        after_ms: response
            .header("retry-after")
            .and_then(|v| http::retry_after_ms(v, now_ms)),
        reason,
    }
}

fn no_response(e: http::HttpError) -> DeliveryError {
    DeliveryError::Retry(RetryHint {
        after_ms: None,
        reason: format!("no response from Slack: {e}"),
    })
}

/// An incoming webhook's answer: `200 ok`, or a status with a plain-text reason.
fn webhook_outcome(result: Result<Response, http::HttpError>, now_ms: i64) -> Result<Receipt, DeliveryError> {
    let response = result.map_err(no_response)?;
    let status = response.status;
    let reason = response.body_snippet(200).trim().to_owned();
    let said = format!("Slack answered HTTP {status} {reason}");
    match (status, reason.as_str()) {
        (200..=299, _) => Ok(Receipt {
            status: Some(status),
            remote_id: None,
        }),
        // The webhook itself is gone or switched off: every message would fail the same way.
        (_, "no_service" | "no_service_id" | "no_team" | "team_disabled" | "invalid_token" | "no_active_hooks")
        | (410, _) => Err(DeliveryError::Disable(format!(
            "{said}: the incoming webhook is disabled, removed or archived; give the sink a working webhook_url and resume it"
        ))),
        (429, _) => Err(DeliveryError::Throttled(hint(&response, now_ms, said))),
        (401, _) | (408, _) | (500..=599, _) => Err(DeliveryError::Retry(hint(&response, now_ms, said))),
        _ => Err(DeliveryError::Rejected(said)),
    }
}

/// `chat.postMessage`'s answer.
#[derive(Debug, Deserialize)]
struct PostMessageAnswer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    /// The scope a `missing_scope` error asks for.
    #[serde(default)]
    needed: Option<String>,
}

/// `chat.postMessage`'s answer: HTTP 429/5xx, or `200` with `ok` and `error`.
fn post_message_outcome(result: Result<Response, http::HttpError>, now_ms: i64) -> Result<Receipt, DeliveryError> {
    let response = result.map_err(no_response)?;
    let status = response.status;
    match status {
        429 => {
            let said = format!("Slack answered HTTP 429: {}", response.body_snippet(200));
            return Err(DeliveryError::Throttled(hint(&response, now_ms, said)));
        }
        401 | 408 | 500..=599 => {
            let said = format!("Slack answered HTTP {status}: {}", response.body_snippet(200));
            return Err(DeliveryError::Retry(hint(&response, now_ms, said)));
        }
        _ => {}
    }
    // A 2xx whose body is not the documented answer: Slack took the request, so it is not refused
    // (that would dead-letter a message that was most likely posted).
    let answer: PostMessageAnswer = match response.json() {
        Ok(answer) => answer,
        Err(e) => {
            host::warn(&format!("chat.postMessage answered {status} without `ok`: {e}"));
            return Ok(Receipt {
                status: Some(status),
                remote_id: None,
            });
        }
    };
    if answer.ok {
        let remote_id = match (answer.channel, answer.ts) {
            (Some(channel), Some(ts)) => Some(format!("{channel}/{ts}")),
            (None, ts) => ts,
            (Some(_), None) => None,
        };
        return Ok(Receipt {
            status: Some(status),
            remote_id,
        });
    }
    let error = answer.error.unwrap_or_else(|| "unknown_error".into());
    let said = match &answer.needed {
        Some(needed) => format!("chat.postMessage answered {error} (needs scope {needed})"),
        None => format!("chat.postMessage answered {error}"),
    };
    match error.as_str() {
        "ratelimited" | "rate_limited" => Err(DeliveryError::Throttled(hint(&response, now_ms, said))),
        // The host refreshes the token; the retry budget ends in the dead-letter queue.
        "invalid_auth"
        | "not_authed"
        | "token_expired"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => Err(DeliveryError::Retry(hint(&response, now_ms, said))),
        "account_inactive" | "token_revoked" | "team_access_not_granted" => Err(DeliveryError::Disable(format!(
            "{said}: the app's token no longer works; reinstall the app or fix the credential, then resume the sink"
        ))),
        _ => Err(DeliveryError::Rejected(said)),
    }
}

#[cfg(test)]
mod tests;
