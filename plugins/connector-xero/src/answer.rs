//! What Xero's answers mean for the delivery, following Xero's documented response codes:
//!
//! | Xero answers | the host |
//! |---|---|
//! | 2xx | goes on (the body is read for the new document's id) |
//! | 400 `ValidationException` | dead-letters with every `Elements[].ValidationErrors[].Message` |
//! | 400 "… # must be unique" on the document | [`number_taken`]: the connector looks the document up and pays what is still due |
//! | 401 (token expired or revoked) | retries; the host refreshes its token first |
//! | 403, 404, other 4xx | dead-letters with Xero's message |
//! | 409 (the same idempotency key still in progress) | retries; the retry gets the stored answer |
//! | 429 (rate limit) | throttles the sink for `Retry-After` seconds |
//! | 5xx, no answer | retries (honouring `Retry-After` when sent) |

use kaunter_sdk::http::{HttpError, Response};
use kaunter_sdk::{DeliveryError, RetryHint};
use serde::Deserialize;

/// Xero's error body (`ValidationException` and friends).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Detail")]
    detail: Option<String>,
    #[serde(rename = "Elements")]
    elements: Vec<Element>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Element {
    #[serde(rename = "ValidationErrors")]
    validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ValidationError {
    #[serde(rename = "Message")]
    message: String,
}

/// The most specific message in an error answer: the validation messages joined, else Xero's
/// `Message` or `Detail`, else the start of the body.
fn message(response: &Response) -> String {
    let body: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
    let validation: Vec<&str> = body
        .elements
        .iter()
        .flat_map(|e| &e.validation_errors)
        .map(|v| v.message.as_str())
        .filter(|m| !m.is_empty())
        .collect();
    if !validation.is_empty() {
        return validation.join("; ");
    }
    let kind = body.kind.map(|k| format!("{k}: ")).unwrap_or_default();
    match body.message.or(body.detail) {
        Some(m) => format!("{kind}{m}"),
        None => response.body_snippet(300),
    }
}

/// `Retry-After` in milliseconds; Xero sends whole seconds.
fn retry_after(response: &Response) -> Option<u64> {
    let secs: u64 = response.header("retry-after")?.trim().parse().ok()?;
    Some(secs.saturating_mul(1000))
}

/// What a request did to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `PUT`: created it.
    Create,
    /// `GET`: looked it up.
    Find,
}

impl Verb {
    fn doing(self) -> &'static str {
        match self {
            Verb::Create => "creating",
            Verb::Find => "looking up",
        }
    }
}

/// Xero's message when `response` says the document's number is already taken (`400` "Invoice #
/// must be unique", "Credit Note # must be unique"): the document is already in Xero, from an
/// earlier delivery whose idempotency key Xero no longer remembers.
pub fn number_taken(response: &Response) -> Option<String> {
    if response.status != 400 {
        return None;
    }
    let message = message(response);
    message.contains("must be unique").then_some(message)
}

/// Checks an answer to a request that created or looked up `what` (e.g. `invoice
/// hk-001-HK001-000123`). Returns the response when it is a success; otherwise what the host
/// should do.
pub fn check(result: Result<Response, HttpError>, what: &str, verb: Verb) -> Result<Response, DeliveryError> {
    let doing = verb.doing();
    let response = result.map_err(|e| {
        DeliveryError::Retry(RetryHint {
            after_ms: None,
            reason: format!("no answer from Xero {doing} the {what}: {e}"),
        })
    })?;
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let message = message(&response);
    let hint = |reason: String| RetryHint {
        after_ms: retry_after(&response),
        reason,
    };
    Err(match status {
        401 => DeliveryError::Retry(hint(format!(
            "Xero answered 401 {doing} the {what} (token expired or revoked; the host refreshes it): {message}"
        ))),
        409 => DeliveryError::Retry(hint(format!(
            "Xero answered 409 {doing} the {what} (the same request is still in progress): {message}"
        ))),
        429 => {
            let problem = response.header("x-rate-limit-problem").unwrap_or("unspecified");
            DeliveryError::Throttled(hint(format!(
                "Xero rate limit ({problem}) {doing} the {what}: {message}"
            )))
        }
        500..=599 => DeliveryError::Retry(hint(format!("Xero answered {status} {doing} the {what}: {message}"))),
        _ if verb == Verb::Find => {
            DeliveryError::Rejected(format!("Xero answered HTTP {status} looking up the {what}: {message}"))
        }
        _ => DeliveryError::Rejected(format!("Xero refused the {what} (HTTP {status}): {message}")),
    })
}
