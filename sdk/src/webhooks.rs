//! Standard Webhooks signing: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
//!
//! The signed content is `{id}.{timestamp}.{body}`; the MAC is HMAC-SHA256 under the named
//! secret (a `whsec_` secret is used as its base64-decoded bytes, by the host).

use crate::host;
use base64::Engine as _;

/// The three Standard Webhooks headers for one message.
pub fn signature_headers(
    secret: &str,
    message_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let mut content = format!("{message_id}.{timestamp_secs}.").into_bytes();
    content.extend_from_slice(body);
    let mac = host::hmac_sha256(secret, &content).map_err(|e| format!("{e:?}"))?;
    let signature = base64::engine::general_purpose::STANDARD.encode(mac);
    Ok(vec![
        ("webhook-id".into(), message_id.to_owned()),
        ("webhook-timestamp".into(), timestamp_secs.to_string()),
        ("webhook-signature".into(), format!("v1,{signature}")),
    ])
}
