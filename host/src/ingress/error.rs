//! API errors: what the client did wrong (status, code, message, fields) or an internal error
//! answered with a reference id while the detail goes to the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaunter_model::EventError;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    errors: Vec<FieldError>,
    /// `Retry-After` to send, in seconds.
    pub(crate) retry_after_secs: Option<u64>,
}

/// One broken rule, for validation errors.
#[derive(Debug, Serialize)]
pub struct FieldError {
    /// Attribute or field path (`events[2].data.lines[0].quantity_milli`).
    pub attribute: String,
    /// The rule it breaks.
    pub rule: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

/// How many broken rules one answer lists.
pub const MAX_LISTED_ERRORS: usize = 100;

impl ApiError {
    /// The machine-readable code answered (`invalid_event`, `unauthorized`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// A client error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 400 for events that break rules (the index locates the event in a batch), listing at most
    /// [`MAX_LISTED_ERRORS`] of them (the message gives the total), so a large bad batch cannot
    /// make a much larger answer.
    pub fn invalid_events(errors: Vec<(Option<usize>, EventError)>) -> Self {
        let total = errors.len();
        let errors: Vec<FieldError> = errors
            .into_iter()
            .take(MAX_LISTED_ERRORS)
            .map(|(index, e)| FieldError {
                attribute: match index {
                    Some(i) => format!("events[{i}].{}", e.attribute),
                    None => e.attribute,
                },
                rule: e.rule,
            })
            .collect();
        let message = match errors.as_slice() {
            [only] => format!("invalid event: `{}` {}", only.attribute, only.rule),
            _ if total > MAX_LISTED_ERRORS => {
                format!("invalid event: {total} rules broken; `errors` lists the first {MAX_LISTED_ERRORS}")
            }
            many => format!("invalid event: {} rules broken; see `errors`", many.len()),
        };
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_event",
            message,
            errors,
            retry_after_secs: None,
        }
    }

    /// 503 with `Retry-After`.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "overloaded",
            message: message.into(),
            errors: Vec::new(),
            retry_after_secs: Some(1),
        }
    }

    /// 500: logs the detail under a fresh reference id and answers only the id.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let reference = ulid::Ulid::new().to_string();
        tracing::error!(reference = %reference, error = %detail, "internal error while serving a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error; quote reference {reference} to the operator"),
        )
    }

    /// 503 for a store that failed the write: logged with a reference, retried by the sender.
    pub fn store_unavailable(detail: impl std::fmt::Display) -> Self {
        let reference = ulid::Ulid::new().to_string();
        tracing::error!(reference = %reference, error = %detail, "the store failed a write; answered 503");
        ApiError {
            code: "store_unavailable",
            retry_after_secs: Some(5),
            ..ApiError::overloaded(format!(
                "the event log could not store this request, so nothing in it was accepted; send it again (reference {reference})"
            ))
        }
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<crate::pipeline::IngestError> for ApiError {
    /// Over capacity → 503 with `Retry-After`; a store failure (busy, I/O, the writer gone) →
    /// 503 `store_unavailable` with `Retry-After` and a reference: nothing in the request was
    /// acknowledged, and the same request sent again is safe (ids dedupe).
    fn from(e: crate::pipeline::IngestError) -> Self {
        match e {
            crate::pipeline::IngestError::Overloaded { .. } => ApiError::overloaded(e.to_string()),
            crate::pipeline::IngestError::LogFull { .. } => ApiError {
                code: "log_full",
                retry_after_secs: Some(30),
                ..ApiError::overloaded(e.to_string())
            },
            crate::pipeline::IngestError::Store(e) => ApiError::store_unavailable(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                errors: &self.errors,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
