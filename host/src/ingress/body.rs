//! Reading request bodies: within a size limit, at a minimum rate, after authentication.
//!
//! Handlers read their body with [`read_body`] only once the caller is authenticated, so an
//! unauthenticated client cannot make the host buffer anything. The connection layer
//! (`server::conn`) fails a body that trickles in too slowly with [`BodyTooSlow`]; this module
//! turns that into a 408, an oversized body into a 413 and a broken one into a 400.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;

/// The error a body too slow to wait for ends with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived too slowly (under {0} bytes/s after the grace period; server.body_min_bytes_per_sec)"
)]
pub struct BodyTooSlow(pub u64);

/// The whole body, at most `limit` bytes; `what` names the limit's setting in the 413 message.
pub async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if let Some(slow) = c.downcast_ref::<BodyTooSlow>() {
                return ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_too_slow", slow.to_string());
            }
            if c.is::<http_body_util::LengthLimitError>() {
                return too_large(limit, what);
            }
            cause = c.source();
        }
        ApiError::bad_request(format!("the request body could not be read: {e}"))
    })
}

/// 413 for a body over `limit` bytes.
pub fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds the {limit}-byte limit ({what})"),
    )
}
