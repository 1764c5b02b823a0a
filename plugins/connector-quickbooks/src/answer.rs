//! What QuickBooks Online's answers mean for the delivery. QuickBooks reports errors as a `Fault`
//! with a `type` and a list of `Error`s, each with a `code`, `Message` and `Detail` (401s spell
//! the same keys in lower case: `fault.error[].message`).
//!
//! | QuickBooks answers | the host |
//! |---|---|
//! | 2xx | delivered (the body is read for the receipt's `Id`) |
//! | 400 `ValidationFault` code 6140 (duplicate document number) | treats it as delivered (`conflict-is-success`) |
//! | 400 other faults (e.g. 610 object not found, 2020 required parameter, 6000 business validation) | dead-letters with code, message and detail |
//! | 401 `AUTHENTICATION` (code 3200, token expired or revoked) | retries; the host refreshes its token first |
//! | 403, 404, other 4xx | dead-letters with QuickBooks' message |
//! | 429 `ThrottleExceeded` (code 3001) | throttles the sink (`Retry-After` seconds when sent, else the host's backoff) |
//! | 5xx, no answer | retries (honouring `Retry-After` when sent) |

use kaunter_sdk::http::{HttpError, Response};
use kaunter_sdk::{DeliveryError, RetryHint};
use serde::Deserialize;

/// QuickBooks' duplicate document number error.
pub const DUPLICATE_DOC_NUMBER: &str = "6140";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FaultBody {
    #[serde(rename = "Fault", alias = "fault")]
    fault: Fault,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Fault {
    #[serde(rename = "Error", alias = "error")]
    errors: Vec<FaultError>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FaultError {
    #[serde(rename = "Message", alias = "message")]
    message: String,
    #[serde(rename = "Detail", alias = "detail")]
    detail: String,
    code: String,
}

/// `Retry-After` in milliseconds, when QuickBooks sends one (whole seconds).
fn retry_after(response: &Response) -> Option<u64> {
    let secs: u64 = response.header("retry-after")?.trim().parse().ok()?;
    Some(secs.saturating_mul(1000))
}

/// Checks the answer to the request that created `what` (e.g. `sales receipt HK001-000124`):
/// the response when it is a success, otherwise what the host should do.
pub fn check(result: Result<Response, HttpError>, what: &str) -> Result<Response, DeliveryError> {
    let response = result.map_err(|e| {
        DeliveryError::Retry(RetryHint {
            after_ms: None,
            reason: format!("no answer from QuickBooks creating the {what}: {e}"),
        })
    })?;
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let body: FaultBody = serde_json::from_slice(&response.body).unwrap_or_default();
    let described: Vec<String> = body
        .fault
        .errors
        .iter()
        .map(|e| match e.detail.is_empty() || e.detail == e.message {
            true => format!("{} (code {})", e.message, e.code),
            false => format!("{}: {} (code {})", e.message, e.detail, e.code),
        })
        .collect();
    let message = match (described.is_empty(), &body.fault.kind) {
        (true, _) => response.body_snippet(300),
        (false, Some(kind)) => format!("{kind}: {}", described.join("; ")),
        (false, None) => described.join("; "),
    };
    let hint = |reason: String| RetryHint {
        after_ms: retry_after(&response),
        reason,
    };
    let duplicate = body.fault.errors.iter().any(|e| e.code == DUPLICATE_DOC_NUMBER);
    Err(match status {
        400 if duplicate => {
            DeliveryError::ConflictIsSuccess(Some(format!("QuickBooks already has the {what}: {message}")))
        }
        401 => DeliveryError::Retry(hint(format!(
            "QuickBooks answered 401 creating the {what} (token expired or revoked; the host refreshes it): {message}"
        ))),
        429 => DeliveryError::Throttled(hint(format!("QuickBooks throttled the {what}: {message}"))),
        500..=599 => DeliveryError::Retry(hint(format!(
            "QuickBooks answered {status} creating the {what}: {message}"
        ))),
        _ => DeliveryError::Rejected(format!("QuickBooks refused the {what} (HTTP {status}): {message}")),
    })
}
